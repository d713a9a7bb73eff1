package main_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	main "github.com/latchkey/latchkey/cmd/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// `auth status` asks the real server about the stored key: who and where
// it is, and when it no longer works, why (expired, revoked), in words.
func TestAuthCLI_StatusAsksServer(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine string) {
		clock := latchkeytest.NewClockAt(time.Now())
		s := MustRunMain(t, engine, func(m *main.Main) { m.Now = clock.Now })
		rec := newAuthRecorder()
		rec.addSecret(s.AdminKey, "bootstrap key")
		api := s.URL + "/graphql"
		adminTenant, adminID := authInfoOf(t, s, s.AdminKey)

		admin := newAuthCLI(t, s, rec, api)
		admin.auth(t, "login", "-k", s.AdminKey).ok(t, "Logged in to Prefect Cloud tenant 'Default' (default)\n")
		admin.auth(t, "status").status(t, api, adminTenant, "Default (default)", "admin@localhost", sqldb.BootstrapKeyName, s.AdminKey)

		// --json: one document with stable field names.
		r := admin.auth(t, "status", "--json")
		var st struct {
			APIURL     string `json:"api_url"`
			Credential string `json:"credential"`
			OK         bool   `json:"ok"`
			Error      string `json:"error"`
			Tenant     struct{ ID, Slug, Name string }
			User       struct{ ID, Email, Role string }
			APIKey     struct{ Identifier string } `json:"api_key"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 0 || r.stderr != "" {
			t.Fatalf("%s: %v", r, err)
		}
		if st.APIURL != api || st.Credential != "api_key" || !st.OK || st.Error != "" || st.Tenant.ID != adminTenant || st.Tenant.Slug != "default" ||
			st.User.ID != adminID || st.User.Email != "admin@localhost" || st.User.Role != "TENANT_ADMIN" || st.APIKey.Identifier != latchkey.SecretIdentifier(s.AdminKey) {
			t.Fatalf("status --json = %+v", st)
		}

		// A key that expires: status says so once it has.
		r = admin.auth(t, "create-key", "-n", "short-lived", "-e", clock.Now().Add(time.Hour).UTC().Format(time.RFC3339), "-q")
		short := strings.TrimSpace(r.stdout)
		r.shown = short
		rec.addSecret(short, "short-lived key")
		if r.code != 0 {
			t.Fatalf("%s", r)
		}
		expiring := newAuthCLI(t, s, rec, api, "PREFECT__CLOUD__API_KEY", short)
		expiring.auth(t, "status").status(t, api, adminTenant, "Default (default)", "admin@localhost", "short-lived", short)
		clock.Add(2 * time.Hour)
		expiring.auth(t, "status").ok(t, "You are connecting to "+api+"\nYou are authenticating with an API key\n"+
			"Your authentication is not working: Your API key has expired. Create a new key (in the web UI, or with `latchkey auth create-key` while logged in with another) and log in with it: `latchkey auth login -k KEY`.\n")
		expiring.auth(t, "list-keys").want(t, 1, "", "Error: Your API key has expired. Create a new key (in the web UI, or with `latchkey auth create-key` while logged in with another) and log in with it: `latchkey auth login -k KEY`.\n")

		// A revoked key (by its name): status says it is no longer accepted.
		r = admin.auth(t, "create-key", "-n", "to-revoke", "-q")
		doomed := strings.TrimSpace(r.stdout)
		r.shown = doomed
		rec.addSecret(doomed, "key to revoke")
		admin.auth(t, "revoke-key", "-i", "to-revoke").ok(t, "Key successfully revoked!\n")
		revoked := newAuthCLI(t, s, rec, api, "PREFECT__CLOUD__API_KEY", doomed)
		revoked.auth(t, "status").ok(t, "You are connecting to "+api+"\nYou are authenticating with an API key\n"+
			"Your authentication is not working: The server does not accept your API key: it was revoked, or it is not a key of this server. Log in with a valid key: `latchkey auth login -k KEY`.\n")
		admin.auth(t, "revoke-key", "-i", "to-revoke").want(t, 1, "No API key named 'to-revoke'. See `latchkey auth list-keys` for your keys' names and ids.\n", "")

		// By identifier.
		r = admin.auth(t, "create-key", "-n", "by-identifier", "-q")
		third := strings.TrimSpace(r.stdout)
		r.shown = third
		rec.addSecret(third, "key revoked by identifier")
		admin.auth(t, "revoke-key", "-i", latchkey.SecretIdentifier(third)).ok(t, "Key successfully revoked!\n")
		s.Do(t, "/graphql", third, "", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")
	})
}

// A server that is not there (port 1: nothing listens, and no other test's
// server can take it): the CLI names the URL and the setting.
func TestAuthCLI_ServerDown(t *testing.T) {
	t.Parallel()
	s := MustRunMain(t, "sqlite")
	url := "http://127.0.0.1:1"
	c := newAuthCLI(t, s, newAuthRecorder(), url, "PREFECT__CLOUD__API_KEY", s.AdminKey)
	c.auth(t, "list-keys").want(t, 1, "", "Error: Cannot reach the Latchkey API at "+url+": connection refused. Is the server running there? The URL comes from PREFECT__CLOUD__API.\n")
}

// latchkey --version prints the version, the commit and the Go version;
// completion prints a script for each shell and answers its questions;
// a mistyped command gets a suggestion.
func TestMain_VersionCompletionSuggestions(t *testing.T) {
	t.Parallel()
	run := func(args ...string) (int, string, string) {
		var out, errb syncBuffer
		code := main.Run(t.Context(), args, &main.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, Now: time.Now})
		return code, out.String(), errb.String()
	}
	for _, arg := range []string{"--version", "version"} {
		code, out, _ := run(arg)
		if !regexp.MustCompile(`^latchkey \S+\ncommit: \S+.*\ngo: go\d`).MatchString(out) || code != 0 {
			t.Errorf("%s: exit %d, output %q", arg, code, out)
		}
	}
	for shell, marker := range map[string]string{"bash": "# bash completion V2 for latchkey", "zsh": "#compdef latchkey", "fish": "# fish completion for latchkey"} {
		code, out, errOut := run("completion", shell)
		if code != 0 || !strings.Contains(out, marker) {
			t.Errorf("completion %s: exit %d, stderr %q, script starts %.80q", shell, code, errOut, out)
		}
	}
	if code, _, errOut := run("completion", "tcsh"); code != 2 || !strings.Contains(errOut, "use bash, zsh or fish") {
		t.Errorf("completion tcsh: exit %d, %q", code, errOut)
	}
	// What the scripts ask: the commands, subcommands and options.
	code, out, _ := run("__complete", "auth", "list-")
	if code != 0 || !strings.Contains(out, "list-keys\t") || !strings.Contains(out, "list-tenants\t") || strings.Contains(out, "login\t") {
		t.Errorf("__complete auth list-: exit %d, %q", code, out)
	}
	if _, out, _ := run("__complete", "auth", "revoke-key", "--"); !strings.Contains(out, "--id\t") {
		t.Errorf("__complete revoke-key --: %q", out)
	}
	if _, out, _ := run("__complete", "a"); !strings.Contains(out, "admin\t") || !strings.Contains(out, "agent\t") || !strings.Contains(out, "auth\t") {
		t.Errorf("__complete a: %q", out)
	}
	if code, _, errOut := run("sever"); code != 2 || !strings.HasPrefix(errOut, "latchkey: unknown command \"sever\". Did you mean \"server\"?\n") {
		t.Errorf("sever: exit %d, %q", code, errOut)
	}
	if code, _, errOut := run("admin", "pasword-link"); code != 2 || !strings.Contains(errOut, "Did you mean \"password-link\"?") {
		t.Errorf("admin pasword-link: exit %d, %q", code, errOut)
	}
}
