package sqldb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

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

	// Gate, if set, is called before each database lookup that the cache
	// cannot answer (the token service gates signature checks itself) and may
	// make it wait, or refuse it with ERATELIMIT; release is called when
	// the check is done. ratelimit.Guard.Gate implements it: clients that
	// keep failing share a few slots, so their guesses cost little, while
	// a valid credential still authenticates. Nil: nothing waits.
	Gate func(ctx context.Context) (release func(), err error)
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
//
// Every kind of credential takes the same path: the credential is turned
// into a lookup key (the SHA-256 of a secret; for an access token, after
// its signature is verified, the id of the key or token it was minted
// from), lookup returns the credential's record (owner, tenant binding,
// scope, expiry; none if unknown or revoked), and decide applies the one
// policy to it.
func (s *AuthService) Authenticate(ctx context.Context, credential, tenantID string) (*latchkey.Auth, error) {
	if tenantID != "" {
		id, ok := latchkey.ParseUUID(tenantID)
		if !ok {
			return nil, unauthenticatedf("Invalid tenant id.")
		}
		tenantID = id
	}
	req := authRequest{tenantID: tenantID}
	var key credentialKey
	if strings.Count(credential, ".") == 2 {
		claims, err := s.verifyAccessToken(ctx, credential)
		if err != nil {
			return nil, err
		}
		if key, err = sourceKey(claims); err != nil {
			return nil, err
		}
		req.claims = claims
	} else {
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
			key.kind = kindAPIKey
		case latchkey.PrefixAPIToken:
			key.kind = kindAPIToken
		case latchkey.PrefixSession:
			key.kind = kindSession
		default:
			return nil, unauthenticatedf("Invalid credential.")
		}
		key.hash = secretHash(credential)
	}
	rec, fresh, err := s.lookup(ctx, key)
	if err != nil {
		return nil, err
	}
	a, err := s.decide(ctx, key, rec, req, fresh)
	if err != nil {
		return nil, err
	}
	s.recordUse(ctx, rec)
	return a, nil
}

// verifyAccessToken checks an access token's signature and times.
func (s *AuthService) verifyAccessToken(ctx context.Context, token string) (*latchkey.AccessClaims, error) {
	if s.Tokens == nil {
		return nil, errors.New("authenticate: no token service")
	}
	// The token service gates its own uncached signature checks (jwt.TokenService.Gate).
	claims, err := s.Tokens.VerifyAccessToken(ctx, token, false)
	if err != nil {
		if latchkey.ErrorCode(err) == latchkey.EUNAUTHENTICATED {
			return nil, err
		}
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	return claims, nil
}

// gate is Gate, or nothing to wait for.
func (s *AuthService) gate(ctx context.Context) (func(), error) {
	if s.Gate == nil {
		return func() {}, nil
	}
	return s.Gate(ctx)
}

// secretHash is the SHA-256 of a secret, as stored and as cached.
func secretHash(secret string) [sha256.Size]byte { return sha256.Sum256([]byte(secret)) }

// credentialKey is what a credential is looked up by: the hash of a
// presented secret (kindAPIKey, kindAPIToken, kindSession), or the id of
// the key or token an access token was minted from (kindAPIKeyID,
// kindAPITokenID).
type credentialKey struct {
	kind cacheKind
	hash [sha256.Size]byte
	id   string
}

// sourceKey is the lookup key of what claims were minted from: exactly
// one API key or legacy token.
func sourceKey(claims *latchkey.AccessClaims) (credentialKey, error) {
	switch {
	case claims.APIKeyID != "" && claims.APITokenID == "":
		return credentialKey{kind: kindAPIKeyID, id: claims.APIKeyID}, nil
	case claims.APITokenID != "" && claims.APIKeyID == "":
		return credentialKey{kind: kindAPITokenID, id: claims.APITokenID}, nil
	}
	// Access tokens are only minted from a key or token, so that revoking
	// it revokes them.
	return credentialKey{}, unauthenticatedf("Invalid access token.")
}

// lookup returns the record of the credential under k, nil if there is
// none (unknown, or revoked: revoking deletes). The cache decorates it: a
// record it holds is returned as it is; otherwise the record is read from
// the database (behind Gate) and cached, and fresh is true.
func (s *AuthService) lookup(ctx context.Context, k credentialKey) (e *cacheEntry, fresh bool, err error) {
	c := s.Cache
	if c != nil {
		now := s.db.Now()
		if k.id != "" {
			e = c.byIDKind(k.kind, k.id, now)
		} else {
			e = c.byHashKind(k.kind, k.hash, now)
		}
		if e != nil {
			return e, false, nil
		}
	}
	release, err := s.gate(ctx)
	if err != nil {
		return nil, false, err
	}
	defer release()
	gen := c.begin() // before the read starts
	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return nil, false, fmt.Errorf("authenticate: %w", err)
	}
	defer tx.Rollback()
	if e, err = s.readCredential(ctx, tx, k); err != nil {
		return nil, false, fmt.Errorf("authenticate: %w", err)
	} else if e == nil {
		return nil, true, nil
	}
	if err := tx.Commit(); err != nil {
		return nil, false, fmt.Errorf("authenticate: %w", err)
	}
	return c.putCredential(gen, e, tx.Now()), true, nil
}

// readCredential reads the record of the credential under k, or nil.
func (s *AuthService) readCredential(ctx context.Context, tx *Tx, k credentialKey) (*cacheEntry, error) {
	e := &cacheEntry{kind: k.kind, hash: k.hash, id: k.id}
	var err error
	switch k.kind {
	case kindAPIKey:
		e.apiKey, e.user, err = findAPIKeyByHash(ctx, tx, k.hash[:])
		if e.apiKey != nil {
			e.setLastUsed(e.apiKey.LastUsedAt)
		}
	case kindAPIToken:
		e.apiToken, e.user, err = findAPITokenByHash(ctx, tx, k.hash[:])
		if e.apiToken != nil {
			e.setLastUsed(e.apiToken.LastUsedAt)
		}
	case kindSession:
		e.session, e.user, err = findSessionByHash(ctx, tx, k.hash[:])
		if e.session != nil {
			e.setLastUsed(e.session.lastSeenAt)
		}
	case kindAPIKeyID:
		e.apiKey, e.user, err = findAPIKeyByIDWithOwner(ctx, tx, k.id)
		if err == nil && e.apiKey != nil {
			e.revokedFamilies, err = s.findRevokedFamilies(ctx, tx, "api_key_id", k.id)
		}
	case kindAPITokenID:
		e.apiToken, e.user, err = findAPITokenByIDWithOwner(ctx, tx, k.id)
		if err == nil && e.apiToken != nil {
			e.revokedFamilies, err = s.findRevokedFamilies(ctx, tx, "api_token_id", k.id)
		}
	default:
		return nil, fmt.Errorf("read credential: kind %d", k.kind)
	}
	if err != nil || e.user == nil {
		return nil, err
	}
	e.userID = e.user.ID
	return e, nil
}

// authRequest is what a request asks of a credential besides being valid:
// the tenant to act in ("" for the credential's default), and for an
// access token its verified claims.
type authRequest struct {
	tenantID string
	claims   *latchkey.AccessClaims
}

// decide is the authentication policy, the same for every kind of
// credential: given the record lookup found under k (nil: none), it checks that
// the credential exists and has not expired, that it may act in the
// requested tenant (a legacy token and an access token only in their own;
// a service account only in its tenant), and that its owner is a member
// there, and returns the caller with the role read now (never from a
// token), capped by a legacy token's scope.
//
// fresh says e was just read from the database: the role then is too,
// without asking the cache, which cannot hold it for a credential it did
// not hold.
func (s *AuthService) decide(ctx context.Context, k credentialKey, e *cacheEntry, req authRequest, fresh bool) (*latchkey.Auth, error) {
	now := s.db.Now()
	if e == nil {
		switch k.kind {
		case kindAPIKey:
			return nil, unauthenticatedf("Invalid API key.")
		case kindAPIToken:
			return nil, unauthenticatedf("Invalid API token.")
		case kindSession:
			return nil, unauthenticatedf("Invalid session.")
		}
	}
	a := latchkey.Auth{TenantID: req.tenantID}
	if claims := req.claims; claims != nil {
		if req.tenantID != "" && req.tenantID != claims.TenantID {
			return nil, unauthenticatedf("This access token is for another tenant; switch tenants first.")
		}
		a.TenantID, a.Kind = claims.TenantID, latchkey.CredentialAccessToken
		if e == nil || e.userID != claims.UserID {
			return nil, errSourceRevoked()
		}
		if claims.FamilyID != "" && slices.Contains(e.revokedFamilies, claims.FamilyID) {
			return nil, unauthenticatedf("This access token was revoked: its refresh token was used twice. Sign in again.")
		}
	}
	switch {
	case e.apiKey != nil:
		if e.apiKey.Expired(now) {
			return nil, unauthenticatedf("API key expired.")
		}
		if a.TenantID == "" {
			a.TenantID = e.apiKey.DefaultTenantID
		}
		a.APIKeyID = e.apiKey.ID
		if a.Kind == "" {
			a.Kind = latchkey.CredentialAPIKey
		}
	case e.apiToken != nil:
		t := e.apiToken
		switch {
		case req.claims == nil && a.TenantID != "" && a.TenantID != t.TenantID:
			return nil, unauthenticatedf("An API token acts only in its own tenant; do not send a tenant id with it.")
		case req.claims != nil && t.Scope != latchkey.TokenScopeUser && t.TenantID != a.TenantID:
			return nil, errSourceRevoked()
		}
		if req.claims == nil {
			a.TenantID, a.Kind = t.TenantID, latchkey.CredentialAPIToken
		}
		a.APITokenID, a.TokenScope = t.ID, t.Scope
	case e.session != nil:
		if e.user.IsServiceAccount() {
			return nil, unauthenticatedf("Invalid session.")
		} else if !now.Before(e.session.expiresAt) {
			return nil, unauthenticatedf("Session expired; sign in again.")
		}
		a.Kind, a.SessionID = latchkey.CredentialSession, e.session.id
	}
	if e.user.IsServiceAccount() && a.TenantID != "" && e.user.TenantID != a.TenantID {
		return nil, notMember(a.TenantID)
	}
	role, err := s.role(ctx, e, &a.TenantID, fresh)
	if err != nil {
		return nil, err
	}
	a.Role = capRole(role, a.TokenScope)
	return newAuth(e.user, a), nil
}

// role returns the role of e's owner in *tenantID, through the cache. For
// a session without a tenant, it first settles *tenantID: the user's
// default tenant if they are still a member there, else their oldest
// membership. It returns EUNAUTHENTICATED for a tenant the owner is not a
// member of.
func (s *AuthService) role(ctx context.Context, e *cacheEntry, tenantID *string, fresh bool) (latchkey.Role, error) {
	c, now := s.Cache, s.db.Now()
	if fresh {
		c = nil // nothing to ask; readRole still stores what it reads
	}
	if *tenantID == "" && e.session != nil && e.user.DefaultTenantID != "" {
		*tenantID = e.user.DefaultTenantID
		if role := c.roleOf(e.userID, *tenantID, now); role != "" {
			return role, nil
		}
		role, err := s.readRole(ctx, e.userID, *tenantID)
		if err != nil || role != "" {
			return role, err
		}
		*tenantID = ""
	}
	if *tenantID == "" {
		if e.session == nil {
			return "", unauthenticatedf("You are not a member of any tenant.")
		}
		first, err := s.firstTenant(ctx, e.userID)
		if err != nil {
			return "", err
		}
		*tenantID = first
	}
	if role := c.roleOf(e.userID, *tenantID, now); role != "" {
		return role, nil
	}
	role, err := s.readRole(ctx, e.userID, *tenantID)
	if err != nil {
		return "", err
	} else if role == "" {
		return "", notMember(*tenantID)
	}
	return role, nil
}

// readRole reads userID's role in tenantID ("" for none) and caches it.
func (s *AuthService) readRole(ctx context.Context, userID, tenantID string) (latchkey.Role, error) {
	gen := s.Cache.begin() // before the read starts
	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return "", fmt.Errorf("authenticate: %w", err)
	}
	defer tx.Rollback()
	role, err := findMembershipRole(ctx, tx, userID, tenantID)
	if err != nil {
		return "", fmt.Errorf("authenticate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("authenticate: %w", err)
	}
	s.Cache.putRole(gen, userID, tenantID, role, tx.Now())
	return role, nil
}

// firstTenant is the tenant of userID's oldest membership.
func (s *AuthService) firstTenant(ctx context.Context, userID string) (string, error) {
	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return "", fmt.Errorf("authenticate: %w", err)
	}
	defer tx.Rollback()
	var tenantID string
	err = tx.QueryRowContext(ctx, `SELECT tenant_id FROM memberships WHERE user_id = ? ORDER BY created_at, id LIMIT 1`, userID).Scan(&tenantID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", unauthenticatedf("You are not a member of any tenant.")
	} else if err != nil {
		return "", fmt.Errorf("authenticate: find tenant: %w", err)
	}
	return tenantID, tx.Commit()
}

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

func errSourceRevoked() error {
	return unauthenticatedf("The API key or token this access token was issued from has been revoked.")
}

// capRole caps role at USER for TENANT and RUNNER tokens.
func capRole(role latchkey.Role, scope latchkey.TokenScope) latchkey.Role {
	if (scope == latchkey.TokenScopeTenant || scope == latchkey.TokenScopeRunner) && role == latchkey.RoleTenantAdmin {
		return latchkey.RoleUser
	}
	return role
}

// recordUse writes the last_used_at (a session's last_seen_at) of the
// credential of record e, unless this replica recorded a use less than
// lastUsedInterval ago. Of concurrent requests, only one writes. Access
// tokens record nothing. A failure is logged, not returned: it must not
// fail the request.
func (s *AuthService) recordUse(ctx context.Context, e *cacheEntry) {
	var query, id string
	switch e.kind {
	case kindAPIKey:
		query, id = `UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)`, e.apiKey.ID
	case kindAPIToken:
		query, id = `UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)`, e.apiToken.ID
	case kindSession:
		query, id = `UPDATE sessions SET last_seen_at = ? WHERE id = ? AND (last_seen_at IS NULL OR last_seen_at <= ?)`, e.session.id
	default:
		return
	}
	now := s.db.Now()
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
	} else if id, ok := latchkey.ParseUUID(tenantID); !ok {
		return nil, unauthenticatedf("Not a member of that tenant.")
	} else {
		tenantID = id
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
	return s.issue(ctx, claims, now, "", 0)
}

// checkClaims checks that an access token with claims would authenticate
// now, exactly as Authenticate checks one after its signature: the same
// lookup of the key or token it is minted from, the same policy. It
// returns the time of the check.
func (s *AuthService) checkClaims(ctx context.Context, claims *latchkey.AccessClaims) (time.Time, error) {
	now := s.db.Now().UTC().Truncate(time.Microsecond)
	k, err := sourceKey(claims)
	if err != nil {
		return time.Time{}, err
	}
	rec, fresh, err := s.lookup(ctx, k)
	if err != nil {
		return time.Time{}, err
	}
	if _, err := s.decide(ctx, k, rec, authRequest{claims: claims}, fresh); err != nil {
		return time.Time{}, err
	}
	return now, nil
}

// RefreshAccessToken exchanges a refresh token, together with the access
// token it was issued with (which may have expired), for a new pair in the
// same family. It is the only write of the token exchange: it advances the
// family's generation, atomically, so that of concurrent refreshes of one
// token exactly one wins. A token of an older generation is a reuse: the
// family is revoked, with every access token minted in it. Refresh tokens
// issued before tokens were self-describing (42 characters, kept in
// refresh_tokens) still work until they expire. Every refusal is
// EUNAUTHENTICATED.
func (s *AuthService) RefreshAccessToken(ctx context.Context, refreshToken, accessToken string) (*latchkey.AccessToken, error) {
	if s.Tokens == nil {
		return nil, errors.New("refresh access token: no token service")
	}
	if len(refreshToken) == latchkey.SecretLen {
		return s.refreshStored(ctx, refreshToken, accessToken)
	}
	rc, ok := s.db.Secrets.parseRefresh(refreshToken)
	if !ok {
		return nil, unauthenticatedf("Invalid refresh token.")
	}
	now := s.db.Now()
	if !now.Before(rc.expiresAt) {
		return nil, unauthenticatedf("Refresh token expired; sign in again.")
	}
	fam := family{id: rc.familyID, userID: rc.userID, apiKeyID: rc.apiKeyID, apiTokenID: rc.apiTokenID}
	// The reuse check comes first: a spent refresh token revokes its
	// family whatever access token comes with it.
	gen, revoked, err := s.readFamily(ctx, rc.familyID)
	if err != nil {
		return nil, err
	} else if revoked {
		return nil, unauthenticatedf("Invalid refresh token.")
	} else if gen > rc.generation {
		return nil, s.revokeFamily(ctx, fam)
	}
	claims, err := s.Tokens.VerifyAccessToken(ctx, accessToken, true)
	if err != nil {
		if latchkey.ErrorCode(err) == latchkey.EUNAUTHENTICATED {
			return nil, err
		}
		return nil, fmt.Errorf("refresh access token: %w", err)
	}
	if claims.ID != rc.accessTokenID || claims.UserID != rc.userID || claims.TenantID != rc.tenantID ||
		claims.APIKeyID != rc.apiKeyID || claims.APITokenID != rc.apiTokenID || claims.FamilyID != rc.familyID {
		return nil, unauthenticatedf("The access token does not belong to this refresh token.")
	}
	// The source and the role, as authenticating the new access token
	// would check them.
	next := latchkey.AccessClaims{UserID: rc.userID, TenantID: rc.tenantID, APIKeyID: rc.apiKeyID, APITokenID: rc.apiTokenID}
	if _, err := s.checkClaims(ctx, &next); err != nil {
		return nil, err
	}
	if won, err := s.advanceFamily(ctx, fam, rc.generation); err != nil {
		return nil, err
	} else if !won {
		// Another refresh of the same token got there first.
		return nil, s.revokeFamily(ctx, fam)
	}
	return s.issue(ctx, next, now, rc.familyID, rc.generation+1)
}

// family is a refresh-token family: its id and what it was minted from.
type family struct {
	id, userID, apiKeyID, apiTokenID string
}

// readFamily returns the generation of family id's newest token (0 if
// none of its tokens was used yet) and whether it was revoked.
func (s *AuthService) readFamily(ctx context.Context, id string) (generation uint32, revoked bool, err error) {
	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return 0, false, fmt.Errorf("refresh access token: %w", err)
	}
	defer tx.Rollback()
	var revokedAt Time
	err = tx.QueryRowContext(ctx, `SELECT generation, revoked_at FROM refresh_families WHERE id = ?`, id).Scan(&generation, &revokedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	} else if err != nil {
		return 0, false, fmt.Errorf("refresh access token: %w", err)
	}
	return generation, revokedAt.Ptr() != nil, tx.Commit()
}

// advanceFamily moves f from generation to generation+1, creating its row
// on first use, and reports whether it did: false if another refresh moved
// it first, or it was revoked.
func (s *AuthService) advanceFamily(ctx context.Context, f family, generation uint32) (bool, error) {
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return false, fmt.Errorf("refresh access token: %w", err)
	}
	defer tx.Rollback()
	expires := Time(tx.Now().Add(s.refreshTTL()))
	var res sql.Result
	if generation == 0 {
		res, err = tx.ExecContext(ctx, `INSERT INTO refresh_families (id, user_id, api_key_id, api_token_id, generation, revoked_at, expires_at)
			VALUES (?, ?, ?, ?, 1, NULL, ?) ON CONFLICT (id) DO NOTHING`,
			f.id, f.userID, nullString(f.apiKeyID), nullString(f.apiTokenID), expires)
	} else {
		res, err = tx.ExecContext(ctx, `UPDATE refresh_families SET generation = ?, expires_at = ?
			WHERE id = ? AND generation = ? AND revoked_at IS NULL`, generation+1, expires, f.id, generation)
	}
	if err != nil {
		return false, fmt.Errorf("refresh access token: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("refresh access token: %w", err)
	}
	return n == 1, tx.Commit()
}

// revokeFamily revokes f after one of its refresh tokens was presented
// twice: its tokens stop refreshing, and the access tokens minted in it
// stop authenticating at once (they carry the family's id; the source
// credential's record lists its revoked families, and an event empties
// the cache). It returns the error to show.
func (s *AuthService) revokeFamily(ctx context.Context, f family) error {
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return fmt.Errorf("revoke refresh tokens: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE family_id = ?`, f.id); err != nil {
		return fmt.Errorf("revoke refresh tokens: %w", err)
	}
	// Kept until every token of the family has expired.
	if _, err := tx.ExecContext(ctx, `INSERT INTO refresh_families (id, user_id, api_key_id, api_token_id, generation, revoked_at, expires_at)
		VALUES (?, ?, ?, ?, 0, ?, ?) ON CONFLICT (id) DO UPDATE SET revoked_at = excluded.revoked_at, expires_at = excluded.expires_at`,
		f.id, f.userID, nullString(f.apiKeyID), nullString(f.apiTokenID), Time(tx.Now()), Time(tx.Now().Add(s.refreshTTL()))); err != nil {
		return fmt.Errorf("revoke refresh tokens: %w", err)
	}
	if err := tx.publish(ctx, latchkey.Event{Type: latchkey.EventTokenFamilyRevoked, UserID: f.userID}); err != nil {
		return fmt.Errorf("revoke refresh tokens: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("revoke refresh tokens: %w", err)
	}
	s.db.Logger.WarnContext(ctx, "refresh token reuse; revoked its family and its access tokens", "family_id", f.id)
	return unauthenticatedf("Refresh token reuse detected; sign in again.")
}

// findRevokedFamilies returns the ids of the refresh-token families minted
// from the key or token whose id is in column (api_key_id or api_token_id)
// that were revoked recently enough for their access tokens to be alive.
func (s *AuthService) findRevokedFamilies(ctx context.Context, tx *Tx, column, id string) ([]string, error) {
	since := tx.Now().Add(-s.accessTTL() - time.Minute)
	rows, err := tx.QueryContext(ctx, `SELECT id FROM refresh_families WHERE `+column+` = ? AND revoked_at > ?`, id, Time(since))
	if err != nil {
		return nil, fmt.Errorf("find revoked token families: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var fid string
		if err := rows.Scan(&fid); err != nil {
			return nil, fmt.Errorf("find revoked token families: %w", err)
		}
		ids = append(ids, fid)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find revoked token families: %w", err)
	}
	return ids, nil
}

// refreshStored exchanges a refresh token of the kind issued before
// refresh tokens were self-describing: a random secret whose hash is a
// refresh_tokens row, used once. The new pair is self-describing, in the
// same family, at generation 1.
func (s *AuthService) refreshStored(ctx context.Context, refreshToken, accessToken string) (*latchkey.AccessToken, error) {
	if prefix, err := latchkey.ParseSecret(refreshToken); err != nil || prefix != latchkey.PrefixRefreshToken {
		return nil, unauthenticatedf("Invalid refresh token.")
	}
	// Verified first, outside the transaction, but acted on only after the
	// reuse check.
	claims, verifyErr := s.Tokens.VerifyAccessToken(ctx, accessToken, true)
	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("refresh access token: %w", err)
	}
	defer tx.Rollback()
	now := tx.Now()
	var (
		id, accessTokenID    string
		apiKeyID, apiTokenID sql.NullString
		expiresAt, usedAt    Time
	)
	f := family{}
	next := latchkey.AccessClaims{}
	err = tx.QueryRowContext(ctx, `SELECT id, family_id, user_id, tenant_id, api_key_id, api_token_id, access_token_id, expires_at, used_at
		FROM refresh_tokens WHERE token_hash = ?`, latchkey.HashSecret(refreshToken)).
		Scan(&id, &f.id, &next.UserID, &next.TenantID, &apiKeyID, &apiTokenID, &accessTokenID, &expiresAt, &usedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, unauthenticatedf("Invalid refresh token.")
	} else if err != nil {
		return nil, fmt.Errorf("find refresh token: %w", err)
	}
	f.userID, f.apiKeyID, f.apiTokenID = next.UserID, apiKeyID.String, apiTokenID.String
	next.APIKeyID, next.APITokenID = f.apiKeyID, f.apiTokenID
	if !now.Before(time.Time(expiresAt)) {
		return nil, unauthenticatedf("Refresh token expired; sign in again.")
	} else if usedAt.Ptr() != nil {
		tx.Rollback()
		return nil, s.revokeFamily(ctx, f)
	}
	if verifyErr != nil {
		if latchkey.ErrorCode(verifyErr) == latchkey.EUNAUTHENTICATED {
			return nil, verifyErr
		}
		return nil, fmt.Errorf("refresh access token: %w", verifyErr)
	}
	if claims.ID != accessTokenID || claims.UserID != next.UserID || claims.TenantID != next.TenantID ||
		claims.APIKeyID != next.APIKeyID || claims.APITokenID != next.APITokenID {
		return nil, unauthenticatedf("The access token does not belong to this refresh token.")
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("refresh access token: %w", err)
	}
	if _, err := s.checkClaims(ctx, &next); err != nil {
		return nil, err
	}
	// Spend the row and start the family's generations, in one write.
	won, err := func() (bool, error) {
		tx, err := s.db.BeginTx(ctx, true)
		if err != nil {
			return false, err
		}
		defer tx.Rollback()
		res, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL`, Time(tx.Now()), id)
		if err != nil {
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return false, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO refresh_families (id, user_id, api_key_id, api_token_id, generation, revoked_at, expires_at)
			VALUES (?, ?, ?, ?, 1, NULL, ?) ON CONFLICT (id) DO NOTHING`,
			f.id, f.userID, nullString(f.apiKeyID), nullString(f.apiTokenID), Time(tx.Now().Add(s.refreshTTL()))); err != nil {
			return false, err
		}
		return true, tx.Commit()
	}()
	if err != nil {
		return nil, fmt.Errorf("use refresh token: %w", err)
	} else if !won {
		// Used since we read it.
		return nil, s.revokeFamily(ctx, f)
	}
	return s.issue(ctx, next, now, f.id, 1)
}

// issue mints an access token for claims (its id, family and times are
// set here) and a refresh token for it, at generation in familyID (a new
// family if empty). It writes nothing: both tokens are signed and describe
// themselves.
func (s *AuthService) issue(ctx context.Context, claims latchkey.AccessClaims, now time.Time, familyID string, generation uint32) (*latchkey.AccessToken, error) {
	jti, err := s.db.newID()
	if err != nil {
		return nil, fmt.Errorf("issue access token: %w", err)
	}
	if familyID == "" {
		if familyID, err = s.db.newID(); err != nil {
			return nil, fmt.Errorf("issue refresh token: %w", err)
		}
	}
	iat := now.Truncate(time.Second) // JWT times are whole seconds
	claims.ID, claims.IssuedAt, claims.NotBefore, claims.ExpiresAt = jti, iat, iat, iat.Add(s.accessTTL())
	claims.FamilyID = familyID
	access, err := s.Tokens.MintAccessToken(ctx, claims)
	if err != nil {
		return nil, fmt.Errorf("issue access token: %w", err)
	}
	refresh, err := s.db.Secrets.signRefresh(&refreshClaims{
		familyID: familyID, generation: generation,
		apiKeyID: claims.APIKeyID, apiTokenID: claims.APITokenID,
		userID: claims.UserID, tenantID: claims.TenantID, accessTokenID: jti,
		expiresAt: iat.Add(s.refreshTTL()),
	})
	if err != nil {
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
