package latchkey

import (
	"context"
	"time"
)

// APIKey is a long-lived credential owned by a user or a service account.
// The key text itself is never stored or returned after creation: the store
// keeps its SHA-256 only.
type APIKey struct {
	ID   string
	Name string

	// Identifier tells keys apart without revealing them: the key's prefix
	// and last four characters (latchkey.SecretIdentifier, "lku_…x9Qz"),
	// stored when the key is created. Empty for keys created before
	// identifiers were stored.
	Identifier string

	// UserID is the owner: a human user or a service account.
	UserID string

	// CreatedByUserID is who minted it (an admin, for service-account keys).
	CreatedByUserID string

	// DefaultTenantID is the tenant the key acts in when the caller does
	// not name one. A service-account key is bound to its account's tenant.
	DefaultTenantID string

	CreatedAt  time.Time
	ExpiresAt  *time.Time // nil: never
	LastUsedAt *time.Time // nil: never used
}

// Validate returns EINVALID for a bad name (see ValidateName).
func (k *APIKey) Validate() error {
	return ValidateName("API key name", k.Name, MaxNameLength)
}

// Expired reports whether the key has expired at now.
func (k *APIKey) Expired(now time.Time) bool {
	return k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)
}

// MaxAPIKeyGracePeriod is the longest an API key may stay valid after it
// was rolled: a rotation is a short overlap, not a second lifetime.
const MaxAPIKeyGracePeriod = 30 * 24 * time.Hour

// APIKeyRotation asks RotateAPIKey to roll a key: mint its successor and
// make the old key expire after a grace period.
type APIKeyRotation struct {
	// OldKeyID is the key to roll.
	OldKeyID string
	// OldKeyExpiresIn is how long the old key stays valid from now: 0 ends
	// it at once; at most MaxAPIKeyGracePeriod. A key that would expire
	// sooner anyway keeps its earlier expiry.
	OldKeyExpiresIn time.Duration
	// ExpiresAt is the new key's expiry; nil: never.
	ExpiresAt *time.Time

	// Filled in by RotateAPIKey on success.
	NewKey          *APIKey   // same owner, name and default tenant as the old key
	OldKeyExpiresAt time.Time // when the old key stops working
}

// APIKeyFilter selects keys. Nil fields do not filter.
type APIKeyFilter struct {
	ID       *string
	IDs      []string
	UserID   *string
	TenantID *string // keys whose default tenant is this one
	Name     *string

	// NameContains keeps keys whose name contains it, ignoring case.
	NameContains *string

	OrderBy []SortOrder // allowed fields: created_at, name, expires_at
	Offset  int
	Limit   int
}

// APIKeyService manages API keys.
type APIKeyService interface {
	// FindAPIKeys returns the caller's own keys and, for a human
	// TENANT_ADMIN, every service-account key of the acting tenant. A
	// service account sees only its own keys, whatever its role; TENANT and
	// RUNNER tokens get EFORBIDDEN. Returns the count before Offset and Limit.
	FindAPIKeys(ctx context.Context, filter APIKeyFilter) ([]*APIKey, int, error)

	// CreateAPIKey creates a key and returns its text, which is shown this
	// once and never again. key.UserID empty means the caller. Users create
	// keys for themselves (DefaultTenantID empty: the acting tenant; else a
	// tenant they belong to). Keys for a service account may only be
	// created by a TENANT_ADMIN of its tenant; keys for any other user by
	// no one (EFORBIDDEN). A service account cannot create keys. An
	// ExpiresAt in the past is EINVALID; a name the owner already has for
	// another key is ECONFLICT. On success key is filled in, with its
	// Identifier.
	CreateAPIKey(ctx context.Context, key *APIKey) (secret string, err error)

	// DeleteAPIKey revokes a key at once, and with it every access token
	// and refresh token minted from it, on every replica. Owners delete
	// their own keys; human TENANT_ADMINs delete service-account keys of
	// their tenant. Anything else is ENOTFOUND (a key the caller may not see
	// does not exist); TENANT and RUNNER tokens get EFORBIDDEN. Creation and
	// deletion are recorded in the tenant's audit log.
	DeleteAPIKey(ctx context.Context, id string) error

	// RotateAPIKey rolls a key without an outage: it mints a new key for
	// the same owner, name and default tenant (expiring at r.ExpiresAt),
	// returns its text, shown this once, and makes the old key expire
	// r.OldKeyExpiresIn from now, so that both work during the overlap.
	// Rolling is revoking plus creating: the caller must be allowed both,
	// that is, be the human owner of the key, or a human TENANT_ADMIN of the
	// acting tenant for a key of its service account. Service accounts,
	// TENANT and RUNNER tokens get EFORBIDDEN; a key the caller may not see
	// (or a revoked one) is ENOTFOUND; an expired key, a negative or too
	// long grace period, or a new expiry not in the future is EINVALID. It
	// is audited as one event naming both keys.
	RotateAPIKey(ctx context.Context, r *APIKeyRotation) (secret string, err error)
}
