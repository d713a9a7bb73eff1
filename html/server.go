// Package html serves Latchkey's web UI: server-rendered pages built with
// html/template from embedded templates, a small hand-written stylesheet
// and script, and plain HTML forms that work without JavaScript.
//
// Every page lives under /ui/. A signed-in browser holds a session cookie;
// the authentication middleware in front of the UI (http.Authenticator's
// UI) turns it into a latchkey.Auth, and the pages call the services with
// that caller in the context, so the services' own authorization applies. Admin pages are also checked here before
// anything is rendered.
package html

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	lkhttp "github.com/latchkey/latchkey/http"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Cookie names.
const (
	SessionCookie = lkhttp.SessionCookie // the session secret (lkc_…)
	TenantCookie  = lkhttp.TenantCookie  // the tenant the user acts in
	flashCookie   = "latchkey_flash"     // a one-shot notice after a redirect
	formCookie    = "latchkey_form"      // a failed form's error and values, after a redirect
	preCookie     = "latchkey_pre"       // binds the CSRF token of sign-in forms
	cookiePath    = "/ui/"
)

// csrfField is the name of the hidden form field holding the CSRF token.
const csrfField = "csrf_token"

// maxFormBytes caps request bodies of every form.
const maxFormBytes = 64 << 10

// Server is the web UI. Set its fields, then serve Handler.
type Server struct {
	Auth            latchkey.AuthService
	Users           latchkey.UserService
	Tenants         latchkey.TenantService
	Memberships     latchkey.MembershipService
	Invitations     latchkey.InvitationService
	ServiceAccounts latchkey.ServiceAccountService
	APIKeys         latchkey.APIKeyService
	RevokedAPIKeys  latchkey.RevokedAPIKeyService
	Audit           latchkey.AuditService

	// AuthFailures, if set, lists failed sign-ins on the audit page.
	AuthFailures latchkey.AuthFailureService
	// SignInFailures, if set, is told of every refused sign-in.
	SignInFailures SignInFailures

	// Limiter, if set, limits failed password sign-ins per device cookie,
	// and per client address and email for browsers without one (see
	// SignInLimiter).
	Limiter SignInLimiter

	// Logger receives internal errors. Secrets are never logged.
	Logger *slog.Logger

	// Now returns the current time; time.Now by default.
	Now func() time.Time

	// SecureCookies marks every cookie Secure. Cookies are also Secure
	// on requests that arrive over TLS.
	SecureCookies bool

	// BaseURL is the public URL of the server, e.g. https://auth.example.com,
	// used in links shown to admins (set-password links). Empty: derived
	// from the request.
	BaseURL string

	// CSRFKey, if set, is mixed into the forms' CSRF tokens. It is
	// optional: tokens are keyed by the secret of the cookie they protect,
	// which no cross-site page can read and every replica sees, so
	// replicas behind a load balancer agree without sharing any key.
	CSRFKey []byte

	// DeviceKey signs device cookies (see DeviceCookie). Every replica
	// must have the same key, or a browser counts as new on the others.
	// Empty: a random key, so device cookies last until a restart.
	DeviceKey []byte

	// Rand is the source of randomness for the sign-in form and device
	// cookies; crypto/rand by default.
	Rand io.Reader
}

// SignInFailures counts refused sign-ins (by email and client address)
// for the audit log. It never refuses anything itself.
type SignInFailures interface {
	FailSignIn(addr, email string)
}

// ui is a Server ready to serve: parsed templates and the CSRF key.
type ui struct {
	*Server
	pages     map[string]*templateSet
	csrfKey   []byte
	deviceKey []byte
}

// Handler returns the UI's handler. It serves every path under /ui/ and
// expects to be mounted there, with the full path (no prefix stripping).
// It panics if the embedded templates do not parse, which tests catch.
func (s *Server) Handler() http.Handler {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Rand == nil {
		s.Rand = rand.Reader
	}
	u := &ui{Server: s, csrfKey: s.CSRFKey, deviceKey: s.DeviceKey}
	if len(u.deviceKey) == 0 {
		u.deviceKey = make([]byte, 32)
		if _, err := io.ReadFull(s.Rand, u.deviceKey); err != nil {
			panic(fmt.Sprintf("html: device key: %v", err))
		}
	}
	pages, err := parsePages(s.Now)
	if err != nil {
		panic(fmt.Sprintf("html: %v", err))
	}
	u.pages = pages

	mux := http.NewServeMux()
	assets, _ := fs.Sub(assetFS, "assets")
	mux.Handle("GET /ui/assets/", http.StripPrefix("/ui/assets/", cacheAssets(http.FileServerFS(assets))))

	mux.HandleFunc("GET /ui/{$}", u.handleIndex)
	mux.HandleFunc("GET /ui/signin", u.handleSignInForm)
	mux.HandleFunc("POST /ui/signin", u.anonForm(u.handleSignIn))
	mux.HandleFunc("GET /ui/reset", u.handleResetForm)
	mux.HandleFunc("POST /ui/reset", u.anonForm(u.handleReset))

	mux.HandleFunc("POST /ui/signout", u.session(u.handleSignOut))
	mux.HandleFunc("POST /ui/tenant", u.session(u.handleSwitchTenant))

	mux.HandleFunc("GET /ui/keys", u.session(u.handleKeys))
	mux.HandleFunc("POST /ui/keys", u.session(u.handleCreateKey))
	mux.HandleFunc("GET /ui/keys/{id}/revoke", u.session(u.handleRevokeKeyConfirm))
	mux.HandleFunc("POST /ui/keys/{id}/revoke", u.session(u.handleRevokeKey))
	mux.HandleFunc("GET /ui/keys/{id}/roll", u.session(u.handleRollKeyForm))
	mux.HandleFunc("POST /ui/keys/{id}/roll", u.session(u.handleRollKey))

	mux.HandleFunc("GET /ui/team/{$}", u.admin(u.handleTeam))
	mux.HandleFunc("GET /ui/team", u.admin(u.handleTeam))
	mux.HandleFunc("GET /ui/team/service-accounts", u.admin(u.handleServiceAccounts))
	mux.HandleFunc("POST /ui/team/service-accounts", u.admin(u.handleCreateServiceAccount))
	mux.HandleFunc("GET /ui/team/service-accounts/{id}", u.admin(u.handleServiceAccount))
	mux.HandleFunc("GET /ui/team/service-accounts/{id}/delete", u.admin(u.handleDeleteServiceAccountConfirm))
	mux.HandleFunc("POST /ui/team/service-accounts/{id}/delete", u.admin(u.handleDeleteServiceAccount))
	mux.HandleFunc("POST /ui/team/service-accounts/{id}/keys", u.admin(u.handleCreateServiceAccountKey))
	mux.HandleFunc("POST /ui/team/service-accounts/{id}/role", u.admin(u.handleServiceAccountRole))
	mux.HandleFunc("GET /ui/team/service-accounts/{id}/keys/{key}/revoke", u.admin(u.handleRevokeServiceAccountKeyConfirm))
	mux.HandleFunc("POST /ui/team/service-accounts/{id}/keys/{key}/revoke", u.admin(u.handleRevokeServiceAccountKey))
	mux.HandleFunc("GET /ui/team/service-accounts/{id}/keys/{key}/roll", u.admin(u.handleRollServiceAccountKeyForm))
	mux.HandleFunc("POST /ui/team/service-accounts/{id}/keys/{key}/roll", u.admin(u.handleRollServiceAccountKey))

	mux.HandleFunc("GET /ui/team/members", u.admin(u.handleMembers))
	mux.HandleFunc("POST /ui/team/members", u.admin(u.handleAddMember))
	mux.HandleFunc("POST /ui/team/members/{id}/role", u.admin(u.handleChangeRole))
	mux.HandleFunc("POST /ui/team/members/{id}/password-link", u.admin(u.handlePasswordLink))
	mux.HandleFunc("GET /ui/team/members/{id}/remove", u.admin(u.handleRemoveMemberConfirm))
	mux.HandleFunc("POST /ui/team/members/{id}/remove", u.admin(u.handleRemoveMember))

	mux.HandleFunc("POST /ui/team/invitations/{id}/withdraw", u.admin(u.handleWithdrawInvitation))
	mux.HandleFunc("POST /ui/invitations/{id}/accept", u.session(u.handleAcceptInvitation))
	mux.HandleFunc("POST /ui/invitations/{id}/decline", u.session(u.handleDeclineInvitation))

	mux.HandleFunc("GET /ui/team/audit", u.admin(u.handleAudit))
	mux.HandleFunc("GET /ui/team/audit/export/{format}", u.admin(u.handleAuditExport))

	mux.HandleFunc("/ui/", u.handleNotFound)

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(u.handleCrossOrigin))
	return securityHeaders(cop.Handler(mux))
}

// securityHeaders sets headers every UI response carries.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		}
		h.ServeHTTP(w, r)
	})
}

// cacheAssets lets browsers keep the stylesheet and script for an hour.
func cacheAssets(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// secure reports whether cookies set in reply to r must be Secure.
func (u *ui) secure(r *http.Request) bool { return u.SecureCookies || r.TLS != nil }

// setCookie sets a UI cookie: HttpOnly, SameSite=Lax, Path=/ui/.
func (u *ui) setCookie(w http.ResponseWriter, r *http.Request, name, value string, expires time.Time) {
	c := &http.Cookie{
		Name: name, Value: value, Path: cookiePath,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: u.secure(r),
	}
	if !expires.IsZero() {
		c.Expires = expires.UTC()
		c.MaxAge = int(expires.Sub(u.Now()).Seconds())
		if c.MaxAge <= 0 {
			c.MaxAge = -1
		}
	}
	http.SetCookie(w, c)
}

// clearCookie deletes a UI cookie.
func (u *ui) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: "", Path: cookiePath, MaxAge: -1, Expires: time.Unix(1, 0),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: u.secure(r),
	})
}

// csrfToken returns the form token of a signed-in page: an HMAC keyed by
// the session cookie's secret, so it cannot be forged without reading the
// HttpOnly cookie, is useless for another session, and is the same on
// every replica.
func (u *ui) csrfToken(sessionSecret string) string {
	return u.cookieMAC(sessionSecret, "session")
}

// anonCSRFToken returns the form token of the sign-in and set-password
// forms, keyed by the random pre-session cookie.
func (u *ui) anonCSRFToken(pre string) string {
	return u.cookieMAC(pre, "anonymous")
}

func (u *ui) cookieMAC(cookieSecret, purpose string) string {
	m := hmac.New(sha256.New, []byte(cookieSecret))
	m.Write([]byte("latchkey-csrf\x00" + purpose + "\x00"))
	m.Write(u.csrfKey)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// validToken compares a submitted token with the expected one in constant time.
func validToken(got, want string) bool {
	return got != "" && hmac.Equal([]byte(got), []byte(want))
}

// randomToken returns 32 random bytes, base64url-encoded.
func (u *ui) randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(u.Rand, b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// baseURL returns the server's public URL for links shown to admins.
func (u *ui) baseURL(r *http.Request) string {
	if u.BaseURL != "" {
		return strings.TrimRight(u.BaseURL, "/")
	}
	scheme := "http"
	if r.TLS != nil || u.SecureCookies {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// setFlash stores a one-shot notice shown by the next page.
func (u *ui) setFlash(w http.ResponseWriter, r *http.Request, msg string) {
	u.setCookie(w, r, flashCookie, base64.RawURLEncoding.EncodeToString([]byte(msg)), u.Now().Add(5*time.Minute))
}

// takeFlash returns and clears the pending notice, if any.
func (u *ui) takeFlash(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	u.clearCookie(w, r, flashCookie)
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(b) > 500 {
		return ""
	}
	return string(b)
}

// formState is what a failed form sends back to its page: the error, the
// field it is about, and the values entered (never a password or a
// secret), for the page the browser is redirected to.
type formState struct {
	Path   string            `json:"p"`
	Error  string            `json:"e"`
	Field  string            `json:"f,omitempty"`
	Values map[string]string `json:"v,omitempty"`
}

// maxFormCookie bounds the form cookie; browsers keep 4 kB per cookie.
const maxFormCookie = 3800

// formError answers a form that failed with a redirect to path (POST,
// redirect, GET: reloading the page does not send the form again), which
// shows msg at field with the values entered. Values that do not fit in a
// cookie are dropped; the error always fits.
func (u *ui) formError(w http.ResponseWriter, r *http.Request, path, msg, field string, values map[string]string) {
	st := formState{Path: path, Error: msg, Field: field, Values: values}
	b, _ := json.Marshal(st)
	if len(b)*4/3 > maxFormCookie {
		st.Values = nil
		b, _ = json.Marshal(st)
	}
	if len(b)*4/3 <= maxFormCookie {
		u.setCookie(w, r, formCookie, base64.RawURLEncoding.EncodeToString(b), u.Now().Add(5*time.Minute))
	}
	redirect(w, r, path)
}

// takeFormState fills in p from the form state, if it is meant for this
// page, and clears it.
func (u *ui) takeFormState(w http.ResponseWriter, r *http.Request, p *page) {
	c, err := r.Cookie(formCookie)
	if err != nil {
		return
	}
	// Read once, wherever: the redirect goes straight to its page, and an
	// error must not turn up later on a page visited again.
	u.clearCookie(w, r, formCookie)
	var st formState
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(b) > maxFormCookie || json.Unmarshal(b, &st) != nil || st.Path != r.URL.Path {
		return
	}
	p.Error, p.ErrorField = st.Error, st.Field
	p.Form = url.Values{}
	for k, v := range st.Values {
		p.Form.Set(k, v)
	}
}

// redirect answers a POST with 303 See Other (POST-redirect-GET).
func redirect(w http.ResponseWriter, r *http.Request, path string) {
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// statusOf maps a latchkey error code to an HTTP status.
func statusOf(err error) int {
	switch latchkey.ErrorCode(err) {
	case latchkey.EINVALID:
		return http.StatusBadRequest
	case latchkey.ECONFLICT:
		return http.StatusConflict
	case latchkey.ENOTFOUND:
		return http.StatusNotFound
	case latchkey.EUNAUTHENTICATED:
		return http.StatusUnauthorized
	case latchkey.EFORBIDDEN:
		return http.StatusForbidden
	case latchkey.ERATELIMIT:
		return http.StatusTooManyRequests
	case latchkey.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusInternalServerError
}

// logError logs internal errors; errors with a code are the caller's doing
// and only their code is logged at debug level.
func (u *ui) logError(r *http.Request, msg string, err error) {
	if latchkey.ErrorCode(err) == latchkey.EINTERNAL {
		u.Logger.Error(msg, "path", r.URL.Path, "err", latchkey.RedactSecrets(err.Error()))
		return
	}
	u.Logger.Debug(msg, "path", r.URL.Path, "code", latchkey.ErrorCode(err))
}
