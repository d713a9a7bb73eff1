package html_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/html"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// mustFind returns the first submatch of pattern in s.
func mustFind(tb testing.TB, pattern, s string) string {
	tb.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(s)
	if m == nil {
		tb.Fatalf("no match for %s in:\n%s", pattern, s)
	}
	return m[1]
}

// keyID returns the id of the key listed with name on a keys table.
func keyID(tb testing.TB, p *Page, name string) string {
	tb.Helper()
	return mustFind(tb, `<tr id="key-[^"]+" data-key-id="([^"]+)"[^>]*>\s*<th scope="row" data-label="Name">`+regexp.QuoteMeta(name)+`[ <]`, p.Body)
}

// setCookieHeader returns the Set-Cookie line for name.
func setCookieHeader(tb testing.TB, resp *http.Response, name string) string {
	tb.Helper()
	for _, v := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, name+"=") {
			return v
		}
	}
	tb.Fatalf("no Set-Cookie for %s in %q", name, resp.Header.Values("Set-Cookie"))
	return ""
}

func TestSignIn(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		b := e.NewBrowser(t)

		// Anonymous pages send the browser to the sign-in form.
		p := b.Get("/ui/keys").MustStatus(t, http.StatusSeeOther)
		if got, want := p.Header.Get("Location"), "/ui/signin?next=%2Fui%2Fkeys"; got != want {
			t.Fatalf("Location=%q, want %q", got, want)
		}
		form := b.Follow(p).MustStatus(t, http.StatusOK).MustContain(t, `<label for="email">Email</label>`, `<label for="password">Password</label>`)

		// A wrong password is a readable error and no cookie.
		bad := b.Post("/ui/signin", url.Values{"csrf_token": {form.CSRF(t)}, "email": {"admin@example.com"}, "password": {"wrong password"}})
		bad.MustStatus(t, http.StatusUnauthorized).MustContain(t, "Invalid email or password.", `value="admin@example.com"`)
		if b.Cookie(html.SessionCookie) != nil {
			t.Fatal("session cookie set after a wrong password")
		}

		ok := b.Post("/ui/signin", url.Values{"csrf_token": {bad.CSRF(t)}, "email": {"Admin@Example.com"}, "password": {AdminPassword}, "next": {"/ui/team/members"}})
		ok.MustStatus(t, http.StatusSeeOther)
		if got, want := ok.Header.Get("Location"), "/ui/team/members"; got != want {
			t.Fatalf("Location=%q, want %q", got, want)
		}
		sc := setCookieHeader(t, ok.Response, html.SessionCookie)
		for _, attr := range []string{"Path=/ui/", "HttpOnly", "SameSite=Lax", "Expires="} {
			if !strings.Contains(sc, attr) {
				t.Errorf("session cookie %q lacks %s", sc[:strings.Index(sc, ";")], attr)
			}
		}
		if strings.Contains(sc, "Secure") {
			t.Errorf("session cookie Secure over plain HTTP without SecureCookies")
		}
		secret := b.Cookie(html.SessionCookie).Value
		if !strings.HasPrefix(secret, latchkey.PrefixSession) {
			t.Fatalf("session cookie is not a session secret: %.4s", secret)
		}
		a, err := e.Auth.Authenticate(context.Background(), secret, "")
		if err != nil {
			t.Fatal(err)
		} else if a.Kind != latchkey.CredentialSession || a.User.ID != e.Fixture.Admin.ID {
			t.Fatalf("session authenticates as %s %s", a.Kind, a.User.ID)
		}

		keys := b.Get("/ui/keys").MustStatus(t, http.StatusOK)
		keys.MustContain(t, "admin@example.com", `href="/ui/team/service-accounts"`, "Tenant One", "Sign out")
		if got := keys.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("Cache-Control=%q, want no-store", got)
		}
		for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"} {
			if keys.Header.Get(h) == "" {
				t.Errorf("no %s header", h)
			}
		}

		// An open redirect is not possible through next.
		b2 := e.NewBrowser(t)
		form2 := b2.Get("/ui/signin")
		p = b2.Post("/ui/signin", url.Values{"csrf_token": {form2.CSRF(t)}, "email": {"admin@example.com"}, "password": {AdminPassword}, "next": {"//evil.example/ui/"}})
		if got := p.MustStatus(t, http.StatusSeeOther).Header.Get("Location"); got != "/ui/keys" {
			t.Fatalf("Location=%q, want /ui/keys", got)
		}
		e.MustNoSecretsLogged(t)
	})
}

func TestSignIn_SecureCookie(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		ts := httptest.NewTLSServer(e.Server.Config.Handler)
		defer ts.Close()
		b := e.NewBrowser(t)
		b.Client.Transport = ts.Client().Transport
		b.env = &Env{Server: ts}
		form := b.Get("/ui/signin").MustStatus(t, http.StatusOK)
		if sc := setCookieHeader(t, form.Response, "latchkey_pre"); !strings.Contains(sc, "Secure") {
			t.Errorf("pre-session cookie not Secure under TLS: %s", sc)
		}
		p := b.Post("/ui/signin", url.Values{"csrf_token": {form.CSRF(t)}, "email": {"admin@example.com"}, "password": {AdminPassword}})
		p.MustStatus(t, http.StatusSeeOther)
		if sc := setCookieHeader(t, p.Response, html.SessionCookie); !strings.Contains(sc, "Secure") || !strings.Contains(sc, "HttpOnly") {
			t.Errorf("session cookie under TLS lacks Secure or HttpOnly")
		}
	})
}

func TestSignOut(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		b := e.NewBrowser(t)
		keys := b.SignIn("admin@example.com", AdminPassword)
		secret := b.Cookie(html.SessionCookie).Value

		p := b.Post("/ui/signout", url.Values{"csrf_token": {keys.CSRF(t)}}).MustStatus(t, http.StatusSeeOther)
		if got := p.Header.Get("Location"); got != "/ui/signin" {
			t.Fatalf("Location=%q", got)
		}
		if b.Cookie(html.SessionCookie) != nil {
			t.Fatal("session cookie kept after sign out")
		}
		b.Follow(p).MustStatus(t, http.StatusOK).MustContain(t, "You are signed out.")
		if _, err := e.Auth.Authenticate(context.Background(), secret, ""); latchkey.ErrorCode(err) != latchkey.EUNAUTHENTICATED {
			t.Fatalf("old session after sign out: err=%v", err)
		}
		b.Get("/ui/keys").MustStatus(t, http.StatusSeeOther)
	})
}

// A cookie holding anything but a session secret, even a valid API key,
// does not sign anyone in.
func TestSession_APIKeyInCookie(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		b := e.NewBrowser(t)
		u, _ := url.Parse(e.Server.URL + "/ui/")
		b.Client.Jar.SetCookies(u, []*http.Cookie{{Name: html.SessionCookie, Value: e.Fixture.AdminKey, Path: "/ui/"}})
		b.Get("/ui/keys").MustStatus(t, http.StatusSeeOther)
		b.Get("/ui/team/service-accounts").MustStatus(t, http.StatusSeeOther)
	})
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		b := e.NewBrowser(t)
		keys := b.SignIn("admin@example.com", AdminPassword)
		token := keys.CSRF(t)
		count := func() int {
			return latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys WHERE user_id = ?`, e.Fixture.Admin.ID)
		}
		before := count()

		// No token, and a token of another session of the same user.
		b.Post("/ui/keys", url.Values{"name": {"no token"}}).MustStatus(t, http.StatusForbidden).MustContain(t, "Form expired")
		other := e.NewBrowser(t).SignIn("admin@example.com", AdminPassword).CSRF(t)
		if other == token {
			t.Fatal("two sessions share a CSRF token")
		}
		b.Post("/ui/keys", url.Values{"csrf_token": {other}, "name": {"other token"}}).MustStatus(t, http.StatusForbidden)
		b.Post("/ui/team/service-accounts", url.Values{"csrf_token": {"x" + token}, "name": {"bad"}}).MustStatus(t, http.StatusForbidden)

		// A valid token from a cross-site form is still refused.
		req, _ := http.NewRequest("POST", e.Server.URL+"/ui/keys", strings.NewReader(url.Values{"csrf_token": {token}, "name": {"cross"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		b.Do(req).MustStatus(t, http.StatusForbidden).MustContain(t, "Request blocked")
		if got := count(); got != before {
			t.Fatalf("keys created by rejected forms: %d, want %d", got, before)
		}

		// Sign-out needs the token too.
		b.Post("/ui/signout", url.Values{}).MustStatus(t, http.StatusForbidden)
		if b.Cookie(html.SessionCookie) == nil {
			t.Fatal("signed out without a token")
		}

		// The sign-in form needs its own token.
		anon := e.NewBrowser(t)
		anon.Get("/ui/signin")
		anon.Post("/ui/signin", url.Values{"email": {"admin@example.com"}, "password": {AdminPassword}}).MustStatus(t, http.StatusForbidden)
		if anon.Cookie(html.SessionCookie) != nil {
			t.Fatal("signed in without a token")
		}

		// The right token works.
		b.Post("/ui/keys", url.Values{"csrf_token": {token}, "name": {"ok"}}).MustStatus(t, http.StatusOK)
		if got := count(); got != before+1 {
			t.Fatalf("keys=%d, want %d", got, before+1)
		}
	})
}

// A form rendered by one replica is accepted by another: tokens need no
// key shared between processes.
func TestCSRF_AcrossReplicas(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		a := MustNewEnv(t, db, clock)
		b := a.MustAddReplica(t)
		onA := a.NewBrowser(t)
		token := onA.SignIn("admin@example.com", AdminPassword).CSRF(t)
		// The same browser (same cookie jar) now reaches replica B.
		onB := &Browser{tb: t, env: b, Client: onA.Client}
		if got := onB.Get("/ui/keys").CSRF(t); got != token {
			t.Fatalf("replicas render different tokens for one session")
		}
		onB.Post("/ui/keys", url.Values{"csrf_token": {token}, "name": {"via b"}}).MustStatus(t, http.StatusOK).MustContain(t, "via b")
		onB.Post("/ui/keys", url.Values{"csrf_token": {token + "x"}, "name": {"forged"}}).MustStatus(t, http.StatusForbidden)
	})
}

func TestPersonalKeys(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		ctx := context.Background()
		b := e.NewBrowser(t)
		keys := b.SignIn("admin@example.com", AdminPassword)
		token := keys.CSRF(t)

		// Form errors come back, after a redirect, as readable messages at
		// their field, the form kept; a reload does not show them again.
		b.PostBack("/ui/keys", url.Values{"csrf_token": {token}, "name": {""}}, "/ui/keys").
			MustContain(t, `<p class="field-error" id="name-error">API key name required.</p>`, `id="create-key-form"`,
				`aria-describedby="name-error name-hint" aria-invalid="true" autofocus`).
			MustNotContain(t, `id="form-error"`)
		b.Get("/ui/keys").MustNotContain(t, "API key name required.", `aria-invalid`)
		b.PostBack("/ui/keys", url.Values{"csrf_token": {token}, "name": {"old"}, "expires": {"custom"}, "expires_on": {"2020-01-01"}}, "/ui/keys").
			MustContain(t, `id="expires-on-error">The expiration date must be in the future`, `value="old"`, `value="2020-01-01"`)
		b.PostBack("/ui/keys", url.Values{"csrf_token": {token}, "name": {"x"}, "expires": {"custom"}}, "/ui/keys").
			MustContain(t, `id="expires-on-error">Choose the expiration date.`)

		// A new form expires in 30 days unless told otherwise.
		b.Get("/ui/keys").MustContain(t, `<option value="30d" selected>30 days</option>`, `id="no-expiry-warning" data-no-expiry-warning hidden`)

		created := b.Post("/ui/keys", url.Values{"csrf_token": {token}, "name": {"laptop <cli>"}, "expires": {"30d"}, "tenant_id": {e.Fixture.Tenant.ID}})
		created.MustStatus(t, http.StatusOK).MustContain(t, "It will not be shown again", "laptop &lt;cli&gt;", "Feb 1, 2030", `data-copy="secret"`)
		if got := created.Header.Get("Cache-Control"); got != "no-store" {
			t.Fatalf("show-once Cache-Control=%q, want no-store", got)
		}
		secret := mustFind(t, `id="secret" class="secret" type="text" readonly value="(lku_[0-9A-Za-z]+)"`, created.Body)
		a, err := e.Auth.Authenticate(ctx, secret, "")
		if err != nil {
			t.Fatal(err)
		} else if a.User.ID != e.Fixture.Admin.ID || a.TenantID != e.Fixture.Tenant.ID {
			t.Fatalf("key acts as %s in %s", a.User.ID, a.TenantID)
		}

		identifier := secret[:4] + "…" + secret[len(secret)-4:]
		created.MustContain(t, `<code class="identifier" translate="no">`+identifier+`</code>`)

		// Done leads back to the list, which announces the key and
		// highlights its row. The list shows the key's identifier, never
		// its text, and times relative to now with the exact time in the title.
		done := mustFind(t, `href="([^"]+)" id="done-link"`, created.Body)
		list := b.Get(strings.ReplaceAll(done, "&amp;", "&")).MustStatus(t, http.StatusOK).
			MustContain(t, "API key “laptop &lt;cli&gt;” ("+identifier+") created.", `class="row-new" data-new tabindex="-1"`,
				`<code class="identifier" translate="no">`+identifier+`</code>`,
				`title="Feb 1, 2030 03:04 UTC">in 30 days</time>`, `>just now</time>`).
			MustNotContain(t, secret)
		id := keyID(t, list, "laptop &lt;cli&gt;")
		if !strings.Contains(done, "created="+id) {
			t.Fatalf("done link %q does not name key %s", done, id)
		}
		b.Get("/ui/keys").MustNotContain(t, "row-new", "created.")

		// A second key of that name is refused, at the name field.
		b.PostBack("/ui/keys", url.Values{"csrf_token": {token}, "name": {"laptop <cli>"}, "expires": {"7d"}}, "/ui/keys").
			MustContain(t, `id="name-error">You already have an API key named “laptop &lt;cli&gt;”.`, `value="laptop &lt;cli&gt;"`, `<option value="7d" selected>`)
		// Search by name, on the server.
		b.Get("/ui/keys?q=LAPTOP").MustContain(t, `data-key-id="`+id+`"`)
		b.Get("/ui/keys?q=desktop").MustContain(t, "No key matches “desktop”.").MustNotContain(t, `data-key-id="`+id+`"`)

		// Revoke: a confirmation page (the no-script path), then the POST.
		b.Get("/ui/keys/"+id+"/revoke").MustStatus(t, http.StatusOK).MustContain(t, "Revoke API key “laptop &lt;cli&gt;”?", `action="/ui/keys/`+id+`/revoke"`)
		p := b.Post("/ui/keys/"+id+"/revoke", url.Values{"csrf_token": {token}}).MustStatus(t, http.StatusSeeOther)
		b.Follow(p).MustStatus(t, http.StatusOK).MustContain(t, "API key “laptop &lt;cli&gt;” revoked.").MustNotContain(t, `data-key-id="`+id+`"`)
		if _, err := e.Auth.Authenticate(ctx, secret, ""); latchkey.ErrorCode(err) != latchkey.EUNAUTHENTICATED {
			t.Fatalf("revoked key: err=%v, want EUNAUTHENTICATED", err)
		}
		b.Post("/ui/keys/"+id+"/revoke", url.Values{"csrf_token": {token}}).MustStatus(t, http.StatusNotFound).MustContain(t, "not found")
		// The revoked key stays listed under the Revoked filter, with when and by whom.
		revoked := b.Get("/ui/keys?status=revoked").MustStatus(t, http.StatusOK).
			MustContain(t, `<table id="revoked-keys"`, `data-key-id="`+id+`"`, "laptop &lt;cli&gt;", `<td data-label="Revoked by">you</td>`)
		if strings.Contains(revoked.Body, `<table id="keys"`) {
			t.Error("the Revoked filter also shows the active keys")
		}
		b.Get("/ui/keys").MustNotContain(t, `<table id="revoked-keys"`)
		b.Get("/ui/keys?status=revoked&q=LAPTOP").MustContain(t, `data-key-id="`+id+`"`, `value="LAPTOP"`)
		b.Get("/ui/keys?status=revoked&q=desktop").MustContain(t, "No revoked key matches this search.").MustNotContain(t, `data-key-id="`+id+`"`)

		// Someone else's key cannot be revoked through the personal page.
		bob := latchkeytest.MustCreateMember(t, db, e.Fixture.Tenant.ID, "bob@example.com", latchkey.RoleUser)
		bobKey := &latchkey.APIKey{Name: "bob's"}
		if _, err := sqldb.NewAPIKeyService(db).CreateAPIKey(latchkeytest.AuthContext(ctx, bob, e.Fixture.Tenant.ID, latchkey.RoleUser), bobKey); err != nil {
			t.Fatal(err)
		}
		b.Get("/ui/keys/"+bobKey.ID+"/revoke").MustStatus(t, http.StatusNotFound)
		b.Post("/ui/keys/"+bobKey.ID+"/revoke", url.Values{"csrf_token": {token}}).MustStatus(t, http.StatusNotFound)
		if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys WHERE id = ?`, bobKey.ID); n != 1 {
			t.Fatal("bob's key was deleted")
		}
		e.MustNoSecretsLogged(t)
	})
}

func TestPersonalKeys_EmptyState(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		latchkeytest.MustCreateMember(t, db, e.Fixture.Tenant.ID, "carol@example.com", latchkey.RoleReadOnlyUser)
		e.MustSetPassword(t, "carol@example.com", "carol password 1")
		b := e.NewBrowser(t)
		keys := b.SignIn("carol@example.com", "carol password 1")
		keys.MustContain(t, "You have no API keys yet.", "Create one below").MustNotContain(t, `<table id="keys"`)

		// Read-only users manage their own keys. Without an expiration
		// a key expires in 30 days; "never" must be chosen.
		created := b.Post("/ui/keys", url.Values{"csrf_token": {keys.CSRF(t)}, "name": {"reader"}})
		created.MustStatus(t, http.StatusOK).MustContain(t, "until", clock.Now().AddDate(0, 0, 30).Format("Jan 2, 2006"))
		created = b.Post("/ui/keys", url.Values{"csrf_token": {keys.CSRF(t)}, "name": {"forever"}, "expires": {"never"}})
		created.MustStatus(t, http.StatusOK).MustContain(t, "never expires")
		b.Get("/ui/keys").MustContain(t, "reader", "forever", "Never").MustNotContain(t, "You have no API keys yet.")
	})
}

func TestTeamPages_NonAdmin(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		sa := latchkeytest.MustCreateServiceAccount(t, db, e.Fixture.Tenant.ID, "hidden-agent", latchkey.RoleUser)
		saKey := &latchkey.APIKey{Name: "hidden-agent-key", UserID: sa.ID}
		if _, err := sqldb.NewAPIKeyService(db).CreateAPIKey(e.Fixture.AdminContext(), saKey); err != nil {
			t.Fatal(err)
		}
		bob := latchkeytest.MustCreateMember(t, db, e.Fixture.Tenant.ID, "bob@example.com", latchkey.RoleUser)

		for _, role := range []latchkey.Role{latchkey.RoleUser, latchkey.RoleReadOnlyUser} {
			t.Run(string(role), func(t *testing.T) {
				latchkeytest.MustExec(t, db, `UPDATE memberships SET role = ? WHERE user_id = ?`, string(role), bob.ID)
				e.MustSetPassword(t, "bob@example.com", "bob password 12")
				b := e.NewBrowser(t)
				keys := b.SignIn("bob@example.com", "bob password 12")
				keys.MustNotContain(t, "Team settings", "/ui/team/")
				token := keys.CSRF(t)

				for _, path := range []string{
					"/ui/team/", "/ui/team/service-accounts", "/ui/team/members",
					"/ui/team/service-accounts/" + sa.ID,
					"/ui/team/service-accounts/" + sa.ID + "/keys/" + saKey.ID + "/revoke",
					"/ui/team/service-accounts/" + sa.ID + "/delete",
				} {
					b.Get(path).MustStatus(t, http.StatusForbidden).
						MustContain(t, "Team settings are for tenant admins").
						MustNotContain(t, "hidden-agent", saKey.ID)
				}
				for path, form := range map[string]url.Values{
					"/ui/team/service-accounts":                                            {"name": {"sneaky"}},
					"/ui/team/service-accounts/" + sa.ID + "/keys":                         {"name": {"sneaky"}},
					"/ui/team/service-accounts/" + sa.ID + "/keys/" + saKey.ID + "/revoke": {},
					"/ui/team/service-accounts/" + sa.ID + "/delete":                       {},
					"/ui/team/members": {"email": {"eve@example.com"}, "role": {"TENANT_ADMIN"}},
				} {
					form.Set("csrf_token", token)
					b.Post(path, form).MustStatus(t, http.StatusForbidden).MustNotContain(t, "hidden-agent")
				}
				if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM users WHERE name = 'sneaky' OR email = 'eve@example.com'`); n != 0 {
					t.Fatal("a non-admin created something")
				}
				if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys WHERE id = ?`, saKey.ID); n != 1 {
					t.Fatal("a non-admin revoked a service-account key")
				}
			})
		}
	})
}

func TestServiceAccounts(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		ctx := context.Background()
		b := e.NewBrowser(t)
		token := b.SignIn("admin@example.com", AdminPassword).CSRF(t)

		b.Get("/ui/team/").MustStatus(t, http.StatusSeeOther)
		list := b.Get("/ui/team/service-accounts").MustStatus(t, http.StatusOK)
		list.MustContain(t, "No service accounts yet.", `aria-current="page">Service accounts`)

		b.PostBack("/ui/team/service-accounts", url.Values{"csrf_token": {token}, "name": {""}}, "/ui/team/service-accounts").
			MustContain(t, `id="sa-name-error">Service account name required.`)

		p := b.Post("/ui/team/service-accounts", url.Values{"csrf_token": {token}, "name": {"ci agent"}, "role": {"USER"}}).MustStatus(t, http.StatusSeeOther)
		saURL := p.Header.Get("Location")
		saID := strings.TrimPrefix(saURL, "/ui/team/service-accounts/")
		b.Follow(p).MustStatus(t, http.StatusOK).MustContain(t, "Service account “ci agent” created.", "This service account has no API keys.")

		created := b.Post(saURL+"/keys", url.Values{"csrf_token": {token}, "name": {"build-01"}, "expires": {"7d"}})
		created.MustStatus(t, http.StatusOK).MustContain(t, "It will not be shown again", "ci agent", "Jan 9, 2030")
		if got := created.Header.Get("Cache-Control"); got != "no-store" {
			t.Fatalf("show-once Cache-Control=%q", got)
		}
		secret := mustFind(t, `readonly value="(lks_[0-9A-Za-z]+)"`, created.Body)
		a, err := e.Auth.Authenticate(ctx, secret, "")
		if err != nil {
			t.Fatal(err)
		} else if a.User.ID != saID || !a.User.IsServiceAccount() {
			t.Fatalf("key acts as %s", a.User.ID)
		}

		page := b.Get(saURL).MustStatus(t, http.StatusOK).MustContain(t, "build-01", "Jan 9, 2030 03:04 UTC", `<td data-label="Created by">you</td>`).MustNotContain(t, secret)
		id := keyID(t, page, "build-01")
		b.Get("/ui/team/service-accounts").MustContain(t, `<a href="`+saURL+`">ci agent</a>`,
			`<td data-label="API keys">1 <span class="badge badge-warn">1 expiring soon</span></td>`)
		page.MustContain(t, `<span class="badge badge-warn">Expires soon</span>`, `class=" row-expiring"`,
			"latchkey agent local start --api "+e.Server.URL+" -t KEY")
		created.MustContain(t, "latchkey agent local start --api "+e.Server.URL+" -t "+secret,
			"PREFECT__CLOUD__API="+e.Server.URL+" PREFECT__CLOUD__AGENT__AUTH_TOKEN="+secret+" prefect agent local start")

		// The name is taken in this tenant.
		b.PostBack("/ui/team/service-accounts", url.Values{"csrf_token": {token}, "name": {"ci agent"}, "role": {"READ_ONLY_USER"}}, "/ui/team/service-accounts").
			MustContain(t, `id="sa-name-error">A service account named “ci agent” already exists in this tenant.`, `value="ci agent"`,
				`<option value="READ_ONLY_USER" selected>`)

		// Expired keys are marked as such, in the account's list and page.
		clock.Add(8 * 24 * time.Hour)
		token = b.SignIn("admin@example.com", AdminPassword).CSRF(t) // the session has expired
		b.Get(saURL).MustContain(t, `<span class="badge badge-danger">Expired</span>`, `class=" row-expired"`, `>1 day ago</time>`)
		b.Get("/ui/team/service-accounts").MustContain(t, `<span class="badge badge-danger">1 expired</span>`)

		// The admin's own key list does not mix in service-account keys.
		b.Get("/ui/keys").MustNotContain(t, "build-01")

		b.Get(saURL+"/keys/"+id+"/revoke").MustStatus(t, http.StatusOK).MustContain(t, "Revoke API key “build-01” of ci agent?")
		p = b.Post(saURL+"/keys/"+id+"/revoke", url.Values{"csrf_token": {token}}).MustStatus(t, http.StatusSeeOther)
		b.Follow(p).MustContain(t, "revoked", "This service account has no API keys.")
		b.Get(saURL+"?q=nothing").MustContain(t, "No key matches “nothing”.")
		b.Get(saURL+"?status=revoked").MustContain(t, `<table id="revoked-keys"`, `data-key-id="`+id+`"`, "build-01",
			`<td data-label="Revoked by">you</td>`)
		if _, err := e.Auth.Authenticate(ctx, secret, ""); latchkey.ErrorCode(err) != latchkey.EUNAUTHENTICATED {
			t.Fatalf("revoked key: err=%v", err)
		}

		// Delete the account, after a confirmation.
		b.Get(saURL+"/delete").MustStatus(t, http.StatusOK).MustContain(t, "Delete service account “ci agent”?")
		p = b.Post(saURL+"/delete", url.Values{"csrf_token": {token}}).MustStatus(t, http.StatusSeeOther)
		b.Follow(p).MustContain(t, "deleted", "No service accounts yet.")
		b.Get(saURL).MustStatus(t, http.StatusNotFound).MustContain(t, "Service account not found")
		e.MustNoSecretsLogged(t)
	})
}

func TestMembers(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		admin := e.NewBrowser(t)
		token := admin.SignIn("admin@example.com", AdminPassword).CSRF(t)
		admin.Get("/ui/team/members").MustStatus(t, http.StatusOK).MustContain(t, "admin@example.com", ">you<")

		added := admin.Post("/ui/team/members", url.Values{"csrf_token": {token}, "email": {"New@Example.com"}, "role": {"USER"}})
		added.MustStatus(t, http.StatusOK).MustContain(t, "Member added", "new@example.com", "It will not be shown again")
		if got := added.Header.Get("Cache-Control"); got != "no-store" {
			t.Fatalf("Cache-Control=%q", got)
		}
		link := mustFind(t, `readonly value="([^"]+)"`, added.Body)
		if !strings.HasPrefix(link, e.Server.URL+"/ui/reset?token=lkp_") {
			t.Fatalf("link %.40s…", link)
		}

		// The new member sets a password with the link and signs in.
		nb := e.NewBrowser(t)
		path := strings.TrimPrefix(link, e.Server.URL)
		form := nb.Get(path).MustStatus(t, http.StatusOK).MustContain(t, "Set your password")
		tok := mustFind(t, `name="token" value="([^"]+)"`, form.Body)
		nb.Post("/ui/reset", url.Values{"csrf_token": {form.CSRF(t)}, "token": {tok}, "password": {"new password 1"}, "confirm": {"new password 2"}}).
			MustStatus(t, http.StatusBadRequest).MustContain(t, "The two passwords do not match.")
		nb.Post("/ui/reset", url.Values{"csrf_token": {form.CSRF(t)}, "token": {tok}, "password": {"short"}, "confirm": {"short"}}).
			MustStatus(t, http.StatusBadRequest).MustContain(t, "Password must be at least 10 characters.")
		p := nb.Post("/ui/reset", url.Values{"csrf_token": {form.CSRF(t)}, "token": {tok}, "password": {"new password 1"}, "confirm": {"new password 1"}})
		nb.Follow(p).MustContain(t, "Your password is set.")
		nb.SignIn("new@example.com", "new password 1").MustContain(t, "new@example.com", "You have no API keys yet.")
		form = nb.Get(path).MustStatus(t, http.StatusOK) // signing in dropped the old form's cookie
		nb.Post("/ui/reset", url.Values{"csrf_token": {form.CSRF(t)}, "token": {tok}, "password": {"new password 3"}, "confirm": {"new password 3"}}).
			MustStatus(t, http.StatusUnauthorized).MustContain(t, "Invalid or expired password reset link.")

		// Adding them again is a conflict; an existing user gets no link.
		admin.PostBack("/ui/team/members", url.Values{"csrf_token": {token}, "email": {"new@example.com"}, "role": {"USER"}}, "/ui/team/members").
			MustContain(t, `id="member-email-error">Already a member`, `value="new@example.com"`)
		clock.Add(time.Hour)
		other := latchkeytest.MustCreateTenant(t, db, "tenant-two", nil)
		latchkeytest.MustCreateMember(t, db, other.ID, "dora@example.com", latchkey.RoleUser)
		p = admin.Post("/ui/team/members", url.Values{"csrf_token": {token}, "email": {"dora@example.com"}, "role": {"READ_ONLY_USER"}}).MustStatus(t, http.StatusSeeOther)
		// Dora has an account (in another tenant): she is invited, and the
		// admin sees "pending" and nothing else about her.
		page := admin.Follow(p).MustContain(t, "Invited dora@example.com as read-only user.", "Pending invitations", "Pending").MustNotContain(t, "lkp_")
		invID := mustFind(t, `<tr data-invitation-id="([^"]+)">\s*<th scope="row" data-label="Invited">dora@example.com`, page.Body)
		page.MustNotContain(t, `data-label="Email">dora@example.com`, other.Name)
		admin.PostBack("/ui/team/members", url.Values{"csrf_token": {token}, "email": {"dora@example.com"}, "role": {"USER"}}, "/ui/team/members").
			MustContain(t, "Already invited")
		// She sees the invitation after signing in, and accepts it.
		e.MustSetPassword(t, "dora@example.com", "dora password 1")
		dora := e.NewBrowser(t)
		keys := dora.SignIn("dora@example.com", "dora password 1").MustContain(t, "You are invited to join a tenant", "Tenant One", "Read-only user")
		p = dora.Post("/ui/invitations/"+invID+"/accept", url.Values{"csrf_token": {keys.CSRF(t)}}).MustStatus(t, http.StatusSeeOther)
		dora.Follow(p).MustContain(t, "You joined Tenant One as read-only user.").MustNotContain(t, "You are invited")
		admin.Get("/ui/team/members").MustContain(t, `data-label="Email">dora@example.com`).MustNotContain(t, "Pending invitations")
		// Another one, withdrawn by the admin before she answers.
		latchkeytest.MustCreateMember(t, db, other.ID, "eve@example.com", latchkey.RoleUser)
		admin.Post("/ui/team/members", url.Values{"csrf_token": {token}, "email": {"eve@example.com"}, "role": {"USER"}}).MustStatus(t, http.StatusSeeOther)
		page = admin.Get("/ui/team/members")
		eveID := mustFind(t, `<tr data-invitation-id="([^"]+)">\s*<th scope="row" data-label="Invited">eve@example.com`, page.Body)
		p = admin.Post("/ui/team/invitations/"+eveID+"/withdraw", url.Values{"csrf_token": {token}}).MustStatus(t, http.StatusSeeOther)
		admin.Follow(p).MustContain(t, "The invitation of eve@example.com was withdrawn.").MustNotContain(t, "Pending invitations")
		// Someone else's invitation cannot be accepted.
		admin.Post("/ui/team/members", url.Values{"csrf_token": {token}, "email": {"eve@example.com"}, "role": {"USER"}}).MustStatus(t, http.StatusSeeOther)
		eveID = mustFind(t, `<tr data-invitation-id="([^"]+)">\s*<th scope="row" data-label="Invited">eve@example.com`, admin.Get("/ui/team/members").Body)
		dora.Post("/ui/invitations/"+eveID+"/accept", url.Values{"csrf_token": {keys.CSRF(t)}}).MustStatus(t, http.StatusNotFound)
		e.MustSetPassword(t, "eve@example.com", "eve password 12")
		eve := e.NewBrowser(t)
		keys = eve.SignIn("eve@example.com", "eve password 12").MustContain(t, "You are invited to join a tenant")
		p = eve.Post("/ui/invitations/"+eveID+"/decline", url.Values{"csrf_token": {keys.CSRF(t)}}).MustStatus(t, http.StatusSeeOther)
		eve.Follow(p).MustContain(t, "You declined the invitation to Tenant One.").MustNotContain(t, "You are invited")
		admin.Get("/ui/team/members").MustNotContain(t, "eve@example.com")

		// Change a role.
		members := admin.Get("/ui/team/members")
		newID := mustFind(t, `<tr data-membership-id="([^"]+)">\s*<th scope="row" data-label="Email">new@example.com`, members.Body)
		adminID := mustFind(t, `<tr data-membership-id="([^"]+)">\s*<th scope="row" data-label="Email">admin@example.com`, members.Body)
		p = admin.Post("/ui/team/members/"+newID+"/role", url.Values{"csrf_token": {token}, "role": {"TENANT_ADMIN"}}).MustStatus(t, http.StatusSeeOther)
		admin.Follow(p).MustContain(t, "new@example.com is now tenant admin.")
		if got := nb.Get("/ui/team/members").StatusCode; got != http.StatusOK {
			t.Fatalf("new admin sees members page: %d", got)
		}
		admin.PostBack("/ui/team/members/"+newID+"/role", url.Values{"csrf_token": {token}, "role": {"OWNER"}}, "/ui/team/members").
			MustContain(t, `id="form-error"><strong>Error:</strong> new@example.com: Invalid role`,
				`id="role-`+newID+`" name="role" aria-invalid="true" aria-describedby="form-error" autofocus`)

		// A fresh set-password link for an existing member.
		admin.Post("/ui/team/members/"+newID+"/password-link", url.Values{"csrf_token": {token}}).
			MustStatus(t, http.StatusOK).MustContain(t, "Set-password link", "/ui/reset?token=lkp_", "Earlier links for them no longer work.")

		// Remove them, after a confirmation; their session stops working.
		admin.Get("/ui/team/members/"+newID+"/remove").MustStatus(t, http.StatusOK).MustContain(t, "Remove new@example.com from Tenant One?")
		p = admin.Post("/ui/team/members/"+newID+"/remove", url.Values{"csrf_token": {token}}).MustStatus(t, http.StatusSeeOther)
		admin.Follow(p).MustContain(t, "new@example.com was removed from Tenant One.").MustNotContain(t, `data-membership-id="`+newID+`"`)
		nb.Get("/ui/keys").MustStatus(t, http.StatusSeeOther)

		// The last admin cannot demote or remove themselves.
		admin.PostBack("/ui/team/members/"+adminID+"/role", url.Values{"csrf_token": {token}, "role": {"USER"}}, "/ui/team/members").
			MustContain(t, "A tenant needs at least one admin.")
		admin.PostBack("/ui/team/members/"+adminID+"/remove", url.Values{"csrf_token": {token}}, "/ui/team/members").
			MustContain(t, "A tenant needs at least one admin.")
		e.MustNoSecretsLogged(t)
	})
}

func TestTenantSwitch(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		two := latchkeytest.MustCreateTenant(t, db, "tenant-two", e.Fixture.Admin)
		latchkeytest.MustCreateServiceAccount(t, db, e.Fixture.Tenant.ID, "one-agent", latchkey.RoleUser)
		b := e.NewBrowser(t)
		keys := b.SignIn("admin@example.com", AdminPassword)
		keys.MustContain(t, `<select id="tenant-select" name="tenant_id" data-autosubmit>`, `value="`+e.Fixture.Tenant.ID+`" selected>Tenant One`, "tenant-two")
		token := keys.CSRF(t)
		b.Get("/ui/team/service-accounts").MustContain(t, "one-agent")

		p := b.Post("/ui/tenant", url.Values{"csrf_token": {token}, "tenant_id": {two.ID}, "next": {"/ui/team/"}}).MustStatus(t, http.StatusSeeOther)
		if got := p.Header.Get("Location"); got != "/ui/team/service-accounts" {
			t.Fatalf("Location=%q", got)
		}
		if c := b.Cookie(html.TenantCookie); c == nil || c.Value != two.ID {
			t.Fatalf("tenant cookie %v", c)
		}
		b.Follow(p).MustStatus(t, http.StatusOK).MustContain(t, "You are now working in tenant-two.", `value="`+two.ID+`" selected>tenant-two`, "No service accounts yet.").MustNotContain(t, "one-agent")

		// A new personal key defaults to the acting tenant.
		b.Get("/ui/keys").MustContain(t, `<option value="`+two.ID+`" selected>tenant-two</option>`)

		b.Post("/ui/tenant", url.Values{"csrf_token": {token}, "tenant_id": {"00000000-0000-0000-0000-000000000000"}}).MustStatus(t, http.StatusNotFound)

		// Losing the chosen tenant falls back to the default one.
		latchkeytest.MustExec(t, db, `DELETE FROM memberships WHERE tenant_id = ? AND user_id = ?`, two.ID, e.Fixture.Admin.ID)
		b.Get("/ui/keys").MustStatus(t, http.StatusOK).MustContain(t, "Tenant One").MustNotContain(t, "tenant-two")
		if b.Cookie(html.TenantCookie) != nil {
			t.Fatal("stale tenant cookie kept")
		}
	})
}

func TestNotFoundAndAssets(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		b := e.NewBrowser(t)
		b.Get("/ui/no-such-page").MustStatus(t, http.StatusNotFound).MustContain(t, "Page not found").MustNotContain(t, "goroutine")
		b.Get("/ui/").MustStatus(t, http.StatusSeeOther)
		b.Get("/ui/reset").MustStatus(t, http.StatusBadRequest).MustContain(t, "Incomplete link")
		for path, ctype := range map[string]string{"/ui/assets/style.css": "text/css", "/ui/assets/app.js": "text/javascript"} {
			p := b.Get(path).MustStatus(t, http.StatusOK)
			if got := p.Header.Get("Content-Type"); !strings.HasPrefix(got, ctype) {
				t.Errorf("%s: Content-Type=%q, want %s", path, got, ctype)
			}
		}
		token := b.SignIn("admin@example.com", AdminPassword).CSRF(t)
		b.Get("/ui/team/service-accounts/00000000-0000-0000-0000-000000000000").MustStatus(t, http.StatusNotFound).MustContain(t, "Service account not found in this tenant.")
		b.Post("/ui/team/members/nope/remove", url.Values{"csrf_token": {token}}).MustStatus(t, http.StatusNotFound).MustContain(t, "Member not found")
	})
}

// An unknown page keeps the navigation for a signed-in user; anonymous
// visitors get the plain page with a sign-in link.
func TestNotFound_KeepsNavigation(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		anon := e.NewBrowser(t)
		anon.Get("/ui/no-such-page").MustStatus(t, http.StatusNotFound).
			MustContain(t, "Page not found", `href="/ui/signin"`).MustNotContain(t, `class="mainnav"`)
		b := e.NewBrowser(t)
		b.SignIn("admin@example.com", AdminPassword)
		b.Get("/ui/no-such-page").MustStatus(t, http.StatusNotFound).
			MustContain(t, "Page not found", `<nav class="mainnav" aria-label="Main">`, `href="/ui/team/service-accounts"`, "admin@example.com", `action="/ui/signout"`)
	})
}

// The destructive controls are real buttons. Without a script each one
// submits a GET form that leads to its confirmation page.
func TestConfirmButtons_NoScript(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		sa := latchkeytest.MustCreateServiceAccount(t, db, e.Fixture.Tenant.ID, "agent", latchkey.RoleUser)
		saKey := &latchkey.APIKey{Name: "agent key", UserID: sa.ID}
		if _, err := sqldb.NewAPIKeyService(db).CreateAPIKey(e.Fixture.AdminContext(), saKey); err != nil {
			t.Fatal(err)
		}
		latchkeytest.MustCreateMember(t, db, e.Fixture.Tenant.ID, "bob@example.com", latchkey.RoleUser)
		b := e.NewBrowser(t)
		keys := b.SignIn("admin@example.com", AdminPassword)
		saURL := "/ui/team/service-accounts/" + sa.ID
		members := b.Get("/ui/team/members")
		bobID := mustFind(t, `<tr data-membership-id="([^"]+)">\s*<th scope="row" data-label="Email">bob@example.com`, members.Body)
		for _, tt := range []struct {
			page   *Page
			action string
			label  string
		}{
			{keys, "/ui/keys/" + keyID(t, keys, sqldb.BootstrapKeyName) + "/revoke", `aria-label="Revoke API key `},
			{b.Get(saURL), saURL + "/keys/" + saKey.ID + "/revoke", `aria-label="Revoke API key agent key"`},
			{b.Get(saURL), saURL + "/delete", `data-confirm-button="Delete service account">Delete service account</button>`},
			{members, "/ui/team/members/" + bobID + "/remove", `aria-label="Remove bob@example.com"`},
		} {
			form := mustFind(t, `(<form method="get" action="`+regexp.QuoteMeta(tt.action)+`" class="inline-form">\s*<button type="submit" class="[^"]+" data-confirm=[^>]*>)`, tt.page.Body)
			if !strings.Contains(form+tt.page.Body, tt.label) {
				t.Errorf("%s: no %s", tt.action, tt.label)
			}
			b.Get(tt.action).MustStatus(t, http.StatusOK).MustContain(t, `id="confirm-page-form"`, `action="`+tt.action+`"`)
		}
		if strings.Contains(keys.Body+members.Body, `<a class="icon-btn`) {
			t.Error("a destructive control is still a link")
		}
	})
}

// A failed form's error shows on its own page only, once: another page
// read next drops it.
func TestFormError_OncePerPage(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		b := e.NewBrowser(t)
		token := b.SignIn("admin@example.com", AdminPassword).CSRF(t)
		b.Post("/ui/keys", url.Values{"csrf_token": {token}, "name": {""}}).MustStatus(t, http.StatusSeeOther)
		b.Get("/ui/team/members").MustStatus(t, http.StatusOK).MustNotContain(t, "API key name required.", "aria-invalid")
		b.Get("/ui/keys").MustStatus(t, http.StatusOK).MustNotContain(t, "API key name required.", "aria-invalid")
	})
}

func TestSearchAndServiceAccountRole(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		b := e.NewBrowser(t)
		token := b.SignIn("admin@example.com", AdminPassword).CSRF(t)
		latchkeytest.MustCreateMember(t, db, e.Fixture.Tenant.ID, "carol@example.com", latchkey.RoleReadOnlyUser)
		latchkeytest.MustCreateMember(t, db, e.Fixture.Tenant.ID, "dave@example.com", latchkey.RoleUser)
		sa := latchkeytest.MustCreateServiceAccount(t, db, e.Fixture.Tenant.ID, "build agent", latchkey.RoleUser)
		latchkeytest.MustCreateServiceAccount(t, db, e.Fixture.Tenant.ID, "deployer", latchkey.RoleUser)

		b.Get("/ui/team/members?q=CAROL").MustContain(t, `data-label="Email">carol@example.com`, `value="CAROL"`, ">Clear</a>").
			MustNotContain(t, `data-label="Email">dave@example.com`, `data-label="Email">admin@example.com`)
		b.Get("/ui/team/members?role=USER").MustContain(t, `data-label="Email">dave@example.com`).
			MustNotContain(t, `data-label="Email">carol@example.com`, `data-label="Email">admin@example.com`)
		b.Get("/ui/team/members?q=nobody").MustContain(t, "No member matches this search.")
		// Invalid UTF-8 and overlong searches are cleaned, not errors.
		b.Get("/ui/team/members?q=%ff%fecarol").MustStatus(t, http.StatusOK).MustContain(t, `data-label="Email">carol@example.com`)
		b.Get("/ui/team/service-accounts?q="+strings.Repeat("%C3%A9", 300)).MustStatus(t, http.StatusOK)
		b.Get("/ui/keys?q=%ff").MustStatus(t, http.StatusOK)

		list := b.Get("/ui/team/service-accounts?q=AGENT").MustContain(t, ">build agent</a>", `<td data-label="Created by">an operator</td>`)
		list.MustNotContain(t, ">deployer</a>")
		b.Get("/ui/team/service-accounts?q=zzz").MustContain(t, "No service account matches “zzz”.")

		// The role of a service account changes; its keys act with it.
		saURL := "/ui/team/service-accounts/" + sa.ID
		b.Get(saURL).MustContain(t, `<option value="USER" selected>`, `id="sa-role-form"`)
		p := b.Post(saURL+"/role", url.Values{"csrf_token": {token}, "role": {"READ_ONLY_USER"}}).MustStatus(t, http.StatusSeeOther)
		b.Follow(p).MustContain(t, "Service account “build agent” is now read-only user", `<option value="READ_ONLY_USER" selected>`)
		b.Post(saURL+"/role", url.Values{"csrf_token": {token}, "role": {"OWNER"}}).MustStatus(t, http.StatusBadRequest).MustContain(t, "Invalid role")
		b.Get("/ui/team/audit").MustContain(t, "Changed service account role", "User → Read-only user")
	})
}
