package http

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
)

// Response headers of /auth/verify: who the request's credential stands
// for, for a reverse proxy to pass to the service behind it (forward auth;
// see docs/forward-auth.md). The proxy must overwrite, never pass through,
// any of these that a client sent.
const (
	HeaderVerifyTenantID       = "X-Latchkey-Tenant-Id"
	HeaderVerifyTenantSlug     = "X-Latchkey-Tenant-Slug"
	HeaderVerifyUserID         = "X-Latchkey-User-Id"            // a human user
	HeaderVerifyServiceAccount = "X-Latchkey-Service-Account-Id" // a service account
	HeaderVerifyRole           = "X-Latchkey-Role"
	HeaderVerifyKeyID          = "X-Latchkey-Key-Id" // the API key (or legacy token) presented or minted from
	HeaderVerifyToken          = "X-Latchkey-Token"  // with ?token=1: an access token for the same caller
)

// verifyHeaders are every header /auth/verify answers with: canonical, in
// the order ServeHTTP fills them.
var verifyHeaders = [...]string{
	HeaderVerifyTenantID, HeaderVerifyTenantSlug, HeaderVerifyUserID, HeaderVerifyServiceAccount,
	HeaderVerifyRole, HeaderVerifyKeyID, HeaderVerifyToken,
}

// VerifyHeaders returns every header /auth/verify answers with, which a
// proxy in front of a service must set from the answer or remove.
func VerifyHeaders() []string { return slices.Clone(verifyHeaders[:]) }

// Limits of the verifier's caches. Entries are small; a full cache is
// emptied and refilled, which costs a database read per tenant or a
// signature per caller.
const (
	maxVerifySlugs  = 10000
	maxVerifyTokens = 10000
)

// verifier serves /auth/verify: forward authentication for reverse
// proxies. The credential has been checked, once, by Authenticator.API;
// the verifier only reads the outcome from the context, applies the
// requirements of the query string and answers with headers.
type verifier struct {
	tenants latchkey.TenantService
	tokens  latchkey.TokenService
	ttl     time.Duration // of the access tokens minted for ?token=1
	now     func() time.Time
	logger  *slog.Logger

	// slugs maps tenant ids to slugs. A tenant's slug never changes and
	// tenants are never deleted, so entries never go stale.
	slugMu sync.RWMutex
	slugs  map[string]string

	// minted are access tokens minted for ?token=1, by what they are
	// minted for, each kept for at most half its lifetime. Revocation
	// events drop a user's tokens (while events may be lost, nothing is
	// kept); besides, a request only reaches the cache after its
	// credential authenticated, and Latchkey refuses an access token
	// whose source was revoked.
	tokenMu     sync.Mutex
	minted      map[tokenKey]cachedToken
	noTokens    bool   // events may be lost: cache nothing
	generation  uint64 // events seen: a token minted across one is not kept
	unsubscribe func()
}

// tokenKey is what a minted access token's claims are made of: two
// requests with the same key get the same claims.
type tokenKey struct {
	userID, tenantID, apiKeyID, apiTokenID string
}

type cachedToken struct {
	token string
	until time.Time // when to stop handing it out: half its lifetime
}

func newVerifier(tenants latchkey.TenantService, tokens latchkey.TokenService, ttl time.Duration, events latchkey.EventService, now func() time.Time, logger *slog.Logger) *verifier {
	v := &verifier{
		tenants: tenants, tokens: tokens, ttl: ttl, now: now, logger: logger,
		slugs:  map[string]string{},
		minted: map[tokenKey]cachedToken{},
	}
	if events != nil {
		v.unsubscribe = events.Subscribe(v.onEvent)
	}
	return v
}

// onEvent drops the minted tokens of the user an event names, or all of
// them for delivery events.
func (v *verifier) onEvent(ev latchkey.Event) {
	v.tokenMu.Lock()
	defer v.tokenMu.Unlock()
	v.generation++
	switch ev.Type {
	case latchkey.EventsInterrupted:
		clear(v.minted)
		v.noTokens = true
		return
	case latchkey.EventsResumed:
		clear(v.minted)
		v.noTokens = false
		return
	}
	for k := range v.minted {
		if k.userID == ev.UserID {
			delete(v.minted, k)
		}
	}
}

func (v *verifier) close() {
	if v.unsubscribe != nil {
		v.unsubscribe()
	}
}

// verifyRequirements is what the query string of /auth/verify asks for.
type verifyRequirements struct {
	role   latchkey.Role // minimum role; "" for any
	tenant string        // the slug the caller must act in; "" for any
	token  bool          // answer with X-Latchkey-Token
}

// roleRank orders roles: TENANT_ADMIN > USER > READ_ONLY_USER; 0 for an
// unknown role.
func roleRank(r latchkey.Role) int {
	switch r {
	case latchkey.RoleTenantAdmin:
		return 3
	case latchkey.RoleUser:
		return 2
	case latchkey.RoleReadOnlyUser:
		return 1
	}
	return 0
}

// parseVerifyQuery reads the requirements. Anything it does not know is an
// error, so that a typo in a proxy's configuration (?roles=...) refuses
// every request instead of silently requiring nothing.
func parseVerifyQuery(raw string) (verifyRequirements, bool) {
	var req verifyRequirements
	if raw == "" {
		return req, true
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return req, false
	}
	for name, values := range q {
		if len(values) != 1 {
			return req, false
		}
		val := values[0]
		switch name {
		case "role":
			req.role = latchkey.Role(val)
			if roleRank(req.role) == 0 {
				return req, false
			}
		case "tenant":
			t := latchkey.Tenant{Name: "x", Slug: val}
			if t.Validate() != nil {
				return req, false
			}
			req.tenant = val
		case "token":
			switch val {
			case "1", "true":
				req.token = true
			case "0", "false":
			default:
				return req, false
			}
		default:
			return req, false
		}
	}
	return req, true
}

// ServeHTTP answers, for any method: 200 with the identity headers and no
// body when the request's credential authenticated and meets the
// requirements; 401 with WWW-Authenticate: Bearer when there is no valid
// credential; 403 when it is valid but does not meet them; 400 for a query
// string it does not understand (a proxy's configuration error). Bodies
// say no more than the status: the server log has the reason a credential
// was refused.
//
// Under /auth/verify/ (Envoy's ext_authz appends the original request's
// path and query) the query string is the client's, so it is ignored and
// nothing is required beyond a valid credential.
func (v *verifier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	var req verifyRequirements
	if r.URL.Path == "/auth/verify" {
		var ok bool
		if req, ok = parseVerifyQuery(r.URL.RawQuery); !ok {
			writeVerify(w, http.StatusBadRequest, "Bad request: /auth/verify takes only role=TENANT_ADMIN|USER|READ_ONLY_USER, tenant=SLUG and token=1.\n")
			return
		}
	}
	ctx := r.Context()
	a := latchkey.AuthFromContext(ctx)
	if a == nil {
		c := latchkey.CredentialFromContext(ctx)
		if code := latchkey.ErrorCode(c.Err); c.Err != nil && code != latchkey.EUNAUTHENTICATED && code != latchkey.ERATELIMIT {
			v.logger.ErrorContext(ctx, "forward auth: checking the credential failed", "err", c.Err)
			writeVerify(w, http.StatusInternalServerError, "Internal error.\n")
			return
		}
		if c.Source != latchkey.SourceNone || c.RefreshToken != "" {
			h.Set("WWW-Authenticate", `Bearer realm="latchkey", error="invalid_token"`)
		} else {
			h.Set("WWW-Authenticate", `Bearer realm="latchkey"`)
		}
		writeVerify(w, http.StatusUnauthorized, "Unauthorized.\n")
		return
	}
	if req.role != "" && roleRank(a.Role) < roleRank(req.role) {
		v.forbid(w)
		return
	}
	slug, err := v.slug(ctx, a.TenantID)
	if code := latchkey.ErrorCode(err); code == latchkey.ENOTFOUND || code == latchkey.EUNAUTHENTICATED {
		// No longer a member, since the middleware checked.
		h.Set("WWW-Authenticate", `Bearer realm="latchkey", error="invalid_token"`)
		writeVerify(w, http.StatusUnauthorized, "Unauthorized.\n")
		return
	} else if err != nil {
		v.logger.ErrorContext(ctx, "forward auth: finding the tenant failed", "tenant_id", a.TenantID, "err", err)
		writeVerify(w, http.StatusInternalServerError, "Internal error.\n")
		return
	}
	if req.tenant != "" && slug != req.tenant {
		v.forbid(w)
		return
	}
	token := ""
	if req.token {
		tok, err := v.token(ctx, a)
		switch latchkey.ErrorCode(err) {
		case "":
			token = tok
		case latchkey.EFORBIDDEN: // a web UI session: mints nothing
			v.forbid(w)
			return
		default:
			v.logger.ErrorContext(ctx, "forward auth: minting an access token failed", "err", err)
			writeVerify(w, http.StatusInternalServerError, "Internal error.\n")
			return
		}
	}
	// Every header is sent, empty when it does not apply, so that a proxy
	// that copies them onto the request overwrites whatever a client sent
	// (Caddy 2.6 would otherwise copy a placeholder's text). The names are
	// canonical already; one array holds the values (this is the hot path).
	userID, saID := a.User.ID, ""
	if a.User.IsServiceAccount() {
		userID, saID = "", a.User.ID
	}
	// The answer has no body (proxies read only its headers), so no
	// Content-Type or nosniff: with Cache-Control that is eight headers,
	// which a Header map holds without growing (this is the hot path).
	vals := [...]string{a.TenantID, slug, userID, saID, string(a.Role), a.APIKeyID + a.APITokenID, token, "no-store"} // at most one key id is set
	for i, name := range verifyHeaders {
		h[name] = vals[i : i+1 : i+1]
	}
	h["Cache-Control"] = vals[7:8:8]
	w.WriteHeader(http.StatusOK)
}

func (v *verifier) forbid(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey", error="insufficient_scope"`)
	writeVerify(w, http.StatusForbidden, "Forbidden.\n")
}

// writeVerify answers status with a short text body, never cached. (The
// header names are canonical: no need to canonicalize them per request.)
func writeVerify(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	vals := [...]string{"no-store", "text/plain; charset=utf-8", "nosniff"}
	h["Cache-Control"] = vals[0:1:1]
	h["Content-Type"] = vals[1:2:2]
	h["X-Content-Type-Options"] = vals[2:3:3]
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// slug returns the slug of tenant id, which the caller in ctx acts in,
// from the cache or the tenant service.
func (v *verifier) slug(ctx context.Context, id string) (string, error) {
	v.slugMu.RLock()
	slug, ok := v.slugs[id]
	v.slugMu.RUnlock()
	if ok {
		return slug, nil
	}
	t, err := v.tenants.FindTenantByID(ctx, id)
	if err != nil {
		return "", err
	}
	v.slugMu.Lock()
	if len(v.slugs) >= maxVerifySlugs {
		clear(v.slugs)
	}
	v.slugs[id] = t.Slug
	v.slugMu.Unlock()
	return t.Slug, nil
}

// token returns an access token for the caller a: one minted for the
// same claims less than half its lifetime ago, or a new one. The caller
// has just authenticated (the middleware checked the credential it was
// minted from), so minting is only a signature: it writes nothing and
// reads nothing. The token carries the key or legacy token it stands for,
// as every access token does, so that revoking the source revokes it; it
// has no refresh token, and so no family (fid). A web UI session mints
// nothing (EFORBIDDEN): access tokens come from keys and tokens only.
func (v *verifier) token(ctx context.Context, a *latchkey.Auth) (string, error) {
	if a.APIKeyID == "" && a.APITokenID == "" {
		return "", latchkey.Errorf(latchkey.EFORBIDDEN, "Use an API key.")
	}
	k := tokenKey{userID: a.User.ID, tenantID: a.TenantID, apiKeyID: a.APIKeyID, apiTokenID: a.APITokenID}
	now := v.now()
	v.tokenMu.Lock()
	c, ok := v.minted[k]
	gen := v.generation
	v.tokenMu.Unlock()
	if ok && now.Before(c.until) {
		return c.token, nil
	}
	if v.tokens == nil {
		return "", latchkey.Errorf(latchkey.EINTERNAL, "No token service.")
	}
	iat := now.UTC().Truncate(time.Second) // JWT times are whole seconds
	tok, err := v.tokens.MintAccessToken(ctx, latchkey.AccessClaims{
		UserID: a.User.ID, TenantID: a.TenantID, APIKeyID: a.APIKeyID, APITokenID: a.APITokenID,
		IssuedAt: iat, NotBefore: iat, ExpiresAt: iat.Add(v.ttl),
	})
	if err != nil {
		return "", err
	}
	until := iat.Add(v.ttl / 2)
	v.tokenMu.Lock()
	defer v.tokenMu.Unlock()
	if v.noTokens || v.generation != gen {
		return tok, nil
	}
	if len(v.minted) >= maxVerifyTokens {
		for k, c := range v.minted {
			if !now.Before(c.until) {
				delete(v.minted, k)
			}
		}
		if len(v.minted) >= maxVerifyTokens {
			clear(v.minted)
		}
	}
	v.minted[k] = cachedToken{token: tok, until: until}
	return tok, nil
}
