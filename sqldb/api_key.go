package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

var _ latchkey.APIKeyService = (*APIKeyService)(nil)

// APIKeyService stores API keys. Only the SHA-256 of a key is stored; the
// key text is returned once, by CreateAPIKey.
type APIKeyService struct {
	db *DB
}

// NewAPIKeyService returns an APIKeyService on db.
func NewAPIKeyService(db *DB) *APIKeyService {
	return &APIKeyService{db: db}
}

// FindAPIKeys returns the caller's own keys and, for a human TENANT_ADMIN,
// every key of the acting tenant's service accounts, with the count before
// Offset and Limit. A service account sees only its own keys, whatever its
// role. TENANT and RUNNER tokens get EFORBIDDEN: a shared token must not
// enumerate its owner's keys.
func (s *APIKeyService) FindAPIKeys(ctx context.Context, filter latchkey.APIKeyFilter) ([]*latchkey.APIKey, int, error) {
	a, tx, err := s.db.beginAs(ctx, requireUnscoped, false)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	keys, n, err := findAPIKeys(ctx, tx, a, filter)
	if err != nil {
		return nil, 0, err
	}
	return keys, n, tx.Commit()
}

// CreateAPIKey creates a key for the caller (key.UserID empty or the
// caller's id) or, for a TENANT_ADMIN, for a service account of the acting
// tenant, and returns its text, shown this once. On success key is filled
// in (ID, UserID, CreatedByUserID, DefaultTenantID, CreatedAt).
//
// Returns EFORBIDDEN for a service-account caller, a TENANT or RUNNER
// token, a key for another human, a service-account key by a non-admin or
// for another tenant's account, or a personal default tenant the caller is
// not a member of; ENOTFOUND for an unknown user; EINVALID for a bad name,
// an expiry not in the future, or a service-account key with a default
// tenant other than the account's.
func (s *APIKeyService) CreateAPIKey(ctx context.Context, key *latchkey.APIKey) (string, error) {
	a, err := requireUnscoped(ctx)
	if err != nil {
		return "", err
	} else if err := requireHuman(a); err != nil {
		return "", latchkey.Errorf(latchkey.EFORBIDDEN, "Service accounts cannot create API keys.")
	}
	if err := key.Validate(); err != nil {
		return "", err
	}
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	secret, err := createAPIKey(ctx, tx, a, key, false)
	if err != nil {
		return "", err
	}
	if err := recordAudit(ctx, tx, a, apiKeyAudit(latchkey.AuditAPIKeyCreate, key)); err != nil {
		return "", err
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("create api key: commit: %w", err)
	}
	return secret, nil
}

// DeleteAPIKey deletes a key the caller owns or, for a human TENANT_ADMIN,
// a key of a service account of the acting tenant (a service account
// deletes only its own keys). Refresh tokens minted from it go with it
// (foreign key cascade), and access tokens minted from it stop
// authenticating because their source is gone. Returns ENOTFOUND for any
// other key; EFORBIDDEN for TENANT and RUNNER tokens.
func (s *APIKeyService) DeleteAPIKey(ctx context.Context, id string) error {
	a, tx, err := s.db.beginAs(ctx, requireUnscoped, true)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	where, args := apiKeyVisibility(a)
	// Kept for the record (revoked_api_keys); the key row itself goes, so
	// authentication never sees a revoked key.
	if err := recordRevokedAPIKeys(ctx, tx, a, `api_keys.id = ? AND `+where, append([]any{id}, args...)...); err != nil {
		return err
	}
	key := &latchkey.APIKey{ID: id}
	err = tx.QueryRowContext(ctx, `DELETE FROM api_keys WHERE id = ? AND `+where+` RETURNING user_id, name, default_tenant_id`,
		append([]any{id}, args...)...).Scan(&key.UserID, &key.Name, &key.DefaultTenantID)
	if errors.Is(err, sql.ErrNoRows) {
		return latchkey.Errorf(latchkey.ENOTFOUND, "API key not found.")
	} else if err != nil {
		return fmt.Errorf("delete api key: %w", err)
	}
	if err := recordAudit(ctx, tx, a, apiKeyAudit(latchkey.AuditAPIKeyDelete, key)); err != nil {
		return err
	}
	if err := tx.publish(ctx, latchkey.Event{Type: latchkey.EventAPIKeyDeleted, UserID: key.UserID, APIKeyID: id}); err != nil {
		return fmt.Errorf("delete api key: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete api key: commit: %w", err)
	}
	return nil
}

// RotateAPIKey rolls a key: it mints a new key for the same owner, name and
// default tenant and makes the old one expire r.OldKeyExpiresIn from now
// (never later than it would have anyway), in one transaction with one
// audit event. Rolling is revoking plus creating, so the caller must pass
// both checks: DeleteAPIKey's visibility (the owner, or a human
// TENANT_ADMIN for the acting tenant's service accounts) and CreateAPIKey's
// (a human, who may mint a key for that owner in that tenant). An earlier
// expiry is published, so every replica's cache drops the old key and sees
// its new expiry.
func (s *APIKeyService) RotateAPIKey(ctx context.Context, r *latchkey.APIKeyRotation) (string, error) {
	a, err := requireUnscoped(ctx)
	if err != nil {
		return "", err
	} else if err := requireHuman(a); err != nil {
		return "", latchkey.Errorf(latchkey.EFORBIDDEN, "Service accounts cannot roll API keys; ask a tenant admin.")
	}
	if r.OldKeyExpiresIn < 0 {
		return "", latchkey.Errorf(latchkey.EINVALID, "The old key's grace period cannot be negative; use 0 to end it now.")
	} else if r.OldKeyExpiresIn > latchkey.MaxAPIKeyGracePeriod {
		return "", latchkey.Errorf(latchkey.EINVALID, "The old key's grace period can be at most %d seconds (30 days).", int64(latchkey.MaxAPIKeyGracePeriod/time.Second))
	}
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	now := tx.Now()

	// The old key, locked so that concurrent rolls and deletes queue.
	where, args := apiKeyVisibility(a)
	q := `SELECT ` + apiKeyColumns + ` FROM api_keys WHERE api_keys.id = ? AND ` + where
	if s.db.dialect == postgres {
		q += ` FOR UPDATE`
	}
	old, err := scanAPIKey(tx.QueryRowContext(ctx, q, append([]any{r.OldKeyID}, args...)...))
	if errors.Is(err, sql.ErrNoRows) {
		return "", latchkey.Errorf(latchkey.ENOTFOUND, "API key not found.")
	} else if err != nil {
		return "", fmt.Errorf("rotate api key: %w", err)
	}
	if old.Expired(now) {
		return "", latchkey.Errorf(latchkey.EINVALID, "That API key has already expired; create a new key instead.")
	}

	key := &latchkey.APIKey{Name: old.Name, UserID: old.UserID, DefaultTenantID: old.DefaultTenantID, ExpiresAt: r.ExpiresAt}
	// The new key takes the old one's name: the old one is on its way out.
	secret, err := createAPIKey(ctx, tx, a, key, true)
	if err != nil {
		return "", err
	}

	oldExpiresAt := now.Add(r.OldKeyExpiresIn).UTC().Truncate(time.Microsecond)
	if old.ExpiresAt != nil && old.ExpiresAt.Before(oldExpiresAt) {
		// Rolling never extends a key's life.
		oldExpiresAt = *old.ExpiresAt
	}
	if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET expires_at = ? WHERE id = ?`, Time(oldExpiresAt), old.ID); err != nil {
		return "", fmt.Errorf("rotate api key: %w", err)
	}

	rec := apiKeyAudit(latchkey.AuditAPIKeyRotate, old)
	rec.details = map[string]string{
		"name":               old.Name,
		"user_id":            old.UserID,
		"new_key_id":         key.ID,
		"old_key_expires_at": formatAuditTime(&oldExpiresAt),
		"expires_at":         formatAuditTime(key.ExpiresAt),
	}
	if err := recordAudit(ctx, tx, a, rec); err != nil {
		return "", err
	}
	if old.ExpiresAt == nil || !old.ExpiresAt.Equal(oldExpiresAt) {
		if err := tx.publish(ctx, latchkey.Event{Type: latchkey.EventAPIKeyExpiryChanged, UserID: old.UserID, APIKeyID: old.ID}); err != nil {
			return "", fmt.Errorf("rotate api key: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("rotate api key: commit: %w", err)
	}
	r.NewKey = key
	r.OldKeyExpiresAt = oldExpiresAt
	return secret, nil
}

// createAPIKey checks who the key is for, then stores it and fills key in.
// The caller has already been checked to be a human holding neither a
// TENANT nor a RUNNER token. A live key of the owner with the same name is
// a conflict (expired keys do not hold on to their names), unless the new
// key succeeds a rolled one (rolled): it takes that key's name, which other
// keys of its rolls may still carry during their grace periods.
func createAPIKey(ctx context.Context, tx *Tx, a *latchkey.Auth, key *latchkey.APIKey, rolled bool) (string, error) {
	now := tx.Now()
	if key.ExpiresAt != nil && !key.ExpiresAt.After(now) {
		return "", latchkey.Errorf(latchkey.EINVALID, "Expiration must be in the future.")
	}
	targetID := key.UserID
	if targetID == "" {
		targetID = a.User.ID
	}
	var prefix, defaultTenantID string
	if targetID == a.User.ID {
		prefix = latchkey.PrefixUserKey
		defaultTenantID = key.DefaultTenantID
		if defaultTenantID == "" {
			defaultTenantID = a.TenantID
		}
		// Checked even for the acting tenant: the membership may have gone
		// since the caller authenticated.
		if role, err := findMembershipRole(ctx, tx, a.User.ID, defaultTenantID); err != nil {
			return "", err
		} else if role == "" {
			return "", latchkey.Errorf(latchkey.EFORBIDDEN, "You are not a member of that tenant.")
		}
	} else {
		target, err := findUserByID(ctx, tx, targetID)
		if err != nil {
			return "", err
		}
		if !target.IsServiceAccount() {
			return "", latchkey.Errorf(latchkey.EFORBIDDEN, "You can only create keys for yourself or, as a tenant admin, for service accounts.")
		}
		if err := requireAdmin(a); err != nil {
			return "", err
		} else if target.TenantID != a.TenantID {
			return "", latchkey.Errorf(latchkey.EFORBIDDEN, "Switch to that tenant first.")
		}
		if key.DefaultTenantID != "" && key.DefaultTenantID != target.TenantID {
			return "", latchkey.Errorf(latchkey.EINVALID, "A service account key acts in the account's tenant only.")
		}
		prefix = latchkey.PrefixServiceKey
		defaultTenantID = target.TenantID
	}

	if err := lockRow(ctx, tx, "users", targetID); err != nil {
		return "", fmt.Errorf("create api key: %w", err)
	}
	var taken int
	if rolled {
		// Its name is the rolled key's.
	} else if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_keys WHERE user_id = ? AND name = ? AND (expires_at IS NULL OR expires_at > ?)`,
		targetID, key.Name, Time(now)).Scan(&taken); err != nil {
		return "", fmt.Errorf("create api key: %w", err)
	} else if taken > 0 {
		if targetID == a.User.ID {
			return "", latchkey.Errorf(latchkey.ECONFLICT, "You already have an API key named “%s”. Choose another name, or revoke the old key first.", key.Name)
		}
		return "", latchkey.Errorf(latchkey.ECONFLICT, "This service account already has an API key named “%s”. Choose another name, or revoke the old key first.", key.Name)
	}

	secret, err := latchkey.NewSecret(tx.db.Rand, prefix)
	if err != nil {
		return "", fmt.Errorf("create api key: %w", err)
	}
	identifier := latchkey.SecretIdentifier(secret)
	id, err := tx.db.newID()
	if err != nil {
		return "", fmt.Errorf("create api key: %w", err)
	}
	var expiresAt *time.Time
	if key.ExpiresAt != nil {
		t := key.ExpiresAt.UTC().Truncate(time.Microsecond)
		expiresAt = &t
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO api_keys (id, user_id, name, identifier, key_hash, created_by_user_id, default_tenant_id, created_at, expires_at, last_used_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
		id, targetID, key.Name, identifier, latchkey.HashSecret(secret), a.User.ID, defaultTenantID, Time(now), timePtr(expiresAt)); err != nil {
		return "", fmt.Errorf("create api key: %w", formatError(err, "API key already exists."))
	}
	key.ID = id
	key.Identifier = identifier
	key.UserID = targetID
	key.CreatedByUserID = a.User.ID
	key.DefaultTenantID = defaultTenantID
	key.CreatedAt = now
	key.ExpiresAt = expiresAt
	key.LastUsedAt = nil
	return secret, nil
}

// apiKeyAudit is the audit record of a change to key, in the key's
// default tenant (a service-account key's: the account's tenant).
func apiKeyAudit(action latchkey.AuditAction, key *latchkey.APIKey) auditRecord {
	return auditRecord{
		tenantID: key.DefaultTenantID, action: action,
		targetType: latchkey.AuditTargetAPIKey, targetID: key.ID,
		details: map[string]string{"name": key.Name, "user_id": key.UserID, "expires_at": formatAuditTime(key.ExpiresAt)},
	}
}

// apiKeyVisibility returns a condition on api_keys, with its arguments,
// matching the keys a may see: its own and, for a human TENANT_ADMIN, the
// keys of the acting tenant's service accounts. Service accounts never
// manage credentials but their own, whatever their role.
func apiKeyVisibility(a *latchkey.Auth) (string, []any) {
	if a.IsAdmin(a.TenantID) && !a.User.IsServiceAccount() {
		return `(api_keys.user_id = ? OR api_keys.user_id IN (SELECT users.id FROM users WHERE users.kind = ? AND users.tenant_id = ?))`,
			[]any{a.User.ID, string(latchkey.UserKindServiceAccount), a.TenantID}
	}
	return `api_keys.user_id = ?`, []any{a.User.ID}
}

// apiKeyColumns are the api_keys columns scanAPIKey reads, in order. The
// hash is never among them.
const apiKeyColumns = `api_keys.id, api_keys.name, api_keys.identifier, api_keys.user_id, api_keys.created_by_user_id, api_keys.default_tenant_id, api_keys.created_at, api_keys.expires_at, api_keys.last_used_at`

// scanAPIKey reads apiKeyColumns (and then extra, if any) into an APIKey.
func scanAPIKey(s rowScanner, extra ...any) (*latchkey.APIKey, error) {
	var (
		k                            latchkey.APIKey
		identifier, createdBy        sql.NullString
		createdAt, expires, lastUsed Time
	)
	dest := append([]any{&k.ID, &k.Name, &identifier, &k.UserID, &createdBy, &k.DefaultTenantID, &createdAt, &expires, &lastUsed}, extra...)
	if err := s.Scan(dest...); err != nil {
		return nil, err
	}
	k.Identifier = identifier.String
	k.CreatedByUserID = createdBy.String
	k.CreatedAt = time.Time(createdAt)
	k.ExpiresAt = expires.Ptr()
	k.LastUsedAt = lastUsed.Ptr()
	return &k, nil
}

// apiKeyOrderColumns maps the sort fields APIKeyFilter allows to columns.
var apiKeyOrderColumns = map[string]string{
	"created_at": "api_keys.created_at",
	"name":       "api_keys.name",
	"expires_at": "api_keys.expires_at",
}

// findAPIKeys returns the keys a may see that match filter, and their
// count before Offset and Limit.
func findAPIKeys(ctx context.Context, tx *Tx, a *latchkey.Auth, filter latchkey.APIKeyFilter) ([]*latchkey.APIKey, int, error) {
	where, args := apiKeyVisibility(a)
	conds := []string{where}
	if v := filter.ID; v != nil {
		conds, args = append(conds, `api_keys.id = ?`), append(args, *v)
	}
	if filter.IDs != nil {
		if len(filter.IDs) == 0 {
			return []*latchkey.APIKey{}, 0, nil
		}
		conds, args = appendIn(conds, args, `api_keys.id`, filter.IDs)
	}
	if v := filter.UserID; v != nil {
		conds, args = append(conds, `api_keys.user_id = ?`), append(args, *v)
	}
	if v := filter.TenantID; v != nil {
		conds, args = append(conds, `api_keys.default_tenant_id = ?`), append(args, *v)
	}
	if v := filter.Name; v != nil {
		conds, args = append(conds, `api_keys.name = ?`), append(args, *v)
	}
	if v := filter.NameContains; v != nil && *v != "" {
		conds, args = append(conds, `LOWER(api_keys.name) LIKE ? ESCAPE '\'`), append(args, containsPattern(*v))
	}
	var orderBy []string
	for _, o := range filter.OrderBy {
		col, ok := apiKeyOrderColumns[o.Field]
		if !ok {
			return nil, 0, latchkey.Errorf(latchkey.EINVALID, "Cannot order API keys by %q.", o.Field)
		}
		dir := ""
		if o.Desc {
			dir = " DESC"
		}
		if o.Field == "expires_at" {
			// NULL (never) sorts as the latest time on both engines.
			orderBy = append(orderBy, "(api_keys.expires_at IS NULL)"+dir)
		}
		orderBy = append(orderBy, col+dir)
	}
	orderBy = append(orderBy, "api_keys.created_at", "api_keys.id")

	return findCounted(ctx, tx, "api keys", apiKeyColumns, "api_keys", conds, args, strings.Join(orderBy, ", "), filter.Limit, filter.Offset, scanAPIKey)
}

// findAPIKeyByHash returns the key with the given SHA-256 and its owner, or
// nil, nil, nil if there is none. It is the lookup behind API-key
// authentication and reads exactly what a cache in front of it would hold:
// such a cache must drop an entry when the key is deleted or expires, and
// when its owner is deleted.
func findAPIKeyByHash(ctx context.Context, tx *Tx, hash []byte) (*latchkey.APIKey, *latchkey.User, error) {
	return findAPIKeyWithOwner(ctx, tx, `api_keys.key_hash = ?`, hash)
}

// findAPIKeyByIDWithOwner is findAPIKeyByHash by id, for access tokens minted
// from a key.
func findAPIKeyByIDWithOwner(ctx context.Context, tx *Tx, id string) (*latchkey.APIKey, *latchkey.User, error) {
	return findAPIKeyWithOwner(ctx, tx, `api_keys.id = ?`, id)
}

func findAPIKeyWithOwner(ctx context.Context, tx *Tx, cond string, arg any) (*latchkey.APIKey, *latchkey.User, error) {
	k, u, err := findWithOwner(ctx, tx, scanAPIKey, `SELECT `+apiKeyColumns+`, `+userColumns+`
		FROM api_keys JOIN users ON users.id = api_keys.user_id
		WHERE `+cond, arg)
	if err != nil {
		return nil, nil, fmt.Errorf("find api key: %w", err)
	}
	return k, u, nil
}

// lockRow locks row id of table for the rest of tx, so that checks made
// under it (a name not yet taken) hold until the transaction commits. On
// PostgreSQL it is a row lock that does not block foreign-key checks; on
// SQLite every write transaction already holds the database's write lock.
func lockRow(ctx context.Context, tx *Tx, table, id string) error {
	if tx.db.dialect != postgres {
		return nil
	}
	var got string
	err := tx.QueryRowContext(ctx, `SELECT id FROM `+table+` WHERE id = ? FOR NO KEY UPDATE`, id).Scan(&got)
	if errNoRows(err) {
		return nil // the inserts that follow fail on their foreign keys
	} else if err != nil {
		return fmt.Errorf("lock %s: %w", table, err)
	}
	return nil
}
