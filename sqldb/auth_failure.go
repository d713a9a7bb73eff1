package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/latchkey/latchkey"
)

var _ latchkey.AuthFailureService = (*AuthFailureService)(nil)

// AuthFailureService keeps counts of failed authentications.
type AuthFailureService struct {
	db *DB
}

// NewAuthFailureService returns an AuthFailureService on db.
func NewAuthFailureService(db *DB) *AuthFailureService {
	return &AuthFailureService{db: db}
}

// Bounds of what one failure record stores.
const (
	maxFailureIdentifier = 254
	maxFailureAddr       = maxAuditAddr
)

// RecordAuthFailures adds failures to the stored counts, in one
// transaction: a record of the same kind, identifier, address and minute
// (from another replica, or an earlier flush) grows.
func (s *AuthFailureService) RecordAuthFailures(ctx context.Context, failures []*latchkey.AuthFailure) error {
	if len(failures) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, f := range failures {
		if _, err := tx.ExecContext(ctx, `INSERT INTO auth_failures (kind, identifier, client_addr, minute, count, first_at, last_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (kind, identifier, client_addr, minute) DO UPDATE SET
				count = auth_failures.count + excluded.count,
				first_at = CASE WHEN excluded.first_at < auth_failures.first_at THEN excluded.first_at ELSE auth_failures.first_at END,
				last_at = CASE WHEN excluded.last_at > auth_failures.last_at THEN excluded.last_at ELSE auth_failures.last_at END`,
			string(f.Kind), truncateUTF8(f.Identifier, maxFailureIdentifier), truncateUTF8(f.ClientAddr, maxFailureAddr),
			Time(f.Minute.UTC().Truncate(time.Minute)), f.Count, Time(f.FirstAt), Time(f.LastAt)); err != nil {
			return fmt.Errorf("record auth failures: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record auth failures: commit: %w", err)
	}
	return nil
}

// DeleteAuthFailuresBefore deletes the counts of the minutes before t (by
// the minute index).
func (s *AuthFailureService) DeleteAuthFailuresBefore(ctx context.Context, t time.Time) (int64, error) {
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM auth_failures WHERE minute < ?`, Time(t.UTC()))
	if err != nil {
		return 0, fmt.Errorf("delete auth failures: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete auth failures: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("delete auth failures: commit: %w", err)
	}
	return n, nil
}

// FindAuthFailures returns the failed sign-ins with the emails of the
// acting tenant's members, newest minute first.
func (s *AuthFailureService) FindAuthFailures(ctx context.Context, filter latchkey.AuthFailureFilter) ([]*latchkey.AuthFailure, int, error) {
	a, err := requireUnscopedHumanAdmin(ctx)
	if err != nil {
		return nil, 0, err
	}
	cond := `kind = ? AND identifier IN (SELECT users.email FROM users JOIN memberships ON memberships.user_id = users.id WHERE memberships.tenant_id = ?)`
	args := []any{string(latchkey.AuthFailureSignIn), a.TenantID}
	if filter.From != nil {
		cond, args = cond+` AND minute >= ?`, append(args, Time(*filter.From))
	}
	if filter.Before != nil {
		cond, args = cond+` AND minute < ?`, append(args, Time(*filter.Before))
	}
	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	query := `SELECT kind, identifier, client_addr, minute, count, first_at, last_at FROM auth_failures WHERE ` + cond +
		` ORDER BY minute DESC, identifier, client_addr` + formatLimitOffset(filter.Limit, filter.Offset)
	return findPage(ctx, tx, "auth failures", "auth_failures", cond, args, query, func(rows *sql.Rows) (*latchkey.AuthFailure, error) {
		var (
			f                     latchkey.AuthFailure
			kind                  string
			minute, first, latest Time
		)
		if err := rows.Scan(&kind, &f.Identifier, &f.ClientAddr, &minute, &f.Count, &first, &latest); err != nil {
			return nil, err
		}
		f.Kind, f.Minute, f.FirstAt, f.LastAt = latchkey.AuthFailureKind(kind), time.Time(minute), time.Time(first), time.Time(latest)
		return &f, nil
	})
}
