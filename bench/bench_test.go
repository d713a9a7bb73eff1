package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/bench"
)

// MustStartBaseline starts the baseline server and stops it when the test ends.
func MustStartBaseline(tb testing.TB) *bench.Server {
	tb.Helper()
	s, err := bench.StartBaseline()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestRun_Baseline(t *testing.T) {
	s := MustStartBaseline(t)
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Fatalf("baseline URL %s is not on loopback", s.URL)
	}
	body := []byte(`{"query":"query { auth_info { tenant_id } }","variables":"null"}`)
	sc := bench.Scenario{Name: "baseline", NewRequest: bench.Post(s.URL+"/graphql", body, nil), Check: bench.CheckBody(bench.BaselineBody)}
	start := time.Now()
	r, err := bench.Run(context.Background(), bench.NewClient(4), sc, bench.Options{Concurrency: 4, Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
		t.Errorf("run took %s, want about 250ms", d)
	}
	if r.Requests == 0 || r.Errors != 0 || len(r.ErrorKinds) != 0 {
		t.Fatalf("requests %d, errors %d %v", r.Requests, r.Errors, r.ErrorKinds)
	}
	if r.Elapsed < 200*time.Millisecond || r.Elapsed > time.Second {
		t.Errorf("elapsed %s, want about 200ms", r.Elapsed)
	}
	if got, want := r.RPS(), float64(r.Requests)/r.Elapsed.Seconds(); got != want {
		t.Errorf("RPS = %f, want %f", got, want)
	}
	if !(0 < r.P50 && r.P50 <= r.P90 && r.P90 <= r.P99 && r.P99 <= r.Max) {
		t.Errorf("percentiles out of order: p50 %s p90 %s p99 %s max %s", r.P50, r.P90, r.P99, r.Max)
	}
	if runtime.GOOS == "linux" && (r.CPU <= 0 || r.CPUPerRequest() != r.CPU/time.Duration(r.Requests)) {
		t.Errorf("CPU %s, per request %s", r.CPU, r.CPUPerRequest())
	}
	if r.Concurrency != 4 || r.Scenario != "baseline" {
		t.Errorf("result %+v", r)
	}
}

func TestRun_CountsFailuresByKind(t *testing.T) {
	var n atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if n.Add(1)%2 == 0 {
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
		w.Write([]byte(bench.BaselineBody))
	}))
	defer ts.Close()
	sc := bench.Scenario{Name: "flaky", NewRequest: bench.Post(ts.URL, []byte("{}"), nil), Check: bench.CheckBody(bench.BaselineBody)}
	r, err := bench.Run(context.Background(), bench.NewClient(2), sc, bench.Options{Concurrency: 2, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors == 0 || r.Errors == r.Requests {
		t.Fatalf("errors %d of %d, want about half", r.Errors, r.Requests)
	}
	if got, want := r.ErrorKinds["HTTP 500"], r.Errors; got != want {
		t.Errorf("kinds %v, want %d x HTTP 500", r.ErrorKinds, want)
	}
	if got, want := r.OKRPS(), float64(r.Requests-r.Errors)/r.Elapsed.Seconds(); got != want {
		t.Errorf("OKRPS = %f, want %f", got, want)
	}
}

func TestMerge(t *testing.T) {
	s := MustStartBaseline(t)
	sc := bench.Scenario{Name: "m", NewRequest: bench.Post(s.URL, nil, nil)}
	opt := bench.Options{Concurrency: 2, Duration: 50 * time.Millisecond}
	a, err := bench.Run(context.Background(), bench.NewClient(2), sc, opt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bench.Run(context.Background(), bench.NewClient(2), sc, opt)
	if err != nil {
		t.Fatal(err)
	}
	m := bench.Merge(a, b)
	if got, want := m.Requests, a.Requests+b.Requests; got != want {
		t.Errorf("requests = %d, want %d", got, want)
	}
	if got, want := m.Elapsed, a.Elapsed+b.Elapsed; got != want {
		t.Errorf("elapsed = %s, want %s", got, want)
	}
	if m.Max != max(a.Max, b.Max) || m.P50 < min(a.P50, b.P50) || m.P50 > max(a.P50, b.P50) {
		t.Errorf("merged percentiles p50 %s max %s from %s/%s and %s/%s", m.P50, m.Max, a.P50, a.Max, b.P50, b.Max)
	}
}

func TestNewClient_LoopbackOnly(t *testing.T) {
	// 192.0.2.0/24 is TEST-NET-1: refused before any packet is sent.
	req, _ := http.NewRequest(http.MethodGet, "http://192.0.2.1:80/", nil)
	_, err := bench.NewClient(1).Do(req)
	if !errors.Is(err, bench.ErrNotLoopback) {
		t.Fatalf("err = %v, want ErrNotLoopback", err)
	}
}

func TestCheckGraphQL(t *testing.T) {
	check := bench.CheckGraphQL("auth_info")
	for _, tc := range []struct {
		status int
		body   string
		want   string // "" = ok
	}{
		{200, `{"data":{"auth_info":{"tenant_id":"x"}}}`, ""},
		{200, `{"errors":[{"message":"Invalid API key.","extensions":{"code":"UNAUTHENTICATED"}}],"data":null}`, "HTTP 200 UNAUTHENTICATED: Invalid API key."},
		{200, `{"data":{"auth_info":null}}`, "HTTP 200, no data.auth_info"},
		{502, `bad gateway`, "HTTP 502, not JSON (11 bytes)"},
	} {
		err := check(tc.status, []byte(tc.body))
		if got := errString(err); got != tc.want {
			t.Errorf("%d %s: got %q, want %q", tc.status, tc.body, got, tc.want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestGraphQLBody_VariablesAsString(t *testing.T) {
	b, err := bench.GraphQLBody("query { x }", map[string]any{"input": map[string]any{"name": "k"}})
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Query, Variables string }
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Query != "query { x }" || got.Variables != `{"input":{"name":"k"}}` {
		t.Fatalf("body %s", b)
	}
	if b, _ = bench.GraphQLBody("q", nil); !bytes.Contains(b, []byte(`"variables":"null"`)) {
		t.Fatalf("body %s, want variables \"null\"", b)
	}
}

func TestPost_Headers(t *testing.T) {
	req, err := bench.Post("http://127.0.0.1:1/graphql", []byte("{}"), func(w, i int) string { return "cred-" + string(rune('a'+w+i)) })(context.Background(), 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := req.Header.Get("Authorization"), "Bearer cred-d"; got != want {
		t.Errorf("Authorization = %q, want %q", got, want)
	}
	if got, want := req.Header.Get("Content-Type"), "application/json"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	if req.Method != http.MethodPost {
		t.Errorf("method %s", req.Method)
	}
}

func TestLockErrorCounter(t *testing.T) {
	var next bytes.Buffer
	c := &bench.LockErrorCounter{Next: &next}
	lines := `{"level":"INFO","msg":"request","status":200}
{"level":"WARN","msg":"recording credential use failed","err":"database is locked (5) (SQLITE_BUSY)"}
{"level":"ERROR","msg":"graphql: internal error","error":"ERROR: deadlock detected (SQLSTATE 40P01)"}
{"level":"INFO","msg":"lock-free and not busy"}
`
	for line := range strings.Lines(lines) {
		if _, err := c.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := c.Lines(), int64(4); got != want {
		t.Errorf("lines = %d, want %d", got, want)
	}
	if got, want := c.LockErrors(), int64(2); got != want {
		t.Errorf("lock errors = %d, want %d", got, want)
	}
	if s := c.Samples(); len(s) != 2 || !strings.Contains(s[0], "SQLITE_BUSY") || !strings.Contains(s[1], "40P01") {
		t.Errorf("samples %q", s)
	}
	if next.String() != lines {
		t.Errorf("passed on %q", next.String())
	}
}

func TestWriteTable(t *testing.T) {
	s := MustStartBaseline(t)
	opt := bench.Options{Concurrency: 1, Duration: 50 * time.Millisecond}
	base, err := bench.Run(context.Background(), bench.NewClient(1), bench.Scenario{Name: "(e) base", NewRequest: bench.Post(s.URL, nil, nil)}, opt)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := bench.WriteTable(&buf, []*bench.Result{base}, base); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"scenario", "req/s", "vs baseline", "p99", "(e) base", " 1.00 "} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestBaselineHandler(t *testing.T) {
	rec := httptest.NewRecorder()
	bench.BaselineHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader("{}")))
	if rec.Code != 200 || rec.Body.String() != bench.BaselineBody || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q %q", rec.Code, rec.Header(), rec.Body.String())
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(bench.BaselineBody), &v); err != nil {
		t.Fatalf("BaselineBody is not JSON: %v", err)
	}
}

// An open-loop run sends requests on schedule: about Rate × Duration of
// them, however fast the server answers.
func TestRun_OpenLoopRate(t *testing.T) {
	s := MustStartBaseline(t)
	body := []byte(`{"query":"query { auth_info { tenant_id } }","variables":"null"}`)
	sc := bench.Scenario{Name: "baseline", NewRequest: bench.Post(s.URL+"/graphql", body, nil), Check: bench.CheckBody(bench.BaselineBody)}
	r, err := bench.Run(context.Background(), bench.NewClient(4), sc, bench.Options{Concurrency: 4, Rate: 200, Warmup: 50 * time.Millisecond, Duration: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests < 90 || r.Requests > 101 || r.Errors != 0 {
		t.Fatalf("requests %d (errors %d), want about 100: 200/s for 500ms", r.Requests, r.Errors)
	}
	if got, want := r.Rate, 200.0; got != want {
		t.Errorf("Rate = %v, want %v", got, want)
	}
	if m := bench.Merge(r, r); m.Rate != 200 {
		t.Errorf("merged Rate = %v, want 200", m.Rate)
	}
}

// Open-loop latency runs from when a request was due, so that a server too
// slow for the schedule shows the queue building up (no coordinated
// omission): one connection, 100 requests/s, 20 ms per answer.
func TestRun_OpenLoopCountsQueueing(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		io.WriteString(w, "{}")
	}))
	t.Cleanup(srv.Close)
	sc := bench.Scenario{Name: "slow", NewRequest: bench.Post(srv.URL, []byte("{}"), nil)}
	r, err := bench.Run(context.Background(), bench.NewClient(1), sc, bench.Options{Concurrency: 1, Rate: 100, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Request k is due at 10k ms and answered at about 20(k+1) ms: the
	// last of 30 waits about 310 ms, although each takes 20 ms.
	if r.Requests != 30 || r.Errors != 0 {
		t.Fatalf("requests %d (errors %d), want 30", r.Requests, r.Errors)
	}
	if r.Max < 200*time.Millisecond || r.P50 < 100*time.Millisecond {
		t.Fatalf("p50 %s, max %s: want the queueing counted (about 170 ms and 310 ms)", r.P50, r.Max)
	}
}

// Without an *http.Client each worker uses a connection of its own.
func TestRun_Direct(t *testing.T) {
	s := MustStartBaseline(t)
	body := []byte(`{"query":"query { auth_info { tenant_id } }","variables":"null"}`)
	sc := bench.Scenario{Name: "baseline", NewRequest: bench.Post(s.URL+"/graphql", body, nil), Check: bench.CheckBody(bench.BaselineBody)}
	r, err := bench.Run(context.Background(), nil, sc, bench.Options{Concurrency: 4, Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.Errors != 0 || len(r.ErrorKinds) != 0 {
		t.Fatalf("requests %d, errors %d %v", r.Requests, r.Errors, r.ErrorKinds)
	}
	if !(0 < r.P50 && r.P50 <= r.P99 && r.P99 <= r.Max) {
		t.Errorf("percentiles out of order: p50 %s p99 %s max %s", r.P50, r.P99, r.Max)
	}
}

// Direct connections read chunked and Content-Length answers, check each
// body, dial again after an answer that closes the connection, and send
// the request as written (headers and body).
func TestRun_DirectFraming(t *testing.T) {
	var (
		n, conns atomic.Int64
		bad      atomic.Int64
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) != `{"x":1}` || r.Header.Get("Authorization") != "Bearer k" || r.Method != http.MethodPost {
			bad.Add(1)
		}
		switch n.Add(1) % 3 {
		case 0: // chunked
			w.Write([]byte(`{"data":{"f":{`))
			w.(http.Flusher).Flush()
			w.Write([]byte(`}}}`))
		case 1: // Content-Length
			w.Write([]byte(`{"data":{"f":{}}}`))
		case 2:
			w.Header().Set("Connection", "close")
			w.Write([]byte(`{"data":{"f":{}}}`))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	t.Cleanup(srv.Close)
	sc := bench.Scenario{
		Name:       "framing",
		NewRequest: bench.Post(srv.URL, []byte(`{"x":1}`), func(int, int) string { return "k" }),
		Check:      bench.CheckGraphQL("f"),
	}
	r, err := bench.Run(context.Background(), nil, sc, bench.Options{Concurrency: 2, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests < 30 || r.Errors != 0 {
		t.Fatalf("requests %d, errors %d %v", r.Requests, r.Errors, r.ErrorKinds)
	}
	if bad.Load() != 0 {
		t.Errorf("%d requests arrived malformed", bad.Load())
	}
	// Every third answer closes its connection.
	if c := conns.Load(); c < n.Load()/3 {
		t.Errorf("%d connections for %d requests, want at least %d", c, n.Load(), n.Load()/3)
	}
}

func TestRun_DirectLoopbackOnly(t *testing.T) {
	sc := bench.Scenario{Name: "away", NewRequest: bench.Post("http://192.0.2.1:80/", nil, nil)}
	r, err := bench.Run(context.Background(), nil, sc, bench.Options{Concurrency: 1, Duration: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.Errors != r.Requests {
		t.Fatalf("requests %d, errors %d", r.Requests, r.Errors)
	}
	for k := range r.ErrorKinds {
		if !strings.Contains(k, bench.ErrNotLoopback.Error()) {
			t.Errorf("error kind %q, want %q", k, bench.ErrNotLoopback)
		}
	}
}
