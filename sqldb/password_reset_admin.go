package sqldb

import (
	"context"
	"fmt"
	"time"

	"github.com/latchkey/latchkey"
)

// CreatePasswordResetForEmail returns a one-time set-password secret (prefix
// lkp_, valid for PasswordResetTTL) for the human user with email. It needs
// no caller and checks no permission: only in-process operator paths use it
// (`latchkey server` on first start, `latchkey admin password-link`), never
// a network handler. Earlier unused secrets for the user stop working.
// Returns ENOTFOUND when no human has that email.
func (s *UserService) CreatePasswordResetForEmail(ctx context.Context, email string) (string, time.Time, error) {
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return "", time.Time{}, err
	}
	defer tx.Rollback()
	u, err := findUserByEmail(ctx, tx, email)
	if err != nil {
		return "", time.Time{}, err
	} else if u == nil || u.IsServiceAccount() {
		return "", time.Time{}, latchkey.Errorf(latchkey.ENOTFOUND, "No user with email %q.", latchkey.NormalizeEmail(email))
	}

	secret, err := latchkey.NewSecret(s.db.Rand, latchkey.PrefixPasswordReset)
	if err != nil {
		return "", time.Time{}, err
	}
	id, err := s.db.newID()
	if err != nil {
		return "", time.Time{}, err
	}
	expiresAt := tx.Now().Add(PasswordResetTTL)
	if _, err := tx.ExecContext(ctx, `DELETE FROM password_resets WHERE user_id = ? AND used_at IS NULL`, u.ID); err != nil {
		return "", time.Time{}, fmt.Errorf("create password reset: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO password_resets (id, token_hash, user_id, created_by_user_id, created_at, expires_at, used_at)
		VALUES (?, ?, ?, NULL, ?, ?, NULL)`,
		id, latchkey.HashSecret(secret), u.ID, Time(tx.Now()), Time(expiresAt)); err != nil {
		return "", time.Time{}, fmt.Errorf("create password reset: %w", err)
	}
	// An operator acted: the audit events carry no actor, and the client
	// the caller put in ctx ("local").
	if err := recordPasswordReset(ctx, tx, auditActor{}, u.ID, expiresAt); err != nil {
		return "", time.Time{}, err
	}
	if err := tx.Commit(); err != nil {
		return "", time.Time{}, fmt.Errorf("create password reset: commit: %w", err)
	}
	return secret, expiresAt, nil
}
