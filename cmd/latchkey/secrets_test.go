package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	main "github.com/latchkey/latchkey/cmd/latchkey"
	"github.com/latchkey/latchkey/graphql"
	lkhttp "github.com/latchkey/latchkey/http"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// The no-secret-in-any-output test: a representative session (server at
// debug level, the CLI, the admin commands, direct API calls, errors and a
// panic) collects every key, token, refresh token, JWT, session and reset
// secret issued or sent, and then greps every byte of output for them. The
// only place a secret may appear is the single line that shows it once.

// secretTextRE finds Latchkey secrets and JWTs in files and responses.
var secretTextRE = regexp.MustCompile(`lk[usktrcp]_[0-9A-Za-z]{38}|eyJ[0-9A-Za-z_-]+\.[0-9A-Za-z_-]+\.[0-9A-Za-z_-]+`)

// secOutput is one captured stream. shown lists the secrets it may show,
// each on exactly one line.
type secOutput struct {
	what  string
	text  string
	shown []string
}

// secSession collects secrets and outputs.
type secSession struct {
	mu      sync.Mutex
	secrets map[string]string // secret → where it was seen first
	outputs []*secOutput
}

func (c *secSession) secret(s, where string) {
	if s == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.secrets == nil {
		c.secrets = map[string]string{}
	}
	if _, ok := c.secrets[s]; !ok {
		c.secrets[s] = where
	}
}

// scan records every secret-looking string in text.
func (c *secSession) scan(text, where string) {
	for _, m := range secretTextRE.FindAllString(text, -1) {
		c.secret(m, where)
	}
}

func (c *secSession) output(what, text string, shown ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.outputs = append(c.outputs, &secOutput{what: what, text: text, shown: shown})
}

// secSniffer records the credential of every request and the secrets of
// every response the CLI exchanges with the server.
type secSniffer struct{ c *secSession }

func (s secSniffer) RoundTrip(req *http.Request) (*http.Response, error) {
	if bearer, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
		s.c.secret(bearer, "CLI request credential")
	}
	if req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			s.c.scan(string(b), "CLI request body")
		}
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	s.c.scan(string(body), "response to the CLI")
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// cli runs `latchkey args...` as the binary would, with home as $HOME.
type secCLI struct {
	c    *secSession
	home string
	env  map[string]string
	http *http.Client
}

func (u *secCLI) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = main.Run(context.Background(), args, &main.Env{
		Stdin: strings.NewReader("y\n"), Stdout: &out, Stderr: &errb, // confirms logout
		Getenv: func(k string) string { return u.env[k] }, HomeDir: u.home,
		Now: time.Now, HTTPClient: u.http,
	})
	return code, out.String(), errb.String()
}

// auth runs `latchkey auth args...`; want is the exit code expected. The
// run's output is recorded; a secret it shows (the last word of the line
// starting with showPrefix, or the whole stdout for showPrefix "*") is
// returned and allowed on that one line.
func (u *secCLI) auth(t *testing.T, want int, showPrefix string, args ...string) (shown, stdout string) {
	t.Helper()
	code, stdout, stderr := u.run(t, append([]string{"auth"}, args...)...)
	what := "latchkey auth " + strings.Join(args, " ")
	if code != want {
		t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", what, code, want, stdout, stderr)
	}
	switch {
	case showPrefix == "*":
		shown = strings.TrimSpace(stdout)
	case showPrefix != "":
		for _, line := range strings.Split(stdout, "\n") {
			if strings.HasPrefix(line, showPrefix) {
				f := strings.Fields(line)
				shown = f[len(f)-1]
			}
		}
	}
	if showPrefix != "" {
		if _, err := latchkey.ParseSecret(shown); err != nil {
			t.Fatalf("%s: shows %q, not a secret\nstdout: %s", what, shown, stdout)
		}
		u.c.secret(shown, what)
		u.c.output(what+" (stdout)", stdout, shown)
	} else {
		u.c.output(what+" (stdout)", stdout)
	}
	u.c.output(what+" (stderr)", stderr)
	return shown, stdout
}

func TestNoSecretInAnyOutput(t *testing.T) {
	t.Parallel()
	c := &secSession{}
	clock := &azClock{}
	s := MustRunMain(t, "sqlite", func(m *main.Main) { m.Now = clock.Now }) // logs at debug level
	ctx := context.Background()
	c.secret(s.AdminKey, "bootstrap key")
	c.scan(s.Stdout.String(), "server stdout") // the bootstrap key and the reset link

	// A second tenant, and a member of both, through the API.
	var two tenantRow
	s.MustDo(t, s.AdminKey, "", `mutation { create_tenant(input: {name: "Secret Two"}) { id slug name } }`, nil, "create_tenant", &two)

	// The CLI: login, tenants, keys, tokens, errors.
	sniff := &http.Client{Timeout: 15 * time.Second, Transport: secSniffer{c}}
	u := &secCLI{c: c, home: t.TempDir(), env: map[string]string{"PREFECT__CLOUD__API": s.URL}, http: sniff}
	u.auth(t, 0, "", "login", "-k", s.AdminKey)
	u.auth(t, 0, "", "status")
	u.auth(t, 0, "", "list-tenants")
	u.auth(t, 0, "", "switch-tenants", "-s", two.Slug)
	u.auth(t, 0, "", "list-tenants")
	u.auth(t, 0, "", "switch-tenants", "--default")
	key1, _ := u.auth(t, 0, "Successfully created key:", "create-key", "-n", "secret-test-1")
	key2, _ := u.auth(t, 0, "*", "create-key", "-n", "secret-test-2", "-q", "-e", time.Now().Add(48*time.Hour).UTC().Format(time.RFC3339))
	u.auth(t, 1, "", "create-key", "-n", "secret-test-3", "-e", "2001-01-01")
	_, list := u.auth(t, 0, "", "list-keys")
	id1 := ""
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "secret-test-1" {
			id1 = f[1]
		}
	}
	if id1 == "" {
		t.Fatalf("secret-test-1 not listed:\n%s", list)
	}
	u.auth(t, 0, "", "revoke-key", "-i", id1)
	u.auth(t, 1, "", "revoke-key", "-i", id1)
	u.auth(t, 1, "", "revoke-key", "-i", "not-a-uuid")
	tokU, _ := u.auth(t, 0, "*", "create-token", "-n", "secret-token-user", "-s", "USER")
	tokR, _ := u.auth(t, 0, "*", "create-token", "-n", "secret-token-runner", "-s", "RUNNER")
	u.auth(t, 1, "", "create-token", "-n", "secret-token-bad", "-s", "BOGUS")
	u.auth(t, 0, "", "list-tokens")

	// Logging in with a revoked, a mistyped and a garbage key fails, in
	// another home.
	v := &secCLI{c: c, home: t.TempDir(), env: u.env, http: sniff}
	typo := []byte(key2)
	typo[12] ^= 1
	for _, bad := range []string{key1, string(typo), "lku_garbage", s.AdminKey + "x"} {
		c.secret(bad, "bad key")
		v.auth(t, 1, "", "login", "-k", bad)
	}
	// The key from the environment, and a key that expired.
	w := &secCLI{c: c, home: t.TempDir(), env: map[string]string{"PREFECT__CLOUD__API": s.URL, "PREFECT__CLOUD__API_KEY": key2}, http: sniff}
	w.auth(t, 0, "", "status")
	w.auth(t, 0, "", "list-keys")

	// Deprecated tokens: login mints access and refresh tokens, kept in
	// ~/.prefect; switching tenants with a token.
	x := &secCLI{c: c, home: t.TempDir(), env: u.env, http: sniff}
	x.auth(t, 0, "", "login", "-t", tokU)
	x.auth(t, 0, "", "status")
	x.auth(t, 0, "", "list-tenants")
	x.auth(t, 0, "", "switch-tenants", "-s", two.Slug)
	x.auth(t, 0, "", "list-keys")
	x.auth(t, 0, "", "logout", "--token")
	y := &secCLI{c: c, home: t.TempDir(), env: u.env, http: sniff}
	y.auth(t, 0, "", "login", "-t", tokR) // not a USER token: an error, exit 0 as in Prefect
	u.auth(t, 0, "", "revoke-token", "-i", mustTokenIDByName(t, s, "secret-token-runner"))
	y.auth(t, 0, "", "login", "-t", tokR) // revoked
	u.auth(t, 0, "", "logout")

	// Whatever the CLI stored on disk is a secret too.
	for _, home := range []string{u.home, v.home, w.home, x.home, y.home} {
		_ = filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				b, _ := os.ReadFile(p)
				c.scan(string(b), p)
			}
			return nil
		})
	}

	// The API directly: access and refresh tokens, reuse, a forged token,
	// an expired key, a session.
	var pair, pair2 tokenPair
	s.MustDo(t, key2, "", qSwitchTenant, map[string]any{"input": map[string]any{"tenant_id": two.ID}}, "switch_tenant", &pair)
	c.secret(pair.AccessToken, "switch_tenant")
	c.secret(pair.RefreshToken, "switch_tenant")
	s.MustDo(t, pair.RefreshToken, "", qRefreshToken, map[string]any{"input": map[string]any{"access_token": pair.AccessToken}}, "refresh_token", &pair2)
	c.secret(pair2.AccessToken, "refresh_token")
	c.secret(pair2.RefreshToken, "refresh_token")
	s.Do(t, "/", pair.RefreshToken, "", qRefreshToken, map[string]any{"input": map[string]any{"access_token": pair.AccessToken}}).mustFail(t, "UNAUTHENTICATED")
	forged := pair2.AccessToken[:len(pair2.AccessToken)-4] + "AAAA"
	c.secret(forged, "forged")
	s.Do(t, "/", forged, "", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")
	s.Do(t, "/", pair2.AccessToken, "99999999-9999-4999-8999-999999999999", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")
	var short struct{ Key string }
	s.MustDo(t, s.AdminKey, "", qCreateKey, map[string]any{"input": map[string]any{"name": "secret-short", "expires_at": clock.Now().Add(time.Minute).Format(time.RFC3339)}}, "create_api_key", &short)
	c.secret(short.Key, "short key")
	clock.Advance(2 * time.Minute)
	s.Do(t, "/", short.Key, "", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")
	session, _, err := s.Auth.CreateSession(ctx, mustUserIDOf(t, s, s.AdminKey))
	if err != nil {
		t.Fatal(err)
	}
	c.secret(session, "session")
	s.MustDo(t, session, "", qAuthInfoTenant, nil, "auth_info", nil)

	// The admin commands, on the server's database and a new one.
	adm := &secCLI{c: c, home: t.TempDir(), env: map[string]string{}}
	code, out, errOut := adm.run(t, "admin", "init", "--db", latchkeytest.MustDSN(t, "sqlite"), "--email", "ops@example.com", "--tenant", "Secret Ops")
	initKey := secretTextRE.FindString(out)
	if code != 0 || initKey == "" {
		t.Fatalf("admin init: %d %s %s", code, out, errOut)
	}
	c.secret(initKey, "admin init")
	c.output("admin init (stdout)", out, initKey)
	c.output("admin init (stderr)", errOut)
	code, out, errOut = adm.run(t, "admin", "password-link", "--db", s.DSN, "--email", "admin@localhost", "--url", s.URL)
	link := secretTextRE.FindString(out)
	if code != 0 || link == "" {
		t.Fatalf("admin password-link: %d %s %s", code, out, errOut)
	}
	c.secret(link, "admin password-link")
	c.output("admin password-link (stdout)", out, link)
	c.output("admin password-link (stderr)", errOut)
	for _, args := range [][]string{
		{"admin", "password-link", "--db", s.DSN, "--email", "nobody@example.com"},
		{"admin", "init", "--db", s.DSN, "--email", "x@example.com", "--tenant", "Secret Two"},
		{"admin", "rotate-signing-key", "--db", s.DSN},
	} {
		_, out, errOut := adm.run(t, args...)
		c.output(strings.Join(args[:2], " ")+" (stdout)", out)
		c.output(strings.Join(args[:2], " ")+" (stderr)", errOut)
	}

	// A panic in a resolver, with a credential in the panic value, goes
	// through the real logger.
	c.secret(key2, "panic value")
	gql := &graphql.Server{
		Auth: s.Auth, Tenants: sqldb.NewTenantService(s.DB), Users: sqldb.NewUserService(s.DB),
		Memberships: sqldb.NewMembershipService(s.DB), ServiceAccounts: sqldb.NewServiceAccountService(s.DB),
		APIKeys: panickyKeys{sqldb.NewAPIKeyService(s.DB), key2}, APITokens: sqldb.NewAPITokenService(s.DB),
		Logger: s.Logger,
	}
	rec := httptest.NewRecorder()
	body, _ := json.Marshal(map[string]any{"query": qCreateKey, "variables": `{"input": {"name": "boom"}}`})
	req := httptest.NewRequest("POST", "/graphql", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key2)
	(&lkhttp.Authenticator{Auth: s.Auth}).API(gql.Handler()).ServeHTTP(rec, req)
	if !strings.Contains(rec.Body.String(), "INTERNAL_SERVER_ERROR") || !strings.Contains(s.Logs.String(), "graphql: panic") {
		t.Fatalf("panic path not taken: %s", rec.Body)
	}
	c.output("panic response", rec.Body.String())

	// All server output, last.
	c.output("server logs", s.Logs.String())
	c.output("server stdout", s.Stdout.String(), s.AdminKey, secretTextRE.FindString(strings.SplitN(s.Stdout.String(), "reset?token=", 2)[1]))

	checkNoSecrets(t, c)
}

// checkNoSecrets fails for every secret fragment found in any output,
// except on the one line of an output that shows it.
func checkNoSecrets(t *testing.T, c *secSession) {
	t.Helper()
	kinds := map[string]int{}
	for sec := range c.secrets {
		switch {
		case strings.Count(sec, ".") == 2:
			kinds["jwt"]++
		case len(sec) > 4:
			kinds[sec[:4]]++
		}
	}
	for _, k := range []string{"jwt", "lku_", "lkt_", "lkr_", "lkc_", "lkp_"} {
		if kinds[k] == 0 {
			t.Errorf("no %s secret collected (%v): the check would check less than it claims", k, kinds)
		}
	}
	if !strings.Contains(c.outputText("server logs"), `"level":"DEBUG"`) {
		t.Error("no debug lines in the server logs")
	}
	for _, o := range c.outputs {
		text := o.text
		for _, sh := range o.shown {
			lines := strings.Split(text, "\n")
			n := 0
			for i, l := range lines {
				if strings.Contains(l, sh) {
					n++
					lines[i] = ""
				}
			}
			if n != 1 {
				t.Errorf("%s shows its secret on %d lines, want 1:\n%s", o.what, n, o.text)
			}
			text = strings.Join(lines, "\n")
		}
		for sec, where := range c.secrets {
			for _, f := range fragments(sec) {
				if strings.Contains(text, f) {
					t.Errorf("%s contains a secret (from %s): %.12s…\n%s", o.what, where, f, o.text)
					break
				}
			}
		}
	}
	t.Logf("checked %d outputs (%d bytes) for %d secrets: %v", len(c.outputs), c.totalBytes(), len(c.secrets), kinds)
}

func (c *secSession) outputText(what string) string {
	for _, o := range c.outputs {
		if o.what == what {
			return o.text
		}
	}
	return ""
}

func (c *secSession) totalBytes() int {
	n := 0
	for _, o := range c.outputs {
		n += len(o.text)
	}
	return n
}

// panickyKeys is the real APIKeyService whose CreateAPIKey panics with a
// credential in the panic value: a bug the recovery path must not leak.
type panickyKeys struct {
	*sqldb.APIKeyService
	secret string
}

func (p panickyKeys) CreateAPIKey(ctx context.Context, key *latchkey.APIKey) (string, error) {
	panic(fmt.Sprintf("boom while handling %s for %+v", p.secret, latchkey.AuthFromContext(ctx)))
}

func mustTokenIDByName(t *testing.T, s *TestServer, name string) string {
	t.Helper()
	var toks []struct{ ID, Name string }
	s.MustDo(t, s.AdminKey, "", `query { api_token { id name } }`, nil, "api_token", &toks)
	for _, tk := range toks {
		if tk.Name == name {
			return tk.ID
		}
	}
	t.Fatalf("no token %s", name)
	return ""
}

func mustUserIDOf(t *testing.T, s *TestServer, cred string) string {
	t.Helper()
	var info authInfo
	s.MustDo(t, cred, "", qAuthInfoUser, nil, "auth_info", &info)
	return *info.UserID
}
