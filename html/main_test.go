package html_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/html"
	lkhttp "github.com/latchkey/latchkey/http"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/jwt"
	"github.com/latchkey/latchkey/sqldb"
)

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer = latchkeytest.SyncBuffer

// Env is a UI served by httptest on real SQLite services.
type Env struct {
	DB      *sqldb.DB
	Clock   *latchkeytest.Clock
	Fixture *latchkeytest.Fixture
	Auth    *sqldb.AuthService
	Users   *sqldb.UserService
	Server  *httptest.Server
	Handler http.Handler // Server's handler, for requests from made-up addresses
	Logs    *syncBuffer

	// PasswordChecks counts the servers' calls to AuthenticatePassword.
	PasswordChecks *atomic.Int64

	// Limiter, if set before a server is made (MustAddReplica), limits
	// its sign-ins.
	Limiter html.SignInLimiter

	// SignInFailures records what the UI reports of refused sign-ins.
	SignInFailures *signInFailures
}

// signInFailures records refused sign-ins as "addr email".
type signInFailures struct {
	mu  sync.Mutex
	got []string
}

func (s *signInFailures) FailSignIn(addr, email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, addr+" "+email)
}

// Got returns the refused sign-ins so far.
func (s *signInFailures) Got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// RunWithEnv runs fn on every engine (latchkeytest.RunWithDB) with an Env
// made by MustNewEnv.
func RunWithEnv(t *testing.T, fn func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env)) {
	t.Helper()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		fn(t, db, clock, MustNewEnv(t, db, clock))
	})
}

// MustNewEnv bootstraps db (tenant-one, admin@example.com with password
// AdminPassword) and serves the UI on it.
func MustNewEnv(tb testing.TB, db *sqldb.DB, clock *latchkeytest.Clock) *Env {
	tb.Helper()
	ctx := context.Background()
	f := latchkeytest.MustBootstrap(tb, db)
	tokens := jwt.NewTokenService(sqldb.NewSigningKeyService(db), "latchkey", "latchkey")
	tokens.Now = clock.Now
	if err := tokens.Open(ctx); err != nil {
		tb.Fatal(err)
	}
	users := sqldb.NewUserService(db)
	users.PasswordParams = latchkeytest.FastPasswordParams()
	e := &Env{DB: db, Clock: clock, Fixture: f, Auth: sqldb.NewAuthService(db, tokens), Users: users, Logs: &syncBuffer{},
		PasswordChecks: &atomic.Int64{}, SignInFailures: &signInFailures{}}
	e.Server, e.Handler = e.newServer(tb)
	e.MustSetPassword(tb, f.Admin.Email, AdminPassword)
	return e
}

// MustAddReplica returns e served by a second, independent UI server on
// the same database, as a second replica behind a load balancer would be.
func (e *Env) MustAddReplica(tb testing.TB) *Env {
	tb.Helper()
	r := *e
	r.Server, r.Handler = e.newServer(tb)
	return &r
}

// countingUsers counts password checks.
type countingUsers struct {
	*sqldb.UserService
	n *atomic.Int64
}

func (c countingUsers) AuthenticatePassword(ctx context.Context, email, password string) (*latchkey.User, error) {
	c.n.Add(1)
	return c.UserService.AuthenticatePassword(ctx, email, password)
}

// testDeviceKey is every test server's device-cookie key, as replicas
// share one.
var testDeviceKey = []byte("test device key: 32 bytes long!!")

func (e *Env) newServer(tb testing.TB) (*httptest.Server, http.Handler) {
	db, clock, users := e.DB, e.Clock, e.Users
	s := &html.Server{
		Auth:            e.Auth,
		Users:           countingUsers{users, e.PasswordChecks},
		Tenants:         sqldb.NewTenantService(db),
		Memberships:     sqldb.NewMembershipService(db),
		Invitations:     sqldb.NewInvitationService(db),
		ServiceAccounts: sqldb.NewServiceAccountService(db),
		APIKeys:         sqldb.NewAPIKeyService(db),
		RevokedAPIKeys:  sqldb.NewAPIKeyService(db),
		Audit:           sqldb.NewAuditService(db),
		AuthFailures:    sqldb.NewAuthFailureService(db),
		SignInFailures:  e.SignInFailures,
		Limiter:         e.Limiter,
		// No redaction here, so MustNoSecretsLogged sees what the UI logs.
		Logger:    slog.New(slog.NewTextHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:       clock.Now,
		DeviceKey: testDeviceKey,
	}
	h := (&lkhttp.Authenticator{Auth: e.Auth}).UI(s.Handler())
	mux := http.NewServeMux()
	mux.Handle("/ui/", h)
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return srv, h
}

// AdminPassword is the fixture admin's password.
const AdminPassword = "admin password 123"

// MustSetPassword gives the human with email a password.
func (e *Env) MustSetPassword(tb testing.TB, email, password string) {
	tb.Helper()
	secret, _, err := e.Users.CreatePasswordResetForEmail(context.Background(), email)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := e.Users.ResetPassword(context.Background(), secret, password); err != nil {
		tb.Fatal(err)
	}
}

// Browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see every 303.
type Browser struct {
	tb     testing.TB
	env    *Env
	Client *http.Client
}

// NewBrowser returns a browser with no cookies.
func (e *Env) NewBrowser(tb testing.TB) *Browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return &Browser{tb: tb, env: e, Client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Page is a response with its body read.
type Page struct {
	*http.Response
	Body string
}

// Do sends req and reads the response.
func (b *Browser) Do(req *http.Request) *Page {
	b.tb.Helper()
	resp, err := b.Client.Do(req)
	if err != nil {
		b.tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.tb.Fatal(err)
	}
	return &Page{Response: resp, Body: string(body)}
}

// Get fetches path.
func (b *Browser) Get(path string) *Page {
	b.tb.Helper()
	req, err := http.NewRequest("GET", b.env.Server.URL+path, nil)
	if err != nil {
		b.tb.Fatal(err)
	}
	return b.Do(req)
}

// Post submits form to path as a same-origin browser form would.
func (b *Browser) Post(path string, form url.Values) *Page {
	b.tb.Helper()
	req, err := http.NewRequest("POST", b.env.Server.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", b.env.Server.URL)
	return b.Do(req)
}

// Follow fetches the Location of a redirect, failing unless p is a 303.
func (b *Browser) Follow(p *Page) *Page {
	b.tb.Helper()
	if p.StatusCode != http.StatusSeeOther {
		b.tb.Fatalf("status %d, want 303; body:\n%s", p.StatusCode, p.Body)
	}
	return b.Get(p.Header.Get("Location"))
}

// PostBack submits a form that fails: the answer must redirect back to
// the form's page (POST, redirect, GET), which it returns.
func (b *Browser) PostBack(path string, form url.Values, back string) *Page {
	b.tb.Helper()
	p := b.Post(path, form)
	if got := p.Header.Get("Location"); p.StatusCode != http.StatusSeeOther || got != back {
		b.tb.Fatalf("POST %s: status %d to %q, want 303 to %q; body:\n%s", path, p.StatusCode, got, back, p.Body)
	}
	return b.Follow(p).MustStatus(b.tb, http.StatusOK)
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// CSRF returns the CSRF token of the first form on p.
func (p *Page) CSRF(tb testing.TB) string {
	tb.Helper()
	m := csrfRE.FindStringSubmatch(p.Body)
	if m == nil {
		tb.Fatalf("no csrf token on page:\n%s", p.Body)
	}
	return m[1]
}

// MustStatus fails unless p has the status.
func (p *Page) MustStatus(tb testing.TB, status int) *Page {
	tb.Helper()
	if p.StatusCode != status {
		tb.Fatalf("%s %s: status %d, want %d; body:\n%s", p.Request.Method, p.Request.URL.Path, p.StatusCode, status, p.Body)
	}
	return p
}

// MustContain fails unless the body contains every s.
func (p *Page) MustContain(tb testing.TB, ss ...string) *Page {
	tb.Helper()
	for _, s := range ss {
		if !strings.Contains(p.Body, s) {
			tb.Fatalf("%s %s: body lacks %q:\n%s", p.Request.Method, p.Request.URL.Path, s, p.Body)
		}
	}
	return p
}

// MustNotContain fails if the body contains any s.
func (p *Page) MustNotContain(tb testing.TB, ss ...string) *Page {
	tb.Helper()
	for _, s := range ss {
		if strings.Contains(p.Body, s) {
			tb.Fatalf("%s %s: body contains %q:\n%s", p.Request.Method, p.Request.URL.Path, s, p.Body)
		}
	}
	return p
}

// SignIn signs in through the form and returns the page it lands on.
func (b *Browser) SignIn(email, password string) *Page {
	b.tb.Helper()
	form := b.Get("/ui/signin").MustStatus(b.tb, http.StatusOK)
	p := b.Post("/ui/signin", url.Values{"csrf_token": {form.CSRF(b.tb)}, "email": {email}, "password": {password}, "next": {"/ui/keys"}})
	return b.Follow(p).MustStatus(b.tb, http.StatusOK)
}

// Cookie returns the browser's cookie name for the UI, or nil.
func (b *Browser) Cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.env.Server.URL + "/ui/")
	for _, c := range b.Client.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

var secretRE = regexp.MustCompile(`\blk[a-z]_[0-9A-Za-z]{38}\b`)

// MustNoSecretsLogged fails if the server logged anything shaped like a secret.
func (e *Env) MustNoSecretsLogged(tb testing.TB) {
	tb.Helper()
	if m := secretRE.FindString(e.Logs.String()); m != "" {
		tb.Fatalf("a secret was logged: %s…", m[:8])
	}
}
