package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/client"
)

func TestLoginWritesAuthFile(t *testing.T) {
	t.Parallel()
	sc := scenario{
		args: []string{"login", "-k", goodKey},
		// An existing file with loose permissions and another server's section.
		files: map[string]string{".prefect/auth.toml": authHeader + "[\"api.prefect.io\"]\napi_key = \"pcu_x\"\n"},
	}
	res := sc.run(t)
	if got, want := res.code, 0; got != want {
		t.Fatalf("exit=%d, want %d; stderr=%s", got, want, res.stderr)
	}
	path := filepath.Join(res.home, ".prefect", "auth.toml")
	want := "# This file is auto-generated and should not be manually edited\n" +
		"# Update the Prefect config or use the CLI to login instead\n" +
		"\n" +
		"[\"api.prefect.io\"]\n" +
		"api_key = \"pcu_x\"\n" +
		"\n" +
		"[\"127.0.0.1-" + res.srv.port() + "\"]\n" +
		"api_key = \"lku_goodkey\"\n" +
		"tenant_id = \"11111111-1111-1111-1111-111111111111\"\n"
	if got := MustReadFile(t, path); got != want {
		t.Errorf("auth.toml=\n%s\nwant\n%s", got, want)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("mode=%o, want %o", got, want)
	}
	// The write is a rename: no temporary files are left behind.
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(entries), 1; got != want {
		t.Errorf("files in ~/.prefect=%d, want %d", got, want)
	}

	reqs := res.srv.requests()
	if got, want := len(reqs), 2; got != want {
		t.Fatalf("requests=%d, want %d", got, want)
	}
	if reqs[0].Query != client.QueryAuthInfoTenant {
		t.Errorf("first query=%q", reqs[0].Query)
	}
	if reqs[0].HasTenant {
		t.Errorf("first auth_info carried X-PREFECT-TENANT-ID %q", reqs[0].Tenant)
	}
	if got, want := reqs[0].Auth, "Bearer "+goodKey; got != want {
		t.Errorf("Authorization=%q, want %q", got, want)
	}
	if got, want := reqs[0].Body, `{"query": "query {\n    auth_info {\n        tenant_id\n    }\n}", "variables": "null"}`; got != want {
		t.Errorf("body=%s, want %s", got, want)
	}
	if got, want := reqs[1].Tenant, tenantOne; !reqs[1].HasTenant || got != want {
		t.Errorf("tenant lookup X-PREFECT-TENANT-ID=%q, want %q", got, want)
	}
	if got, want := reqs[1].Version, "1.0.0"; got != want {
		t.Errorf("X-PREFECT-CORE-VERSION=%q, want %q", got, want)
	}
}

func TestLogoutConfirm(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		stdin   string
		code    int
		loggedO bool
	}{
		{"y\n", 0, true},
		{"yes\n", 0, true},
		{"Y", 0, true},
		{"n\n", 1, false},
		{"\n", 1, false},
		{"", 1, false},
		{"what\nno\n", 1, false},
	} {
		t.Run(tt.stdin, func(t *testing.T) {
			res := scenario{args: []string{"logout"}, stdin: tt.stdin, files: loggedIn}.run(t)
			if got, want := res.code, tt.code; got != want {
				t.Fatalf("exit=%d, want %d", got, want)
			}
			content := MustReadFile(t, filepath.Join(res.home, ".prefect", "auth.toml"))
			if got, want := strings.Contains(content, "api_key = \"\"\n"), tt.loggedO; got != want {
				t.Errorf("logged out=%v, want %v:\n%s", got, want, content)
			}
			if got, want := strings.Contains(content, "tenant_id"), !tt.loggedO; got != want {
				t.Errorf("tenant_id kept=%v, want %v", got, want)
			}
			if got, want := strings.Contains(res.stderr, "Aborted!"), !tt.loggedO; got != want {
				t.Errorf("Aborted! printed=%v, want %v", got, want)
			}
		})
	}
}

// TestCreateKeyExpire runs create-key with --expire values: naive ones are
// UTC, aware ones are converted, garbage and past times are refused.
func TestCreateKeyExpire(t *testing.T) {
	t.Parallel()
	// testNow is 2026-11-25T12:00:00Z.
	for _, tt := range []struct {
		expire  string
		sent    string // expires_at sent; "" means no request
		message string // a line of stdout
	}{
		{"2030-1-1", "2030-01-01T00:00:00+00:00", "Creating key that will expire in 3 years..."},
		{"2029-08-01", "2029-08-01T00:00:00+00:00", "Creating key that will expire in 3 years..."},
		{"2029-06-01", "2029-06-01T00:00:00+00:00", "Creating key that will expire in 2 years..."},
		{"2027-11-25 12:00", "2027-11-25T12:00:00+00:00", "Creating key that will expire in 1 year..."},
		{"2027-03-01T10:00:00+02:00", "2027-03-01T08:00:00+00:00", "Creating key that will expire in 3 months..."},
		{"2026-12-01 09:30:00 -0500", "2026-12-01T14:30:00+00:00", "Creating key that will expire in 6 days..."},
		{"Dec 3 2026", "2026-12-03T00:00:00+00:00", "Creating key that will expire in 1 week..."},
		{"2026-11-25T13:30:00Z", "2026-11-25T13:30:00+00:00", "Creating key that will expire in 1 hour..."},
		{"2026-11-25 12:00:05", "2026-11-25T12:00:05+00:00", "Creating key that will expire in a few seconds..."},
		{"2026-11-25 12:00:45", "2026-11-25T12:00:45+00:00", "Creating key that will expire in 45 seconds..."},
		{"2031", "2031-01-01T00:00:00+00:00", "Creating key that will expire in 4 years..."},
		{"2027-02", "2027-02-01T00:00:00+00:00", "Creating key that will expire in 2 months..."},
		{"20270301", "2027-03-01T00:00:00+00:00", "Creating key that will expire in 3 months..."},
		{"foo", "", "Failed to parse expiration time. Invalid date string: foo"},
		{"tomorrow", "", "Failed to parse expiration time. Invalid date string: tomorrow"},
		{"2022-13-45", "", "Failed to parse expiration time. Invalid date string: 2022-13-45"},
		{"1900-1-1", "", "Given expiration time '1900-1-1' is a time in the past: 1900-01-01T00:00:00+00:00"},
		{"2026-11-25T11:00:00+03:00", "", "Given expiration time '2026-11-25T11:00:00+03:00' is a time in the past: 2026-11-25T11:00:00+03:00"},
	} {
		t.Run(tt.expire, func(t *testing.T) {
			res := scenario{args: []string{"create-key", "-n", "k", "-e", tt.expire}, files: loggedIn}.run(t)
			if !strings.Contains(res.stdout, tt.message+"\n") {
				t.Errorf("stdout=%q, want line %q", res.stdout, tt.message)
			}
			var sent []string
			for _, r := range res.srv.requests() {
				if r.Query != client.MutationCreateAPIKey {
					continue
				}
				var v struct {
					Input struct {
						ExpiresAt *string `json:"expires_at"`
					} `json:"input"`
				}
				if err := json.Unmarshal([]byte(r.Variables), &v); err != nil {
					t.Fatal(err)
				}
				if v.Input.ExpiresAt == nil {
					t.Fatal("expires_at sent as null")
				}
				sent = append(sent, *v.Input.ExpiresAt)
			}
			if tt.sent == "" {
				if got, want := res.code, 1; got != want {
					t.Errorf("exit=%d, want %d", got, want)
				}
				if len(res.srv.requests()) != 0 {
					t.Errorf("sent %d requests for a refused expiry", len(res.srv.requests()))
				}
				return
			}
			if got, want := res.code, 0; got != want {
				t.Errorf("exit=%d, want %d; stderr=%s", got, want, res.stderr)
			}
			if len(sent) != 1 || sent[0] != tt.sent {
				t.Errorf("expires_at sent=%v, want %q", sent, tt.sent)
			}
		})
	}
}

// TestSecretsNotEchoed checks that no command but create-key and
// create-token prints a credential, even when it fails.
func TestSecretsNotEchoed(t *testing.T) {
	t.Parallel()
	for _, sc := range []scenario{
		{args: []string{"status"}, files: loggedIn},
		{args: []string{"status"}, env: map[string]string{"PREFECT__CLOUD__API_KEY": "lku_wrongsecret0123456789"}},
		{args: []string{"login", "-k", "lku_wrongsecret0123456789"}},
		{args: []string{"list-keys"}, env: map[string]string{"PREFECT__CLOUD__API_KEY": "lku_wrongsecret0123456789"}},
		{args: []string{"list-tenants"}, files: tokenInTenant},
		{args: []string{"logout"}, stdin: "y\n", files: loggedIn},
	} {
		res := sc.run(t)
		for _, secret := range []string{goodKey, userToken, "lku_wrongsecret", "eyJaccess", "lkr_refresh"} {
			if strings.Contains(res.stdout+res.stderr, secret) {
				t.Errorf("%v printed %q:\n%s%s", sc.args, secret, res.stdout, res.stderr)
			}
		}
	}
}

// TestTokenRefresh checks that a deprecated-token session renews its access
// token with the refresh token when it is about to expire.
func TestTokenRefresh(t *testing.T) {
	t.Parallel()
	sc := scenario{args: []string{"create-token", "-n", "t", "-s", "USER"}, files: tokenInTenant, setup: func(f *fakeServer) {
		f.override = func(r recorded) (int, string) {
			if r.Query == client.MutationSwitchTenant {
				// Expires 20 s after testNow: inside the 30 s margin.
				f.mu.Lock()
				tok := f.mint(tenantTwo)
				f.mu.Unlock()
				tok["expires_at"] = "2026-11-25T12:00:20Z"
				return 200, data(map[string]any{"switch_tenant": tok})
			}
			return 0, ""
		}
	}}
	res := sc.run(t)
	if got, want := res.code, 0; got != want {
		t.Fatalf("exit=%d, want %d: %s", got, want, res.stderr)
	}
	var ops []string
	for _, r := range res.srv.requests() {
		ops = append(ops, strings.Fields(r.Query)[0]+" "+r.Auth)
	}
	want := []string{
		"query($slug: Bearer " + userToken,
		"mutation($input: Bearer " + userToken,
		"mutation($input: Bearer lkr_refresh1",  // refresh_token
		"mutation($input: Bearer eyJaccess.2.x", // create_api_token with the new token
	}
	if strings.Join(ops, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(ops, "\n"), strings.Join(want, "\n"))
	}
	reqs := res.srv.requests()
	if got, want := reqs[2].Variables, `{"input": {"access_token": "eyJaccess.1.x"}}`; got != want {
		t.Errorf("refresh variables=%s, want %s", got, want)
	}
	if reqs[2].HasTenant {
		t.Error("refresh carried a tenant header")
	}
}

// TestStatusURL: `auth status` prints the configured API URL, as Prefect
// 1.0 prints client.api_server, the same way logged in and logged out
// (issue 17): never the /graphql form the session uses without a key.
func TestStatusURL(t *testing.T) {
	t.Parallel()
	first := func(sc scenario) string {
		res := sc.run(t)
		line, _, _ := strings.Cut(res.stdout, "\n")
		return strings.Replace(line, res.srv.srv.URL, "URL", 1)
	}
	for _, sc := range []scenario{
		{args: []string{"status"}},
		{args: []string{"status"}, files: loggedIn},
		{args: []string{"status"}, files: loggedOut10},
		{args: []string{"status"}, files: tokenInTenant},
	} {
		if got := first(sc); got != "You are connecting to URL" {
			t.Errorf("files %v: %q", sc.files, got)
		}
	}
	sc := scenario{args: []string{"status"}, env: map[string]string{"PREFECT__CLOUD__API": "{{URL}}/graphql"}}
	if got := first(sc); got != "You are connecting to URL/graphql" {
		t.Errorf("API set to /graphql: %q", got)
	}
}

// TestServerBackendMessage: the error for the server backend names no
// Prefect command Latchkey lacks (`prefect backend cloud`), but what to
// change, where the backend was set.
func TestServerBackendMessage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		sc   scenario
		want string
	}{
		{scenario{args: []string{"status"}, env: map[string]string{"PREFECT__BACKEND": "server"}}, "unset PREFECT__BACKEND"},
		{scenario{args: []string{"status"}, files: map[string]string{".prefect/backend.toml": "backend = \"server\"\n"}}, `set backend = "cloud" in ~/.prefect/backend.toml`},
		{scenario{args: []string{"status"}, files: map[string]string{".prefect/config.toml": "backend = \"server\"\n"}}, `set backend = "cloud" in ~/.prefect/config.toml`},
		{scenario{args: []string{"status"}, files: map[string]string{"cfg.toml": "backend = \"server\"\n"}, env: map[string]string{"PREFECT__USER_CONFIG_PATH": "{{HOME}}/cfg.toml"}}, "/cfg.toml (or remove that line)"},
	} {
		res := tt.sc.run(t)
		if res.code != 2 || !strings.Contains(res.stderr, tt.want) || strings.Contains(res.stdout+res.stderr, "prefect backend") {
			t.Errorf("%v %v: exit %d\n%s", tt.sc.env, tt.sc.files, res.code, res.stderr)
		}
	}
}
