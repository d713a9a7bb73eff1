package latchkey

import (
	"context"
	"time"
)

// TokenScope is the scope of a deprecated API token.
type TokenScope string

// Legacy token scopes.
//
// A USER token is a personal access token: it acts as its owner in any of
// the owner's tenants (the default one unless switch_tenant picks another),
// with the owner's role there. A TENANT token is bound to the tenant it was
// made in and acts there with at most the USER role. A RUNNER token is bound
// to its tenant and may only do what an agent and its flow runs do.
const (
	TokenScopeUser   TokenScope = "USER"
	TokenScopeTenant TokenScope = "TENANT"
	TokenScopeRunner TokenScope = "RUNNER"
)

// Valid reports whether s is a known scope.
func (s TokenScope) Valid() bool {
	switch s {
	case TokenScopeUser, TokenScopeTenant, TokenScopeRunner:
		return true
	}
	return false
}

// APIToken is a deprecated scoped token, kept for 0.15-era clients. Like
// keys, only its SHA-256 is stored.
type APIToken struct {
	ID         string
	Name       string
	Scope      TokenScope
	UserID     string // owner
	TenantID   string // the tenant it is bound to; for USER scope, the one it was made in
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

// APITokenFilter selects tokens. Nil fields do not filter.
type APITokenFilter struct {
	ID     *string
	UserID *string

	Offset int
	Limit  int
}

// APITokenService manages deprecated API tokens.
type APITokenService interface {
	// FindAPITokens returns the caller's own tokens and, for a human
	// TENANT_ADMIN, the TENANT and RUNNER tokens of the acting tenant.
	// Service accounts, and TENANT and RUNNER tokens, get EFORBIDDEN.
	FindAPITokens(ctx context.Context, filter APITokenFilter) ([]*APIToken, int, error)

	// CreateAPIToken creates a token for the calling human in the acting
	// tenant and returns its text, shown once. TENANT and RUNNER scopes
	// need TENANT_ADMIN (EFORBIDDEN); a bad scope is EINVALID.
	CreateAPIToken(ctx context.Context, token *APIToken) (secret string, err error)

	// DeleteAPIToken revokes a token at once, with every access token
	// minted from it. Same visibility rules as FindAPITokens (ENOTFOUND).
	DeleteAPIToken(ctx context.Context, id string) error
}
