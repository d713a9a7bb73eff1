package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/latchkey/latchkey"
)

var _ latchkey.RevokedAPIKeyService = (*APIKeyService)(nil)

// recordRevokedAPIKeys copies the api_keys rows matching cond (a condition
// on api_keys) to revoked_api_keys, as revoked now by a. It must run in the
// transaction that deletes them, before the delete.
func recordRevokedAPIKeys(ctx context.Context, tx *Tx, a *latchkey.Auth, cond string, args ...any) error {
	var revokedBy string
	if a != nil && a.User != nil {
		revokedBy = a.User.ID
	}
	q := `INSERT INTO revoked_api_keys (id, user_id, owner_kind, owner_name, name, identifier, default_tenant_id, created_by_user_id, created_at, revoked_at, revoked_by_user_id)
		SELECT api_keys.id, api_keys.user_id, users.kind, CASE WHEN users.kind = ? THEN users.name ELSE '' END,
			api_keys.name, api_keys.identifier, api_keys.default_tenant_id, api_keys.created_by_user_id, api_keys.created_at, ?, ?
		FROM api_keys JOIN users ON users.id = api_keys.user_id WHERE ` + cond
	all := append([]any{string(latchkey.UserKindServiceAccount), Time(tx.Now()), nullString(revokedBy)}, args...)
	if _, err := tx.ExecContext(ctx, q, all...); err != nil {
		return fmt.Errorf("record revoked api keys: %w", err)
	}
	return nil
}

// FindRevokedAPIKeys returns the revoked keys the caller may see (see
// latchkey.RevokedAPIKeyService), newest revocation first.
func (s *APIKeyService) FindRevokedAPIKeys(ctx context.Context, filter latchkey.RevokedAPIKeyFilter) ([]*latchkey.RevokedAPIKey, int, error) {
	a, err := requireUnscoped(ctx)
	if err != nil {
		return nil, 0, err
	}
	cond, args := `revoked_api_keys.user_id = ?`, []any{a.User.ID}
	if a.IsAdmin(a.TenantID) && !a.User.IsServiceAccount() {
		cond = `(revoked_api_keys.user_id = ? OR (revoked_api_keys.owner_kind = ? AND revoked_api_keys.default_tenant_id = ?))`
		args = append(args, string(latchkey.UserKindServiceAccount), a.TenantID)
	}
	if filter.UserID != nil {
		cond, args = cond+` AND revoked_api_keys.user_id = ?`, append(args, *filter.UserID)
	}
	if v := filter.NameContains; v != nil && *v != "" {
		cond, args = cond+` AND LOWER(revoked_api_keys.name) LIKE ? ESCAPE '\'`, append(args, containsPattern(*v))
	}
	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	query := `SELECT id, name, user_id, owner_kind, owner_name, default_tenant_id, created_by_user_id, created_at, revoked_at, revoked_by_user_id
		FROM revoked_api_keys WHERE ` + cond + ` ORDER BY revoked_at DESC, id` + formatLimitOffset(filter.Limit, filter.Offset)
	return findPage(ctx, tx, "revoked api keys", "revoked_api_keys", cond, args, query, func(rows *sql.Rows) (*latchkey.RevokedAPIKey, error) {
		var (
			k                    latchkey.RevokedAPIKey
			kind                 string
			createdBy, revokedBy sql.NullString
			createdAt, revokedAt Time
		)
		if err := rows.Scan(&k.ID, &k.Name, &k.UserID, &kind, &k.OwnerName, &k.DefaultTenantID, &createdBy, &createdAt, &revokedAt, &revokedBy); err != nil {
			return nil, err
		}
		k.OwnerKind, k.CreatedByUserID, k.RevokedByUserID = latchkey.UserKind(kind), createdBy.String, revokedBy.String
		k.CreatedAt, k.RevokedAt = time.Time(createdAt), time.Time(revokedAt)
		return &k, nil
	})
}
