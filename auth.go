package latchkey

import (
	"context"
	"time"
)

// CredentialKind says how a caller authenticated.
type CredentialKind string

// Credential kinds.
const (
	CredentialAPIKey      CredentialKind = "api_key"      // a personal or service-account key
	CredentialAccessToken CredentialKind = "access_token" // a JWT minted from a key or token
	CredentialAPIToken    CredentialKind = "api_token"    // a deprecated scoped token
	CredentialSession     CredentialKind = "session"      // a web UI session cookie
)

// Auth is an authenticated caller acting in one tenant. It travels in the
// request context (see NewContextWithAuth).
type Auth struct {
	// User is the principal: a human or a service account.
	User *User

	// TenantID is the tenant the caller acts in. The caller is a member of
	// it (a service account: its own tenant).
	TenantID string

	// Role is the caller's role in TenantID, already capped by the scope of
	// a legacy token.
	Role Role

	// Kind is the credential presented.
	Kind CredentialKind

	// APIKeyID is the key presented, or the key an access token was minted
	// from. APITokenID is likewise for legacy tokens.
	APIKeyID   string
	APITokenID string

	// TokenScope is set when the credential is (or was minted from) a
	// legacy API token.
	TokenScope TokenScope

	// SessionID is set for web UI sessions.
	SessionID string
}

// IsAdmin reports whether the caller is a TENANT_ADMIN of tenantID.
func (a *Auth) IsAdmin(tenantID string) bool {
	return a != nil && a.TenantID == tenantID && a.Role == RoleTenantAdmin
}

// CanWrite reports whether the caller may change things in its tenant
// (every role except READ_ONLY_USER).
func (a *Auth) CanWrite() bool {
	return a != nil && (a.Role == RoleTenantAdmin || a.Role == RoleUser)
}

// IsRunner reports whether the caller holds a RUNNER-scoped token, which
// may only do what agents do.
func (a *Auth) IsRunner() bool { return a != nil && a.TokenScope == TokenScopeRunner }

// AccessToken is the result of exchanging a credential for a short-lived,
// tenant-scoped JWT.
type AccessToken struct {
	AccessToken  string
	ExpiresAt    time.Time
	RefreshToken string
}

// AuthService turns credentials into an Auth and mints access tokens.
type AuthService interface {
	// Authenticate checks a bearer credential: an API key, an access
	// token, a legacy API token or a UI session secret. tenantID, if not
	// empty, is the tenant the caller asks to act in
	// (X-PREFECT-TENANT-ID). Without it a key acts in its default tenant.
	//
	// Returns EUNAUTHENTICATED for a malformed, mistyped (bad checksum),
	// unknown, expired or revoked credential, for an access token whose
	// source key or token was revoked, for a tenant the principal is not a
	// member of, and for an access token presented with a different
	// tenant. Messages never echo the credential.
	Authenticate(ctx context.Context, credential, tenantID string) (*Auth, error)

	// SwitchTenant mints an access token and a refresh token for the caller
	// in context, acting in tenantID (empty: the caller's tenant). The
	// caller must be a member (EUNAUTHENTICATED otherwise). A RUNNER or
	// TENANT token cannot switch away from its tenant.
	SwitchTenant(ctx context.Context, tenantID string) (*AccessToken, error)

	// RefreshAccessToken consumes a refresh token (single use) together
	// with the access token it was issued with, which may have expired,
	// and returns a new pair. Reusing a refresh token revokes its whole
	// chain. Returns EUNAUTHENTICATED for anything wrong.
	RefreshAccessToken(ctx context.Context, refreshToken, accessToken string) (*AccessToken, error)

	// CreateSession signs a human in to the web UI and returns the session
	// secret for the cookie, shown once.
	CreateSession(ctx context.Context, userID string) (secret string, expiresAt time.Time, err error)

	// DeleteSession signs the session in context out.
	DeleteSession(ctx context.Context, sessionID string) error
}

// AccessClaims are what an access token asserts.
type AccessClaims struct {
	ID         string // jti
	UserID     string // sub
	TenantID   string // tid
	APIKeyID   string // set when minted from an API key
	APITokenID string // set when minted from a legacy token
	FamilyID   string // the refresh-token family it was minted in (fid)
	IssuedAt   time.Time
	NotBefore  time.Time
	ExpiresAt  time.Time
}

// TokenService signs and verifies access tokens.
type TokenService interface {
	// MintAccessToken signs claims with the current signing key.
	MintAccessToken(ctx context.Context, claims AccessClaims) (string, error)

	// VerifyAccessToken checks signature, algorithm, key id, issuer,
	// audience and time validity. It returns EUNAUTHENTICATED for any
	// failure. With allowExpired, an otherwise valid token past its expiry
	// is accepted (for refresh).
	VerifyAccessToken(ctx context.Context, token string, allowExpired bool) (*AccessClaims, error)

	// JWKS returns the JSON Web Key Set of the public keys in use.
	JWKS(ctx context.Context) ([]byte, error)
}

// SigningKey is an Ed25519 key used to sign access tokens.
type SigningKey struct {
	ID         string // kid
	Algorithm  string // "EdDSA"
	PrivateKey []byte // ed25519 seed (32 bytes); never logged
	PublicKey  []byte
	CreatedAt  time.Time
	RetiredAt  *time.Time // no longer signs; still verifies until tokens expire
}

// SigningKeyService persists signing keys. It needs no caller: only the
// server and `latchkey admin` use it.
type SigningKeyService interface {
	// FindSigningKeys returns keys not retired before since, newest first.
	FindSigningKeys(ctx context.Context, since time.Time) ([]*SigningKey, error)

	// CreateSigningKey stores a new key; it becomes the signing key.
	CreateSigningKey(ctx context.Context, key *SigningKey) error

	// RetireSigningKey stops a key signing; it still verifies.
	RetireSigningKey(ctx context.Context, id string, at time.Time) error
}
