package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	main "github.com/latchkey/latchkey/cmd/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
)

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer = latchkeytest.SyncBuffer

// TestServer is a running Latchkey with its first admin key.
type TestServer struct {
	*main.Main
	URL      string
	AdminKey string
	Stdout   *syncBuffer
	Logs     *syncBuffer
}

// MustRunMain starts the whole program on :0 with a fresh database of the
// given engine, and stops it when the test ends.
func MustRunMain(tb testing.TB, engine string, opts ...func(*main.Main)) *TestServer {
	tb.Helper()
	return MustRunMainDSN(tb, latchkeytest.MustDSN(tb, engine), opts...)
}

// MustRunMainDSN is MustRunMain on an existing database (a second replica).
func MustRunMainDSN(tb testing.TB, dsn string, opts ...func(*main.Main)) *TestServer {
	tb.Helper()
	stdout, logs := &syncBuffer{}, &syncBuffer{}
	m := main.NewMain(&main.Env{Stdout: stdout, Stderr: logs, Now: time.Now})
	m.Addr, m.DSN, m.LogLevel = "127.0.0.1:0", dsn, -4 // debug: tests grep all output for secrets
	// Every test client is 127.0.0.1, and many tests fail to authenticate
	// on purpose: the failed-authentication limits are off unless a test
	// turns them on (ratelimit_e2e_test.go).
	m.FailedAuthPerAddr, m.FailedAuthPerKey = 0, 0
	if latchkeytest.IsPostgres(dsn) {
		m.SystemSecrets = []string{latchkeytest.SystemSecret}
	}
	for _, o := range opts {
		o(m)
	}
	if err := m.Run(context.Background()); err != nil {
		tb.Fatalf("run: %v\nlogs:\n%s", err, logs.String())
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return &TestServer{Main: m, URL: m.HTTPServer.URL(), AdminKey: m.BootstrapKey, Stdout: stdout, Logs: logs}
}

// secretEnv returns the environment variables that give `latchkey admin`
// the system secret of a server's database dsn: none on SQLite (the file
// beside the database), the test secret on PostgreSQL.
func secretEnv(dsn string) map[string]string {
	if latchkeytest.IsPostgres(dsn) {
		return map[string]string{"LATCHKEY_SYSTEM_SECRETS": latchkeytest.SystemSecret}
	}
	return map[string]string{}
}

// gqlResponse is a GraphQL response as the Prefect client reads it.
type gqlResponse struct {
	Data   map[string]json.RawMessage `json:"data"`
	Errors []struct {
		Message    string `json:"message"`
		Extensions struct {
			Code string `json:"code"`
		} `json:"extensions"`
	} `json:"errors"`
	raw    []byte
	status int
}

func (r *gqlResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	return r.Errors[0].Extensions.Code
}

// Do posts a query the way the Prefect 1.x client does: variables
// JSON-encoded as a string ("null" for none), bearer credential, optional
// tenant header. path is "/" or "/graphql".
func (s *TestServer) Do(tb testing.TB, path, cred, tenant, query string, vars any) *gqlResponse {
	tb.Helper()
	vb, err := json.Marshal(vars)
	if err != nil {
		tb.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"query": query, "variables": string(vb)})
	req, _ := http.NewRequest("POST", s.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-PREFECT-CORE-VERSION", "1.0.0")
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	if tenant != "" {
		req.Header.Set("X-PREFECT-TENANT-ID", tenant)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := &gqlResponse{raw: raw, status: resp.StatusCode}
	if err := json.Unmarshal(raw, out); err != nil {
		tb.Fatalf("%s: non-JSON response %d: %s", query, resp.StatusCode, raw)
	}
	if strings.Contains(string(raw), `"errors":[]`) {
		tb.Fatalf("empty errors array: %s", raw)
	}
	return out
}

// MustDo is Do that fails the test on any GraphQL error and decodes field.
func (s *TestServer) MustDo(tb testing.TB, cred, tenant, query string, vars any, field string, out any) {
	tb.Helper()
	r := s.Do(tb, "/graphql", cred, tenant, query, vars)
	if len(r.Errors) > 0 || r.status != 200 {
		tb.Fatalf("%s: status %d: %s", query, r.status, r.raw)
	}
	if out != nil {
		if err := json.Unmarshal(r.Data[field], out); err != nil {
			tb.Fatalf("decode %s: %v: %s", field, err, r.raw)
		}
	}
}

// mustFail checks a request fails with the given extensions.code, HTTP 200.
func (r *gqlResponse) mustFail(tb testing.TB, code string) {
	tb.Helper()
	if r.status != 200 {
		tb.Fatalf("status=%d, want 200: %s", r.status, r.raw)
	}
	if got := r.code(); got != code {
		tb.Fatalf("code=%q, want %q: %s", got, code, r.raw)
	}
	if strings.Contains(string(r.raw), "API_ERROR") {
		tb.Fatalf("API_ERROR makes the Prefect client retry: %s", r.raw)
	}
}
