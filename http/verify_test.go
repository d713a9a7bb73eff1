package http_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	lkhttp "github.com/latchkey/latchkey/http"
	"github.com/latchkey/latchkey/inmem"
	"github.com/latchkey/latchkey/mock"
)

const (
	adminKey   = "lku_adminkeyadminkeyadminkeyadminkAAAAAA"
	readerKey  = "lku_readerkeyreaderkeyreaderkeyreadAAAAA"
	serviceKey = "lks_servicekeyservicekeyservicekeysAAAAA"
	brokenKey  = "lku_brokenbrokenbrokenbrokenbrokenAAAAAA"
)

// verifyWorld is a Server with forward auth on mocks: goodKey is a USER,
// adminKey a TENANT_ADMIN, readerKey a READ_ONLY_USER and serviceKey a
// service account (USER), all in tenant "acme"; checking brokenKey fails
// (the database is down).
type verifyWorld struct {
	h       http.Handler
	fails   *countFailures
	events  *inmem.EventService
	mu      sync.Mutex
	now     time.Time
	finds   int // FindTenantByID calls
	mints   int // MintAccessToken calls
	revoked map[string]bool
	findErr error // FindTenantByID's answer, if set
}

func newVerifyWorld(t *testing.T) *verifyWorld {
	t.Helper()
	w := &verifyWorld{events: inmem.NewEventService(), now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), revoked: map[string]bool{}}
	w.fails = &countFailures{}
	callers := map[string]*latchkey.Auth{
		goodKey:    {User: &latchkey.User{ID: "u1", Kind: latchkey.UserKindHuman}, Role: latchkey.RoleUser, APIKeyID: "k1"},
		adminKey:   {User: &latchkey.User{ID: "u2", Kind: latchkey.UserKindHuman}, Role: latchkey.RoleTenantAdmin, APIKeyID: "k2"},
		readerKey:  {User: &latchkey.User{ID: "u3", Kind: latchkey.UserKindHuman}, Role: latchkey.RoleReadOnlyUser, APIKeyID: "k3"},
		serviceKey: {User: &latchkey.User{ID: "sa1", Kind: latchkey.UserKindServiceAccount, TenantID: tenantID}, Role: latchkey.RoleUser, APIKeyID: "k4"},
		goodSession: {User: &latchkey.User{ID: "u1", Kind: latchkey.UserKindHuman}, Role: latchkey.RoleUser,
			Kind: latchkey.CredentialSession, SessionID: "s1"},
	}
	auth := &mock.AuthService{
		AuthenticateFn: func(ctx context.Context, credential, tenant string) (*latchkey.Auth, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if credential == brokenKey {
				return nil, errors.New("database is down")
			}
			a, ok := callers[credential]
			if !ok || w.revoked[credential] || (tenant != "" && tenant != tenantID) {
				return nil, latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Invalid API key.")
			}
			c := *a
			c.TenantID = tenantID
			if c.Kind == "" {
				c.Kind = latchkey.CredentialAPIKey
			}
			return &c, nil
		},
	}
	tenants := &mock.TenantService{FindTenantByIDFn: func(ctx context.Context, id string) (*latchkey.Tenant, error) {
		if latchkey.AuthFromContext(ctx) == nil {
			return nil, latchkey.Errorf(latchkey.EUNAUTHENTICATED, "no caller")
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.finds++
		if w.findErr != nil {
			return nil, w.findErr
		}
		return &latchkey.Tenant{ID: id, Slug: "acme", Name: "Acme"}, nil
	}}
	s := &lkhttp.Server{
		Authn:   &lkhttp.Authenticator{Auth: auth, Failures: w.fails},
		Tokens:  fakeTokens{w},
		Tenants: tenants,
		Events:  w.events,
		Now: func() time.Time {
			w.mu.Lock()
			defer w.mu.Unlock()
			return w.now
		},
	}
	w.h = s.Handler()
	t.Cleanup(func() { s.Close(context.Background()) })
	return w
}

// fakeTokens "signs" claims by printing them, and counts its signatures.
type fakeTokens struct{ w *verifyWorld }

func (f fakeTokens) MintAccessToken(ctx context.Context, c latchkey.AccessClaims) (string, error) {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	f.w.mints++
	if !c.IssuedAt.Equal(f.w.now.Truncate(time.Second)) || c.ExpiresAt.Sub(c.IssuedAt) != 10*time.Minute || c.FamilyID != "" {
		return "", fmt.Errorf("unexpected claims %+v", c)
	}
	return fmt.Sprintf("jwt-%s-%s-%s-%d", c.UserID, c.TenantID, c.APIKeyID, f.w.mints), nil
}

func (fakeTokens) VerifyAccessToken(context.Context, string, bool) (*latchkey.AccessClaims, error) {
	return nil, errors.New("not used")
}

func (fakeTokens) JWKS(context.Context) ([]byte, error) { return []byte(`{"keys":[]}`), nil }

func (w *verifyWorld) advance(d time.Duration) {
	w.mu.Lock()
	w.now = w.now.Add(d)
	w.mu.Unlock()
}

func (w *verifyWorld) counts() (finds, mints int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.finds, w.mints
}

// do sends method target with credential (if any) and returns the response.
func (w *verifyWorld) do(method, target, credential string) *http.Response {
	r := httptest.NewRequest(method, target, nil)
	if credential != "" {
		r.Header.Set("Authorization", "Bearer "+credential)
	}
	rec := httptest.NewRecorder()
	w.h.ServeHTTP(rec, r)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestVerify_Identity(t *testing.T) {
	t.Parallel()
	w := newVerifyWorld(t)
	for _, method := range []string{"GET", "POST", "HEAD", "DELETE", "PATCH"} {
		res := w.do(method, "/auth/verify", goodKey)
		if res.StatusCode != 200 {
			t.Fatalf("%s: status %d", method, res.StatusCode)
		}
		want := map[string]string{
			"X-Latchkey-Tenant-Id": tenantID, "X-Latchkey-Tenant-Slug": "acme", "X-Latchkey-User-Id": "u1",
			"X-Latchkey-Service-Account-Id": "", "X-Latchkey-Role": "USER", "X-Latchkey-Key-Id": "k1",
			"X-Latchkey-Token": "", "Cache-Control": "no-store",
		}
		for k, v := range want {
			if got := res.Header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", method, k, got, v)
			}
		}
		if b := body(t, res); b != "" {
			t.Errorf("%s: body %q, want none", method, b)
		}
	}
	// The names are canonical: the handler sets them without canonicalizing.
	for _, h := range lkhttp.VerifyHeaders() {
		if http.CanonicalHeaderKey(h) != h {
			t.Errorf("%s is not canonical", h)
		}
	}
	// The slug was read once, then cached.
	if finds, _ := w.counts(); finds != 1 {
		t.Errorf("FindTenantByID called %d times, want 1", finds)
	}
	// A service account is named as one.
	res := w.do("GET", "/auth/verify", serviceKey)
	if res.StatusCode != 200 || res.Header.Get("X-Latchkey-Service-Account-Id") != "sa1" || res.Header.Get("X-Latchkey-User-Id") != "" {
		t.Fatalf("service account: %d %v", res.StatusCode, res.Header)
	}
}

func TestVerify_Refused(t *testing.T) {
	t.Parallel()
	w := newVerifyWorld(t)
	for _, tc := range []struct {
		name, credential, header, wantAuth string
	}{
		{name: "no credential", wantAuth: `Bearer realm="latchkey"`},
		{name: "wrong key", credential: "lku_wrongwrongwrongwrongwrongwrongAAAAAA", wantAuth: `Bearer realm="latchkey", error="invalid_token"`},
		{name: "malformed header", header: "Basic dXNlcjpwYXNz", wantAuth: `Bearer realm="latchkey", error="invalid_token"`},
		{name: "refresh token", credential: "lkr_notforthisnotforthisnotforthisAAAAAA", wantAuth: `Bearer realm="latchkey", error="invalid_token"`},
	} {
		r := httptest.NewRequest("GET", "/auth/verify", nil)
		if tc.credential != "" {
			r.Header.Set("Authorization", "Bearer "+tc.credential)
		}
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		rec := httptest.NewRecorder()
		w.h.ServeHTTP(rec, r)
		res := rec.Result()
		b := body(t, res)
		if res.StatusCode != 401 || res.Header.Get("WWW-Authenticate") != tc.wantAuth || b != "Unauthorized.\n" {
			t.Errorf("%s: %d %q %q", tc.name, res.StatusCode, res.Header.Get("WWW-Authenticate"), b)
		}
		for _, h := range lkhttp.VerifyHeaders() {
			if res.Header.Get(h) != "" {
				t.Errorf("%s: answered %s", tc.name, h)
			}
		}
	}
	// Failures are counted by the middleware, once each, as for the API:
	// the wrong key and the malformed header.
	if len(*w.fails) != 2 {
		t.Errorf("failures counted: %q", *w.fails)
	}
	// A check that could not be made is an internal error, not a refusal.
	if res := w.do("GET", "/auth/verify", brokenKey); res.StatusCode != 500 || strings.Contains(body(t, res), "database") {
		t.Errorf("broken: %d", res.StatusCode)
	}
}

func TestVerify_Revoked(t *testing.T) {
	t.Parallel()
	w := newVerifyWorld(t)
	if res := w.do("GET", "/auth/verify", goodKey); res.StatusCode != 200 {
		t.Fatalf("before: %d", res.StatusCode)
	}
	w.mu.Lock()
	w.revoked[goodKey] = true
	w.mu.Unlock()
	if res := w.do("GET", "/auth/verify", goodKey); res.StatusCode != 401 {
		t.Fatalf("after revoking: %d", res.StatusCode)
	}
}

// The tenant lookup fails: a caller no longer a member (since the
// middleware checked) is refused; an outage is an internal error.
func TestVerify_TenantLookupFails(t *testing.T) {
	t.Parallel()
	w := newVerifyWorld(t)
	w.findErr = latchkey.Errorf(latchkey.ENOTFOUND, "Tenant not found.")
	if res := w.do("GET", "/auth/verify", goodKey); res.StatusCode != 401 || res.Header.Get("X-Latchkey-Role") != "" {
		t.Fatalf("not found: %d", res.StatusCode)
	}
	w.mu.Lock()
	w.findErr = errors.New("database is down")
	w.mu.Unlock()
	if res := w.do("GET", "/auth/verify", goodKey); res.StatusCode != 500 || strings.Contains(body(t, res), "database") {
		t.Fatalf("outage: %d", res.StatusCode)
	}
	// Nothing was cached meanwhile: once the lookup works, so does verify.
	w.mu.Lock()
	w.findErr = nil
	w.mu.Unlock()
	if res := w.do("GET", "/auth/verify", goodKey); res.StatusCode != 200 || res.Header.Get("X-Latchkey-Tenant-Slug") != "acme" {
		t.Fatalf("after: %d", res.StatusCode)
	}
}

func TestVerify_Requirements(t *testing.T) {
	t.Parallel()
	w := newVerifyWorld(t)
	for _, tc := range []struct {
		target, credential string
		want               int
	}{
		{"/auth/verify?role=USER", goodKey, 200},
		{"/auth/verify?role=READ_ONLY_USER", goodKey, 200},
		{"/auth/verify?role=TENANT_ADMIN", goodKey, 403},
		{"/auth/verify?role=TENANT_ADMIN", adminKey, 200},
		{"/auth/verify?role=USER", adminKey, 200},
		{"/auth/verify?role=USER", readerKey, 403},
		{"/auth/verify?role=READ_ONLY_USER", readerKey, 200},
		{"/auth/verify?tenant=acme", goodKey, 200},
		{"/auth/verify?tenant=other", goodKey, 403},
		{"/auth/verify?tenant=acme&role=TENANT_ADMIN", goodKey, 403},
		{"/auth/verify?tenant=acme&role=TENANT_ADMIN", adminKey, 200},
		// Requirements are checked after the credential: no key is a 401.
		{"/auth/verify?role=USER", "", 401},
		// A proxy's typo refuses everything rather than requiring nothing.
		{"/auth/verify?roles=USER", goodKey, 400},
		{"/auth/verify?role=ADMIN", goodKey, 400},
		{"/auth/verify?role=user", goodKey, 400},
		{"/auth/verify?role=USER&role=TENANT_ADMIN", goodKey, 400},
		{"/auth/verify?tenant=Not%20A%20Slug", goodKey, 400},
		{"/auth/verify?tenant=", goodKey, 400},
		{"/auth/verify?token=yes", goodKey, 400},
		{"/auth/verify?%zz", goodKey, 400},
		// Envoy appends the original path and query: the client's, ignored.
		{"/auth/verify/dashboard/x?role=TENANT_ADMIN&page=2", goodKey, 200},
		{"/auth/verify/dashboard/x", "", 401},
	} {
		res := w.do("GET", tc.target, tc.credential)
		if res.StatusCode != tc.want {
			t.Errorf("%s as %.10s: %d, want %d", tc.target, tc.credential, res.StatusCode, tc.want)
		}
		b := body(t, res)
		switch res.StatusCode {
		case 403:
			if b != "Forbidden.\n" || res.Header.Get("X-Latchkey-Role") != "" {
				t.Errorf("%s: 403 with %q %v", tc.target, b, res.Header)
			}
		case 400:
			if !strings.Contains(b, "role=") {
				t.Errorf("%s: 400 body %q does not say what is accepted", tc.target, b)
			}
		}
	}
}

func TestVerify_Token(t *testing.T) {
	t.Parallel()
	w := newVerifyWorld(t)
	get := func(credential string) string {
		t.Helper()
		res := w.do("GET", "/auth/verify?token=1", credential)
		if res.StatusCode != 200 {
			t.Fatalf("token=1: %d", res.StatusCode)
		}
		return res.Header.Get("X-Latchkey-Token")
	}
	first := get(goodKey)
	if first != "jwt-u1-"+tenantID+"-k1-1" {
		t.Fatalf("token %q", first)
	}
	// Kept for half its lifetime (10 minutes): the same token, no new signature.
	w.advance(4*time.Minute + 59*time.Second)
	if tok := get(goodKey); tok != first {
		t.Fatalf("within half its lifetime: %q, want %q", tok, first)
	}
	if _, mints := w.counts(); mints != 1 {
		t.Fatalf("minted %d times", mints)
	}
	// Another caller gets its own.
	if tok := get(adminKey); tok == first || !strings.HasPrefix(tok, "jwt-u2-") {
		t.Fatalf("another caller got %q", tok)
	}
	// Past half its lifetime: a new one.
	w.advance(2 * time.Second)
	second := get(goodKey)
	if second == first {
		t.Fatal("token kept past half its lifetime")
	}
	// An event for the user drops it; another user's event does not.
	w.events.Publish(context.Background(), latchkey.Event{Type: latchkey.EventMembershipChanged, UserID: "u9"})
	if tok := get(goodKey); tok != second {
		t.Fatalf("after another user's event: %q", tok)
	}
	w.events.Publish(context.Background(), latchkey.Event{Type: latchkey.EventAPIKeyDeleted, UserID: "u1", APIKeyID: "k0"})
	third := get(goodKey)
	if third == second {
		t.Fatal("token kept after its user's event")
	}
	// While events may be lost, nothing is kept.
	w.events.Publish(context.Background(), latchkey.Event{Type: latchkey.EventsInterrupted})
	a, b := get(goodKey), get(goodKey)
	if a == third || a == b {
		t.Fatalf("tokens kept while events were interrupted: %q %q %q", third, a, b)
	}
	w.events.Publish(context.Background(), latchkey.Event{Type: latchkey.EventsResumed})
	if c, d := get(goodKey), get(goodKey); c != d || c == b {
		t.Fatalf("not kept again after events resumed: %q %q", c, d)
	}
	// Without ?token=1 there is no token; a web session mints none (403).
	if res := w.do("GET", "/auth/verify", goodKey); res.Header.Get("X-Latchkey-Token") != "" {
		t.Fatal("token without token=1")
	}
	if res := w.do("GET", "/auth/verify?token=1", goodSession); res.StatusCode != 403 {
		t.Fatalf("session with token=1: %d", res.StatusCode)
	}
}

// Without a tenant service there is no forward auth.
func TestVerify_Disabled(t *testing.T) {
	t.Parallel()
	s := &lkhttp.Server{}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/auth/verify", nil))
	if rec.Code != 404 {
		t.Fatalf("status %d", rec.Code)
	}
}
