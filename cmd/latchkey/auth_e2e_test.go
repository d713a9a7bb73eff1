package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	main "github.com/latchkey/latchkey/cmd/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// authFileHeaderE2E is the two comment lines (and blank line) Prefect
// writes at the top of auth.toml.
const authFileHeaderE2E = "# This file is auto-generated and should not be manually edited\n" +
	"# Update the Prefect config or use the CLI to login instead\n\n"

// authRun is one `latchkey auth …` (or `latchkey admin …`) invocation.
type authRun struct {
	args           []string
	code           int
	stdout, stderr string
	// shown is the secret this run shows once (create-key, create-token,
	// admin init), "" for none.
	shown string
}

func (r *authRun) String() string {
	return fmt.Sprintf("$ latchkey %s\nexit: %d\n--- stdout\n%s--- stderr\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// authRecorder collects every run's output and every secret the server
// handed out or that was sent to it, for the final leak check.
type authRecorder struct {
	mu      sync.Mutex
	runs    []*authRun
	secrets map[string]string // secret -> where it came from
}

func newAuthRecorder() *authRecorder { return &authRecorder{secrets: map[string]string{}} }

func (r *authRecorder) addSecret(s, what string) {
	if s == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.secrets[s]; !ok {
		r.secrets[s] = what
	}
}

// collect records the values of secret-bearing fields in a GraphQL response.
func (r *authRecorder) collect(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			switch k {
			case "key", "token", "access_token", "refresh_token":
				if s, ok := x.(string); ok {
					r.addSecret(s, "response field "+k)
				}
			}
			r.collect(x)
		}
	case []any:
		for _, x := range v {
			r.collect(x)
		}
	}
}

// sniffer is an http.RoundTripper that records the credential of each
// request and the secrets in each response.
type sniffer struct {
	base http.RoundTripper
	rec  *authRecorder
	// hook, if set, sees each exchange: the request's bearer and body, and
	// the decoded response.
	hook func(bearer, body string, resp any)
}

func (s sniffer) RoundTrip(req *http.Request) (*http.Response, error) {
	bearer, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	if ok {
		s.rec.addSecret(bearer, "request credential")
	}
	var reqBody []byte
	if s.hook != nil && req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			reqBody, _ = io.ReadAll(rc)
			rc.Close()
		}
	}
	resp, err := s.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var v any
	if json.Unmarshal(body, &v) == nil {
		s.rec.collect(v)
	}
	if s.hook != nil {
		s.hook(bearer, string(reqBody), v)
	}
	return resp, nil
}

// authCLI is a user of `latchkey auth` with their own home directory and
// environment, talking to a test server.
type authCLI struct {
	s    *TestServer
	rec  *authRecorder
	home string
	env  map[string]string
	http *http.Client
	now  func() time.Time // the CLI's clock; nil: time.Now
}

func newAuthCLI(t *testing.T, s *TestServer, rec *authRecorder, api string, env ...string) *authCLI {
	t.Helper()
	c := &authCLI{
		s: s, rec: rec, home: t.TempDir(),
		env:  map[string]string{"PREFECT__CLOUD__API": api},
		http: &http.Client{Timeout: 15 * time.Second, Transport: sniffer{base: http.DefaultTransport, rec: rec}},
	}
	for i := 0; i+1 < len(env); i += 2 {
		c.env[env[i]] = env[i+1]
	}
	return c
}

// run runs `latchkey args...` through main.Run, the real binary's dispatch.
func (c *authCLI) run(t *testing.T, stdin string, args ...string) *authRun {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := &main.Env{
		Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr,
		Getenv: func(k string) string { return c.env[k] }, HomeDir: c.home,
		Now: time.Now, HTTPClient: c.http,
	}
	if c.now != nil {
		env.Now = c.now
	}
	code := main.Run(context.Background(), args, env)
	r := &authRun{args: args, code: code, stdout: stdout.String(), stderr: stderr.String()}
	c.rec.mu.Lock()
	c.rec.runs = append(c.rec.runs, r)
	c.rec.mu.Unlock()
	return r
}

// auth runs `latchkey auth args...` with no input.
func (c *authCLI) auth(t *testing.T, args ...string) *authRun {
	t.Helper()
	return c.run(t, "", append([]string{"auth"}, args...)...)
}

// want checks a run's exit code and exact output.
func (r *authRun) want(t *testing.T, code int, stdout, stderr string) {
	t.Helper()
	if r.code != code || r.stdout != stdout || r.stderr != stderr {
		t.Fatalf("%s\n--- want exit %d, stdout:\n%s--- stderr:\n%s", r, code, stdout, stderr)
	}
}

// ok checks a run succeeded with exactly stdout and nothing on stderr.
func (r *authRun) ok(t *testing.T, stdout string) { t.Helper(); r.want(t, 0, stdout, "") }

// status checks `auth status` for a working key: Prefect's lines, then
// what the server says of the tenant, the user and the key (its name and
// identifier, and its expiry if it has one).
func (r *authRun) status(t *testing.T, api, tenantID, tenant, email, keyName, key string) {
	t.Helper()
	head := "You are connecting to " + api + "\nYou are authenticating with an API key\nYou are logged in to tenant " + tenantID +
		"\nTenant: " + tenant + "\nUser: " + email + ", role TENANT_ADMIN\n"
	ident := latchkey.SecretIdentifier(key)
	line := "API key: " + keyName + " (" + ident + ")"
	rest, ok := strings.CutPrefix(r.stdout, head+line)
	if !ok || r.code != 0 || r.stderr != "" ||
		(rest != "\n" && !(strings.HasPrefix(rest, ", expires ") && strings.HasSuffix(rest, "\n"))) {
		t.Fatalf("%s\n--- want:\n%s%s[, expires …]", r, head, line)
	}
}

func (c *authCLI) prefectDir() string { return filepath.Join(c.home, ".prefect") }

func (c *authCLI) authFile() string { return filepath.Join(c.prefectDir(), "auth.toml") }

// section is the auth.toml section of the test server: 127.0.0.1-PORT.
func (c *authCLI) section() string {
	u, _ := url.Parse(c.s.URL)
	return "127.0.0.1-" + u.Port()
}

// wantAuthFile checks auth.toml byte for byte, and its mode.
func (c *authCLI) wantAuthFile(t *testing.T, apiKey, tenantID string) {
	t.Helper()
	want := authFileHeaderE2E + fmt.Sprintf("[%q]\napi_key = %q\n", c.section(), apiKey)
	if tenantID != "" {
		want += fmt.Sprintf("tenant_id = %q\n", tenantID)
	}
	wantFile(t, c.authFile(), want)
	// Atomic writes leave no temporary files behind.
	entries, err := os.ReadDir(c.prefectDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "auth.toml" && e.Name() != "client" {
			t.Fatalf("stray file ~/.prefect/%s", e.Name())
		}
	}
}

// wantFile checks a credentials file's exact content and mode 0600.
func wantFile(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s:\n%s\n--- want:\n%s", path, got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Fatalf("%s: mode %04o, want %04o", path, got, want)
	}
}

// settingsFile is 0.15's token settings for the test server's /graphql URL.
func (c *authCLI) settingsFile() string {
	u, _ := url.Parse(c.s.URL)
	return filepath.Join(c.prefectDir(), "client", "http-127.0.0.1-"+u.Port()+"-graphql", "settings.toml")
}

// createdKey returns the key a successful create-key run printed, after
// checking the run's exact output.
func createdKey(t *testing.T, r *authRun, expireMsg string) string {
	t.Helper()
	const prefix = "Retrieving user information...\nCreating key%s...\n" +
		"This is the only time this key will be displayed! Store it somewhere safe.\nSuccessfully created key: "
	head := fmt.Sprintf(prefix, expireMsg)
	key, ok := strings.CutPrefix(r.stdout, head)
	key, nl := strings.CutSuffix(key, "\n")
	if r.code != 0 || r.stderr != "" || !ok || !nl || strings.ContainsAny(key, " \n") {
		t.Fatalf("%s\n--- want stdout %q<key>", r, head)
	}
	if _, err := latchkey.ParseSecret(key); err != nil || !strings.HasPrefix(key, latchkey.PrefixUserKey) {
		t.Fatalf("printed key %q: %v", key, err)
	}
	r.shown = key
	return key
}

// authInfoOf returns what auth_info says about a credential.
func authInfoOf(t *testing.T, s *TestServer, cred string) (tenantID, userID string) {
	t.Helper()
	var info authInfo
	s.MustDo(t, cred, "", "query { auth_info { tenant_id user_id } }", nil, "auth_info", &info)
	if info.TenantID == nil || info.UserID == nil {
		t.Fatalf("auth_info=%+v", info)
	}
	return *info.TenantID, *info.UserID
}

type keyRow struct {
	ID         string
	Name       string
	Identifier string
	ExpiresAt  *string `json:"expires_at"`
}

// keysOf lists the keys a credential sees, in the server's order.
func keysOf(t *testing.T, s *TestServer, cred string) []keyRow {
	t.Helper()
	var keys []keyRow
	s.MustDo(t, cred, "", qListKeys, nil, "auth_api_key", &keys)
	return keys
}

func keyID(t *testing.T, keys []keyRow, name string) string {
	t.Helper()
	for _, k := range keys {
		if k.Name == name {
			return k.ID
		}
	}
	t.Fatalf("no key %q in %+v", name, keys)
	return ""
}

// tenantsTable is list-tenants' expected output for the two tenants the
// admin belongs to, the current one starred.
func tenantsTable(defaultID, twoID, current string) string {
	star := func(id string) string {
		if id == current {
			return "  *"
		}
		return ""
	}
	return "NAME        SLUG        ID\n" +
		"Default     default     " + defaultID + star(defaultID) + "\n" +
		"Tenant Two  tenant-two  " + twoID + star(twoID) + "\n"
}

// The whole `latchkey auth` command group, run through the real binary's
// dispatch against a real server on every engine: login, tenants, keys,
// status, logout, the deprecated token flow, permission errors, usage
// errors, and finally a search of every byte printed (and the server's
// logs) for the secrets handed out.
func TestAuthCLI_EndToEnd(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine string) {
		s := MustRunMain(t, engine)
		rec := newAuthRecorder()
		rec.addSecret(s.AdminKey, "bootstrap key")
		api := s.URL + "/graphql"
		adminTenant, adminID := authInfoOf(t, s, s.AdminKey)

		// A second tenant for the admin, through the API.
		var two tenantRow
		s.MustDo(t, s.AdminKey, "", `mutation { create_tenant(input: {name: "Tenant Two", slug: "tenant-two"}) { id slug name } }`, nil, "create_tenant", &two)

		// A third tenant the admin is not in, with another admin, through
		// `latchkey admin init` on the server's database.
		admin := newAuthCLI(t, s, rec, api)
		maps.Copy(admin.env, secretEnv(s.DSN))
		r := admin.run(t, "", "admin", "init", "--db", s.DSN, "--email", "other@example.com", "--tenant", "Other Team")
		otherKey, ok := strings.CutPrefix(r.stdout, "Created tenant \"Other Team\" (other-team) with admin other@example.com.\n"+
			"API key for other@example.com (shown only this once; store it somewhere safe):\n")
		otherKey = strings.TrimSuffix(otherKey, "\n")
		if r.code != 0 || !ok || r.stderr != "" {
			t.Fatalf("%s", r)
		}
		r.shown = otherKey
		rec.addSecret(otherKey, "admin init key")
		otherTenant, _ := authInfoOf(t, s, otherKey)

		t.Run("not logged in", func(t *testing.T) {
			admin.auth(t, "status").ok(t, "You are connecting to "+api+"\nYou are not logged in! Use `latchkey auth login` to login with an API key.\n")
			admin.auth(t, "list-tenants").want(t, 1, "You are not authenticated. Use `latchkey auth login` first.\n", "")
			admin.auth(t, "switch-tenants", "--slug", "tenant-two").want(t, 1, "You are not logged in!\n", "")
			admin.auth(t, "login", "-k", "lku_notakey").want(t, 1, "Unauthorized. Invalid Prefect Cloud API key.\n", "")
			if _, err := os.Stat(admin.authFile()); !os.IsNotExist(err) {
				t.Fatalf("a failed login wrote auth.toml: %v", err)
			}
		})

		t.Run("login", func(t *testing.T) {
			admin.auth(t, "login", "-k", s.AdminKey).ok(t, "Logged in to Prefect Cloud tenant 'Default' (default)\n")
			admin.wantAuthFile(t, s.AdminKey, adminTenant)
			admin.auth(t, "status").status(t, api, adminTenant, "Default (default)", "admin@localhost", sqldb.BootstrapKeyName, s.AdminKey)
			admin.auth(t, "list-tenants").ok(t, tenantsTable(adminTenant, two.ID, adminTenant))
		})

		t.Run("root URL", func(t *testing.T) {
			// Cloud was POSTed at its root: the same section name, the same file.
			root := newAuthCLI(t, s, rec, s.URL)
			root.auth(t, "login", "--key", s.AdminKey).ok(t, "Logged in to Prefect Cloud tenant 'Default' (default)\n")
			root.wantAuthFile(t, s.AdminKey, adminTenant)
			root.auth(t, "status").status(t, s.URL, adminTenant, "Default (default)", "admin@localhost", sqldb.BootstrapKeyName, s.AdminKey)
			root.auth(t, "list-tenants").ok(t, tenantsTable(adminTenant, two.ID, adminTenant))
		})

		t.Run("switch-tenants", func(t *testing.T) {
			admin.auth(t, "switch-tenants", "--slug", "tenant-two").ok(t, "Tenant switched to "+two.ID+"\n")
			admin.wantAuthFile(t, s.AdminKey, two.ID)
			admin.auth(t, "list-tenants").ok(t, tenantsTable(adminTenant, two.ID, two.ID))
			admin.auth(t, "status").status(t, api, two.ID, "Tenant Two (tenant-two)", "admin@localhost", sqldb.BootstrapKeyName, s.AdminKey)

			admin.auth(t, "switch-tenants", "--id", adminTenant).ok(t, "Tenant switched to "+adminTenant+"\n")
			admin.wantAuthFile(t, s.AdminKey, adminTenant)
			admin.auth(t, "switch-tenants", "-i", two.ID).ok(t, "Tenant switched to "+two.ID+"\n")
			admin.wantAuthFile(t, s.AdminKey, two.ID)
			admin.auth(t, "switch-tenants", "-s", "default").ok(t, "Tenant switched to "+adminTenant+"\n")
			admin.wantAuthFile(t, s.AdminKey, adminTenant)
			admin.auth(t, "switch-tenants", "-s", "tenant-two").ok(t, "Tenant switched to "+two.ID+"\n")

			// Failures change nothing on disk.
			admin.auth(t, "switch-tenants", "--id", otherTenant).want(t, 1, "Unauthorized. Your API key is not valid for that tenant.\n", "")
			admin.auth(t, "switch-tenants", "--slug", "other-team").want(t, 1, "", "Error: No matching tenant found for slug 'other-team'.\n")
			admin.auth(t, "switch-tenants", "--slug", "nope").want(t, 1, "", "Error: No matching tenant found for slug 'nope'.\n")
			admin.wantAuthFile(t, s.AdminKey, two.ID)

			// --default drops tenant_id; the key's default tenant is used again.
			admin.auth(t, "switch-tenants", "--default").ok(t, "Tenant restored to the default tenant for your API key: "+adminTenant+"\n")
			admin.wantAuthFile(t, s.AdminKey, "")
			admin.auth(t, "list-tenants").ok(t, tenantsTable(adminTenant, two.ID, adminTenant))
			admin.auth(t, "status").status(t, api, adminTenant, "Default (default)", "admin@localhost", sqldb.BootstrapKeyName, s.AdminKey)

			// A tenant set in the environment wins and blocks the CLI.
			envTenant := newAuthCLI(t, s, rec, api, "PREFECT__CLOUD__TENANT_ID", two.ID, "PREFECT__CLOUD__API_KEY", s.AdminKey)
			envTenant.auth(t, "switch-tenants", "-d").want(t, 1, "Your tenant id has been set in the Prefect config instead of with the CLI. To switch tenants with the CLI, remove the config key  `prefect.cloud.tenant_id`\n", "")
			envTenant.auth(t, "list-tenants").ok(t, tenantsTable(adminTenant, two.ID, two.ID))
		})

		var ciKey, expKey, quietKey string
		expDate := time.Now().UTC().AddDate(2, 0, 1).Format("2006-01-02")
		t.Run("create-key", func(t *testing.T) {
			ciKey = createdKey(t, admin.auth(t, "create-key", "-n", "ci"), "")
			if tid, uid := authInfoOf(t, s, ciKey); tid != adminTenant || uid != adminID {
				t.Fatalf("new key acts as %s in %s, want %s in %s", uid, tid, adminID, adminTenant)
			}
			expKey = createdKey(t, admin.auth(t, "create-key", "--name", "expiring", "--expire", expDate), " that will expire in 2 years")
			authInfoOf(t, s, expKey)

			r := admin.auth(t, "create-key", "-n", "quiet", "-q")
			quietKey = strings.TrimSuffix(r.stdout, "\n")
			r.shown = quietKey
			if _, err := latchkey.ParseSecret(quietKey); err != nil || r.code != 0 || r.stderr != "" || r.stdout != quietKey+"\n" {
				t.Fatalf("quiet create-key must print only the key:\n%s", r)
			}
			authInfoOf(t, s, quietKey)
			if distinct := map[string]bool{s.AdminKey: true, ciKey: true, expKey: true, quietKey: true}; len(distinct) != 4 {
				t.Fatal("create-key printed an existing key")
			}

			admin.auth(t, "create-key", "-n", "past", "-e", "1900-1-1").want(t, 1, "Given expiration time '1900-1-1' is a time in the past: 1900-01-01T00:00:00+00:00\n", "")
			admin.auth(t, "create-key", "-n", "garbage", "-e", "foo").want(t, 1, "Failed to parse expiration time. Invalid date string: foo\nPlease pass a date in a dateutil parsable format.\n", "")
		})

		t.Run("list-keys", func(t *testing.T) {
			keys := keysOf(t, s, s.AdminKey)
			if len(keys) != 4 {
				t.Fatalf("keys=%+v", keys)
			}
			expWidth := len("EXPIRES AT") + 2
			if len(expDate+"T00:00:00+00:00") > expWidth {
				expWidth = len(expDate + "T00:00:00+00:00")
			}
			want := fmt.Sprintf("%-19s  %-36s  %-*s  %s\n", "NAME", "ID", expWidth, "EXPIRES AT", "IDENTIFIER")
			for _, k := range keys {
				if !strings.HasPrefix(k.Identifier, "lku_…") || len([]rune(k.Identifier)) != 9 {
					t.Fatalf("%s identifier=%q, want lku_…xxxx", k.Name, k.Identifier)
				}
				exp := "NEVER"
				switch k.Name {
				case "expiring":
					if k.ExpiresAt == nil || *k.ExpiresAt != expDate+"T00:00:00+00:00" {
						t.Fatalf("expiring key expires_at=%v, want %sT00:00:00+00:00", k.ExpiresAt, expDate)
					}
					exp = *k.ExpiresAt
				case sqldb.BootstrapKeyName, "ci", "quiet":
					if k.ExpiresAt != nil {
						t.Fatalf("%s expires_at=%v", k.Name, *k.ExpiresAt)
					}
				default:
					t.Fatalf("unexpected key %q", k.Name)
				}
				want += fmt.Sprintf("%-19s  %s  %-*s  %s\n", k.Name, k.ID, expWidth, exp, k.Identifier)
			}
			admin.auth(t, "list-keys").ok(t, want)
		})

		t.Run("revoke-key", func(t *testing.T) {
			id := keyID(t, keysOf(t, s, s.AdminKey), "ci")
			admin.auth(t, "revoke-key", "-i", id).ok(t, "Key successfully revoked!\n")
			s.Do(t, "/graphql", ciKey, "", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")
			if slices.ContainsFunc(keysOf(t, s, s.AdminKey), func(k keyRow) bool { return k.ID == id }) {
				t.Fatal("revoked key still listed")
			}
			// Revoking it again, or a key that never was, fails.
			admin.auth(t, "revoke-key", "--id", id).want(t, 1, "Unable to revoke key '"+id+"'\n", "")
			admin.auth(t, "revoke-key", "-i", "99999999-9999-4999-8999-999999999999").want(t, 1, "Unable to revoke key '99999999-9999-4999-8999-999999999999'\n", "")
			// Another user's key is not visible, hence not revocable.
			other := keyID(t, keysOf(t, s, otherKey), sqldb.BootstrapKeyName)
			admin.auth(t, "revoke-key", "-i", other).want(t, 1, "Unable to revoke key '"+other+"'\n", "")
			authInfoOf(t, s, otherKey)

			// The revoked key, configured in the environment: status says
			// it does not work; everything else refuses it.
			revoked := newAuthCLI(t, s, rec, api, "PREFECT__CLOUD__API_KEY", ciKey)
			revoked.auth(t, "status").ok(t, "You are connecting to "+api+"\nYou are authenticating with an API key\n"+
				"Your authentication is not working: The server does not accept your API key: it was revoked, or it is not a key of this server. Log in with a valid key: `latchkey auth login -k KEY`.\n")
			revoked.auth(t, "list-tenants").want(t, 1, "You are not authenticated. Use `latchkey auth login` first.\n", "")
			revoked.auth(t, "login", "-k", ciKey).want(t, 1, "Your API key is set in the Prefect config instead of with the CLI. To log in with the CLI, remove the config key `prefect.cloud.api_key`\n", "")
			fresh := newAuthCLI(t, s, rec, api)
			fresh.auth(t, "login", "-k", ciKey).want(t, 1, "Unauthorized. Invalid Prefect Cloud API key.\n", "")
		})

		// Deprecated API tokens.
		var userTok, runnerTok string
		t.Run("tokens", func(t *testing.T) {
			const warnCreate = "WARNING: API tokens are deprecated. Please use `latchkey auth create-key` to create an API key instead.\n"
			createToken := func(name, scope string) string {
				r := admin.auth(t, "create-token", "-n", name, "-s", scope)
				tok := strings.TrimSuffix(r.stdout, "\n")
				r.shown = tok
				if _, err := latchkey.ParseSecret(tok); err != nil || !strings.HasPrefix(tok, latchkey.PrefixAPIToken) || r.code != 0 || r.stdout != tok+"\n" || r.stderr != warnCreate {
					t.Fatalf("create-token must warn on stderr and print only the token:\n%s", r)
				}
				return tok
			}
			userTok = createToken("user-tok", "USER")
			runnerTok = createToken("runner-tok", "RUNNER")

			var tokens []struct{ ID, Name string }
			s.MustDo(t, s.AdminKey, "", "query { api_token { id name } }", nil, "api_token", &tokens)
			if len(tokens) != 2 || tokens[0].Name != "user-tok" || tokens[1].Name != "runner-tok" {
				t.Fatalf("tokens=%+v", tokens)
			}
			const warnList = "WARNING: API tokens are deprecated. Please consider removing your remaining tokens and using API keys instead.\n"
			admin.auth(t, "list-tokens").want(t, 0, fmt.Sprintf("NAME        ID\n%-10s  %s\n%-10s  %s\n", "user-tok", tokens[0].ID, "runner-tok", tokens[1].ID), warnList)

			// 0.15's token login: settings.toml under ~/.prefect/client/<slug of the URL>/.
			tk := newAuthCLI(t, s, rec, api)
			tk.auth(t, "login", "-t", userTok).ok(t, "WARNING: API tokens are deprecated. Please create an API key and use `latchkey auth login --key <KEY>` to login instead.\nLogin successful!\n")
			wantFile(t, tk.settingsFile(), fmt.Sprintf("active_tenant_id = %q\napi_token = %q\n", adminTenant, userTok))
			if _, err := os.Stat(tk.authFile()); !os.IsNotExist(err) {
				t.Fatalf("token login wrote auth.toml: %v", err)
			}
			tk.auth(t, "status").ok(t, "You are connecting to "+api+"\nYou are logged in with an API token. These have been deprecated in favor of API keys.\n")
			tk.auth(t, "list-tenants").ok(t, tenantsTable(adminTenant, two.ID, adminTenant))
			tk.auth(t, "switch-tenants", "-d").want(t, 1, "The default tenant flag can only be used with API keys.\n", "")
			tk.auth(t, "switch-tenants", "--slug", "tenant-two").ok(t, "Tenant switched to "+two.ID+"\n")
			wantFile(t, tk.settingsFile(), fmt.Sprintf("active_tenant_id = %q\napi_token = %q\n", two.ID, userTok))
			tk.auth(t, "list-tenants").ok(t, tenantsTable(adminTenant, two.ID, two.ID))
			tk.auth(t, "switch-tenants", "--id", adminTenant).ok(t, "Tenant switched to "+adminTenant+"\n")
			wantFile(t, tk.settingsFile(), fmt.Sprintf("active_tenant_id = %q\napi_token = %q\n", adminTenant, userTok))
			tk.auth(t, "list-tokens").want(t, 0, fmt.Sprintf("NAME        ID\n%-10s  %s\n%-10s  %s\n", "user-tok", tokens[0].ID, "runner-tok", tokens[1].ID), warnList)

			// A RUNNER token may not create keys (FORBIDDEN, not a crash).
			runner := newAuthCLI(t, s, rec, api, "PREFECT__CLOUD__AUTH_TOKEN", runnerTok)
			// The server's message is shown, not a dumped list of errors.
			runner.auth(t, "create-key", "-n", "from-runner").want(t, 1, "Retrieving user information...\nCreating key...\n", "Error: RUNNER tokens may only be used by agents.\n")
			runner.auth(t, "revoke-token", "-i", tokens[0].ID).want(t, 1,
				"Auth token has been set in the environment. The CLI cannot be used to manage your auth. Unset the key with `unset PREFECT__CLOUD__AUTH_TOKEN`\n", "Aborted!\n")

			// Revoke the USER token: the API refuses it, and the CLI that
			// logged in with it forgets its tenant and reports it.
			admin.auth(t, "revoke-token", "-i", tokens[0].ID).ok(t, "Token successfully revoked\n")
			s.Do(t, "/graphql", userTok, "", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")
			admin.auth(t, "revoke-token", "-i", tokens[0].ID).ok(t, "Unable to revoke token with ID "+tokens[0].ID+"\n")
			tk.auth(t, "list-tenants").want(t, 1, "You are not authenticated. Use `latchkey auth login` first.\n", "")
			wantFile(t, tk.settingsFile(), fmt.Sprintf("api_token = %q\n", userTok))
			tk.run(t, "y\n", "auth", "logout").ok(t, "Are you sure you want to log out of Prefect Cloud? This will remove your API token from this machine. [y/N]: Logged out of Prefect Cloud\n")
			wantFile(t, tk.settingsFile(), "")
			tk.auth(t, "logout").want(t, 1, "You are not logged in to Prefect Cloud. Use `latchkey auth login` to log in first.\n", "")
		})

		t.Run("read-only user", func(t *testing.T) {
			// Added by email through the API, given a key through the store.
			var created struct {
				Membership struct {
					UserID string `json:"user_id"`
					Role   string
				}
			}
			s.MustDo(t, s.AdminKey, adminTenant, `mutation { create_membership(input: {email: "viewer@example.com", role: "READ_ONLY_USER"}) { membership { user_id role } } }`, nil, "create_membership", &created)
			m := created.Membership
			if m.Role != "READ_ONLY_USER" {
				t.Fatalf("membership=%+v", m)
			}
			viewer := &latchkey.User{ID: m.UserID, Kind: latchkey.UserKindHuman, Email: "viewer@example.com"}
			viewerKey, err := sqldb.NewAPIKeyService(s.DB).CreateAPIKey(
				latchkeytest.AuthContext(context.Background(), viewer, adminTenant, latchkey.RoleReadOnlyUser), &latchkey.APIKey{Name: "viewer"})
			if err != nil {
				t.Fatal(err)
			}
			rec.addSecret(viewerKey, "viewer key")

			v := newAuthCLI(t, s, rec, api)
			v.auth(t, "login", "-k", viewerKey).ok(t, "Logged in to Prefect Cloud tenant 'Default' (default)\n")
			v.wantAuthFile(t, viewerKey, adminTenant)
			v.auth(t, "list-tenants").ok(t, "NAME     SLUG     ID\nDefault  default  "+adminTenant+"  *\n")
			v.auth(t, "switch-tenants", "-s", "tenant-two").want(t, 1, "", "Error: No matching tenant found for slug 'tenant-two'.\n")
			v.auth(t, "switch-tenants", "-i", two.ID).want(t, 1, "Unauthorized. Your API key is not valid for that tenant.\n", "")
			v.wantAuthFile(t, viewerKey, adminTenant)

			// Their own key: allowed.
			own := createdKey(t, v.auth(t, "create-key", "-n", "mine"), "")
			if _, uid := authInfoOf(t, s, own); uid != m.UserID {
				t.Fatalf("viewer's new key belongs to %s", uid)
			}
			keys := keysOf(t, s, viewerKey)
			if len(keys) != 2 || keys[0].Name != "viewer" || keys[1].Name != "mine" {
				t.Fatalf("viewer keys=%+v", keys)
			}
			v.auth(t, "list-keys").ok(t, fmt.Sprintf("%-6s  %-36s  %-12s  %s\n%-6s  %s  NEVER         %s\n%-6s  %s  NEVER         %s\n",
				"NAME", "ID", "EXPIRES AT", "IDENTIFIER", keys[0].Name, keys[0].ID, keys[0].Identifier, keys[1].Name, keys[1].ID, keys[1].Identifier))
			// Others' keys: invisible, so not revocable.
			adminKeyID := keyID(t, keysOf(t, s, s.AdminKey), sqldb.BootstrapKeyName)
			v.auth(t, "revoke-key", "-i", adminKeyID).want(t, 1, "Unable to revoke key '"+adminKeyID+"'\n", "")
			authInfoOf(t, s, s.AdminKey)
			// A RUNNER token needs a TENANT_ADMIN: FORBIDDEN.
			v.auth(t, "create-token", "-n", "runner", "-s", "RUNNER").want(t, 1, "",
				"WARNING: API tokens are deprecated. Please use `latchkey auth create-key` to create an API key instead.\nError: Only a tenant admin may do that.\n")
			// Their own key can be revoked by them.
			v.auth(t, "revoke-key", "-i", keyID(t, keys, "mine")).ok(t, "Key successfully revoked!\n")
			s.Do(t, "/graphql", own, "", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")
		})

		t.Run("logout", func(t *testing.T) {
			admin.switchBack(t, adminTenant)
			admin.run(t, "n\n", "auth", "logout").want(t, 1, "Are you sure you want to log out of Prefect Cloud? This will remove your API key from this machine. [y/N]: ", "Aborted!\n")
			admin.wantAuthFile(t, s.AdminKey, adminTenant)
			admin.run(t, "y\n", "auth", "logout").ok(t, "Are you sure you want to log out of Prefect Cloud? This will remove your API key from this machine. [y/N]: Logged out of Prefect Cloud\n")
			admin.wantAuthFile(t, "", "")
			admin.auth(t, "list-tenants").want(t, 1, "You are not authenticated. Use `latchkey auth login` first.\n", "")
			admin.auth(t, "status").ok(t, "You are connecting to "+api+"\nYou are not logged in! Use `latchkey auth login` to login with an API key.\n")
			admin.auth(t, "logout").want(t, 1, "You are not logged in to Prefect Cloud. Use `latchkey auth login` to log in first.\n", "")
			// Unlike Prefect 1.0/1.1, an emptied section does not break the next login.
			admin.auth(t, "login", "-k", expKey).ok(t, "Logged in to Prefect Cloud tenant 'Default' (default)\n")
			admin.wantAuthFile(t, expKey, adminTenant)
		})

		t.Run("usage", func(t *testing.T) {
			admin.auth(t, "create-key").want(t, 2, "", "Usage: latchkey auth create-key [OPTIONS]\nTry 'latchkey auth create-key -h' for help.\n\nError: Missing option '--name' / '-n'.\n")
			admin.auth(t, "create-key", "-q").want(t, 2, "", "Usage: latchkey auth create-key [OPTIONS]\nTry 'latchkey auth create-key -h' for help.\n\nError: Missing option '--name' / '-n'.\n")
			admin.auth(t, "revoke-key").want(t, 2, "", "Usage: latchkey auth revoke-key [OPTIONS]\nTry 'latchkey auth revoke-key -h' for help.\n\nError: Missing option '--id' / '-i'.\n")
			admin.auth(t, "create-token", "-n", "x").want(t, 2, "", "Usage: latchkey auth create-token [OPTIONS]\nTry 'latchkey auth create-token -h' for help.\n\nError: Missing option '--scope' / '-s'.\n")
			admin.auth(t, "nope").want(t, 2, "", "Usage: latchkey auth [OPTIONS] COMMAND [ARGS]...\nTry 'latchkey auth -h' for help.\n\nError: No such command 'nope'.\n")
			if r := admin.auth(t, "create-key", "--help"); r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, "Usage: latchkey auth create-key [OPTIONS]\n") {
				t.Fatalf("%s", r)
			}
			for _, args := range [][]string{{}, {"--help"}} {
				if r := admin.auth(t, args...); r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, "Usage: latchkey auth [OPTIONS] COMMAND [ARGS]...\n") {
					t.Fatalf("%s", r)
				}
			}
			// Nothing of that reached the server: the file is as login left it.
			admin.wantAuthFile(t, expKey, adminTenant)
		})

		t.Run("secrets", func(t *testing.T) { rec.checkNoLeaks(t, s) })
	})
}

// switchBack puts the admin's CLI in tenant id (so logout has a tenant to drop).
func (c *authCLI) switchBack(t *testing.T, id string) {
	t.Helper()
	c.auth(t, "switch-tenants", "-i", id).ok(t, "Tenant switched to "+id+"\n")
}

// fragments returns the parts of a secret that must never be printed: the
// whole text and, for Latchkey secrets, the text after the prefix; for
// JWTs, the signature.
func fragments(secret string) []string {
	out := []string{secret}
	if _, err := latchkey.ParseSecret(secret); err == nil {
		out = append(out, secret[4:])
	}
	if parts := strings.Split(secret, "."); len(parts) == 3 && len(parts[2]) >= 16 {
		out = append(out, parts[2])
	}
	return out
}

// checkNoLeaks checks that every secret appears only in the one line of the
// one run that showed it, once on the server's stdout for the bootstrap
// key, and never in the server's logs.
func (rec *authRecorder) checkNoLeaks(t *testing.T, s *TestServer) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	kinds := map[string]int{}
	for secret := range rec.secrets {
		switch {
		case strings.HasPrefix(secret, latchkey.PrefixRefreshToken):
			kinds["refresh token"]++
		case strings.HasPrefix(secret, latchkey.PrefixAPIToken):
			kinds["api token"]++
		case strings.HasPrefix(secret, latchkey.PrefixUserKey):
			kinds["api key"]++
		case strings.Count(secret, ".") == 2:
			kinds["access token"]++
		}
	}
	// The sniffer must have seen what the token flow minted, or this
	// check checks less than it claims.
	for _, k := range []string{"refresh token", "api token", "api key", "access token"} {
		if kinds[k] == 0 {
			t.Fatalf("no %s recorded: %v", k, kinds)
		}
	}

	logs := s.Logs.String()
	if logs == "" {
		t.Fatal("no server logs to check")
	}
	serverOut := s.Stdout.String()
	if s.AdminKey != "" {
		if got := strings.Count(serverOut, s.AdminKey+"\n"); got != 1 {
			t.Fatalf("bootstrap key shown %d times", got)
		}
		serverOut = strings.Replace(serverOut, s.AdminKey+"\n", "", 1)
	}
	shownBy := map[string]int{}
	for _, r := range rec.runs {
		text := r.stdout + r.stderr
		if r.shown != "" {
			shownBy[r.shown]++
			// Only its one line may hold it.
			lines := strings.SplitAfter(text, "\n")
			if i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, r.shown) }); i >= 0 {
				text = strings.Join(slices.Delete(lines, i, i+1), "")
			} else {
				t.Errorf("%s\ndoes not show its secret", r)
			}
		}
		for secret, what := range rec.secrets {
			for _, f := range fragments(secret) {
				if strings.Contains(text, f) {
					t.Errorf("%s\nprints a %s", r, what)
				}
			}
		}
	}
	for secret, what := range rec.secrets {
		if shownBy[secret] > 1 {
			t.Errorf("a %s was shown by %d runs", what, shownBy[secret])
		}
		for _, f := range fragments(secret) {
			if strings.Contains(logs, f) {
				t.Errorf("server logs contain a %s", what)
			}
			if strings.Contains(serverOut, f) {
				t.Errorf("server stdout contains a %s besides its show-once line", what)
			}
		}
	}
}

// The deprecated token path keeps its access token fresh within one run:
// a CLI whose access token nears expiry between two requests renews it
// with refresh_token (bearer: the refresh token) before using it.
func TestAuthCLI_TokenRefresh(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine string) {
		clock := latchkeytest.NewClockAt(time.Now())
		s := MustRunMain(t, engine, func(m *main.Main) { m.Now = clock.Now })
		rec := newAuthRecorder()
		rec.addSecret(s.AdminKey, "bootstrap key")
		var tok struct{ Token string }
		s.MustDo(t, s.AdminKey, "", "mutation($input: create_api_token_input!) { create_api_token(input: $input) { token } }",
			map[string]any{"input": map[string]any{"name": "mine", "scope": "USER"}}, "create_api_token", &tok)
		rec.addSecret(tok.Token, "api token")

		c := newAuthCLI(t, s, rec, s.URL+"/graphql")
		c.auth(t, "login", "-t", tok.Token).ok(t, "WARNING: API tokens are deprecated. Please create an API key and use `latchkey auth login --key <KEY>` to login instead.\nLogin successful!\n")

		// From now on, each switch_tenant answer is followed by 9m45s
		// passing: the new access token then expires within 30 seconds.
		type exchange struct{ op, bearer string }
		var seen []exchange
		var mu sync.Mutex
		c.http.Transport = sniffer{base: http.DefaultTransport, rec: rec, hook: func(bearer, body string, resp any) {
			op := "other"
			for _, name := range []string{"switch_tenant", "refresh_token", "api_token", "tenant("} {
				if strings.Contains(body, name) {
					op = strings.TrimSuffix(name, "(")
					break
				}
			}
			mu.Lock()
			seen = append(seen, exchange{op, bearer})
			mu.Unlock()
			if op == "switch_tenant" {
				clock.Add(latchkey.DefaultAccessTokenTTL - 15*time.Second)
			}
		}}
		c.now = clock.Now
		r := c.auth(t, "list-tokens")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "NAME    ID\nmine    ") {
			t.Fatalf("%s", r)
		}
		var ops []string
		for _, e := range seen {
			ops = append(ops, e.op)
		}
		if got, want := strings.Join(ops, " "), "tenant switch_tenant refresh_token api_token"; got != want {
			t.Fatalf("requests: %s, want %s", got, want)
		}
		access, refresh, final := seen[1], seen[2], seen[3]
		if access.bearer != tok.Token || !strings.HasPrefix(refresh.bearer, latchkey.PrefixRefreshToken) ||
			strings.Count(final.bearer, ".") != 2 || final.bearer == tok.Token {
			t.Fatalf("bearers: switch_tenant %.8s…, refresh_token %.8s…, api_token %.8s…", access.bearer, refresh.bearer, final.bearer)
		}
		// The refresh token was single-use.
		s.Do(t, "/graphql", refresh.bearer, "", qRefreshToken, map[string]any{"input": map[string]any{"access_token": "x"}}).mustFail(t, "UNAUTHENTICATED")
		rec.checkNoLeaks(t, s)
	})
}

// The Go client's TokenSource against the real server: it exchanges a key
// for access tokens in the chosen tenant, renews them with refresh_token
// before they expire, and reports the key's revocation as an
// AuthorizationError.
func TestAuthClient_TokenSource(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine string) {
		clock := latchkeytest.NewClockAt(time.Now())
		s := MustRunMain(t, engine, func(m *main.Main) { m.Now = clock.Now })
		rec := newAuthRecorder()
		rec.addSecret(s.AdminKey, "bootstrap key")
		ctx := context.Background()
		var two tenantRow
		s.MustDo(t, s.AdminKey, "", `mutation { create_tenant(input: {name: "Tenant Two", slug: "tenant-two"}) { id slug name } }`, nil, "create_tenant", &two)
		key := createKey(t, s, s.AdminKey, map[string]any{"name": "agent"})
		rec.addSecret(key, "agent key")

		var ops []string
		var mu sync.Mutex
		hc := &http.Client{Transport: sniffer{base: http.DefaultTransport, rec: rec, hook: func(bearer, body string, _ any) {
			op := "query"
			switch {
			case strings.Contains(body, "switch_tenant"):
				op = "switch_tenant"
			case strings.Contains(body, "refresh_token"):
				op = "refresh_token"
			}
			kind := "jwt"
			if bearer == key {
				kind = "key"
			} else if strings.HasPrefix(bearer, latchkey.PrefixRefreshToken) {
				kind = "refresh"
			}
			mu.Lock()
			ops = append(ops, op+"/"+kind)
			mu.Unlock()
		}}}
		c := &client.Client{URL: s.URL, APIKey: key, HTTP: hc, Now: clock.Now}
		c.TokenSource = client.NewTokenSource(c, two.ID)
		step := func(want string) {
			t.Helper()
			mu.Lock()
			ops = nil
			mu.Unlock()
			info, err := c.AuthInfo(ctx, "tenant_id")
			if err != nil {
				t.Fatal(err)
			}
			if info.TenantID == nil || *info.TenantID != two.ID {
				t.Fatalf("acting in %v, want %s", info.TenantID, two.ID)
			}
			if got := strings.Join(ops, " "); got != want {
				t.Fatalf("requests: %s, want %s", got, want)
			}
		}
		step("switch_tenant/key query/jwt")
		step("query/jwt")
		clock.Add(latchkey.DefaultAccessTokenTTL - 15*time.Second)
		step("refresh_token/refresh query/jwt")
		clock.Add(latchkey.DefaultAccessTokenTTL + time.Minute)
		step("refresh_token/refresh query/jwt")

		// Revoking the key kills its access and refresh tokens.
		var keys []keyRow
		s.MustDo(t, s.AdminKey, "", qListKeys, nil, "auth_api_key", &keys)
		s.MustDo(t, s.AdminKey, "", qRevokeKey, map[string]any{"input": map[string]any{"key_id": keyID(t, keys, "agent")}}, "delete_api_key", nil)
		_, err := c.AuthInfo(ctx, "tenant_id")
		var authErr *client.AuthorizationError
		if !errors.As(err, &authErr) {
			t.Fatalf("after revocation: %v", err)
		}
		for secret := range rec.secrets {
			for _, f := range fragments(secret) {
				if strings.Contains(err.Error(), f) || strings.Contains(s.Logs.String(), f) {
					t.Fatal("a secret in the error or the server logs")
				}
			}
		}
	})
}
