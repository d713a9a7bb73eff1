package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	lkhttp "github.com/latchkey/latchkey/http"
	"github.com/latchkey/latchkey/mock"
	"github.com/prometheus/client_golang/prometheus"
)

func do(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(`{"query":"{ hello }"}`))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestServer_Routes(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	hits := 0
	gql := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++; io.WriteString(w, `{"data":{}}`) })
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ui") })
	s := &lkhttp.Server{
		Addr: "127.0.0.1:0", GraphQL: gql, UI: ui,
		Tokens:   &mock.TokenService{JWKSFn: func(context.Context) ([]byte, error) { return []byte(`{"keys":[]}`), nil }},
		Logger:   slog.New(slog.NewJSONHandler(&logs, nil)),
		Registry: prometheus.NewRegistry(),
	}
	if err := s.Open(); err != nil { // registers the metrics
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	h := s.Handler()

	for _, path := range []string{"/", "/graphql"} {
		if w := do(t, h, "POST", path, map[string]string{"Authorization": "Bearer lku_secretsecret1234"}); w.Code != 200 || w.Body.String() != `{"data":{}}` {
			t.Fatalf("POST %s: %d %s", path, w.Code, w.Body)
		}
	}
	if hits != 2 {
		t.Fatalf("graphql hits=%d", hits)
	}
	if w := do(t, h, "GET", "/", nil); w.Code != http.StatusFound || w.Header().Get("Location") != "/ui/" {
		t.Fatalf("GET /: %d %q", w.Code, w.Header().Get("Location"))
	}
	if w := do(t, h, "GET", "/ui/keys", nil); w.Body.String() != "ui" {
		t.Fatalf("ui: %s", w.Body)
	}
	if w := do(t, h, "GET", "/.well-known/jwks.json", nil); w.Code != 200 || w.Header().Get("Content-Type") != "application/json" || w.Body.String() != `{"keys":[]}` {
		t.Fatalf("jwks: %d %s", w.Code, w.Body)
	}
	if w := do(t, h, "GET", "/healthz", nil); w.Code != 200 || !strings.Contains(w.Body.String(), `"ok"`) {
		t.Fatalf("healthz: %d %s", w.Code, w.Body)
	}
	if w := do(t, h, "GET", "/nope", nil); w.Code != 404 {
		t.Fatalf("404: %d", w.Code)
	}
	if w := do(t, h, "GET", "/metrics", nil); w.Code != 200 || !strings.Contains(w.Body.String(), `latchkey_http_requests_total{route="graphql",status="200"} 2`) {
		t.Fatalf("metrics: %d %s", w.Code, w.Body)
	}
	// The access log has method, path and status, never headers or query strings.
	do(t, h, "GET", "/healthz?token=lku_querysecret", nil)
	if strings.Contains(logs.String(), "secret") {
		t.Fatalf("credential in access log: %s", logs.String())
	}
	if !strings.Contains(logs.String(), `"path":"/graphql"`) || !strings.Contains(logs.String(), `"status":200`) {
		t.Fatalf("access log: %s", logs.String())
	}
}

func TestServer_HealthzUnavailable(t *testing.T) {
	t.Parallel()
	s := &lkhttp.Server{Ping: func(context.Context) error { return errors.New("db down") }}
	if w := do(t, s.Handler(), "GET", "/healthz", nil); w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "db down") {
		t.Fatalf("healthz: %d %s", w.Code, w.Body)
	}
}

func TestServer_PanicIsInternalError(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	s := &lkhttp.Server{
		GraphQL: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom lku_aaaaaaaaaaaaaaaaaaaa") }),
		Logger:  slog.New(slog.NewJSONHandler(&logs, nil)),
	}
	w := do(t, s.Handler(), "POST", "/graphql", nil)
	if w.Code != 500 || strings.Contains(w.Body.String(), "boom") {
		t.Fatalf("panic: %d %s", w.Code, w.Body)
	}
	if strings.Contains(logs.String(), "aaaaaaaaaa") || !strings.Contains(logs.String(), "panic") {
		t.Fatalf("panic log: %s", logs.String())
	}
}

func TestServer_OpenURL(t *testing.T) {
	t.Parallel()
	s := &lkhttp.Server{Addr: "127.0.0.1:0"}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	resp, err := http.Get(s.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status=%d", resp.StatusCode)
	}
}

func TestServer_AccessLogTrustedProxy(t *testing.T) {
	t.Parallel()
	for _, trust := range []bool{false, true} {
		var logs bytes.Buffer
		authn := &lkhttp.Authenticator{}
		if trust { // httptest's RemoteAddr and the inner proxy
			authn.TrustedProxies, _ = latchkey.ParseTrustedProxies("192.0.2.1,10.0.0.0/8")
		}
		s := &lkhttp.Server{Authn: authn, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
		do(t, s.Handler(), "GET", "/healthz", map[string]string{"X-Forwarded-For": "203.0.113.9, 10.0.0.2"})
		want := `"remote":"192.0.2.1"` // httptest's RemoteAddr
		if trust {
			want = `"remote":"203.0.113.9"`
		}
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("trust=%v: %s", trust, logs.String())
		}
	}
}

// One access log line per request, with exactly these fields; none when
// the logger's level is above INFO.
func TestServer_AccessLogLine(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	gql := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, `{"data":{}}`)
	})
	s := &lkhttp.Server{GraphQL: gql, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	before := time.Now()
	do(t, s.Handler(), "POST", "/graphql?x=1", nil)
	var line struct {
		Time     time.Time `json:"time"`
		Level    string    `json:"level"`
		Msg      string    `json:"msg"`
		Method   string    `json:"method"`
		Path     string    `json:"path"`
		Status   int       `json:"status"`
		Bytes    int       `json:"bytes"`
		Duration int64     `json:"duration"`
		Remote   string    `json:"remote"`
	}
	dec := json.NewDecoder(&logs)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&line); err != nil {
		t.Fatalf("access log line: %v: %s", err, logs.String())
	}
	if line.Level != "INFO" || line.Msg != "request" || line.Method != "POST" || line.Path != "/graphql" ||
		line.Status != http.StatusTeapot || line.Bytes != len(`{"data":{}}`) || line.Remote != "192.0.2.1" {
		t.Errorf("access log line %+v", line)
	}
	if line.Time.Before(before) || time.Since(line.Time) < 0 || line.Duration < 0 || time.Duration(line.Duration) > time.Since(before) {
		t.Errorf("time %s, duration %d, request started %s", line.Time, line.Duration, before)
	}
	if dec.More() {
		t.Errorf("more than one line: %s", logs.String())
	}

	logs.Reset()
	s = &lkhttp.Server{GraphQL: gql, Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	do(t, s.Handler(), "POST", "/graphql", nil)
	if logs.Len() != 0 {
		t.Errorf("logged at WARN level: %s", logs.String())
	}
}
