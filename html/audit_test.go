package html_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/html"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/ratelimit"
	"github.com/latchkey/latchkey/sqldb"
)

func TestAuditLog(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		b := e.NewBrowser(t)
		clock.Add(time.Minute)
		keys := b.SignIn("admin@example.com", AdminPassword)
		keys.MustContain(t, `href="/ui/team/service-accounts"`)
		token := keys.CSRF(t)
		clock.Add(time.Minute)
		created := b.Post("/ui/keys", url.Values{"csrf_token": {token}, "name": {"ci-deploy"}, "expires": {"never"}}).MustStatus(t, http.StatusOK)
		secret := mustFind(t, `value="(lku_[0-9A-Za-z]+)"`, created.Body)
		clock.Add(time.Minute)
		b.Post("/ui/team/members", url.Values{"csrf_token": {token}, "email": {"newbie@example.com"}, "role": {"READ_ONLY_USER"}})

		p := b.Get("/ui/team/audit").MustStatus(t, http.StatusOK)
		p.MustContain(t, "<h1>Audit log</h1>", `href="/ui/team/audit" aria-current="page">Audit log`,
			"Added member", "newbie@example.com", "as Read-only user (new account)",
			"Created API key", "“ci-deploy”", "with web UI",
			"Signed in to the web UI", "with password",
			"127.0.0.1", "Go-http-client",
			// The bootstrap, which had no request.
			"Created tenant", "“Tenant One”")
		p.MustNotContain(t, secret, secret[4:])
		// Newest first.
		member, key, signIn := strings.Index(p.Body, `data-action="membership.create"`), strings.Index(p.Body, `data-action="api_key.create"`), strings.Index(p.Body, `data-action="session.create"`)
		if !(member < key && key < signIn) {
			t.Errorf("not newest first: member %d, key %d, sign-in %d", member, key, signIn)
		}
		// The actor is named: the reader is "you".
		if !strings.Contains(p.Body, `data-action="api_key.create">`) || !strings.Contains(p.Body, "you <span class=\"muted\">with web UI</span>") {
			t.Errorf("actor not shown as you:\n%s", p.Body)
		}

		// The action filter.
		b.Get("/ui/team/audit?action=api_key.create").MustStatus(t, http.StatusOK).
			MustContain(t, "ci-deploy", `value="api_key.create" selected`).MustNotContain(t, `data-action="membership.create"`, `data-action="session.create"`)
		b.Get("/ui/team/audit?action=api_token.delete").MustContain(t, "No events match this filter.").MustNotContain(t, `<table id="audit"`)
		e.MustNoSecretsLogged(t)
	})
}

func TestAuditLog_Pages(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		b := e.NewBrowser(t)
		b.SignIn("admin@example.com", AdminPassword)
		keys := sqldb.NewAPIKeyService(db)
		ctx := latchkey.NewContextWithClientInfo(e.Fixture.AdminContext(), latchkey.ClientInfo{Addr: "198.51.100.4"})
		for i := range 60 {
			clock.Add(time.Second)
			if _, err := keys.CreateAPIKey(ctx, &latchkey.APIKey{Name: fmt.Sprintf("key-%02d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		total := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM audit_events WHERE tenant_id = ?`, e.Fixture.Tenant.ID)
		if total < 61 {
			t.Fatalf("%d events", total)
		}
		first := b.Get("/ui/team/audit").MustStatus(t, http.StatusOK)
		first.MustContain(t, fmt.Sprintf("Showing 1–50 of %d.", total), "key-59", `href="/ui/team/audit?page=2" rel="next">Older`).
			MustNotContain(t, "key-09", `rel="prev"`)
		if n := strings.Count(first.Body, "data-audit-id="); n != 50 {
			t.Fatalf("page 1 has %d events", n)
		}
		second := b.Get("/ui/team/audit?page=2").MustStatus(t, http.StatusOK)
		second.MustContain(t, fmt.Sprintf("Showing 51–%d of %d.", total, total), "key-09", "key-00", `href="/ui/team/audit" rel="prev">← Newer`).
			MustNotContain(t, "key-59", `rel="next"`)
		if n := strings.Count(second.Body, "data-audit-id="); n != total-50 {
			t.Fatalf("page 2 has %d events, want %d", n, total-50)
		}
		// A page past the end goes to the last one; a bad page number is the first.
		if p := b.Get("/ui/team/audit?page=9"); p.StatusCode != http.StatusSeeOther || p.Header.Get("Location") != "/ui/team/audit?page=2" {
			t.Fatalf("page 9: %d %s", p.StatusCode, p.Header.Get("Location"))
		}
		b.Get("/ui/team/audit?page=-3").MustContain(t, "Showing 1–50")
	})
}

func TestAuditLog_EmptyAndForbidden(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		if _, err := sqldb.NewAPIKeyService(db).CreateAPIKey(e.Fixture.AdminContext(), &latchkey.APIKey{Name: "admins-only"}); err != nil {
			t.Fatal(err)
		}
		// A member who is not an admin gets the 403 page, and none of the log.
		latchkeytest.MustCreateMember(t, db, e.Fixture.Tenant.ID, "bob@example.com", latchkey.RoleUser)
		e.MustSetPassword(t, "bob@example.com", "bob password 12")
		bob := e.NewBrowser(t)
		bob.SignIn("bob@example.com", "bob password 12").MustNotContain(t, "/ui/team/audit")
		bob.Get("/ui/team/audit").MustStatus(t, http.StatusForbidden).
			MustContain(t, "Team settings are for tenant admins").MustNotContain(t, "admins-only", "Created API key", "data-audit-id")

		// A tenant with nothing logged yet.
		b := e.NewBrowser(t)
		token := b.SignIn("admin@example.com", AdminPassword).CSRF(t)
		quiet := latchkeytest.MustCreateTenant(t, db, "quiet-tenant", e.Fixture.Admin)
		b.Post("/ui/tenant", url.Values{"csrf_token": {token}, "tenant_id": {quiet.ID}}).MustStatus(t, http.StatusSeeOther)
		b.Get("/ui/team/audit").MustStatus(t, http.StatusOK).
			MustContain(t, "No events yet.").MustNotContain(t, `<table id="audit"`, "admins-only")
	})
}

func TestSignIn_RateLimited(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		e.Limiter = ratelimit.NewSignIn(ratelimit.SignInLimits{PerAddr: 20, PerEmail: 3, PerDevice: 5}, clock.Now,
			slog.New(slog.NewTextHandler(e.Logs, nil)))
		e = e.MustAddReplica(t)
		b := e.NewBrowser(t)
		signIn := func(password string) *Page {
			form := b.Get("/ui/signin").MustStatus(t, http.StatusOK)
			return b.Post("/ui/signin", url.Values{"csrf_token": {form.CSRF(t)}, "email": {"Admin@Example.com"}, "password": {password}})
		}
		for range 3 {
			signIn("wrong password!").MustStatus(t, http.StatusUnauthorized).MustContain(t, "Invalid email or password.")
		}
		// This browser never signed in as the admin: now even the right
		// password is refused, unchecked, with a readable message; no
		// session is made.
		checks := e.PasswordChecks.Load()
		p := signIn(AdminPassword).MustStatus(t, http.StatusTooManyRequests).
			MustContain(t, "Too many failed sign-in attempts for this account from browsers it has not signed in from.",
				"Sign in from a browser you have used before, or wait 20 seconds", "ask a tenant admin for a set-password link")
		if p.Header.Get("Retry-After") != "20" || b.Cookie("latchkey_session") != nil || b.Cookie(html.DeviceCookie) != nil {
			t.Fatalf("Retry-After=%q, session cookie %v", p.Header.Get("Retry-After"), b.Cookie("latchkey_session"))
		}
		if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM sessions`); n != 0 || e.PasswordChecks.Load() != checks {
			t.Fatalf("%d sessions, %d password checks", n, e.PasswordChecks.Load()-checks)
		}
		if logs := e.Logs.String(); !strings.Contains(logs, "sign-in limit reached") || !strings.Contains(logs, "sign-in limit: attempt refused") ||
			!strings.Contains(logs, "admin@example.com") || !strings.Contains(logs, "127.0.0.1") || strings.Contains(logs, "wrong password") {
			t.Fatalf("logs:\n%s", logs)
		}
		// A minute later one attempt is allowed again.
		clock.Add(time.Minute)
		p = signIn(AdminPassword)
		b.Follow(p).MustStatus(t, http.StatusOK)

		// The browser now holds a device cookie for the admin: another
		// browser spending the email's budget does not lock it out.
		if b.Cookie(html.DeviceCookie) == nil {
			t.Fatal("no device cookie after signing in")
		}
		other := e.NewBrowser(t)
		for range 5 {
			form := other.Get("/ui/signin").MustStatus(t, http.StatusOK)
			other.Post("/ui/signin", url.Values{"csrf_token": {form.CSRF(t)}, "email": {"admin@example.com"}, "password": {"guess"}})
		}
		b.Post("/ui/signout", url.Values{"csrf_token": {b.Get("/ui/keys").CSRF(t)}}).MustStatus(t, http.StatusSeeOther)
		b.SignIn("admin@example.com", AdminPassword)
	})
}

// A proxy's address that spent its budget on other emails does not lock
// out a browser that signed in before behind the same address.
func TestSignIn_AddressLimitSparesTrustedDevice(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		e.Limiter = ratelimit.NewSignIn(ratelimit.SignInLimits{PerAddr: 3, PerEmail: 100, PerDevice: 5}, clock.Now, nil)
		e = e.MustAddReplica(t)
		owner := e.NewBrowser(t)
		owner.SignIn("admin@example.com", AdminPassword)
		owner.Post("/ui/signout", url.Values{"csrf_token": {owner.Get("/ui/keys").CSRF(t)}}).MustStatus(t, http.StatusSeeOther)

		// Everyone here is 127.0.0.1, as behind one proxy.
		attacker := e.NewBrowser(t)
		for i := range 3 {
			form := attacker.Get("/ui/signin").MustStatus(t, http.StatusOK)
			attacker.Post("/ui/signin", url.Values{"csrf_token": {form.CSRF(t)}, "email": {fmt.Sprintf("user%d@example.com", i)}, "password": {"guess"}}).
				MustStatus(t, http.StatusUnauthorized)
		}
		fresh := e.NewBrowser(t)
		form := fresh.Get("/ui/signin").MustStatus(t, http.StatusOK)
		fresh.Post("/ui/signin", url.Values{"csrf_token": {form.CSRF(t)}, "email": {"admin@example.com"}, "password": {AdminPassword}}).
			MustStatus(t, http.StatusTooManyRequests)
		owner.SignIn("admin@example.com", AdminPassword)
	})
}

func TestAuditLog_FiltersAndExport(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		b := e.NewBrowser(t)
		clock.Set(time.Date(2030, 3, 10, 12, 0, 0, 0, time.UTC))
		b.SignIn("admin@example.com", AdminPassword)
		bob := latchkeytest.MustCreateMember(t, db, e.Fixture.Tenant.ID, "bob@example.com", latchkey.RoleTenantAdmin)
		keys := sqldb.NewAPIKeyService(db)
		bobCtx := latchkeytest.AuthContext(context.Background(), bob, e.Fixture.Tenant.ID, latchkey.RoleTenantAdmin)
		// Bob acts with a key whose name a spreadsheet would run as a formula.
		k := &latchkey.APIKey{Name: "=HYPERLINK(\"http://x\")"}
		if _, err := keys.CreateAPIKey(bobCtx, k); err != nil {
			t.Fatal(err)
		}
		clock.Add(48 * time.Hour) // Mar 12
		viaKey := latchkey.NewContextWithClientInfo(
			latchkey.NewContextWithAuth(context.Background(), &latchkey.Auth{User: bob, TenantID: e.Fixture.Tenant.ID, Role: latchkey.RoleTenantAdmin, Kind: latchkey.CredentialAPIKey, APIKeyID: k.ID}),
			latchkey.ClientInfo{Addr: "198.51.100.9", UserAgent: "prefect/1.4.1 (python-requests/2.31.0; Linux x86_64)"})
		if err := sqldb.NewServiceAccountService(db).CreateServiceAccount(viaKey, &latchkey.ServiceAccount{Name: "-sa, \"quoted\""}); err != nil {
			t.Fatal(err)
		}

		// Actor and date range, on the server.
		p := b.Get("/ui/team/audit?actor="+bob.ID+"&from=2030-03-12&to=2030-03-12").MustStatus(t, http.StatusOK)
		p.MustContain(t, `data-action="service_account.create"`, `value="`+bob.ID+`" selected`, `value="2030-03-12"`,
			"bob@example.com <span class=\"muted\">with API key “=HYPERLINK(&#34;http://x&#34;)” (lku_…", // the acting key, named and identified
			`title="prefect/1.4.1 (python-requests/2.31.0; Linux x86_64)">prefect/1.4.1</span>`,          // the agent, shortened
			`href="/ui/team/audit/export/csv?actor=`+bob.ID+`&amp;from=2030-03-12&amp;to=2030-03-12"`).
			MustNotContain(t, `data-action="api_key.create"`, `data-action="session.create"`)
		b.Get("/ui/team/audit?to=2030-03-11").MustContain(t, `data-action="api_key.create"`, `data-action="session.create"`).
			MustNotContain(t, `data-action="service_account.create"`)
		b.Get("/ui/team/audit?from=2030-03-13").MustContain(t, "No events match this filter.")
		b.Get("/ui/team/audit?from=not-a-date&actor="+strings.Repeat("x", 100)).MustStatus(t, http.StatusOK).MustContain(t, `data-action="service_account.create"`)

		// CSV: escaped, formulas neutralized, filtered like the page.
		res := b.Get("/ui/team/audit/export/csv?actor="+bob.ID).MustStatus(t, http.StatusOK)
		if ct, cd := res.Header.Get("Content-Type"), res.Header.Get("Content-Disposition"); ct != "text/csv; charset=utf-8" || !strings.HasPrefix(cd, `attachment; filename="audit-`) {
			t.Fatalf("headers %q %q", ct, cd)
		}
		recs, err := csv.NewReader(strings.NewReader(res.Body)).ReadAll()
		if err != nil {
			t.Fatalf("csv: %v\n%s", err, res.Body)
		}
		if len(recs) != 3 || strings.Join(recs[0], ",") != "time,actor_user_id,actor,actor_kind,credential_id,credential_name,action,target_type,target_id,target,change,details,client_addr,user_agent" {
			t.Fatalf("csv records %q", recs)
		}
		sa, key := recs[1], recs[2] // newest first
		if sa[6] != "service_account.create" || sa[5] != `'=HYPERLINK("http://x")` || sa[4] != k.ID || sa[12] != "198.51.100.9" ||
			sa[13] != "prefect/1.4.1 (python-requests/2.31.0; Linux x86_64)" || sa[9] != `service account “-sa, "quoted"”` {
			t.Errorf("service account row %q", sa)
		}
		if key[6] != "api_key.create" || key[9] != `API key “=HYPERLINK("http://x")”` {
			t.Errorf("key row %q", key)
		}

		// JSON: the same events, as an array of objects.
		res = b.Get("/ui/team/audit/export/json?action=service_account.create").MustStatus(t, http.StatusOK)
		var events []map[string]string
		if err := json.Unmarshal([]byte(res.Body), &events); err != nil {
			t.Fatalf("json: %v\n%s", err, res.Body)
		}
		if len(events) != 1 || events[0]["credential_name"] != `=HYPERLINK("http://x")` || events[0]["actor"] != "bob@example.com" {
			t.Errorf("json %v", events)
		}
		b.Get("/ui/team/audit/export/xml").MustStatus(t, http.StatusNotFound)
	})
}

func TestShortUserAgent(t *testing.T) {
	t.Parallel()
	for ua, want := range map[string]string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36":                   "Chrome 126 on Windows",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15":                "Safari 17 on macOS",
		"Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0":                                                            "Firefox 127 on Linux",
		"Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36 EdgA/126 Edg/126.0.0": "Edge 126 on Android",
		"python-requests/2.31.0":              "python-requests/2.31.0",
		"Go-http-client/1.1":                  "Go-http-client/1.1",
		"":                                    "",
		strings.Repeat("x", 60) + " whatever": strings.Repeat("x", 39) + "…",
	} {
		if got := html.ShortUserAgent(ua); got != want {
			t.Errorf("%.40q: %q, want %q", ua, got, want)
		}
	}
}

func TestAuditLog_FailedSignIns(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		b := e.NewBrowser(t)
		// A wrong password is reported (by email and address); a right one is not.
		form := b.Get("/ui/signin").MustStatus(t, http.StatusOK)
		b.Post("/ui/signin", url.Values{"csrf_token": {form.CSRF(t)}, "email": {"Admin@Example.com"}, "password": {"not the password"}}).
			MustStatus(t, http.StatusUnauthorized)
		if got := e.SignInFailures.Got(); len(got) != 1 || !strings.HasSuffix(got[0], " Admin@Example.com") || strings.HasPrefix(got[0], " ") {
			t.Fatalf("reported %q", got)
		}
		b.SignIn("admin@example.com", AdminPassword)
		if got := e.SignInFailures.Got(); len(got) != 1 {
			t.Fatalf("reported %q", got)
		}
		// What the server's aggregator stores is listed for the members' emails only.
		minute := clock.Now().UTC().Truncate(time.Minute)
		if err := sqldb.NewAuthFailureService(db).RecordAuthFailures(context.Background(), []*latchkey.AuthFailure{
			{Kind: latchkey.AuthFailureSignIn, Identifier: "admin@example.com", ClientAddr: "203.0.113.50", Minute: minute, Count: 12, FirstAt: minute, LastAt: minute},
			{Kind: latchkey.AuthFailureSignIn, Identifier: "stranger@example.com", ClientAddr: "203.0.113.51", Minute: minute, Count: 4, FirstAt: minute, LastAt: minute},
		}); err != nil {
			t.Fatal(err)
		}
		b.Get("/ui/team/audit").MustContain(t, `<table id="auth-failures"`, "203.0.113.50", `<td data-label="Attempts">12</td>`).
			MustNotContain(t, "stranger@example.com", "203.0.113.51")
	})
}
