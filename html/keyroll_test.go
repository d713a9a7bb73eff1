package html_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// rollControl is the roll control of key id on a list: a GET form with the
// grace choice and a real button.
func rollControl(action string) []string {
	return []string{
		`<form method="get" action="` + action + `" class="inline-form roll-form">`,
		`<select id="grace-`, `name="grace">`,
		`<option value="now">Old key stops: Now</option>`,
		`<option value="1h" selected>Old key stops: In 1 hour</option>`,
		`<option value="24h">Old key stops: In 24 hours</option>`,
		`<option value="7d">Old key stops: In 7 days</option>`,
		`<button type="submit" class="btn btn-small" aria-label="Roll API key `,
	}
}

func TestRollKey_Personal(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		ctx := context.Background()
		b := e.NewBrowser(t)
		token := b.SignIn("admin@example.com", AdminPassword).CSRF(t)
		created := b.Post("/ui/keys", url.Values{"csrf_token": {token}, "name": {"laptop"}, "expires": {"never"}}).MustStatus(t, http.StatusOK)
		oldSecret := mustFind(t, `readonly value="(lku_[0-9A-Za-z]+)"`, created.Body)
		list := b.Get("/ui/keys").MustStatus(t, http.StatusOK)
		id := keyID(t, list, "laptop")
		rollURL := "/ui/keys/" + id + "/roll"
		list.MustContain(t, rollControl(rollURL)...)

		// The control leads to a page of its own: the choice, kept, as
		// radio buttons, and a button that POSTs with the CSRF token.
		form := b.Get(rollURL+"?grace=24h").MustStatus(t, http.StatusOK)
		form.MustContain(t, "Roll API key “laptop”", `<form method="post" action="`+rollURL+`"`, `name="csrf_token" value="`+token+`"`,
			`<input type="radio" id="grace-24h" name="grace" value="24h" checked>`, `<label for="grace-now">Now</label>`,
			`<button type="submit" class="btn btn-primary">Roll key</button>`)
		b.Get(rollURL+"?grace=bogus").MustStatus(t, http.StatusOK).MustContain(t, `value="1h" checked`)

		// Refusals: no token, no choice.
		b.Post(rollURL, url.Values{"grace": {"1h"}}).MustStatus(t, http.StatusForbidden)
		b.Post(rollURL, url.Values{"csrf_token": {token}, "grace": {"2h"}}).MustStatus(t, http.StatusBadRequest).
			MustContain(t, "Choose when the old key stops working.", `id="roll-key-form"`)
		if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys WHERE name = 'laptop'`); n != 1 {
			t.Fatalf("%d keys after refused rolls", n)
		}

		// Roll with an hour's grace: the new key, shown once, and the old
		// key's new expiry.
		rolled := b.Post(rollURL, url.Values{"csrf_token": {token}, "grace": {"1h"}}).MustStatus(t, http.StatusOK)
		rolled.MustContain(t, "API key rolled", "It will not be shown again", "The old key keeps working until",
			`<time datetime="2030-01-02T04:04:05Z">Jan 2, 2030 04:04 UTC</time>`)
		if got := rolled.Header.Get("Cache-Control"); got != "no-store" {
			t.Fatalf("show-once Cache-Control=%q, want no-store", got)
		}
		newSecret := mustFind(t, `id="secret" class="secret" type="text" readonly value="(lku_[0-9A-Za-z]+)"`, rolled.Body)
		if newSecret == oldSecret {
			t.Fatal("the same key")
		}
		for _, s := range []string{oldSecret, newSecret} {
			if a, err := e.Auth.Authenticate(ctx, s, ""); err != nil || a.User.ID != e.Fixture.Admin.ID {
				t.Fatalf("during the grace period: a=%v err=%v", a, err)
			}
		}
		// The list shows both, the old one with its new expiry.
		list = b.Get("/ui/keys").MustStatus(t, http.StatusOK).MustNotContain(t, newSecret, oldSecret)
		oldRow := regexp.MustCompile(`(?s)<tr [^>]*data-key-id="` + id + `"[^>]*>.*?</tr>`).FindString(list.Body)
		if !strings.Contains(oldRow, "Jan 2, 2030 04:04 UTC") {
			t.Errorf("old key's row lacks its new expiry:\n%s", oldRow)
		}
		if n := strings.Count(list.Body, `<th scope="row" data-label="Name">laptop</th>`); n != 2 {
			t.Errorf("%d keys named laptop listed, want 2", n)
		}

		// Once expired, the old key has no roll control and cannot be rolled.
		clock.Add(time.Hour)
		if _, err := e.Auth.Authenticate(ctx, oldSecret, ""); latchkey.ErrorCode(err) != latchkey.EUNAUTHENTICATED {
			t.Fatalf("old key after the grace period: err=%v", err)
		}
		list = b.Get("/ui/keys").MustStatus(t, http.StatusOK)
		oldRow = regexp.MustCompile(`(?s)<tr [^>]*data-key-id="` + id + `"[^>]*>.*?</tr>`).FindString(list.Body)
		if strings.Contains(oldRow, "roll-form") || !strings.Contains(oldRow, "Expired") {
			t.Errorf("expired key's row:\n%s", oldRow)
		}
		b.Post(rollURL, url.Values{"csrf_token": {token}, "grace": {"1h"}}).MustStatus(t, http.StatusBadRequest).
			MustContain(t, "already expired")

		// "Now": the new key's own old key stops at once.
		newID := ""
		for _, m := range regexp.MustCompile(`<tr [^>]*data-key-id="([^"]+)"[^>]*>\s*<th scope="row" data-label="Name">laptop</th>`).FindAllStringSubmatch(list.Body, -1) {
			if m[1] != id {
				newID = m[1]
			}
		}
		b.Post("/ui/keys/"+newID+"/roll", url.Values{"csrf_token": {token}, "grace": {"now"}}).MustStatus(t, http.StatusOK).
			MustContain(t, "The old key has stopped working.")
		if _, err := e.Auth.Authenticate(ctx, newSecret, ""); latchkey.ErrorCode(err) != latchkey.EUNAUTHENTICATED {
			t.Fatalf("rolled now: err=%v", err)
		}

		// Someone else's key cannot be rolled through the personal page.
		bob := latchkeytest.MustCreateMember(t, db, e.Fixture.Tenant.ID, "bob@example.com", latchkey.RoleUser)
		bobKey := &latchkey.APIKey{Name: "bob's"}
		if _, err := sqldb.NewAPIKeyService(db).CreateAPIKey(latchkeytest.AuthContext(ctx, bob, e.Fixture.Tenant.ID, latchkey.RoleUser), bobKey); err != nil {
			t.Fatal(err)
		}
		b.Get("/ui/keys/"+bobKey.ID+"/roll").MustStatus(t, http.StatusNotFound)
		b.Post("/ui/keys/"+bobKey.ID+"/roll", url.Values{"csrf_token": {token}, "grace": {"1h"}}).MustStatus(t, http.StatusNotFound)
		if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys WHERE name = ?`, "bob's"); n != 1 {
			t.Fatalf("%d keys of bob's", n)
		}
		e.MustNoSecretsLogged(t)
	})
}

func TestRollKey_ServiceAccount(t *testing.T) {
	t.Parallel()
	RunWithEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *Env) {
		ctx := context.Background()
		b := e.NewBrowser(t)
		token := b.SignIn("admin@example.com", AdminPassword).CSRF(t)
		p := b.Post("/ui/team/service-accounts", url.Values{"csrf_token": {token}, "name": {"ci agent"}, "role": {"USER"}}).MustStatus(t, http.StatusSeeOther)
		saURL := p.Header.Get("Location")
		created := b.Post(saURL+"/keys", url.Values{"csrf_token": {token}, "name": {"build-01"}, "expires": {"never"}}).MustStatus(t, http.StatusOK)
		oldSecret := mustFind(t, `readonly value="(lks_[0-9A-Za-z]+)"`, created.Body)
		page := b.Get(saURL).MustStatus(t, http.StatusOK)
		id := keyID(t, page, "build-01")
		rollURL := saURL + "/keys/" + id + "/roll"
		page.MustContain(t, rollControl(rollURL)...)

		b.Get(rollURL+"?grace=7d").MustStatus(t, http.StatusOK).MustContain(t, "Roll API key “build-01” of ci agent", `value="7d" checked`)
		rolled := b.Post(rollURL, url.Values{"csrf_token": {token}, "grace": {"7d"}}).MustStatus(t, http.StatusOK)
		rolled.MustContain(t, "API key rolled", "ci agent", "Jan 9, 2030 03:04 UTC", `href="`+saURL+`"`, "SIGHUP")
		newSecret := mustFind(t, `readonly value="(lks_[0-9A-Za-z]+)"`, rolled.Body)
		a, err := e.Auth.Authenticate(ctx, newSecret, "")
		if err != nil || !a.User.IsServiceAccount() || "/ui/team/service-accounts/"+a.User.ID != saURL {
			t.Fatalf("new key: a=%v err=%v", a, err)
		}
		if _, err := e.Auth.Authenticate(ctx, oldSecret, ""); err != nil {
			t.Fatalf("old key during the grace period: %v", err)
		}
		b.Get(saURL).MustStatus(t, http.StatusOK).MustContain(t, "Jan 9, 2030 03:04 UTC").MustNotContain(t, newSecret)

		// A non-admin cannot reach the control or the page.
		latchkeytest.MustCreateMember(t, db, e.Fixture.Tenant.ID, "user@example.com", latchkey.RoleUser)
		e.MustSetPassword(t, "user@example.com", "user password 12")
		ub := e.NewBrowser(t)
		utoken := ub.SignIn("user@example.com", "user password 12").CSRF(t)
		if got := ub.Get(rollURL).StatusCode; got == http.StatusOK {
			t.Fatalf("non-admin GET roll page: %d", got)
		}
		if got := ub.Post(rollURL, url.Values{"csrf_token": {utoken}, "grace": {"now"}}).StatusCode; got == http.StatusOK {
			t.Fatalf("non-admin POST roll: %d", got)
		}
		if _, err := e.Auth.Authenticate(ctx, oldSecret, ""); err != nil {
			t.Fatalf("old key after a refused roll: %v", err)
		}
		e.MustNoSecretsLogged(t)
	})
}
