package http

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"github.com/latchkey/latchkey"
)

// Header and cookie names the authentication middleware reads.
const (
	HeaderAuthorization = "Authorization"
	HeaderTenantID      = "X-PREFECT-TENANT-ID"
	HeaderForwardedFor  = "X-Forwarded-For"
	SessionCookie       = "latchkey_session" // the web UI session secret (lkc_…)
	TenantCookie        = "latchkey_tenant"  // the tenant a UI user acts in

	// canonicalTenantID is HeaderTenantID as net/http stores it (see
	// headerValue).
	canonicalTenantID = "X-Prefect-Tenant-Id"
)

// Authenticator is the one authentication middleware, shared by the
// GraphQL API and the web UI. For every request it reads, once, where the
// request came from (the client address, behind trusted proxies) and the
// credential it presents, checks the credential with Auth.Authenticate,
// and hands the outcome to the handler in the request context:
// latchkey.ClientInfoFromContext, latchkey.AuthFromContext and
// latchkey.CredentialFromContext. Handlers never read credentials or
// proxy headers themselves.
type Authenticator struct {
	Auth latchkey.AuthService

	// TrustedProxies are the addresses of the reverse proxies in front of
	// the server. Only a connection from one of them may say, in
	// X-Forwarded-For, whom it forwards for (see latchkey.ClientAddr).
	TrustedProxies []netip.Prefix

	// Failures, if set, counts refused credentials by client address.
	Failures latchkey.FailureCounter

	// Logger receives one info line per refused credential: the reason,
	// the credential's non-secret identifier and the client address.
	Logger *slog.Logger
}

// API wraps the GraphQL API: its credential is the Authorization header's
// bearer credential, acting in the tenant of the X-PREFECT-TENANT-ID
// header. Cookies are ignored, so that no browser can act on the API with
// a UI session.
func (a *Authenticator) API(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := a.withClientInfo(r)
		c := &latchkey.RequestCredential{}
		if header := headerValue(r, HeaderAuthorization); strings.TrimSpace(header) != "" {
			c.Source = latchkey.SourceBearer
			credential, ok := parseBearer(header)
			switch {
			case !ok:
				c.Err = latchkey.Errorf(latchkey.EUNAUTHENTICATED,
					"Malformed Authorization header: expected \"Bearer <credential>\".")
				a.failed(ctx, "", c.Err)
			case strings.HasPrefix(credential, latchkey.PrefixRefreshToken):
				// Checked, and counted if wrong, by the refresh_token
				// mutation, the only thing it is good for.
				c.RefreshToken = credential
			default:
				ctx = a.authenticate(ctx, c, credential, strings.TrimSpace(headerValue(r, canonicalTenantID)))
			}
		}
		h.ServeHTTP(w, r.WithContext(latchkey.NewContextWithCredential(ctx, c)))
	})
}

// UI wraps the web UI: its credential is the session cookie, acting in the
// tenant of the tenant cookie or, if the user is no longer a member there,
// in their default tenant (RequestCredential.TenantFallback). Only a web
// session is accepted from the cookie, never an API key pasted into it.
func (a *Authenticator) UI(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := a.withClientInfo(r)
		c := &latchkey.RequestCredential{}
		if sc, err := r.Cookie(SessionCookie); err == nil && sc.Value != "" {
			c.Source = latchkey.SourceCookie
			tenant := ""
			if tc, err := r.Cookie(TenantCookie); err == nil {
				tenant = tc.Value
			}
			if !strings.HasPrefix(sc.Value, latchkey.PrefixSession) {
				c.Err = latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Invalid session.")
				a.failed(ctx, sc.Value, c.Err)
			} else {
				ctx = a.authenticate(ctx, c, sc.Value, tenant)
				if tenant != "" && latchkey.ErrorCode(c.Err) == latchkey.EUNAUTHENTICATED {
					// The chosen tenant may be gone: try the default one.
					retry := &latchkey.RequestCredential{Source: latchkey.SourceCookie}
					if ctx2 := a.authenticate(ctx, retry, sc.Value, ""); retry.Err == nil {
						ctx, c = ctx2, retry
						c.TenantFallback = true
					}
				}
			}
		}
		h.ServeHTTP(w, r.WithContext(latchkey.NewContextWithCredential(ctx, c)))
	})
}

// withClientInfo returns r's context with where r came from in it: the
// client address (see clientAddr) and the User-Agent.
func (a *Authenticator) withClientInfo(r *http.Request) context.Context {
	return latchkey.NewContextWithClientInfo(r.Context(), latchkey.ClientInfo{Addr: a.clientAddr(r), UserAgent: headerValue(r, "User-Agent")})
}

// clientAddr returns the address of r's client, behind trusted proxies
// (see latchkey.ClientAddr).
func (a *Authenticator) clientAddr(r *http.Request) string {
	return latchkey.ClientAddr(r.RemoteAddr, headerValue(r, HeaderForwardedFor), a.TrustedProxies)
}

// authenticate checks credential, records the outcome in c and returns ctx
// with the caller in it on success.
func (a *Authenticator) authenticate(ctx context.Context, c *latchkey.RequestCredential, credential, tenantID string) context.Context {
	if tenantID != "" {
		id, ok := latchkey.ParseUUID(tenantID)
		if !ok {
			c.Err = latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Invalid %s header: expected a tenant uuid.", HeaderTenantID)
			if c.Source == latchkey.SourceCookie {
				c.Err = latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Invalid tenant.")
			}
			a.failed(ctx, credential, c.Err)
			return ctx
		}
		tenantID = id
	}
	if a.Auth == nil {
		c.Err = errors.New("http: no authentication service")
		return ctx
	}
	au, err := a.Auth.Authenticate(ctx, credential, tenantID)
	if err == nil && (au == nil || au.User == nil) {
		err = latchkey.Errorf(latchkey.EINTERNAL, "Authenticate returned no caller.")
	}
	if err == nil && c.Source == latchkey.SourceCookie &&
		(au.Kind != latchkey.CredentialSession || au.SessionID == "" || au.User.IsServiceAccount()) {
		err = latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Invalid session.")
	}
	if err != nil {
		c.Err = err
		a.failed(ctx, credential, err)
		return ctx
	}
	return latchkey.NewContextWithAuth(ctx, au)
}

// failed counts and logs a refused credential. Internal errors (the check
// itself failed) are the handler's to log and count nothing.
func (a *Authenticator) failed(ctx context.Context, credential string, err error) {
	code := latchkey.ErrorCode(err)
	if code != latchkey.EUNAUTHENTICATED && code != latchkey.ERATELIMIT {
		return
	}
	addr := latchkey.ClientInfoFromContext(ctx).Addr
	if a.Failures != nil && code == latchkey.EUNAUTHENTICATED {
		a.Failures.FailCredential(addr, credential)
	}
	if a.Logger != nil {
		a.Logger.LogAttrs(ctx, slog.LevelInfo, "authentication failed",
			slog.String("reason", latchkey.ErrorMessage(err)),
			slog.String("credential", latchkey.SecretIdentifier(credential)),
			slog.String("addr", addr))
	}
}

// headerValue returns the first value of r's header name, which must be in
// the canonical form net/http stores received headers in ("User-Agent").
// Header.Get would canonicalize name again on every call, at several
// hundred instructions each on the path of every request.
func headerValue(r *http.Request, name string) string {
	if v := r.Header[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// parseBearer returns the credential of an "Authorization: Bearer <credential>"
// header. The scheme is case-insensitive; the credential is one token.
func parseBearer(header string) (string, bool) {
	scheme, credential, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	credential = strings.TrimSpace(credential)
	if credential == "" || strings.ContainsAny(credential, " \t") {
		return "", false
	}
	return credential, true
}
