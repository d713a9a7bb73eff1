package main_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/latchkey/latchkey"
	main "github.com/latchkey/latchkey/cmd/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// chromiumPath is where Debian's chromium package (.ci/install-chromium)
// puts the browser.
const chromiumPath = "/usr/bin/chromium"

var resetLinkRE = regexp.MustCompile(`(http://[^\s]+/ui/reset\?token=(lkp_[0-9A-Za-z]+))`)

// MustBrowser starts a headless Chromium for the test and returns its
// context. The browser lives until the test ends (two minutes at most).
func MustBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("browser test skipped: %s is absent (install Debian's chromium, e.g. with .ci/install-chromium)", chromiumPath)
	}
	parent, cancelTimeout := context.WithTimeout(context.Background(), 2*time.Minute)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		cancelTimeout()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// TestUI_ServiceAccountKeyLifecycle is the web UI's acceptance test: set the
// first admin's password with the link the server printed, sign in, create
// a service account and a key with an expiry, read the key from the
// show-once page, use it against the GraphQL API, revoke it through the
// confirmation dialog, and check the API then rejects it.
func TestUI_ServiceAccountKeyLifecycle(t *testing.T) {
	t.Parallel()
	ctx := MustBrowser(t)
	s := MustRunMain(t, "sqlite")

	shots, err := os.MkdirTemp("", "latchkey-ui-screenshots-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// shoot saves the current page at 1280 and 390 pixels wide, in the
	// light and the dark colour scheme, then returns to 1280, light.
	shoot := func(name string) {
		t.Helper()
		for _, scheme := range []string{"light", "dark"} {
			for _, width := range []int64{1280, 390} {
				if err := chromedp.Do(ctx, colorScheme(scheme), chromedp.EmulateViewport(width, 900)); err != nil {
					t.Fatalf("emulate %s %d: %v", scheme, width, err)
				}
				shot(fmt.Sprintf("%s-%d-%s", name, width, scheme))
			}
		}
		if err := chromedp.Do(ctx, colorScheme("light"), chromedp.EmulateViewport(1280, 900)); err != nil {
			t.Fatal(err)
		}
	}
	eval := func(expr string) any {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	focused := func() string {
		t.Helper()
		v, _ := eval(`(function(){ var a = document.activeElement; return a ? (a.id || a.getAttribute("aria-label") || a.tagName) : ""; })()`).(string)
		return v
	}
	dialogOpen := func() bool {
		t.Helper()
		v, _ := eval(`document.getElementById("confirm-dialog").open`).(bool)
		return v
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			url, _ := chromedp.Run(ctx, chromedp.Location())
			shot("failed")
			t.Fatalf("%s (at %s): %v", what, url, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}

	// The server printed a one-time set-password link for the first admin.
	m := resetLinkRE.FindStringSubmatch(s.Stdout.String())
	if m == nil {
		t.Fatalf("no set-password link on stdout:\n%s", s.Stdout.String())
	}
	if strings.Contains(s.Logs.String(), m[2]) {
		t.Fatal("the set-password secret was logged")
	}
	const password = "correct horse battery staple"
	do("set the admin's password",
		chromedp.Navigate(m[1]),
		chromedp.WaitVisible(chromedp.ID("reset-form")),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.SendKeys(chromedp.ID("confirm"), password),
	)
	shot("01-set-password")
	do("submit the new password",
		chromedp.Click(chromedp.CSS(`#reset-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("signin-form")),
	)
	if got := text(".notice-ok"); !strings.Contains(got, "Your password is set.") {
		t.Fatalf("notice %q", got)
	}

	// Sign in.
	do("sign in",
		chromedp.SendKeys(chromedp.ID("email"), main.DefaultBootstrapEmail),
		chromedp.SendKeys(chromedp.ID("password"), password),
	)
	shot("02-sign-in")
	do("submit sign-in",
		chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("keys-h")),
	)
	shot("03-api-keys")
	if got := text(".who"); !strings.Contains(got, main.DefaultBootstrapEmail) {
		t.Fatalf("header shows %q", got)
	}

	// Team settings → Service accounts → create one.
	do("open team settings",
		chromedp.Click(chromedp.CSS(`.mainnav a[href="/ui/team/service-accounts"]`)),
		chromedp.WaitVisible(chromedp.ID("create-sa-form")),
	)
	shot("04-service-accounts-empty")
	do("create a service account",
		chromedp.SendKeys(chromedp.ID("sa-name"), "prefect-agent"),
		chromedp.Click(chromedp.CSS(`#create-sa-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("sa-create-key-h")),
	)
	if got := text(".notice-ok"); !strings.Contains(got, "prefect-agent") {
		t.Fatalf("notice %q", got)
	}

	// A new key expires in 30 days unless "No expiration" is chosen, which
	// warns.
	if got := eval(`document.getElementById("expires").value`); got != "30d" {
		t.Fatalf("default expiration %v, want 30d", got)
	}
	if got := eval(`(function(){ var s = document.getElementById("expires"); s.value = "never"; s.dispatchEvent(new Event("change")); return !document.getElementById("no-expiry-warning").hidden; })()`); got != true {
		t.Fatal("choosing No expiration shows no warning")
	}
	shoot("12-no-expiration-warning")
	if got := eval(`(function(){ var s = document.getElementById("expires"); s.value = "30d"; s.dispatchEvent(new Event("change")); return document.getElementById("no-expiry-warning").hidden; })()`); got != true {
		t.Fatal("the warning stays for 30 days")
	}

	// Create API Key with a name and a 30-day expiry; the key is shown once.
	do("create a key",
		chromedp.SendKeys(chromedp.ID("name"), "agent key"),
		chromedp.Click(chromedp.CSS(`#create-key-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("secret")),
	)
	key, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("secret")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, latchkey.PrefixServiceKey) {
		t.Fatalf("shown key %.4s…, want a service-account key", key)
	}
	if got := text("#show-once-warning"); !strings.Contains(got, "will not be shown again") {
		t.Fatalf("warning %q", got)
	}
	wantExpiry := time.Now().UTC().AddDate(0, 0, 30).Format("Jan 2, 2006")
	if got := text("#created-h + p"); !strings.Contains(got, wantExpiry) {
		t.Fatalf("show-once page says %q, want expiry %s", got, wantExpiry)
	}
	do("copy the key", chromedp.Click(chromedp.CSS(`button[data-copy="secret"]`)))
	if got, err := chromedp.Run(ctx, chromedp.Poll[string](`document.getElementById("copy-status").textContent`)); err != nil || got == "" {
		t.Fatalf("copy status %q: %v", got, err)
	}
	identifier := latchkey.SecretIdentifier(key)
	if got := text("#created-h + p"); !strings.Contains(got, identifier) {
		t.Fatalf("show-once page says %q, want identifier %s", got, identifier)
	}
	agentCmd, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("agent-command")))
	if err != nil || agentCmd != "latchkey agent local start --api "+s.URL+" -t "+key {
		t.Fatalf("agent command %.40q…: %v", agentCmd, err)
	}
	prefectCmd, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("prefect-agent-command")))
	if err != nil || !strings.Contains(prefectCmd, "PREFECT__CLOUD__AGENT__AUTH_TOKEN="+key+" prefect agent local start") {
		t.Fatalf("prefect agent command %.40q…: %v", prefectCmd, err)
	}
	shot("05-key-created")
	shoot("05-key-created")

	// The key works against the GraphQL API, in the account's tenant.
	var info authInfo
	s.MustDo(t, key, "", qAuthInfoTenant, nil, "auth_info", &info)
	if info.TenantID == nil || *info.TenantID == "" {
		t.Fatalf("auth_info: no tenant")
	}

	// Back on the account's page, with a notice, the new key is listed
	// and highlighted, with its identifier and its expiry relative to now
	// (the exact time in the title).
	do("back to the account",
		chromedp.Click(chromedp.ID("done-link")),
		chromedp.WaitVisible(chromedp.CSS("#keys")),
	)
	if got := text(".notice-ok"); !strings.Contains(got, "“agent key” ("+identifier+") created") {
		t.Fatalf("notice %q", got)
	}
	if got := text("#keys tbody tr.row-new"); !strings.Contains(got, "agent key") || !strings.Contains(got, identifier) || !strings.Contains(got, "in 30 days") {
		t.Fatalf("highlighted row %q", got)
	}
	if got := eval(`document.querySelector("#keys tr.row-new td[data-label=Expires] time").title`); !strings.Contains(fmt.Sprint(got), wantExpiry) {
		t.Fatalf("expiry title %v, want %s", got, wantExpiry)
	}
	if got := focused(); !strings.HasPrefix(got, "key-") {
		t.Fatalf("focus on %q, want the new row", got)
	}
	page, _ := chromedp.Run(ctx, chromedp.Location())
	saPath := eval(`location.pathname`)
	shot("06-service-account")
	shoot("06-service-account")

	// A second key of the same name is refused at the name field, which
	// gets the focus; reloading does not send the form again.
	do("create a duplicate key",
		chromedp.SendKeys(chromedp.ID("name"), "agent key"),
		chromedp.Click(chromedp.CSS(`#create-key-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("name-error")),
	)
	if got := text("#name-error"); !strings.Contains(got, "already has an API key named “agent key”") {
		t.Fatalf("field error %q", got)
	}
	if got := eval(`document.getElementById("name").getAttribute("aria-invalid")`); got != "true" {
		t.Fatalf("aria-invalid=%v", got)
	}
	if got := focused(); got != "name" {
		t.Fatalf("focus on %q, want the name field", got)
	}
	shoot("13-field-error")
	do("reload after the error", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("create-key-form")))
	if got := eval(`document.getElementById("name-error") === null`); got != true {
		t.Fatal("the error survived a reload")
	}

	// Keyboard: Enter on the focused trash button opens the dialog with
	// the focus on Cancel, and the same key press does not cancel it.
	do("open the revoke dialog by keyboard",
		chromedp.Focus(chromedp.CSS(`#keys button[data-confirm]`)),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog[open]`)),
	)
	if !dialogOpen() || focused() != "confirm-cancel" {
		t.Fatalf("after Enter: dialog open=%v, focus on %q", dialogOpen(), focused())
	}
	if got := eval(`location.pathname`); got != saPath {
		t.Fatalf("Enter navigated to %v", got)
	}
	// Escape closes it and gives the focus back to the trash button.
	do("close by Escape", chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible(chromedp.ID("confirm-dialog")))
	if got := focused(); !strings.HasPrefix(got, "Revoke API key agent key") {
		t.Fatalf("focus after Escape on %q, want the trash button", got)
	}
	// Enter on Cancel closes it and keeps the key.
	do("open again by Enter",
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog[open]`)),
	)
	if focused() != "confirm-cancel" {
		t.Fatalf("after Enter: focus on %q", focused())
	}
	do("cancel by Enter", chromedp.KeyEvent(kb.Enter), chromedp.WaitNotVisible(chromedp.ID("confirm-dialog")))
	s.MustDo(t, key, "", qAuthInfoTenant, nil, "auth_info", &info)

	// The mouse opens the same dialog (not the fallback page).
	do("open the revoke dialog",
		chromedp.Click(chromedp.CSS(`#keys button[data-confirm]`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog[open]`)),
	)
	if got := text("#confirm-title"); !strings.Contains(got, "agent key") {
		t.Fatalf("dialog title %q", got)
	}
	if got := eval(`location.pathname`); got != saPath {
		t.Fatalf("the trash bin navigated to %v instead of opening the dialog", got)
	}
	shot("07-revoke-dialog")
	shoot("07-revoke-dialog")

	// Cancel leaves the key alone; confirming, by keyboard, revokes it.
	do("cancel the dialog",
		chromedp.Click(chromedp.ID("confirm-cancel")),
		chromedp.WaitNotVisible(chromedp.ID("confirm-dialog")),
	)
	s.MustDo(t, key, "", qAuthInfoTenant, nil, "auth_info", &info)
	do("revoke through the dialog by keyboard",
		chromedp.Focus(chromedp.CSS(`#keys button[data-confirm]`)),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog[open]`)),
		chromedp.KeyEvent(kb.Tab),
	)
	if got := focused(); got != "confirm-submit" {
		t.Fatalf("Tab moved the focus to %q, want the confirm button", got)
	}
	do("confirm by Enter",
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(".notice-ok")),
	)
	if got := text(".notice-ok"); !strings.Contains(got, "revoked") {
		t.Fatalf("notice %q", got)
	}
	if got := text("main"); !strings.Contains(got, "This service account has no API keys.") {
		t.Fatalf("after revoke: %q", got)
	}
	shot("08-key-revoked")

	// The API now rejects the key.
	s.Do(t, "/graphql", key, "", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")

	// Members: add one; the one-time set-password link is shown.
	do("open members",
		chromedp.Click(chromedp.CSS(`.tabs a[href="/ui/team/members"]`)),
		chromedp.WaitVisible(chromedp.ID("add-member-form")),
		chromedp.SendKeys(chromedp.ID("member-email"), "dev@example.com"),
		chromedp.Click(chromedp.CSS(`#add-member-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("secret")),
	)
	link, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("secret")))
	if err != nil || !strings.Contains(link, "/ui/reset?token=lkp_") {
		t.Fatalf("member link %.30q: %v", link, err)
	}
	shot("09-member-added")
	do("members list",
		chromedp.Navigate(s.URL+"/ui/team/members"),
		chromedp.WaitVisible(chromedp.ID("members")),
	)
	shot("10-members")
	shoot("10-members")

	// Remove the member by keyboard.
	do("remove a member by keyboard",
		chromedp.Focus(chromedp.CSS(`#members button[aria-label="Remove dev@example.com"]`)),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog[open]`)),
		chromedp.KeyEvent(kb.Tab),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(".notice-ok")),
	)
	if got := text(".notice-ok"); !strings.Contains(got, "dev@example.com was removed") {
		t.Fatalf("notice %q", got)
	}

	// The service account list, then delete the account by keyboard.
	do("service accounts",
		chromedp.Navigate(s.URL+"/ui/team/service-accounts"),
		chromedp.WaitVisible(chromedp.ID("service-accounts")),
	)
	shoot("14-service-accounts")
	do("delete the service account by keyboard",
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.ID("sa-delete-h")),
		chromedp.Focus(chromedp.CSS(`#sa-delete-h ~ form button[data-confirm]`)),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog[open]`)),
		chromedp.KeyEvent(kb.Tab),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(".notice-ok")),
	)
	if got := text(".notice-ok"); !strings.Contains(got, "“prefect-agent” deleted") {
		t.Fatalf("notice %q", got)
	}

	// The personal keys page, with a key of each expiry state, and a 404
	// that keeps the navigation.
	do("personal keys",
		chromedp.Navigate(s.URL+"/ui/keys"),
		chromedp.WaitVisible(chromedp.ID("create-key-form")),
		chromedp.SendKeys(chromedp.ID("name"), "laptop"),
		chromedp.SetValue(chromedp.ID("expires"), "7d"),
		chromedp.Click(chromedp.CSS(`#create-key-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("done-link")),
		chromedp.Click(chromedp.ID("done-link")),
		chromedp.WaitVisible(chromedp.ID("keys")),
	)
	if got := text("#keys tr.row-new"); !strings.Contains(got, "Expires soon") || !strings.Contains(got, "in 7 days") {
		t.Fatalf("new 7-day key row %q", got)
	}
	shoot("11-api-keys")
	do("not found",
		chromedp.Navigate(s.URL+"/ui/no-such-page"),
		chromedp.WaitVisible(chromedp.ID("message-h")),
	)
	if got := text(".mainnav"); !strings.Contains(got, "API keys") {
		t.Fatalf("404 navigation %q", got)
	}
	shoot("15-not-found")

	for _, secret := range []string{key, m[2], strings.TrimPrefix(link, s.URL+"/ui/reset?token=")} {
		if strings.Contains(s.Logs.String(), secret[4:]) {
			t.Fatalf("a secret (%.4s…) was logged", secret)
		}
	}
}

// colorScheme makes the page render as prefers-color-scheme: scheme.
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	})
}

func TestAdminPasswordLink(t *testing.T) {
	t.Parallel()
	s := MustRunMain(t, "sqlite")
	first := resetLinkRE.FindStringSubmatch(s.Stdout.String())
	if first == nil {
		t.Fatalf("no set-password link on stdout:\n%s", s.Stdout.String())
	}
	var out, errb syncBuffer
	env := &main.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, Now: time.Now}
	if code := main.Run(t.Context(), []string{"admin", "password-link", "--db", s.DSN, "--email", "ADMIN@localhost", "--url", "https://auth.example.com/"}, env); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	m := regexp.MustCompile(`https://auth\.example\.com/ui/reset\?token=(lkp_[0-9A-Za-z]+)\n`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("output %q has no link", out.String())
	}

	// The new link replaces the one printed on first start.
	users := sqldb.NewUserService(s.DB)
	users.PasswordParams = latchkeytest.FastPasswordParams()
	if _, err := users.ResetPassword(t.Context(), first[2], "a new password 1"); latchkey.ErrorCode(err) != latchkey.EUNAUTHENTICATED {
		t.Fatalf("first-start link after a new one: err=%v", err)
	}
	if _, err := users.ResetPassword(t.Context(), m[1], "a new password 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := users.AuthenticatePassword(t.Context(), main.DefaultBootstrapEmail, "a new password 1"); err != nil {
		t.Fatal(err)
	}

	errb = syncBuffer{}
	if code := main.Run(t.Context(), []string{"admin", "password-link", "--db", s.DSN, "--email", "nobody@example.com"}, env); code != 1 || !strings.Contains(errb.String(), "No user with email") {
		t.Fatalf("unknown email: exit %d: %s", code, errb.String())
	}
	if code := main.Run(t.Context(), []string{"admin", "password-link", "--db", s.DSN}, env); code != 2 {
		t.Fatalf("missing --email: exit %d, want 2", code)
	}
}
