package sqldb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/latchkey/latchkey"
)

var _ latchkey.AuthService = (*AuthService)(nil)

// DefaultSessionTTL is the lifetime of a web UI session unless configured otherwise.
const DefaultSessionTTL = 7 * 24 * time.Hour

// lastUsedInterval is how stale a credential's last_used_at (a session's
// last_seen_at) may get before Authenticate writes it again, so that busy
// credentials cost one write a minute, not one per request.
const lastUsedInterval = time.Minute

// AuthService checks credentials and mints access, refresh and session
// secrets. Only hashes of the secrets it issues are stored.
//
// Authenticate answers from Cache when it can; otherwise it reads
// everything a request needs in one read-only transaction (and fills the
// cache). It writes only to record a credential's use, at most once a
// minute per credential and replica. Every change that can revoke a
// credential publishes an event (see DB.Events) that empties the cache of
// the user concerned before the change's method returns, so revocation
// stays immediate.
type AuthService struct {
	db *DB

	// Tokens signs and verifies access tokens.
	Tokens latchkey.TokenService

	// AccessTTL, RefreshTTL and SessionTTL are the lifetimes of access
	// tokens, refresh tokens and web UI sessions. NewAuthService sets them
	// to latchkey.DefaultAccessTokenTTL, latchkey.DefaultRefreshTokenTTL and
	// DefaultSessionTTL; zero means the default.
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	SessionTTL time.Duration

	// Cache, if set, answers Authenticate for credentials it verified
	// recently, without a database round trip. It must be subscribed to
	// the DB's Events (NewAuthCache(db.Events)), which is what keeps
	// revocation immediate. Nil: every request reads the database.
	Cache *AuthCache

	writes writeBatcher // refresh-token inserts of new families
}

// NewAuthService returns an AuthService on db that signs access tokens with tokens.
func NewAuthService(db *DB, tokens latchkey.TokenService) *AuthService {
	return &AuthService{
		db:         db,
		Tokens:     tokens,
		AccessTTL:  latchkey.DefaultAccessTokenTTL,
		RefreshTTL: latchkey.DefaultRefreshTokenTTL,
		SessionTTL: DefaultSessionTTL,
	}
}

func (s *AuthService) accessTTL() time.Duration {
	if s.AccessTTL > 0 {
		return s.AccessTTL
	}
	return latchkey.DefaultAccessTokenTTL
}

func (s *AuthService) refreshTTL() time.Duration {
	if s.RefreshTTL > 0 {
		return s.RefreshTTL
	}
	return latchkey.DefaultRefreshTokenTTL
}

func (s *AuthService) sessionTTL() time.Duration {
	if s.SessionTTL > 0 {
		return s.SessionTTL
	}
	return DefaultSessionTTL
}

// unauthenticatedf returns an EUNAUTHENTICATED error. Messages never
// contain the credential.
func unauthenticatedf(format string, args ...any) error {
	return latchkey.Errorf(latchkey.EUNAUTHENTICATED, format, args...)
}

// notMember is the error for a principal that may not act in tenantID, a
// canonical UUID.
func notMember(tenantID string) error {
	return unauthenticatedf("Not a member of tenant %s.", tenantID)
}

// Authenticate checks a bearer credential and returns the caller it
// stands for, acting in tenantID (the X-PREFECT-TENANT-ID header) or, when
// that is empty, the credential's default tenant. Every refusal is
// EUNAUTHENTICATED, with a message that never contains the credential;
// database and signing-key outages are internal errors.
func (s *AuthService) Authenticate(ctx context.Context, credential, tenantID string) (*latchkey.Auth, error) {
	if tenantID != "" {
		id, err := uuid.Parse(tenantID)
		if err != nil {
			return nil, unauthenticatedf("Invalid tenant id.")
		}
		tenantID = id.String()
	}
	if strings.Count(credential, ".") == 2 {
		return s.authenticateAccessToken(ctx, credential, tenantID)
	}
	prefix, err := latchkey.ParseSecret(credential)
	if err != nil {
		// Only the (public) prefix is looked at, to say what was mistyped.
		switch {
		case strings.HasPrefix(credential, latchkey.PrefixUserKey), strings.HasPrefix(credential, latchkey.PrefixServiceKey):
			return nil, unauthenticatedf("Malformed API key.")
		case strings.HasPrefix(credential, latchkey.PrefixAPIToken):
			return nil, unauthenticatedf("Malformed API token.")
		}
		return nil, unauthenticatedf("Invalid credential.")
	}
	switch prefix {
	case latchkey.PrefixUserKey, latchkey.PrefixServiceKey:
		return s.authenticateAPIKey(ctx, credential, tenantID)
	case latchkey.PrefixAPIToken:
		return s.authenticateAPIToken(ctx, credential, tenantID)
	case latchkey.PrefixSession:
		return s.authenticateSession(ctx, credential, tenantID)
	}
	return nil, unauthenticatedf("Invalid credential.")
}

// secretHash is the SHA-256 of a secret, as stored and as cached.
func secretHash(secret string) [sha256.Size]byte { return sha256.Sum256([]byte(secret)) }

// newAuth returns a copy of a with User set to a copy of u (cached users
// are shared), in one allocation.
func newAuth(u *latchkey.User, a latchkey.Auth) *latchkey.Auth {
	p := &struct {
		a latchkey.Auth
		u latchkey.User
	}{a: a, u: *u}
	p.a.User = &p.u
	return &p.a
}

func (s *AuthService) authenticateAPIKey(ctx context.Context, secret, tenantID string) (*latchkey.Auth, error) {
	hash := secretHash(secret)
	if c := s.Cache; c != nil {
		now := s.db.Now()
		if e := c.byHashKind(kindAPIKey, hash, now); e != nil {
			if a, err := s.cachedAPIKeyAuth(ctx, e, tenantID, now); a != nil || err != nil {
				return a, err
			}
		}
	}
	return s.readAPIKeyAuth(ctx, hash, tenantID)
}

// cachedAPIKeyAuth authenticates the key of cache entry e, or returns
// nil, nil if the role is not cached.
func (s *AuthService) cachedAPIKeyAuth(ctx context.Context, e *cacheEntry, tenantID string, now time.Time) (*latchkey.Auth, error) {
	if e.apiKey.Expired(now) {
		return nil, unauthenticatedf("API key expired.")
	}
	if tenantID == "" {
		tenantID = e.apiKey.DefaultTenantID
	}
	if err := checkPrincipalTenant(e.user, tenantID); err != nil {
		return nil, err
	}
	role := s.Cache.roleOf(e.user.ID, tenantID, now)
	if role == "" {
		return nil, nil
	}
	s.recordUse(ctx, `UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)`, e.apiKey.ID, e, now)
	return newAuth(e.user, latchkey.Auth{TenantID: tenantID, Role: role, Kind: latchkey.CredentialAPIKey, APIKeyID: e.apiKey.ID}), nil
}

func (s *AuthService) readAPIKeyAuth(ctx context.Context, hash [sha256.Size]byte, tenantID string) (*latchkey.Auth, error) {
	c := s.Cache
	gen := c.begin() // before the read starts
	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	defer tx.Rollback()
	now := tx.Now()
	key, user, err := findAPIKeyByHash(ctx, tx, hash[:])
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	} else if key == nil {
		return nil, unauthenticatedf("Invalid API key.")
	} else if key.Expired(now) {
		return nil, unauthenticatedf("API key expired.")
	}
	e := c.putCredential(gen, (&cacheEntry{kind: kindAPIKey, hash: hash, userID: user.ID, user: user, apiKey: key}).setLastUsed(key.LastUsedAt), now)
	if tenantID == "" {
		tenantID = key.DefaultTenantID
	}
	role, err := principalRole(ctx, tx, user, tenantID)
	if err != nil {
		return nil, err
	}
	c.putRole(gen, user.ID, tenantID, role, now)
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	s.recordUse(ctx, `UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)`, key.ID, e, now)
	return newAuth(user, latchkey.Auth{TenantID: tenantID, Role: role, Kind: latchkey.CredentialAPIKey, APIKeyID: key.ID}), nil
}

func (s *AuthService) authenticateAPIToken(ctx context.Context, secret, tenantID string) (*latchkey.Auth, error) {
	hash := secretHash(secret)
	if c := s.Cache; c != nil {
		now := s.db.Now()
		if e := c.byHashKind(kindAPIToken, hash, now); e != nil {
			if a, err := s.cachedAPITokenAuth(ctx, e, tenantID, now); a != nil || err != nil {
				return a, err
			}
		}
	}
	return s.readAPITokenAuth(ctx, hash, tenantID)
}

func errTokenTenant() error {
	return unauthenticatedf("An API token acts only in its own tenant; do not send a tenant id with it.")
}

// cachedAPITokenAuth authenticates the token of cache entry e, or returns
// nil, nil if the role is not cached.
func (s *AuthService) cachedAPITokenAuth(ctx context.Context, e *cacheEntry, tenantID string, now time.Time) (*latchkey.Auth, error) {
	token := e.apiToken
	if tenantID != "" && tenantID != token.TenantID {
		return nil, errTokenTenant()
	}
	if err := checkPrincipalTenant(e.user, token.TenantID); err != nil {
		return nil, err
	}
	role := s.Cache.roleOf(e.user.ID, token.TenantID, now)
	if role == "" {
		return nil, nil
	}
	s.recordUse(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)`, token.ID, e, now)
	return newAuth(e.user, latchkey.Auth{TenantID: token.TenantID, Role: capRole(role, token.Scope),
		Kind: latchkey.CredentialAPIToken, APITokenID: token.ID, TokenScope: token.Scope}), nil
}

func (s *AuthService) readAPITokenAuth(ctx context.Context, hash [sha256.Size]byte, tenantID string) (*latchkey.Auth, error) {
	c := s.Cache
	gen := c.begin()
	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	defer tx.Rollback()
	now := tx.Now()
	token, user, err := findAPITokenByHash(ctx, tx, hash[:])
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	} else if token == nil {
		return nil, unauthenticatedf("Invalid API token.")
	}
	e := c.putCredential(gen, (&cacheEntry{kind: kindAPIToken, hash: hash, userID: user.ID, user: user, apiToken: token}).setLastUsed(token.LastUsedAt), now)
	if tenantID != "" && tenantID != token.TenantID {
		return nil, errTokenTenant()
	}
	role, err := principalRole(ctx, tx, user, token.TenantID)
	if err != nil {
		return nil, err
	}
	c.putRole(gen, user.ID, token.TenantID, role, now)
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	s.recordUse(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)`, token.ID, e, now)
	return newAuth(user, latchkey.Auth{TenantID: token.TenantID, Role: capRole(role, token.Scope),
		Kind: latchkey.CredentialAPIToken, APITokenID: token.ID, TokenScope: token.Scope}), nil
}

func (s *AuthService) authenticateAccessToken(ctx context.Context, token, tenantID string) (*latchkey.Auth, error) {
	if s.Tokens == nil {
		return nil, errors.New("authenticate: no token service")
	}
	claims, err := s.Tokens.VerifyAccessToken(ctx, token, false)
	if err != nil {
		if latchkey.ErrorCode(err) == latchkey.EUNAUTHENTICATED {
			return nil, err
		}
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if tenantID != "" && tenantID != claims.TenantID {
		return nil, unauthenticatedf("This access token is for another tenant; switch tenants first.")
	}
	if c := s.Cache; c != nil {
		if a, err := s.cachedAccessTokenAuth(claims, s.db.Now()); a != nil || err != nil {
			return a, err
		}
	}
	gen := s.Cache.begin()
	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	defer tx.Rollback()
	a, err := accessTokenAuth(ctx, tx, claims, s.Cache, gen)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	return a, nil
}

func errSourceRevoked() error {
	return unauthenticatedf("The API key or token this access token was issued from has been revoked.")
}

// cachedAccessTokenAuth is accessTokenAuth from the cache: it returns nil,
// nil when the source or the role is not cached.
func (s *AuthService) cachedAccessTokenAuth(claims *latchkey.AccessClaims, now time.Time) (*latchkey.Auth, error) {
	c := s.Cache
	a := latchkey.Auth{TenantID: claims.TenantID, Kind: latchkey.CredentialAccessToken, APIKeyID: claims.APIKeyID, APITokenID: claims.APITokenID}
	var user *latchkey.User
	switch {
	case claims.APIKeyID != "" && claims.APITokenID != "", claims.APIKeyID == "" && claims.APITokenID == "":
		return nil, unauthenticatedf("Invalid access token.")
	case claims.APIKeyID != "":
		e := c.byIDKind(kindAPIKeyID, claims.APIKeyID, now)
		if e == nil {
			return nil, nil
		} else if e.apiKey.UserID != claims.UserID {
			return nil, errSourceRevoked()
		} else if e.apiKey.Expired(now) {
			return nil, unauthenticatedf("API key expired.")
		}
		user = e.user
	default:
		e := c.byIDKind(kindAPITokenID, claims.APITokenID, now)
		if e == nil {
			return nil, nil
		} else if t := e.apiToken; t.UserID != claims.UserID || (t.Scope != latchkey.TokenScopeUser && t.TenantID != claims.TenantID) {
			return nil, errSourceRevoked()
		}
		user, a.TokenScope = e.user, e.apiToken.Scope
	}
	if err := checkPrincipalTenant(user, claims.TenantID); err != nil {
		return nil, err
	}
	role := c.roleOf(user.ID, claims.TenantID, now)
	if role == "" {
		return nil, nil
	}
	a.Role = capRole(role, a.TokenScope)
	return newAuth(user, a), nil
}

// accessTokenAuth checks, at the transaction's time, that what claims were
// minted from still holds: the source key (not expired) or legacy token
// still exists and belongs to the subject, and the subject may still act in
// the tenant. The role is read now, never taken from a token. What it reads
// is stored in c (which may be nil) under generation gen.
func accessTokenAuth(ctx context.Context, tx *Tx, claims *latchkey.AccessClaims, c *AuthCache, gen uint64) (*latchkey.Auth, error) {
	a := latchkey.Auth{
		TenantID:   claims.TenantID,
		Kind:       latchkey.CredentialAccessToken,
		APIKeyID:   claims.APIKeyID,
		APITokenID: claims.APITokenID,
	}
	var user *latchkey.User
	switch {
	case claims.APIKeyID != "" && claims.APITokenID != "":
		return nil, unauthenticatedf("Invalid access token.")
	case claims.APIKeyID != "":
		key, u, err := findAPIKeyByIDWithOwner(ctx, tx, claims.APIKeyID)
		if err != nil {
			return nil, fmt.Errorf("authenticate: %w", err)
		} else if key == nil {
			return nil, errSourceRevoked()
		}
		c.putCredential(gen, &cacheEntry{kind: kindAPIKeyID, id: key.ID, userID: u.ID, user: u, apiKey: key}, tx.Now())
		if key.UserID != claims.UserID {
			return nil, errSourceRevoked()
		} else if key.Expired(tx.Now()) {
			return nil, unauthenticatedf("API key expired.")
		}
		user = u
	case claims.APITokenID != "":
		token, u, err := findAPITokenByIDWithOwner(ctx, tx, claims.APITokenID)
		if err != nil {
			return nil, fmt.Errorf("authenticate: %w", err)
		} else if token == nil {
			return nil, errSourceRevoked()
		}
		c.putCredential(gen, &cacheEntry{kind: kindAPITokenID, id: token.ID, userID: u.ID, user: u, apiToken: token}, tx.Now())
		if token.UserID != claims.UserID || (token.Scope != latchkey.TokenScopeUser && token.TenantID != claims.TenantID) {
			return nil, errSourceRevoked()
		}
		user, a.TokenScope = u, token.Scope
	default:
		// Access tokens are only minted from a key or token, so that
		// revoking it revokes them.
		return nil, unauthenticatedf("Invalid access token.")
	}
	role, err := principalRole(ctx, tx, user, claims.TenantID)
	if err != nil {
		return nil, err
	}
	c.putRole(gen, user.ID, claims.TenantID, role, tx.Now())
	a.Role = capRole(role, a.TokenScope)
	return newAuth(user, a), nil
}

func (s *AuthService) authenticateSession(ctx context.Context, secret, tenantID string) (*latchkey.Auth, error) {
	hash := secretHash(secret)
	if c := s.Cache; c != nil {
		now := s.db.Now()
		if e := c.byHashKind(kindSession, hash, now); e != nil {
			if a, err := s.cachedSessionAuth(ctx, e, tenantID, now); a != nil || err != nil {
				return a, err
			}
		}
	}
	return s.readSessionAuth(ctx, hash, tenantID)
}

func errSessionExpired() error { return unauthenticatedf("Session expired; sign in again.") }

// cachedSessionAuth authenticates the session of cache entry e, or returns
// nil, nil if the tenant or role is not cached.
func (s *AuthService) cachedSessionAuth(ctx context.Context, e *cacheEntry, tenantID string, now time.Time) (*latchkey.Auth, error) {
	if !now.Before(e.session.expiresAt) {
		return nil, errSessionExpired()
	}
	if tenantID == "" {
		// The default tenant if the user is still a member there; other
		// cases are left to sessionTenant.
		tenantID = e.user.DefaultTenantID
		if tenantID == "" {
			return nil, nil
		}
	}
	role := s.Cache.roleOf(e.user.ID, tenantID, now)
	if role == "" {
		return nil, nil
	}
	s.recordUse(ctx, `UPDATE sessions SET last_seen_at = ? WHERE id = ? AND (last_seen_at IS NULL OR last_seen_at <= ?)`, e.session.id, e, now)
	return newAuth(e.user, latchkey.Auth{TenantID: tenantID, Role: role, Kind: latchkey.CredentialSession, SessionID: e.session.id}), nil
}

func (s *AuthService) readSessionAuth(ctx context.Context, hash [sha256.Size]byte, tenantID string) (*latchkey.Auth, error) {
	c := s.Cache
	gen := c.begin()
	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	defer tx.Rollback()
	now := tx.Now()
	sess, user, err := findSessionByHash(ctx, tx, hash[:])
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	} else if sess == nil || user.IsServiceAccount() {
		return nil, unauthenticatedf("Invalid session.")
	} else if !now.Before(sess.expiresAt) {
		return nil, errSessionExpired()
	}
	e := c.putCredential(gen, (&cacheEntry{kind: kindSession, hash: hash, userID: user.ID, user: user, session: sess}).setLastUsed(sess.lastSeenAt), now)
	if tenantID == "" {
		if tenantID, err = sessionTenant(ctx, tx, user); err != nil {
			return nil, err
		}
	}
	role, err := principalRole(ctx, tx, user, tenantID)
	if err != nil {
		return nil, err
	}
	c.putRole(gen, user.ID, tenantID, role, now)
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	s.recordUse(ctx, `UPDATE sessions SET last_seen_at = ? WHERE id = ? AND (last_seen_at IS NULL OR last_seen_at <= ?)`, sess.id, e, now)
	return newAuth(user, latchkey.Auth{TenantID: tenantID, Role: role, Kind: latchkey.CredentialSession, SessionID: sess.id}), nil
}

// sessionTenant is the tenant a session acts in without a tenant header:
// the user's default tenant if they are still a member there, else their
// oldest membership.
func sessionTenant(ctx context.Context, tx *Tx, u *latchkey.User) (string, error) {
	if u.DefaultTenantID != "" {
		if role, err := findMembershipRole(ctx, tx, u.ID, u.DefaultTenantID); err != nil {
			return "", fmt.Errorf("authenticate: %w", err)
		} else if role != "" {
			return u.DefaultTenantID, nil
		}
	}
	var tenantID string
	err := tx.QueryRowContext(ctx, `SELECT tenant_id FROM memberships WHERE user_id = ? ORDER BY created_at, id LIMIT 1`, u.ID).Scan(&tenantID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", unauthenticatedf("You are not a member of any tenant.")
	} else if err != nil {
		return "", fmt.Errorf("authenticate: find tenant: %w", err)
	}
	return tenantID, nil
}

// principalRole returns u's role in tenantID, or EUNAUTHENTICATED if u may
// not act there (a service account acts only in its own tenant).
func principalRole(ctx context.Context, tx *Tx, u *latchkey.User, tenantID string) (latchkey.Role, error) {
	if err := checkPrincipalTenant(u, tenantID); err != nil {
		return "", err
	}
	role, err := findMembershipRole(ctx, tx, u.ID, tenantID)
	if err != nil {
		return "", fmt.Errorf("authenticate: %w", err)
	} else if role == "" {
		return "", notMember(tenantID)
	}
	return role, nil
}

// checkPrincipalTenant returns EUNAUTHENTICATED for a service account
// outside its own tenant.
func checkPrincipalTenant(u *latchkey.User, tenantID string) error {
	if u.IsServiceAccount() && u.TenantID != tenantID {
		return notMember(tenantID)
	}
	return nil
}

// capRole caps role at USER for TENANT and RUNNER tokens.
func capRole(role latchkey.Role, scope latchkey.TokenScope) latchkey.Role {
	if (scope == latchkey.TokenScopeTenant || scope == latchkey.TokenScopeRunner) && role == latchkey.RoleTenantAdmin {
		return latchkey.RoleUser
	}
	return role
}

// recordUse runs query (SET the column to $1 WHERE id = $2 AND the column
// is NULL or at most $3) unless e, the credential's cache entry, says this
// replica recorded a use less than lastUsedInterval before now. Of
// concurrent requests, only one writes. A failure is logged, not returned:
// it must not fail the request.
func (s *AuthService) recordUse(ctx context.Context, query, id string, e *cacheEntry, now time.Time) {
	last := e.lastUsed.Load()
	if last != 0 && now.Sub(time.Unix(0, last)) < lastUsedInterval {
		return
	}
	if !e.lastUsed.CompareAndSwap(last, now.UnixNano()) {
		return // another request is recording it
	}
	err := func() error {
		tx, err := s.db.BeginTx(ctx, true)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, query, Time(tx.Now()), id, Time(tx.Now().Add(-lastUsedInterval))); err != nil {
			return err
		}
		return tx.Commit()
	}()
	if err != nil {
		s.db.Logger.WarnContext(ctx, "recording credential use failed", "id", id, "err", err)
	}
}

// SwitchTenant mints an access token and a refresh token for the caller,
// acting in tenantID (empty: the caller's tenant). The caller must have
// authenticated with an API key, a legacy token or an access token minted
// from one (EFORBIDDEN "Use an API key." for sessions); TENANT and RUNNER
// tokens may not switch away from their tenant (EFORBIDDEN). Returns
// EUNAUTHENTICATED if the principal is not a member of tenantID (a service
// account: not its tenant) or its credential has just been revoked.
func (s *AuthService) SwitchTenant(ctx context.Context, tenantID string) (*latchkey.AccessToken, error) {
	a, err := requireAuth(ctx)
	if err != nil {
		return nil, err
	}
	if a.Kind == latchkey.CredentialSession || (a.APIKeyID == "" && a.APITokenID == "") {
		return nil, latchkey.Errorf(latchkey.EFORBIDDEN, "Use an API key.")
	}
	if tenantID == "" {
		tenantID = a.TenantID
	} else if id, err := uuid.Parse(tenantID); err != nil {
		return nil, unauthenticatedf("Not a member of that tenant.")
	} else {
		tenantID = id.String()
	}
	if (a.TokenScope == latchkey.TokenScopeTenant || a.TokenScope == latchkey.TokenScopeRunner) && tenantID != a.TenantID {
		return nil, latchkey.Errorf(latchkey.EFORBIDDEN, "%s tokens cannot switch tenants.", a.TokenScope)
	}
	claims := latchkey.AccessClaims{
		UserID:     a.User.ID,
		TenantID:   tenantID,
		APIKeyID:   a.APIKeyID,
		APITokenID: a.APITokenID,
	}
	// Mint only what would authenticate: the same checks as
	// authenticating the new access token, from the cache when it holds
	// them (it drops a user's entries before a revoking change returns).
	now, err := s.checkClaims(ctx, &claims)
	if err != nil {
		if latchkey.ErrorCode(err) == latchkey.EINTERNAL {
			return nil, fmt.Errorf("switch tenant: %w", err)
		}
		return nil, err
	}
	return s.issue(ctx, claims, now, "", "")
}

// checkClaims checks that an access token with claims would authenticate
// now, as authenticateAccessToken does after the signature check: from the
// cache if it holds the source credential and the role, else by reading
// them (and caching what it read). It returns the time of the check.
func (s *AuthService) checkClaims(ctx context.Context, claims *latchkey.AccessClaims) (time.Time, error) {
	if c := s.Cache; c != nil {
		now := s.db.Now().UTC().Truncate(time.Microsecond)
		if a, err := s.cachedAccessTokenAuth(claims, now); err != nil {
			return time.Time{}, err
		} else if a != nil {
			return now, nil
		}
	}
	gen := s.Cache.begin() // before the read starts
	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return time.Time{}, err
	}
	defer tx.Rollback()
	if _, err := accessTokenAuth(ctx, tx, claims, s.Cache, gen); err != nil {
		return time.Time{}, err
	}
	if err := tx.Commit(); err != nil {
		return time.Time{}, err
	}
	return tx.Now(), nil
}

// refreshTokenRow is a refresh_tokens row, without its hash.
type refreshTokenRow struct {
	id, familyID, userID, tenantID string
	apiKeyID, apiTokenID           string
	accessTokenID                  string
	expiresAt                      time.Time
	usedAt                         *time.Time
}

// RefreshAccessToken consumes a refresh token together with the access
// token it was issued with (which may have expired) and returns a new pair
// in the same family. A refresh token already used revokes its whole
// family. Every refusal is EUNAUTHENTICATED.
func (s *AuthService) RefreshAccessToken(ctx context.Context, refreshToken, accessToken string) (*latchkey.AccessToken, error) {
	if s.Tokens == nil {
		return nil, errors.New("refresh access token: no token service")
	}
	if prefix, err := latchkey.ParseSecret(refreshToken); err != nil || prefix != latchkey.PrefixRefreshToken {
		return nil, unauthenticatedf("Invalid refresh token.")
	}
	hash := latchkey.HashSecret(refreshToken)
	// Verified first, outside the transaction, but acted on only after the
	// reuse check: a spent refresh token revokes its family whatever
	// access token comes with it.
	claims, verifyErr := s.Tokens.VerifyAccessToken(ctx, accessToken, true)

	gen := s.Cache.begin() // before the read starts
	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("refresh access token: %w", err)
	}
	defer tx.Rollback()
	now := tx.Now()
	rt, err := findRefreshTokenByHash(ctx, tx, hash)
	if err != nil {
		return nil, err
	} else if rt == nil {
		return nil, unauthenticatedf("Invalid refresh token.")
	} else if !now.Before(rt.expiresAt) {
		return nil, unauthenticatedf("Refresh token expired; sign in again.")
	} else if rt.usedAt != nil {
		tx.Rollback()
		return nil, s.revokeRefreshFamily(ctx, rt.familyID)
	}
	if verifyErr != nil {
		if latchkey.ErrorCode(verifyErr) == latchkey.EUNAUTHENTICATED {
			return nil, verifyErr
		}
		return nil, fmt.Errorf("refresh access token: %w", verifyErr)
	}
	if claims.ID != rt.accessTokenID || claims.UserID != rt.userID || claims.TenantID != rt.tenantID ||
		claims.APIKeyID != rt.apiKeyID || claims.APITokenID != rt.apiTokenID {
		return nil, unauthenticatedf("The access token does not belong to this refresh token.")
	}
	next := latchkey.AccessClaims{UserID: rt.userID, TenantID: rt.tenantID, APIKeyID: rt.apiKeyID, APITokenID: rt.apiTokenID}
	// The source and the role as authenticating the new access token would
	// check them: from the cache when it holds them, else read here.
	cached := false
	if c := s.Cache; c != nil {
		if a, err := s.cachedAccessTokenAuth(&next, now); err != nil {
			return nil, err
		} else if a != nil {
			cached = true
		}
	}
	if !cached {
		if _, err := accessTokenAuth(ctx, tx, &next, s.Cache, gen); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("refresh access token: %w", err)
	}
	return s.issue(ctx, next, now, rt.familyID, rt.id)
}

// revokeRefreshFamily deletes every refresh token of a family after one
// of them was presented twice, and returns the error to show.
func (s *AuthService) revokeRefreshFamily(ctx context.Context, familyID string) error {
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return fmt.Errorf("revoke refresh tokens: %w", err)
	}
	defer tx.Rollback()
	if err := deleteRefreshFamily(ctx, tx, familyID); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("revoke refresh tokens: %w", err)
	}
	s.db.Logger.WarnContext(ctx, "refresh token reuse; revoked its family", "family_id", familyID)
	return unauthenticatedf("Refresh token reuse detected; sign in again.")
}

func deleteRefreshFamily(ctx context.Context, tx *Tx, familyID string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE family_id = ?`, familyID); err != nil {
		return fmt.Errorf("revoke refresh tokens: %w", err)
	}
	return nil
}

func findRefreshTokenByHash(ctx context.Context, tx *Tx, hash []byte) (*refreshTokenRow, error) {
	var (
		rt                   refreshTokenRow
		apiKeyID, apiTokenID sql.NullString
		expiresAt, usedAt    Time
	)
	err := tx.QueryRowContext(ctx, `SELECT id, family_id, user_id, tenant_id, api_key_id, api_token_id, access_token_id, expires_at, used_at
		FROM refresh_tokens WHERE token_hash = ?`, hash).
		Scan(&rt.id, &rt.familyID, &rt.userID, &rt.tenantID, &apiKeyID, &apiTokenID, &rt.accessTokenID, &expiresAt, &usedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("find refresh token: %w", err)
	}
	rt.apiKeyID, rt.apiTokenID = apiKeyID.String, apiTokenID.String
	rt.expiresAt, rt.usedAt = time.Time(expiresAt), usedAt.Ptr()
	return &rt, nil
}

// issue mints an access token for claims (its id and times are set here)
// and stores a refresh token for it in familyID (a new family if empty).
// spentID, if set, is the refresh token being exchanged: it is marked used
// in the same transaction, and if it already was (a concurrent reuse) the
// family is revoked instead. The token service is called outside any
// transaction, since it may itself write signing keys.
func (s *AuthService) issue(ctx context.Context, claims latchkey.AccessClaims, now time.Time, familyID, spentID string) (*latchkey.AccessToken, error) {
	jti, err := s.db.newID()
	if err != nil {
		return nil, fmt.Errorf("issue access token: %w", err)
	}
	iat := now.Truncate(time.Second) // JWT times are whole seconds
	claims.ID, claims.IssuedAt, claims.NotBefore, claims.ExpiresAt = jti, iat, iat, iat.Add(s.accessTTL())
	access, err := s.Tokens.MintAccessToken(ctx, claims)
	if err != nil {
		return nil, fmt.Errorf("issue access token: %w", err)
	}
	refresh, err := latchkey.NewSecret(s.db.Rand, latchkey.PrefixRefreshToken)
	if err != nil {
		return nil, fmt.Errorf("issue refresh token: %w", err)
	}
	id, err := s.db.newID()
	if err != nil {
		return nil, fmt.Errorf("issue refresh token: %w", err)
	}
	if familyID == "" {
		if familyID, err = s.db.newID(); err != nil {
			return nil, fmt.Errorf("issue refresh token: %w", err)
		}
	}

	insert := func(ctx context.Context, tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens (id, token_hash, family_id, user_id, tenant_id, api_key_id, api_token_id, access_token_id, created_at, expires_at, used_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
			id, latchkey.HashSecret(refresh), familyID, claims.UserID, claims.TenantID, nullString(claims.APIKeyID), nullString(claims.APITokenID),
			jti, Time(tx.Now()), Time(tx.Now().Add(s.refreshTTL())))
		return err
	}
	if spentID == "" {
		// A new family: nothing to mark used, so the insert can share a
		// write transaction with those of concurrent requests.
		if err := s.writes.do(ctx, s.db, insert); err != nil {
			return nil, fmt.Errorf("issue refresh token: %w", err)
		}
		return &latchkey.AccessToken{AccessToken: access, ExpiresAt: claims.ExpiresAt, RefreshToken: refresh}, nil
	}
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("issue refresh token: %w", err)
	}
	defer tx.Rollback()
	if spentID != "" {
		res, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL`, Time(tx.Now()), spentID)
		if err != nil {
			return nil, fmt.Errorf("use refresh token: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, fmt.Errorf("use refresh token: %w", err)
		} else if n == 0 {
			// Used (or revoked) since we read it.
			tx.Rollback()
			return nil, s.revokeRefreshFamily(ctx, familyID)
		}
	}
	if err := insert(ctx, tx); err != nil {
		return nil, fmt.Errorf("issue refresh token: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("issue refresh token: %w", err)
	}
	return &latchkey.AccessToken{AccessToken: access, ExpiresAt: claims.ExpiresAt, RefreshToken: refresh}, nil
}

// sessionRow is a sessions row, without its hash.
type sessionRow struct {
	id         string
	expiresAt  time.Time
	lastSeenAt *time.Time
}

// findSessionByHash returns the session with the given SHA-256 and its
// user, or nil, nil, nil: the lookup behind session authentication.
func findSessionByHash(ctx context.Context, tx *Tx, hash []byte) (*sessionRow, *latchkey.User, error) {
	row := tx.QueryRowContext(ctx, `SELECT sessions.id, sessions.expires_at, sessions.last_seen_at, `+userColumns+`
		FROM sessions JOIN users ON users.id = sessions.user_id
		WHERE sessions.token_hash = ?`, hash)
	var (
		sess                sessionRow
		expiresAt, lastSeen Time
	)
	u, err := scanUser(scanFunc(func(userDest ...any) error {
		return row.Scan(append([]any{&sess.id, &expiresAt, &lastSeen}, userDest...)...)
	}))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, fmt.Errorf("find session: %w", err)
	}
	sess.expiresAt, sess.lastSeenAt = time.Time(expiresAt), lastSeen.Ptr()
	return &sess, u, nil
}

// CreateSession signs a human in to the web UI and returns the session
// secret for the cookie, shown once, and when it expires. It needs no
// caller: the web login handler calls it after AuthenticatePassword (or a
// password reset) has established who userID is. Returns ENOTFOUND for an
// unknown user, EINVALID for a service account.
func (s *AuthService) CreateSession(ctx context.Context, userID string) (string, time.Time, error) {
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("create session: %w", err)
	}
	defer tx.Rollback()
	u, err := findUserByID(ctx, tx, userID)
	if err != nil {
		return "", time.Time{}, err
	} else if u.IsServiceAccount() {
		return "", time.Time{}, latchkey.Errorf(latchkey.EINVALID, "Service accounts cannot sign in.")
	}
	secret, err := latchkey.NewSecret(s.db.Rand, latchkey.PrefixSession)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("create session: %w", err)
	}
	id, err := s.db.newID()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("create session: %w", err)
	}
	now := tx.Now()
	expiresAt := now.Add(s.sessionTTL())
	if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (id, token_hash, user_id, created_at, expires_at, last_seen_at) VALUES (?, ?, ?, ?, ?, NULL)`,
		id, latchkey.HashSecret(secret), u.ID, Time(now), Time(expiresAt)); err != nil {
		return "", time.Time{}, fmt.Errorf("create session: %w", err)
	}
	// A sign-in reaches every tenant of the user: each one's log shows it.
	if err := recordAuditInUserTenants(ctx, tx, auditActor{userID: u.ID, kind: latchkey.CredentialPassword}, u.ID, auditRecord{
		action: latchkey.AuditSessionCreate, targetType: latchkey.AuditTargetSession, targetID: id,
		details: map[string]string{"email": u.Email, "expires_at": formatAuditTime(&expiresAt)},
	}); err != nil {
		return "", time.Time{}, err
	}
	if err := tx.Commit(); err != nil {
		return "", time.Time{}, fmt.Errorf("create session: %w", err)
	}
	return secret, expiresAt, nil
}

// DeleteSession signs out one of the caller's sessions (usually the one in
// context, a.SessionID). Returns ENOTFOUND for a session that is not the
// caller's.
func (s *AuthService) DeleteSession(ctx context.Context, sessionID string) error {
	a, err := requireAuth(ctx)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id = ? AND user_id = ?`, sessionID, a.User.ID)
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete session: %w", err)
	} else if n == 0 {
		return latchkey.Errorf(latchkey.ENOTFOUND, "Session not found.")
	}
	if err := tx.publish(ctx, latchkey.Event{Type: latchkey.EventSessionsDeleted, UserID: a.User.ID, SessionID: sessionID}); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}
