package main_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/latchkey/latchkey"
	main "github.com/latchkey/latchkey/cmd/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// TestUI_InvitationsAndRevokedKeys: an admin adds a user who already has an
// account in another tenant; the admin sees only "pending"; the user sees
// the invitation after signing in and accepts it; then the member is
// listed. A revoked key stays listed under the Revoked filter. Screenshots
// at 1280 and 390 px wide.
func TestUI_InvitationsAndRevokedKeys(t *testing.T) {
	t.Parallel()
	ctx := MustBrowser(t)
	s := MustRunMain(t, "sqlite")
	bg := context.Background()

	shots, err := os.MkdirTemp("", "latchkey-ui-invitations-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Errorf("screenshot %s: %v", name, err)
			return
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// shots2 takes the page at 1280 and at 390 px wide.
	shots2 := func(name string) {
		t.Helper()
		shot(name + "-1280")
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Reload()); err != nil {
			t.Fatal(err)
		}
		shot(name + "-390")
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Reload()); err != nil {
			t.Fatal(err)
		}
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
	signIn := func(email, password string) {
		t.Helper()
		do("sign in as "+email,
			chromedp.Navigate(s.URL+"/ui/signin"),
			chromedp.WaitVisible(chromedp.ID("signin-form")),
			chromedp.SendKeys(chromedp.ID("email"), email),
			chromedp.SendKeys(chromedp.ID("password"), password),
			chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(".who")), // signed in
		)
	}
	signOut := func() {
		t.Helper()
		do("sign out", chromedp.Click(chromedp.CSS(`.signout button`)), chromedp.WaitVisible(chromedp.ID("signin-form")))
	}

	// The admin's password, from the link printed on first start; Bob has
	// an account in another tenant, with a password.
	users := sqldb.NewUserService(s.DB)
	users.PasswordParams = latchkeytest.FastPasswordParams()
	link := resetLinkRE.FindStringSubmatch(s.Stdout.String())
	if link == nil {
		t.Fatalf("no set-password link on stdout:\n%s", s.Stdout.String())
	}
	const adminPassword, bobPassword = "admin password 123", "bob password 123"
	admin, err := users.ResetPassword(bg, link[2], adminPassword)
	if err != nil {
		t.Fatal(err)
	}
	other := latchkeytest.MustCreateTenant(t, s.DB, "elsewhere", nil)
	latchkeytest.MustCreateMember(t, s.DB, other.ID, "bob@example.com", latchkey.RoleUser)
	secret, _, err := users.CreatePasswordResetForEmail(bg, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := users.ResetPassword(bg, secret, bobPassword); err != nil {
		t.Fatal(err)
	}
	// A key of the admin's, revoked.
	keys := sqldb.NewAPIKeyService(s.DB)
	adminCtx := latchkeytest.AuthContext(bg, admin, admin.DefaultTenantID, latchkey.RoleTenantAdmin)
	old := &latchkey.APIKey{Name: "old laptop"}
	if _, err := keys.CreateAPIKey(adminCtx, old); err != nil {
		t.Fatal(err)
	}
	if err := keys.DeleteAPIKey(adminCtx, old.ID); err != nil {
		t.Fatal(err)
	}

	// The admin adds Bob: an invitation, pending.
	signIn(main.DefaultBootstrapEmail, adminPassword)
	do("add bob",
		chromedp.Navigate(s.URL+"/ui/team/members"),
		chromedp.WaitVisible(chromedp.ID("add-member-form")),
		chromedp.SendKeys(chromedp.ID("member-email"), "bob@example.com"),
		chromedp.Click(chromedp.CSS(`#add-member-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("invitations-pending")),
	)
	if got := text(".notice-ok"); !strings.Contains(got, "Invited bob@example.com as user.") {
		t.Fatalf("notice %q", got)
	}
	if got := text("#invitations-pending tbody"); !strings.Contains(got, "bob@example.com") || !strings.Contains(got, "Pending") || strings.Contains(got, "elsewhere") {
		t.Fatalf("pending list %q", got)
	}
	if got := text("#members tbody"); strings.Contains(got, "bob@example.com") {
		t.Fatalf("bob is listed as a member before accepting: %q", got)
	}
	shots2("01-members-pending")

	// The revoked key, under the keys page's Revoked filter.
	do("revoked keys",
		chromedp.Navigate(s.URL+"/ui/keys"),
		chromedp.WaitVisible(chromedp.ID("show-revoked")),
		chromedp.Click(chromedp.ID("show-revoked")),
		chromedp.WaitVisible(chromedp.ID("revoked-keys")),
	)
	if got := text("#revoked-keys tbody"); !strings.Contains(got, "old laptop") || !strings.Contains(got, "you") {
		t.Fatalf("revoked keys %q", got)
	}
	shots2("02-keys-revoked")
	signOut()

	// Bob signs in and sees the invitation; he accepts it.
	signIn("bob@example.com", bobPassword)
	do("see the invitation", chromedp.WaitVisible(chromedp.ID("invitations")))
	if got := text("#invitations"); !strings.Contains(got, "Default as User") {
		t.Fatalf("invitation %q", got)
	}
	shots2("03-invitation")
	do("accept",
		chromedp.Click(chromedp.CSS(`#invitations button.btn-primary`)),
		chromedp.WaitVisible(chromedp.CSS(".notice-ok")),
	)
	if got := text(".notice-ok"); !strings.Contains(got, "You joined") {
		t.Fatalf("notice %q", got)
	}
	if got, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("invitations") !== null`)); got {
		t.Fatal("the invitation is still shown after accepting")
	}
	shot("04-accepted-1280")
	signOut()

	// The admin now sees Bob as a member, and no pending invitation.
	signIn(main.DefaultBootstrapEmail, adminPassword)
	do("members", chromedp.Navigate(s.URL+"/ui/team/members"), chromedp.WaitVisible(chromedp.ID("members")))
	if got := text("#members tbody"); !strings.Contains(got, "bob@example.com") {
		t.Fatalf("members %q", got)
	}
	if got, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("invitations-pending") !== null`)); got {
		t.Fatal("still pending after acceptance")
	}
	shot("05-members-after-1280")

	// A service account with a live key and a revoked one; a failed sign-in.
	sas := sqldb.NewServiceAccountService(s.DB)
	sa := &latchkey.ServiceAccount{Name: "deploy bot"}
	if err := sas.CreateServiceAccount(adminCtx, sa); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"build-01", "build-00"} {
		k := &latchkey.APIKey{Name: name, UserID: sa.ID}
		if _, err := keys.CreateAPIKey(adminCtx, k); err != nil {
			t.Fatal(err)
		}
		if name == "build-00" {
			if err := keys.DeleteAPIKey(adminCtx, k.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	signOut()
	do("a wrong password",
		chromedp.SendKeys(chromedp.ID("email"), "bob@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), "not bob's password"),
		chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("form-error")),
	)
	if err := main.FlushAuthFailures(s.Main); err != nil {
		t.Fatal(err)
	}
	signIn(main.DefaultBootstrapEmail, adminPassword)
	do("service accounts", chromedp.Navigate(s.URL+"/ui/team/service-accounts"), chromedp.WaitVisible(chromedp.ID("service-accounts")))
	if got := text("#service-accounts tbody"); !strings.Contains(got, "deploy bot") || !strings.Contains(got, "you") {
		t.Fatalf("service accounts %q", got)
	}
	shots2("06-service-accounts")
	do("service account", chromedp.Click(chromedp.CSS(`#service-accounts a`)), chromedp.WaitVisible(chromedp.ID("sa-role-form")))
	shots2("07-service-account")
	do("change its role",
		chromedp.SetValue(chromedp.ID("sa-role"), "READ_ONLY_USER"),
		chromedp.Click(chromedp.CSS(`#sa-role-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(".notice-ok")),
	)
	if got := text(".notice-ok"); !strings.Contains(got, "is now read-only user") {
		t.Fatalf("notice %q", got)
	}
	do("its revoked keys", chromedp.Click(chromedp.ID("show-revoked")), chromedp.WaitVisible(chromedp.ID("revoked-keys")))
	if got := text("#revoked-keys tbody"); !strings.Contains(got, "build-00") || strings.Contains(got, "build-01") {
		t.Fatalf("revoked keys %q", got)
	}
	shots2("08-service-account-revoked")
	do("audit log", chromedp.Navigate(s.URL+"/ui/team/audit"), chromedp.WaitVisible(chromedp.ID("audit")))
	if got := text("#auth-failures tbody"); !strings.Contains(got, "bob@example.com") {
		t.Fatalf("failed sign-ins %q", got)
	}
	if got := text("#audit tbody"); !strings.Contains(got, "Changed service account role") || !strings.Contains(got, "Accepted invitation") || !strings.Contains(got, "Invited") {
		t.Fatalf("audit %q", got)
	}
	shots2("09-audit")
}
