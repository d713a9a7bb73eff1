package http_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	lkhttp "github.com/latchkey/latchkey/http"
	"github.com/latchkey/latchkey/mock"
)

const (
	goodKey     = "lku_goodkeygoodkeygoodkeygoodkeyAAAAAA"
	goodSession = "lkc_goodsessiongoodsessiongoodsessAAAAAA"
	tenantID    = "11111111-1111-1111-1111-111111111111"
)

type countFailures []string

func (c *countFailures) FailCredential(addr, credential string) {
	*c = append(*c, addr+" "+credential)
}

// seen is what the handler behind the middleware found in its context.
type seen struct {
	auth   *latchkey.Auth
	cred   *latchkey.RequestCredential
	client latchkey.ClientInfo
}

func newAuthn(t *testing.T) (*lkhttp.Authenticator, *countFailures, *bytes.Buffer) {
	t.Helper()
	fails := &countFailures{}
	logs := &bytes.Buffer{}
	auth := &mock.AuthService{AuthenticateFn: func(ctx context.Context, credential, tenant string) (*latchkey.Auth, error) {
		u := &latchkey.User{ID: "u1", Kind: latchkey.UserKindHuman}
		switch {
		case credential == goodKey && (tenant == "" || tenant == tenantID):
			return &latchkey.Auth{User: u, TenantID: tenantID, Role: latchkey.RoleUser, Kind: latchkey.CredentialAPIKey}, nil
		case credential == goodSession && tenant == "":
			return &latchkey.Auth{User: u, TenantID: tenantID, Role: latchkey.RoleUser, Kind: latchkey.CredentialSession, SessionID: "s1"}, nil
		case credential == goodSession:
			return nil, latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Not a member of tenant %s.", tenant)
		}
		return nil, latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Invalid API key.")
	}}
	return &lkhttp.Authenticator{Auth: auth, Failures: fails, Logger: slog.New(slog.NewJSONHandler(logs, nil))}, fails, logs
}

func serve(h func(http.Handler) http.Handler, req *http.Request) *seen {
	var s seen
	h(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.auth = latchkey.AuthFromContext(r.Context())
		s.cred = latchkey.CredentialFromContext(r.Context())
		s.client = latchkey.ClientInfoFromContext(r.Context())
	})).ServeHTTP(httptest.NewRecorder(), req)
	return &s
}

func TestAuthenticator_API(t *testing.T) {
	t.Parallel()
	a, fails, logs := newAuthn(t)
	post := func(header map[string]string) *http.Request {
		r := httptest.NewRequest("POST", "/graphql", strings.NewReader(`{"query":"{ hello }"}`))
		for k, v := range header {
			r.Header.Set(k, v)
		}
		return r
	}
	// A good key: the caller, from the connection's address.
	s := serve(a.API, post(map[string]string{"Authorization": "Bearer " + goodKey, "User-Agent": "prefect/1.4"}))
	if s.auth == nil || s.cred.Err != nil || s.cred.Source != latchkey.SourceBearer || s.client != (latchkey.ClientInfo{Addr: "192.0.2.1", UserAgent: "prefect/1.4"}) {
		t.Fatalf("good key: %+v %+v %+v", s.auth, s.cred, s.client)
	}
	// With a tenant header, canonicalized.
	if s := serve(a.API, post(map[string]string{"Authorization": "bearer " + goodKey, "X-PREFECT-TENANT-ID": strings.ToUpper(tenantID)})); s.auth == nil {
		t.Fatalf("tenant header: %+v", s.cred)
	}
	// Anonymous: nothing presented, nothing counted.
	if s := serve(a.API, post(nil)); s.auth != nil || s.cred.Source != latchkey.SourceNone || s.cred.Err != nil {
		t.Fatalf("anonymous: %+v", s.cred)
	}
	// A refresh token is handed on unchecked, and is no caller.
	const refresh = "lkr_refreshrefreshrefreshrefreshrefAAAA"
	if s := serve(a.API, post(map[string]string{"Authorization": "Bearer " + refresh})); s.auth != nil || s.cred.RefreshToken != refresh || s.cred.Err != nil {
		t.Fatalf("refresh token: %+v", s.cred)
	}
	if len(*fails) != 0 {
		t.Fatalf("failures counted: %q", *fails)
	}
	// Refusals: a wrong key, a malformed header, a bad tenant header.
	bad := "lku_" + strings.Repeat("b", 38)
	for _, h := range []map[string]string{
		{"Authorization": "Bearer " + bad},
		{"Authorization": "Basic dXNlcjpwYXNz"},
		{"Authorization": "Bearer " + goodKey, "X-PREFECT-TENANT-ID": "nope"},
	} {
		s := serve(a.API, post(h))
		if s.auth != nil || latchkey.ErrorCode(s.cred.Err) != latchkey.EUNAUTHENTICATED {
			t.Fatalf("%v: %+v", h, s.cred)
		}
	}
	if want := "192.0.2.1 " + bad + "|192.0.2.1 |192.0.2.1 " + goodKey; strings.Join(*fails, "|") != want {
		t.Fatalf("failures %q", *fails)
	}
	// Each refusal is logged once, with its reason and the credential's
	// identifier, never the credential.
	out := logs.String()
	if n := strings.Count(out, `"msg":"authentication failed"`); n != 3 {
		t.Errorf("%d failure lines:\n%s", n, out)
	}
	for _, want := range []string{`"reason":"Invalid API key."`, `"credential":"lku_…bbbb"`, `"addr":"192.0.2.1"`, "Malformed Authorization header"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s:\n%s", want, out)
		}
	}
	for _, secret := range []string{bad[4:], goodKey[4:], "dXNlcjpwYXNz"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs hold a credential:\n%s", out)
		}
	}
	// An internal error is the handler's to present; no failure counted.
	a.Auth.(*mock.AuthService).AuthenticateFn = func(context.Context, string, string) (*latchkey.Auth, error) {
		return nil, context.DeadlineExceeded
	}
	n := len(*fails)
	if s := serve(a.API, post(map[string]string{"Authorization": "Bearer " + goodKey})); latchkey.ErrorCode(s.cred.Err) != latchkey.EINTERNAL || len(*fails) != n {
		t.Fatalf("internal error: %+v, %d failures", s.cred, len(*fails)-n)
	}
}

// A refused request never has its body read: the GraphQL handler answers
// from the context.
func TestAuthenticator_RefusedBodyUnread(t *testing.T) {
	t.Parallel()
	a, _, _ := newAuthn(t)
	body := &countingReader{r: strings.NewReader(strings.Repeat("x", 1<<20))}
	req := httptest.NewRequest("POST", "/graphql", body)
	req.Header.Set("Authorization", "Bearer lku_"+strings.Repeat("b", 38))
	s := serve(a.API, req)
	if s.cred.Err == nil || body.n != 0 {
		t.Fatalf("err=%v, %d bytes read", s.cred.Err, body.n)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestAuthenticator_UI(t *testing.T) {
	t.Parallel()
	a, _, _ := newAuthn(t)
	get := func(cookies ...*http.Cookie) *http.Request {
		r := httptest.NewRequest("GET", "/ui/keys", nil)
		for _, c := range cookies {
			r.AddCookie(c)
		}
		return r
	}
	session := &http.Cookie{Name: lkhttp.SessionCookie, Value: goodSession}
	if s := serve(a.UI, get(session)); s.auth == nil || s.cred.Source != latchkey.SourceCookie || s.cred.TenantFallback {
		t.Fatalf("session: %+v", s.cred)
	}
	// A tenant the user left: the default tenant, and the UI is told.
	gone := &http.Cookie{Name: lkhttp.TenantCookie, Value: "22222222-2222-2222-2222-222222222222"}
	if s := serve(a.UI, get(session, gone)); s.auth == nil || !s.cred.TenantFallback {
		t.Fatalf("fallback: %+v", s.cred)
	}
	// An API key pasted into the cookie is no session.
	if s := serve(a.UI, get(&http.Cookie{Name: lkhttp.SessionCookie, Value: goodKey})); s.auth != nil || latchkey.ErrorCode(s.cred.Err) != latchkey.EUNAUTHENTICATED {
		t.Fatalf("key in cookie: %+v", s.cred)
	}
	// The UI ignores the Authorization header, the API the cookie.
	r := get()
	r.Header.Set("Authorization", "Bearer "+goodKey)
	if s := serve(a.UI, r); s.auth != nil || s.cred.Source != latchkey.SourceNone {
		t.Fatalf("bearer on the UI: %+v", s.cred)
	}
	r = httptest.NewRequest("POST", "/graphql", nil)
	r.AddCookie(session)
	if s := serve(a.API, r); s.auth != nil || s.cred.Source != latchkey.SourceNone {
		t.Fatalf("cookie on the API: %+v", s.cred)
	}
}

func TestServer_HSTS(t *testing.T) {
	t.Parallel()
	for _, hsts := range []bool{false, true} {
		s := &lkhttp.Server{HSTS: hsts}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		if got := rec.Header().Get("Strict-Transport-Security"); (got != "") != hsts || (hsts && !strings.HasPrefix(got, "max-age=")) {
			t.Errorf("HSTS=%v: header %q", hsts, got)
		}
	}
}
