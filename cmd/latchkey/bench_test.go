package main_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/bench"
	main "github.com/latchkey/latchkey/cmd/latchkey"
	"github.com/latchkey/latchkey/graphql"
	lkhttp "github.com/latchkey/latchkey/http"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/mock"
	"github.com/prometheus/client_golang/prometheus"
)

// TestBench_Smoke runs `latchkey bench` for a moment with every scenario
// and checks that each one ran, succeeded, and got a ratio to the baseline.
func TestBench_Smoke(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	env := &main.Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }, Now: time.Now}
	code := main.Run(context.Background(), []string{"bench", "--keys", "300", "--users", "3", "--sample", "20", "--jwts", "4",
		"--conns", "4", "--warmup", "50ms", "--duration", "250ms", "--rounds", "1"}, env)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, name := range []string{"(e) baseline net/http", "(a) auth_info, API key", "(b) auth_info, JWT", "(c) switch_tenant", "(d) create_api_key"} {
		// name conns requests req/s ratio p50 p90 p99 max errors cpu/req cpu-ratio
		re := regexp.MustCompile(regexp.QuoteMeta(name) + `\s+4\s+(\d+)\s+(\d+)\s+(\d+\.\d\d)\s+\S+ms\s+\S+ms\s+\S+ms\s+\S+ms\s+(\d+)\s+\d+us\s+(\d+\.\d\d)\n`)
		m := re.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no result line for %s:\n%s", name, out)
		}
		if n, _ := strconv.Atoi(m[1]); n == 0 {
			t.Errorf("%s: no requests measured", name)
		}
		if m[4] != "0" {
			t.Errorf("%s: %s errors", name, m[4])
		}
		if name == "(e) baseline net/http" && (m[3] != "1.00" || m[5] != "1.00") {
			t.Errorf("baseline ratios %s and %s, want 1.00", m[3], m[5])
		}
	}
	if !strings.Contains(out, "seeded 300 keys") || !strings.Contains(out, "lock/busy errors in the server log: 0 ") {
		t.Errorf("missing seeding or lock summary:\n%s", out)
	}
	if s := stdout.String() + stderr.String(); strings.Contains(s, "lku_") || strings.Contains(s, "eyJ") {
		t.Errorf("bench output contains a secret:\n%s", s)
	}
}

// TestBench_VerifyScalingSmoke runs --verify-scaling with tiny databases.
func TestBench_VerifyScalingSmoke(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	env := &main.Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }, Now: time.Now}
	code := main.Run(context.Background(), []string{"bench", "--verify-scaling", "--scale-keys", "10,2000", "--users", "2", "--sample", "10",
		"--conns", "2", "--warmup", "0s", "--duration", "100ms"}, env)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if !regexp.MustCompile(`scaling, 2001 vs 11 stored keys:\n  req/s ratio \d+\.\d{3}: cost per request [-+]\d+\.\d% \((NOT )?within 10%\)\n  CPU per request `).MatchString(stdout.String()) {
		t.Errorf("no scaling line:\n%s", stdout.String())
	}
}

// TestBench_OpenLoopSmoke runs (a) and (e) open-loop at a fixed rate: each
// gets about rate × duration requests, however fast the server is.
func TestBench_OpenLoopSmoke(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	env := &main.Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }, Now: time.Now}
	code := main.Run(context.Background(), []string{"bench", "--keys", "50", "--users", "2", "--sample", "10", "--jwts", "2",
		"--scenarios", "ea", "--conns", "4", "--rate", "400", "--warmup", "50ms", "--duration", "250ms", "--rounds", "1"}, env)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "4 connections, open loop at 400 req/s") {
		t.Errorf("no open-loop description:\n%s", out)
	}
	for _, name := range []string{"(e) baseline net/http", "(a) auth_info, API key"} {
		m := regexp.MustCompile(regexp.QuoteMeta(name) + `\s+4\s+(\d+)\s`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no result line for %s:\n%s", name, out)
		}
		// 400/s for 250 ms is 100 requests.
		if n, _ := strconv.Atoi(m[1]); n < 90 || n > 101 {
			t.Errorf("%s: %d requests, want about 100", name, n)
		}
	}
}

// TestBench_ForwardAuthSmoke runs the forward-auth scenarios (f) and (g)
// briefly: every request must get 200 with no body (the run exits 1
// otherwise).
func TestBench_ForwardAuthSmoke(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	env := &main.Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }, Now: time.Now}
	code := main.Run(context.Background(), []string{"bench", "--keys", "50", "--users", "2", "--sample", "10", "--jwts", "2",
		"--scenarios", "efg", "--conns", "4", "--warmup", "50ms", "--duration", "250ms", "--rounds", "1"}, env)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	for _, name := range []string{"(f) /auth/verify, API key", "(g) /auth/verify?token=1"} {
		m := regexp.MustCompile(regexp.QuoteMeta(name) + `\s+4\s+(\d+)\s`).FindStringSubmatch(stdout.String())
		if m == nil {
			t.Fatalf("no result line for %s:\n%s", name, stdout.String())
		}
		if n, _ := strconv.Atoi(m[1]); n < 10 {
			t.Errorf("%s: only %d requests", name, n)
		}
	}
}

func TestBench_BadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--scenarios", "xyz"},
		{"--conns", "0"},
		{"--rate", "-1"},
		{"--scale-keys", "1000"},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		env := &main.Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }, Now: time.Now}
		if code := main.Run(context.Background(), append([]string{"bench"}, args...), env); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

// benchServer starts the whole server as `latchkey server` runs it, info
// logs (the access log) included, on an SQLite file.
func benchServer(b *testing.B) *TestServer {
	b.Helper()
	return MustRunMainDSN(b, latchkeytest.MustDSN(b, "sqlite"), func(m *main.Main) {
		m.LogLevel, m.Stderr = slog.LevelInfo, io.Discard
	})
}

func BenchmarkAuthenticate_APIKey(b *testing.B) {
	s := benchServer(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.Auth.Authenticate(ctx, s.AdminKey, ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAuthenticate_AccessToken(b *testing.B) {
	s := benchServer(b)
	ctx := context.Background()
	tok := mustAccessToken(b, s)
	for b.Loop() {
		if _, err := s.Auth.Authenticate(ctx, tok, ""); err != nil {
			b.Fatal(err)
		}
	}
}

func mustAccessToken(tb testing.TB, s *TestServer) string {
	tb.Helper()
	ctx := context.Background()
	a, err := s.Auth.Authenticate(ctx, s.AdminKey, "")
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := s.Auth.SwitchTenant(latchkey.NewContextWithAuth(ctx, a), "")
	if err != nil {
		tb.Fatal(err)
	}
	return tok.AccessToken
}

// benchHandler serves body with credential through the server's whole
// HTTP handler (access log, metrics, GraphQL), without the network.
func benchHandler(b *testing.B, s *TestServer, body []byte, credential, field string) {
	b.Helper()
	benchHandlerOn(b, s.HTTPServer.Handler(), body, credential, field)
}

func benchHandlerOn(b *testing.B, h http.Handler, body []byte, credential, field string) {
	b.Helper()
	want := []byte(`"` + field + `":{`)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+credential)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), want) || bytes.Contains(rec.Body.Bytes(), []byte(`"errors"`)) {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	}
}

func mustBody(tb testing.TB, query string, vars any) []byte {
	tb.Helper()
	body, err := bench.GraphQLBody(query, vars)
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

func BenchmarkHandler_AuthInfoAPIKey(b *testing.B) {
	s := benchServer(b)
	benchHandler(b, s, mustBody(b, qAuthInfoTenant, nil), s.AdminKey, "auth_info")
}

func BenchmarkHandler_AuthInfoJWT(b *testing.B) {
	s := benchServer(b)
	benchHandler(b, s, mustBody(b, qAuthInfoTenant, nil), mustAccessToken(b, s), "auth_info")
}

func BenchmarkHandler_SwitchTenant(b *testing.B) {
	s := benchServer(b)
	benchHandler(b, s, mustBody(b, qSwitchTenant, map[string]any{"input": map[string]any{"tenant_id": nil}}), s.AdminKey, "switch_tenant")
}

// BenchmarkHandler_Verify is forward auth, /auth/verify with an API key,
// through the server's whole handler (access log, metrics, middleware);
// BenchmarkHandler_VerifyToken adds ?token=1 (a kept token, after the first).
func BenchmarkHandler_Verify(b *testing.B)      { benchVerify(b, "/auth/verify") }
func BenchmarkHandler_VerifyToken(b *testing.B) { benchVerify(b, "/auth/verify?token=1") }

func benchVerify(b *testing.B, target string) {
	s := benchServer(b)
	h := s.HTTPServer.Handler()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.Header.Set("Authorization", "Bearer "+s.AdminKey)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || rec.Header().Get("X-Latchkey-Role") != "TENANT_ADMIN" {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	}
}

// BenchmarkHandler_Baseline is the bare net/http handler `latchkey bench`
// compares with, through the same httptest plumbing.
func BenchmarkHandler_Baseline(b *testing.B) {
	h := bench.BaselineHandler()
	body := mustBody(b, qAuthInfoTenant, nil)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkHandler_AuthInfoNoStore is BenchmarkHandler_AuthInfoAPIKey with
// an AuthService that answers from memory: what the HTTP server, access
// log, metrics and GraphQL executor cost by themselves.
func BenchmarkHandler_AuthInfoNoStore(b *testing.B) {
	user := &latchkey.User{ID: "5b0f6c9e-1c1d-4e7a-9b0f-2a6d1e4c7b90", Kind: latchkey.UserKindHuman}
	auth := &mock.AuthService{AuthenticateFn: func(ctx context.Context, credential, tenantID string) (*latchkey.Auth, error) {
		return &latchkey.Auth{User: user, TenantID: "8f5b6c2e-3c1d-4e7a-9b0f-2a6d1e4c7b90", Role: latchkey.RoleUser, Kind: latchkey.CredentialAPIKey, APIKeyID: "k"}, nil
	}}
	logger := slog.New(latchkey.NewRedactingHandler(slog.NewJSONHandler(io.Discard, nil)))
	srv := &lkhttp.Server{
		Addr:     "127.0.0.1:0",
		GraphQL:  (&graphql.Server{Auth: auth, Logger: logger}).Handler(),
		Authn:    &lkhttp.Authenticator{Auth: auth, Logger: logger},
		Logger:   logger,
		Registry: prometheus.NewRegistry(),
	}
	if err := srv.Open(); err != nil { // registers the metrics
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close(context.Background()) })
	body := mustBody(b, qAuthInfoTenant, nil)
	benchHandlerOn(b, srv.Handler(), body, "lku_notchecked", "auth_info")
}
