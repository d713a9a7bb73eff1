package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/latchkey/latchkey"
)

var _ latchkey.APITokenService = (*APITokenService)(nil)

// APITokenService stores deprecated scoped API tokens. Only the SHA-256 of a
// token is stored; its text is returned once, by CreateAPIToken.
type APITokenService struct {
	db *DB
}

// NewAPITokenService returns an APITokenService on db.
func NewAPITokenService(db *DB) *APITokenService {
	return &APITokenService{db: db}
}

// FindAPITokens returns the caller's own tokens and, for a TENANT_ADMIN,
// the TENANT and RUNNER tokens of the acting tenant, with the count before
// Offset and Limit. Service accounts (which own no tokens) and TENANT and
// RUNNER tokens get EFORBIDDEN.
func (s *APITokenService) FindAPITokens(ctx context.Context, filter latchkey.APITokenFilter) ([]*latchkey.APIToken, int, error) {
	a, tx, err := s.db.beginAs(ctx, requireUnscopedHuman, false)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	tokens, n, err := findAPITokens(ctx, tx, a, filter)
	if err != nil {
		return nil, 0, err
	}
	return tokens, n, tx.Commit()
}

// CreateAPIToken creates a token for the calling human in the acting
// tenant and returns its text, shown once. On success token is filled in
// (ID, UserID, TenantID, CreatedAt).
//
// Returns EFORBIDDEN for a service account, a TENANT or RUNNER token, a
// token for someone else or for another tenant, and for TENANT and RUNNER
// scopes unless the caller is a TENANT_ADMIN; EINVALID for a bad scope or
// name.
func (s *APITokenService) CreateAPIToken(ctx context.Context, token *latchkey.APIToken) (string, error) {
	a, err := requireUnscoped(ctx)
	if err != nil {
		return "", err
	} else if err := requireHuman(a); err != nil {
		return "", latchkey.Errorf(latchkey.EFORBIDDEN, "Service accounts cannot create API tokens.")
	}
	if err := latchkey.ValidateName("API token name", token.Name, latchkey.MaxNameLength); err != nil {
		return "", err
	} else if !token.Scope.Valid() {
		return "", latchkey.Errorf(latchkey.EINVALID, "Invalid API token scope %q.", token.Scope)
	}
	if token.UserID != "" && token.UserID != a.User.ID {
		return "", latchkey.Errorf(latchkey.EFORBIDDEN, "You can only create API tokens for yourself.")
	} else if token.TenantID != "" && token.TenantID != a.TenantID {
		return "", latchkey.Errorf(latchkey.EFORBIDDEN, "Switch to that tenant first.")
	}
	if token.Scope != latchkey.TokenScopeUser {
		if err := requireAdmin(a); err != nil {
			return "", err
		}
	}

	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	// The membership may have gone since the caller authenticated.
	if role, err := findMembershipRole(ctx, tx, a.User.ID, a.TenantID); err != nil {
		return "", err
	} else if role == "" {
		return "", latchkey.Errorf(latchkey.EFORBIDDEN, "You are not a member of that tenant.")
	}
	secret, err := latchkey.NewSecret(s.db.Rand, latchkey.PrefixAPIToken)
	if err != nil {
		return "", fmt.Errorf("create api token: %w", err)
	}
	id, err := s.db.newID()
	if err != nil {
		return "", fmt.Errorf("create api token: %w", err)
	}
	now := tx.Now()
	if _, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (id, user_id, tenant_id, name, scope, token_hash, created_at, last_used_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, NULL)`,
		id, a.User.ID, a.TenantID, token.Name, string(token.Scope), latchkey.HashSecret(secret), Time(now)); err != nil {
		return "", fmt.Errorf("create api token: %w", formatError(err, "API token already exists."))
	}
	token.ID = id
	token.UserID = a.User.ID
	token.TenantID = a.TenantID
	token.CreatedAt = now
	token.LastUsedAt = nil
	if err := recordAudit(ctx, tx, a, apiTokenAudit(latchkey.AuditAPITokenCreate, token)); err != nil {
		return "", err
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("create api token: commit: %w", err)
	}
	return secret, nil
}

// DeleteAPIToken deletes a token the caller may see (see FindAPITokens);
// refresh tokens minted from it go with it, and access tokens minted from
// it stop authenticating. Returns ENOTFOUND for any other token, EFORBIDDEN
// for service accounts and TENANT and RUNNER tokens.
func (s *APITokenService) DeleteAPIToken(ctx context.Context, id string) error {
	a, tx, err := s.db.beginAs(ctx, requireUnscopedHuman, true)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	where, args := apiTokenVisibility(a)
	token := &latchkey.APIToken{ID: id}
	var scope string
	err = tx.QueryRowContext(ctx, `DELETE FROM api_tokens WHERE id = ? AND `+where+` RETURNING user_id, tenant_id, name, scope`,
		append([]any{id}, args...)...).Scan(&token.UserID, &token.TenantID, &token.Name, &scope)
	if errors.Is(err, sql.ErrNoRows) {
		return latchkey.Errorf(latchkey.ENOTFOUND, "API token not found.")
	} else if err != nil {
		return fmt.Errorf("delete api token: %w", err)
	}
	token.Scope = latchkey.TokenScope(scope)
	if err := recordAudit(ctx, tx, a, apiTokenAudit(latchkey.AuditAPITokenDelete, token)); err != nil {
		return err
	}
	if err := tx.publish(ctx, latchkey.Event{Type: latchkey.EventAPITokenDeleted, UserID: token.UserID, APITokenID: id}); err != nil {
		return fmt.Errorf("delete api token: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete api token: commit: %w", err)
	}
	return nil
}

// apiTokenAudit is the audit record of a change to token, in its tenant.
func apiTokenAudit(action latchkey.AuditAction, token *latchkey.APIToken) auditRecord {
	return auditRecord{
		tenantID: token.TenantID, action: action,
		targetType: latchkey.AuditTargetAPIToken, targetID: token.ID,
		details: map[string]string{"name": token.Name, "scope": string(token.Scope), "user_id": token.UserID},
	}
}

// apiTokenVisibility returns a condition on api_tokens, with its
// arguments, matching the tokens a may see: its own and, for a
// TENANT_ADMIN, the TENANT and RUNNER tokens of the acting tenant.
func apiTokenVisibility(a *latchkey.Auth) (string, []any) {
	if a.IsAdmin(a.TenantID) {
		return `(api_tokens.user_id = ? OR (api_tokens.tenant_id = ? AND api_tokens.scope IN (?, ?)))`,
			[]any{a.User.ID, a.TenantID, string(latchkey.TokenScopeTenant), string(latchkey.TokenScopeRunner)}
	}
	return `api_tokens.user_id = ?`, []any{a.User.ID}
}

// apiTokenColumns are the api_tokens columns scanAPIToken reads, in order.
// The hash is never among them.
const apiTokenColumns = `api_tokens.id, api_tokens.name, api_tokens.scope, api_tokens.user_id, api_tokens.tenant_id, api_tokens.created_at, api_tokens.last_used_at`

// scanAPIToken reads apiTokenColumns (and then extra, if any) into an APIToken.
func scanAPIToken(s rowScanner, extra ...any) (*latchkey.APIToken, error) {
	var (
		t                   latchkey.APIToken
		scope               string
		createdAt, lastUsed Time
	)
	dest := append([]any{&t.ID, &t.Name, &scope, &t.UserID, &t.TenantID, &createdAt, &lastUsed}, extra...)
	if err := s.Scan(dest...); err != nil {
		return nil, err
	}
	t.Scope = latchkey.TokenScope(scope)
	t.CreatedAt = time.Time(createdAt)
	t.LastUsedAt = lastUsed.Ptr()
	return &t, nil
}

// findAPITokens returns the tokens a may see that match filter, and their
// count before Offset and Limit.
func findAPITokens(ctx context.Context, tx *Tx, a *latchkey.Auth, filter latchkey.APITokenFilter) ([]*latchkey.APIToken, int, error) {
	where, args := apiTokenVisibility(a)
	conds := []string{where}
	if v := filter.ID; v != nil {
		conds, args = append(conds, `api_tokens.id = ?`), append(args, *v)
	}
	if v := filter.UserID; v != nil {
		conds, args = append(conds, `api_tokens.user_id = ?`), append(args, *v)
	}
	return findCounted(ctx, tx, "api tokens", apiTokenColumns, "api_tokens", conds, args, "api_tokens.created_at, api_tokens.id", filter.Limit, filter.Offset, scanAPIToken)
}

// findAPITokenByHash returns the token with the given SHA-256 and its
// owner, or nil, nil, nil if there is none: the lookup behind legacy-token
// authentication (see findAPIKeyByHash about caching it).
func findAPITokenByHash(ctx context.Context, tx *Tx, hash []byte) (*latchkey.APIToken, *latchkey.User, error) {
	return findAPITokenWithOwner(ctx, tx, `api_tokens.token_hash = ?`, hash)
}

// findAPITokenByIDWithOwner is findAPITokenByHash by id, for access tokens
// minted from a legacy token.
func findAPITokenByIDWithOwner(ctx context.Context, tx *Tx, id string) (*latchkey.APIToken, *latchkey.User, error) {
	return findAPITokenWithOwner(ctx, tx, `api_tokens.id = ?`, id)
}

func findAPITokenWithOwner(ctx context.Context, tx *Tx, cond string, arg any) (*latchkey.APIToken, *latchkey.User, error) {
	t, u, err := findWithOwner(ctx, tx, scanAPIToken, `SELECT `+apiTokenColumns+`, `+userColumns+`
		FROM api_tokens JOIN users ON users.id = api_tokens.user_id
		WHERE `+cond, arg)
	if err != nil {
		return nil, nil, fmt.Errorf("find api token: %w", err)
	}
	return t, u, nil
}
