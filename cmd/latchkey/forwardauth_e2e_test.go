package main_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	main "github.com/latchkey/latchkey/cmd/latchkey"
	lkhttp "github.com/latchkey/latchkey/http"
	"github.com/latchkey/latchkey/internal/latchkeytest"
)

// Where the forward-auth tests find the proxies: Debian's packages, which
// .ci/install-proxies installs.
const (
	nginxBin = "/usr/sbin/nginx"
	caddyBin = "/usr/bin/caddy"
)

// docConfig returns the body of the first ```lang block of
// docs/forward-auth.md: the configurations the docs give are the ones
// tested.
func docConfig(t *testing.T, lang string) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "forward-auth.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "\n```"+lang+"\n")
	if !ok {
		t.Fatalf("docs/forward-auth.md has no ```%s block", lang)
	}
	block, _, ok := strings.Cut(rest, "\n```\n")
	if !ok {
		t.Fatalf("docs/forward-auth.md: unterminated ```%s block", lang)
	}
	return block + "\n"
}

// replaceAll replaces each old of pairs in s, failing the test when one is
// missing (the docs changed under the test).
func replaceAll(t *testing.T, s string, pairs ...string) string {
	t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("the documented configuration no longer contains %q", pairs[i])
		}
		s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
	}
	return s
}

// proxyProc is a proxy this test started, in its own process group.
type proxyProc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// startProxy runs name with args in dir and stops it when the test ends:
// SIGTERM to its process group (nginx's workers too), SIGKILL if it is
// still there after 10 seconds.
func startProxy(t *testing.T, dir, name string, env []string, args ...string) *proxyProc {
	t.Helper()
	p := &proxyProc{cmd: exec.Command(name, args...), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		pgid := p.cmd.Process.Pid
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), p.out.String())
		}
	})
	return p
}

// waitListening waits until addr accepts connections or p exits.
func (p *proxyProc) waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited: %v\n%s", p.cmd.Path, p.cmd.ProcessState, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s:\n%s", p.cmd.Path, addr, p.out.String())
		}
	}
}

// startNginx runs the documented nginx configuration in front of upstream
// and latchkey (host:port each), and returns the proxy's base URL.
func startNginx(t *testing.T, latchkeyAddr, upstreamAddr string) string {
	t.Helper()
	if _, err := os.Stat(nginxBin); err != nil {
		t.Skipf("%s is missing: install Debian's nginx (.ci/install-proxies) to run the nginx forward-auth test", nginxBin)
	}
	dir := t.TempDir()
	port := fmt.Sprint(freePort(t))
	server := replaceAll(t, docConfig(t, "nginx"),
		"127.0.0.1:4200", latchkeyAddr,
		"127.0.0.1:8080", upstreamAddr,
		"listen 80;", "listen 127.0.0.1:"+port+";")
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;\n" // the workers would be nobody, who cannot enter dir
	}
	conf := fmt.Sprintf(`daemon off;
%sworker_processes 1;
pid %[2]s/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
%[3]s}
`, user, dir, server)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, dir, nginxBin, nil, "-p", dir, "-e", "stderr", "-c", path)
	p.waitListening(t, "127.0.0.1:"+port)
	return "http://127.0.0.1:" + port
}

// startCaddy runs the documented Caddy configuration in front of upstream
// and latchkey, and returns the proxy's base URL.
func startCaddy(t *testing.T, latchkeyAddr, upstreamAddr string) string {
	t.Helper()
	if _, err := os.Stat(caddyBin); err != nil {
		t.Skipf("%s is missing: install Debian's caddy (.ci/install-proxies) to run the Caddy forward-auth test", caddyBin)
	}
	dir := t.TempDir()
	port := fmt.Sprint(freePort(t))
	site := replaceAll(t, docConfig(t, "caddyfile"),
		"127.0.0.1:4200", latchkeyAddr,
		"127.0.0.1:8080", upstreamAddr,
		"dashboard.example.com", "http://127.0.0.1:"+port)
	conf := fmt.Sprintf("{\n\tadmin off\n\tauto_https off\n\tstorage file_system %s\n}\n\n%s", filepath.Join(dir, "data"), site)
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + dir, "XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "XDG_DATA_HOME=" + filepath.Join(dir, "data")}
	p := startProxy(t, dir, caddyBin, env, "run", "--config", path, "--adapter", "caddyfile")
	p.waitListening(t, "127.0.0.1:"+port)
	return "http://127.0.0.1:" + port
}

// upstream is the protected service: it records the headers of every
// request that reached it.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []http.Header
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Header.Clone())
		u.mu.Unlock()
		io.WriteString(w, "upstream "+r.URL.Path)
	}))
	t.Cleanup(u.Close)
	return u
}

// take returns the headers of the requests that reached the upstream since
// the last call.
func (u *upstream) take() []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.seen
	u.seen = nil
	return s
}

// faWorld is what the forward-auth cases need: a Latchkey behind a
// proxy, its tenants and keys.
type faWorld struct {
	s          *TestServer
	up         *upstream
	tenantID   string // the bootstrap tenant
	tenantSlug string
	opsID      string // the admin's second tenant, slug "ops"
	adminID    string
}

const (
	qFATenants      = `query { tenant(order_by: {slug: asc}) { id slug } }`
	qFAAuthInfo     = `query { auth_info { tenant_id user_id role } }`
	qFACreateTenant = `mutation($input: create_tenant_input!) { create_tenant(input: $input) { id slug } }`
	qFACreateSA     = `mutation($input: create_service_account_input!) { create_service_account(input: $input) { id } }`
	qFACreateKey    = `mutation($input: create_api_key_input!) { create_api_key(input: $input) { id key } }`
	qFADeleteKey    = `mutation($input: delete_api_key_input!) { delete_api_key(input: $input) { success } }`
)

// mustSAKey creates a service account with role in the bootstrap tenant
// and a key for it; it returns the account's id, the key's id and the key.
func (x *faWorld) mustSAKey(t *testing.T, name string, role latchkey.Role) (saID, keyID, key string) {
	t.Helper()
	var sa struct{ ID string }
	x.s.MustDo(t, x.s.AdminKey, "", qFACreateSA, map[string]any{"input": map[string]any{"name": name, "role": string(role)}}, "create_service_account", &sa)
	var k struct{ ID, Key string }
	x.s.MustDo(t, x.s.AdminKey, "", qFACreateKey, map[string]any{"input": map[string]any{"name": name, "user_id": sa.ID}}, "create_api_key", &k)
	return sa.ID, k.ID, k.Key
}

func TestForwardAuth_Proxies(t *testing.T) {
	t.Parallel()
	for _, engine := range latchkeytest.Engines() {
		t.Run(engine, func(t *testing.T) {
			s := MustRunMain(t, engine, func(m *main.Main) {
				m.TrustedProxies, _ = latchkey.ParseTrustedProxies("127.0.0.1")
			})
			x := &faWorld{s: s, up: newUpstream(t)}
			var info struct {
				TenantID string `json:"tenant_id"`
				UserID   string `json:"user_id"`
			}
			s.MustDo(t, s.AdminKey, "", qFAAuthInfo, nil, "auth_info", &info)
			x.tenantID, x.adminID = info.TenantID, info.UserID
			var ops struct{ ID, Slug string }
			s.MustDo(t, s.AdminKey, "", qFACreateTenant, map[string]any{"input": map[string]any{"name": "Ops", "slug": "ops"}}, "create_tenant", &ops)
			x.opsID = ops.ID
			var tenants []struct{ ID, Slug string }
			s.MustDo(t, s.AdminKey, "", qFATenants, nil, "tenant", &tenants)
			for _, tn := range tenants {
				if tn.ID == x.tenantID {
					x.tenantSlug = tn.Slug
				}
			}
			if x.tenantSlug == "" || x.tenantSlug == "ops" {
				t.Fatalf("bootstrap tenant's slug %q", x.tenantSlug)
			}
			latchkeyAddr := strings.TrimPrefix(s.URL, "http://")
			upstreamAddr := strings.TrimPrefix(x.up.URL, "http://")
			t.Run("nginx", func(t *testing.T) { x.run(t, startNginx(t, latchkeyAddr, upstreamAddr), false) })
			t.Run("caddy", func(t *testing.T) { x.run(t, startCaddy(t, latchkeyAddr, upstreamAddr), true) })
		})
	}
}

// proxied is a response of the proxy, and what reached the upstream.
type proxied struct {
	status int
	header http.Header
	body   string
	seen   []http.Header
}

// get sends GET proxy+path with the credential (if any) and extra headers.
func (x *faWorld) get(t *testing.T, url, credential string, header map[string]string) proxied {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return proxied{status: res.StatusCode, header: res.Header, body: string(b), seen: x.up.take()}
}

// wantIdentity checks that exactly one request reached the upstream, with
// exactly the identity headers in want (the others absent).
func wantIdentity(t *testing.T, what string, p proxied, want map[string]string) {
	t.Helper()
	if p.status != 200 || len(p.seen) != 1 {
		t.Fatalf("%s: status %d, %d requests reached the upstream: %s", what, p.status, len(p.seen), p.body)
	}
	for _, h := range lkhttp.VerifyHeaders() {
		// Absent, or empty (Caddy 2.6 copies Latchkey's empty headers).
		if got := p.seen[0].Values(h); want[h] == "" && strings.Join(got, "") != "" {
			t.Errorf("%s: the upstream got %s: %q, want none", what, h, got)
		} else if want[h] != "" && (len(got) != 1 || got[0] != want[h]) && want[h] != "*" {
			t.Errorf("%s: the upstream got %s: %q, want %q", what, h, got, want[h])
		}
	}
}

// wantRefused checks the proxy refused with status and nothing reached
// the upstream.
func wantRefused(t *testing.T, what string, p proxied, status int) {
	t.Helper()
	if p.status != status || len(p.seen) != 0 {
		t.Errorf("%s: status %d (want %d), %d requests reached the upstream", what, p.status, status, len(p.seen))
	}
}

// run runs the cases through the proxy at base URL proxy. stripsAll says
// the proxy's configuration removes every X-Latchkey-* header a client
// sends (Caddy's), not only those Latchkey answers with (nginx's).
func (x *faWorld) run(t *testing.T, proxy string, stripsAll bool) {
	s := x.s
	name := strings.ReplaceAll(t.Name(), "/", "-")
	saID, keyID, key := x.mustSAKey(t, name+"-user", latchkey.RoleUser)
	_, revKeyID, revKey := x.mustSAKey(t, name+"-revoked", latchkey.RoleUser)
	forged := map[string]string{
		"X-Latchkey-Role": "TENANT_ADMIN", "X-Latchkey-User-Id": x.adminID, "X-Latchkey-Token": "forged",
		"X-Latchkey-Tenant-Slug": "ops", "X-Latchkey-Key-Id": "forged", "X-Latchkey-Service-Account-Id": "forged",
		"X-Latchkey-Tenant-Id": "forged", "X-Latchkey-Extra": "forged",
	}

	// A valid key reaches the upstream with who it is; what the client
	// claimed itself is gone.
	p := x.get(t, proxy+"/dashboard", key, forged)
	wantIdentity(t, "USER key with forged headers", p, map[string]string{
		"X-Latchkey-Tenant-Id": x.tenantID, "X-Latchkey-Tenant-Slug": x.tenantSlug,
		"X-Latchkey-Service-Account-Id": saID, "X-Latchkey-Role": "USER", "X-Latchkey-Key-Id": keyID,
	})
	if extra := p.seen[0].Get("X-Latchkey-Extra"); stripsAll && extra != "" {
		t.Errorf("the upstream got a client's X-Latchkey-Extra: %q", extra)
	}
	if p.body != "upstream /dashboard" {
		t.Errorf("body %q", p.body)
	}
	if xff := p.seen[0].Get("X-Forwarded-For"); !strings.Contains(xff, "127.0.0.1") {
		t.Errorf("the upstream got X-Forwarded-For %q", xff)
	}
	p = x.get(t, proxy+"/", s.AdminKey, forged) // a human: no service-account id, whatever it says
	wantIdentity(t, "admin key with forged headers", p, map[string]string{
		"X-Latchkey-Tenant-Id": x.tenantID, "X-Latchkey-Tenant-Slug": x.tenantSlug,
		"X-Latchkey-User-Id": x.adminID, "X-Latchkey-Role": "TENANT_ADMIN", "X-Latchkey-Key-Id": "*",
	})

	// No key, a wrong key, a malformed header: refused, told to bring a
	// bearer credential.
	p = x.get(t, proxy+"/dashboard", "", forged)
	wantRefused(t, "no key", p, 401)
	if !strings.HasPrefix(p.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no key: WWW-Authenticate %q", p.header.Get("WWW-Authenticate"))
	}
	wantRefused(t, "wrong key", x.get(t, proxy+"/dashboard", "lku_"+strings.Repeat("x", 38), nil), 401)
	// The twin differs in its last character (never the key itself).
	twin := revKey[:len(revKey)-1] + "A"
	if twin == revKey {
		twin = revKey[:len(revKey)-1] + "B"
	}
	wantRefused(t, "revoked key's twin", x.get(t, proxy+"/dashboard", twin, nil), 401)
	wantRefused(t, "basic auth", x.get(t, proxy+"/dashboard", "", map[string]string{"Authorization": "Basic YTpi"}), 401)

	// Revoked through GraphQL: the very next request is refused.
	wantIdentity(t, "key before revoking", x.get(t, proxy+"/dashboard", revKey, nil), map[string]string{
		"X-Latchkey-Tenant-Id": x.tenantID, "X-Latchkey-Tenant-Slug": x.tenantSlug,
		"X-Latchkey-Service-Account-Id": "*", "X-Latchkey-Role": "USER", "X-Latchkey-Key-Id": revKeyID,
	})
	s.MustDo(t, s.AdminKey, "", qFADeleteKey, map[string]any{"input": map[string]any{"key_id": revKeyID}}, "delete_api_key", nil)
	wantRefused(t, "revoked key", x.get(t, proxy+"/dashboard", revKey, nil), 401)

	// ?role=TENANT_ADMIN: a USER key is forbidden, the admin passes.
	wantRefused(t, "USER key on /admin/", x.get(t, proxy+"/admin/x", key, forged), 403)
	wantRefused(t, "no key on /admin/", x.get(t, proxy+"/admin/x", "", nil), 401)
	p = x.get(t, proxy+"/admin/x", s.AdminKey, nil)
	wantIdentity(t, "admin key on /admin/", p, map[string]string{
		"X-Latchkey-Tenant-Id": x.tenantID, "X-Latchkey-Tenant-Slug": x.tenantSlug,
		"X-Latchkey-User-Id": x.adminID, "X-Latchkey-Role": "TENANT_ADMIN", "X-Latchkey-Key-Id": "*",
	})

	// ?tenant=ops: a key acting in another tenant is forbidden, even with
	// a forged slug; the admin acting in ops passes.
	wantRefused(t, "USER key on /ops/", x.get(t, proxy+"/ops/x", key, forged), 403)
	wantRefused(t, "admin in the bootstrap tenant on /ops/", x.get(t, proxy+"/ops/x", s.AdminKey, nil), 403)
	p = x.get(t, proxy+"/ops/x", s.AdminKey, map[string]string{"X-Prefect-Tenant-Id": x.opsID})
	wantIdentity(t, "admin acting in ops on /ops/", p, map[string]string{
		"X-Latchkey-Tenant-Id": x.opsID, "X-Latchkey-Tenant-Slug": "ops",
		"X-Latchkey-User-Id": x.adminID, "X-Latchkey-Role": "TENANT_ADMIN", "X-Latchkey-Key-Id": "*",
	})

	// ?token=1: the upstream also gets an access token for the caller,
	// which Latchkey accepts, the same one for the next request.
	p = x.get(t, proxy+"/api/x", key, forged)
	wantIdentity(t, "USER key on /api/", p, map[string]string{
		"X-Latchkey-Tenant-Id": x.tenantID, "X-Latchkey-Tenant-Slug": x.tenantSlug,
		"X-Latchkey-Service-Account-Id": saID, "X-Latchkey-Role": "USER", "X-Latchkey-Key-Id": keyID,
		"X-Latchkey-Token": "*",
	})
	tok := p.seen[0].Get("X-Latchkey-Token")
	if tok == "forged" || strings.Count(tok, ".") != 2 {
		t.Fatalf("token %q", tok)
	}
	hdr, err := base64.RawURLEncoding.DecodeString(tok[:strings.IndexByte(tok, '.')])
	var jh struct{ Alg, Kid string }
	if err != nil || json.Unmarshal(hdr, &jh) != nil || jh.Alg != "EdDSA" || jh.Kid == "" {
		t.Errorf("token header %s: %v", hdr, err)
	}
	var ti struct {
		TenantID string `json:"tenant_id"`
		UserID   string `json:"user_id"`
		Role     string `json:"role"`
	}
	s.MustDo(t, tok, "", qFAAuthInfo, nil, "auth_info", &ti)
	if ti.TenantID != x.tenantID || ti.UserID != saID || ti.Role != "USER" {
		t.Errorf("the token authenticates as %+v", ti)
	}
	if p2 := x.get(t, proxy+"/api/x", key, nil); len(p2.seen) != 1 || p2.seen[0].Get("X-Latchkey-Token") != tok {
		t.Errorf("a second request got another token")
	}
	// The token is itself a credential the proxy accepts.
	wantIdentity(t, "the minted token", x.get(t, proxy+"/dashboard", tok, nil), map[string]string{
		"X-Latchkey-Tenant-Id": x.tenantID, "X-Latchkey-Tenant-Slug": x.tenantSlug,
		"X-Latchkey-Service-Account-Id": saID, "X-Latchkey-Role": "USER", "X-Latchkey-Key-Id": keyID,
	})
}

// TestForwardAuth_RevokedAtOnce: revoking a key (on this replica, through
// GraphQL) refuses the very next /auth/verify, on both engines; revoking
// it on another replica refuses it there as soon as the event arrives.
func TestForwardAuth_RevokedAtOnce(t *testing.T) {
	t.Parallel()
	for _, engine := range latchkeytest.Engines() {
		t.Run(engine, func(t *testing.T) {
			s := MustRunMain(t, engine)
			x := &faWorld{s: s}
			_, keyID, key := x.mustSAKey(t, "revoke-me", latchkey.RoleUser)
			verify := func() int {
				req, _ := http.NewRequest("GET", s.URL+"/auth/verify?token=1", nil)
				req.Header.Set("Authorization", "Bearer "+key)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				return res.StatusCode
			}
			for range 3 { // cached now: the credential and the minted token
				if got := verify(); got != 200 {
					t.Fatalf("before revoking: %d", got)
				}
			}
			s.MustDo(t, s.AdminKey, "", qFADeleteKey, map[string]any{"input": map[string]any{"key_id": keyID}}, "delete_api_key", nil)
			if got := verify(); got != 401 {
				t.Fatalf("the next /auth/verify after revoking: %d, want 401", got)
			}
		})
	}
}

// TestForwardAuth_Replicas: a key revoked on one replica is refused by
// /auth/verify on the other once the event has arrived (PostgreSQL).
func TestForwardAuth_Replicas(t *testing.T) {
	t.Parallel()
	a, b := mustRunReplicas(t)
	x := &faWorld{s: a}
	_, keyID, key := x.mustSAKey(t, "revoke-on-a", latchkey.RoleUser)
	verifyOn := func(s *TestServer) int {
		req, _ := http.NewRequest("GET", s.URL+"/auth/verify", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for range 2 { // the second answer comes from b's cache
		if got := verifyOn(b); got != 200 {
			t.Fatalf("b refused the key before it was revoked: %d", got)
		}
	}
	start := time.Now()
	a.MustDo(t, a.AdminKey, "", qFADeleteKey, map[string]any{"input": map[string]any{"key_id": keyID}}, "delete_api_key", nil)
	if got := verifyOn(a); got != 401 {
		t.Fatalf("a: the next /auth/verify after revoking: %d", got)
	}
	waitFor(t, 5*time.Second, "b to refuse the revoked key", func() bool { return verifyOn(b) == 401 }, func() string { return b.Logs.String() })
	t.Logf("b refused the revoked key %s after the revocation", time.Since(start).Round(time.Millisecond))
}
