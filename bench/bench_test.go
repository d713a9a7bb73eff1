package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
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
	sc := bench.Scenario{Name: "baseline", URL: s.URL + "/graphql", Body: body, Check: bench.CheckBody(bench.BaselineBody)}
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
	sc := bench.Scenario{Name: "flaky", URL: ts.URL, Body: []byte("{}"), Check: bench.CheckBody(bench.BaselineBody)}
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
	t.Parallel()
	s := MustStartBaseline(t)
	sc := bench.Scenario{Name: "m", URL: s.URL}
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
	t.Parallel()
	// 192.0.2.0/24 is TEST-NET-1: refused before any packet is sent.
	req, _ := http.NewRequest(http.MethodGet, "http://192.0.2.1:80/", nil)
	_, err := bench.NewClient(1).Do(req)
	if !errors.Is(err, bench.ErrNotLoopback) {
		t.Fatalf("err = %v, want ErrNotLoopback", err)
	}
}

func TestCheckGraphQL(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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

func TestScenario_NewRequest(t *testing.T) {
	t.Parallel()
	sc := bench.Scenario{URL: "http://127.0.0.1:1/graphql?a=b", Body: []byte("{}"), Credential: func(w, i int) string { return "cred-" + string(rune('a'+w+i)) }}
	req, err := sc.NewRequest(context.Background(), 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(req.Body); string(b) != "{}" || req.ContentLength != 2 || req.URL.String() != sc.URL {
		t.Errorf("request %s %q (length %d)", req.URL, b, req.ContentLength)
	}
	for k, want := range map[string]string{"X-Prefect-Core-Version": "1.4.1", "User-Agent": "latchkey-bench"} {
		if got := req.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if req, err := (bench.Scenario{URL: sc.URL}).NewRequest(context.Background(), 0, 0); err != nil || req.Header.Get("Authorization") != "" {
		t.Errorf("without Credential: %v, Authorization %q", err, req.Header.Get("Authorization"))
	}
	sc.Credential = func(int, int) string { return "k\r\nX-Evil: 1" }
	if _, err := sc.NewRequest(context.Background(), 0, 0); !errors.Is(err, bench.ErrBadCredential) {
		t.Errorf("credential with CRLF: err = %v, want ErrBadCredential", err)
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
	t.Parallel()
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
	t.Parallel()
	s := MustStartBaseline(t)
	opt := bench.Options{Concurrency: 1, Duration: 50 * time.Millisecond}
	base, err := bench.Run(context.Background(), bench.NewClient(1), bench.Scenario{Name: "(e) base", URL: s.URL}, opt)
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
	t.Parallel()
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
	sc := bench.Scenario{Name: "baseline", URL: s.URL + "/graphql", Body: body, Check: bench.CheckBody(bench.BaselineBody)}
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
	sc := bench.Scenario{Name: "slow", URL: srv.URL, Body: []byte("{}")}
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
	t.Parallel()
	s := MustStartBaseline(t)
	body := []byte(`{"query":"query { auth_info { tenant_id } }","variables":"null"}`)
	sc := bench.Scenario{Name: "baseline", URL: s.URL + "/graphql", Body: body, Check: bench.CheckBody(bench.BaselineBody)}
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
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) != `{"x":1}` || r.Header.Get("Authorization") != "Bearer k" || r.Method != http.MethodPost ||
			r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Prefect-Core-Version") != "1.4.1" {
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
	srv.Start()
	t.Cleanup(srv.Close)
	sc := bench.Scenario{
		Name:       "framing",
		URL:        srv.URL,
		Body:       []byte(`{"x":1}`),
		Credential: func(int, int) string { return "k" },
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
	t.Parallel()
	sc := bench.Scenario{Name: "away", URL: "http://192.0.2.1:80/"}
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

// rawServer is a TCP server on 127.0.0.1 that answers with hand-written
// bytes: serve handles each connection, until the test ends.
type rawServer struct {
	URL   string
	conns atomic.Int64
}

func startRaw(tb testing.TB, serve func(c net.Conn)) *rawServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &rawServer{URL: "http://" + ln.Addr().String()}
	done := make(chan struct{})
	var open sync.Map // net.Conn → struct{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			open.Store(c, struct{}{})
			go func() {
				defer open.Delete(c)
				defer c.Close()
				serve(c)
			}()
		}
	}()
	tb.Cleanup(func() {
		close(done)
		ln.Close()
		open.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
	})
	return s
}

// readRawRequest reads one request (head, and a body of its
// Content-Length) and returns its bytes.
func readRawRequest(br *bufio.Reader) ([]byte, error) {
	var req []byte
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		req = append(req, line...)
		if err != nil {
			return req, err
		}
		if string(line) == "\r\n" {
			break
		}
		if name, v, ok := strings.Cut(strings.TrimSpace(string(line)), ":"); ok && strings.EqualFold(name, "Content-Length") {
			if n, err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
				return req, err
			}
		}
	}
	body := make([]byte, n)
	_, err := io.ReadFull(br, body)
	return append(req, body...), err
}

// answerEach answers every request on the connection with answer, and
// closes the connection after the first if closeAfter.
func answerEach(answer string, closeAfter bool, bad *atomic.Int64) func(c net.Conn) {
	return func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := readRawRequest(br)
			if err != nil {
				if len(req) > 0 {
					bad.Add(1)
				}
				return
			}
			if _, err := io.WriteString(c, answer); err != nil || closeAfter {
				return
			}
		}
	}
}

// The direct client's parser: interim answers, framing, keep-alive, and
// malformed answers, each failing its request and dropping the connection.
func TestRun_DirectRawAnswers(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	check := func(status int, body []byte) error {
		if (status == 200 && string(body) == "ok") || (status == 204 && len(body) == 0) {
			return nil
		}
		return fmt.Errorf("HTTP %d, %d bytes", status, len(body))
	}
	for _, tc := range []struct {
		name       string
		answer     string
		closeAfter bool   // the server closes the connection after answering
		wantKind   string // "": every request succeeds
		redial     bool   // a connection per request
	}{
		{name: "Content-Length", answer: ok},
		{name: "100 Continue first", answer: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + ok},
		{name: "204 without body", answer: "HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n"},
		{name: "body to EOF", answer: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nok", closeAfter: true, redial: true},
		{name: "chunked with trailer", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n1\r\no\r\n1;ext=1\r\nk\r\n0\r\nX-Trailer: 1\r\n\r\n"},
		{name: "headers in any case, no spaces, LF only", answer: "HTTP/1.1 200 OK\ncontent-length:2\nX-Other: a\n\nok"},
		{name: "same Content-Length twice", answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"},
		{name: "long header ignored", answer: "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", 40<<10) + "\r\nContent-Length: 2\r\n\r\nok"},
		{name: "Connection close", answer: "HTTP/1.1 200 OK\r\nCONNECTION: keep-alive, Close\r\nContent-Length: 2\r\n\r\nok", redial: true},
		{name: "HTTP/1.0", answer: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", redial: true},
		{name: "HTTP/1.0 keep-alive", answer: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"},
		{name: "malformed status line", answer: "HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok", wantKind: "transport: read: malformed status line", redial: true},
		{name: "not HTTP/1.x", answer: "HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\nok", wantKind: "transport: read: malformed status line", redial: true},
		{name: "negative Content-Length", answer: "HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok", wantKind: "transport: read: malformed Content-Length", redial: true},
		{name: "conflicting Content-Length", answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", wantKind: "transport: read: malformed Content-Length", redial: true},
		{name: "Content-Length and chunked", answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", wantKind: "transport: read: both Content-Length and chunked", redial: true},
		{name: "gzip", answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok", wantKind: "transport: read: unsupported Transfer-Encoding", redial: true},
		{name: "folded header", answer: "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 2\r\n\r\nok", wantKind: "transport: read: malformed header line", redial: true},
		{name: "header section too large", answer: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Filler: "+strings.Repeat("a", 1000)+"\r\n", 70) + "Content-Length: 2\r\n\r\nok", wantKind: "transport: read: header section over 64 KiB", redial: true},
		{name: "body too large", answer: "HTTP/1.1 200 OK\r\nContent-Length: 16777217\r\n\r\n", wantKind: "transport: read: body over 16 MiB", redial: true},
		{name: "truncated body", answer: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok", closeAfter: true, wantKind: "transport: read: unexpected EOF", redial: true},
		{name: "101", answer: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", wantKind: "transport: read: unexpected 101 Switching Protocols", redial: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bad atomic.Int64
			s := startRaw(t, answerEach(tc.answer, tc.closeAfter, &bad))
			sc := bench.Scenario{Name: "raw", URL: s.URL + "/graphql", Body: []byte("{}"), Credential: func(int, int) string { return "k" }, Check: check}
			r, err := bench.Run(context.Background(), nil, sc, bench.Options{Concurrency: 1, Duration: 250 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if r.Requests < 3 {
				t.Fatalf("%d requests", r.Requests)
			}
			if tc.wantKind == "" && r.Errors != 0 {
				t.Errorf("errors %d of %d: %v", r.Errors, r.Requests, r.ErrorKinds)
			} else if tc.wantKind != "" && (r.Errors != r.Requests || r.ErrorKinds[tc.wantKind] != r.Requests) {
				t.Errorf("errors %d of %d: %v, want all %q", r.Errors, r.Requests, r.ErrorKinds, tc.wantKind)
			}
			if c := s.conns.Load(); tc.redial && c < r.Requests {
				t.Errorf("%d connections for %d requests, want one each", c, r.Requests)
			} else if !tc.redial && c != 1 {
				t.Errorf("%d connections for %d requests, want 1", c, r.Requests)
			}
			if bad.Load() != 0 {
				t.Errorf("%d requests arrived truncated", bad.Load())
			}
		})
	}
}

// The direct client sends exactly the bytes of a POST with the Prefect
// client's headers, the request's credential and the body.
func TestRun_DirectRequestBytes(t *testing.T) {
	for _, withCred := range []bool{true, false} {
		reqs := make(chan []byte, 1000)
		s := startRaw(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			for {
				req, err := readRawRequest(br)
				if err != nil {
					return
				}
				select {
				case reqs <- req:
				default:
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
		})
		sc := bench.Scenario{Name: "bytes", URL: s.URL + "/graphql?x=1", Body: []byte(`{"x":1}`)}
		if withCred {
			sc.Credential = func(w, i int) string { return fmt.Sprintf("lk_%d_%d", w, i) }
		}
		r, err := bench.Run(context.Background(), nil, sc, bench.Options{Concurrency: 1, Duration: 20 * time.Millisecond})
		if err != nil || r.Requests < 2 || r.Errors != 0 {
			t.Fatalf("err %v, requests %d, errors %v", err, r.Requests, r.ErrorKinds)
		}
		host := strings.TrimPrefix(s.URL, "http://")
		for i := range 2 {
			auth := ""
			if withCred {
				auth = fmt.Sprintf("Authorization: Bearer lk_0_%d\r\n", i)
			}
			want := "POST /graphql?x=1 HTTP/1.1\r\n" +
				"Host: " + host + "\r\n" +
				"User-Agent: latchkey-bench\r\n" +
				"Content-Type: application/json\r\n" +
				"X-Prefect-Core-Version: 1.4.1\r\n" +
				"Content-Length: 7\r\n" +
				auth +
				"\r\n" +
				`{"x":1}`
			if got := string(<-reqs); got != want {
				t.Errorf("credential %v, request %d:\n%q\nwant\n%q", withCred, i, got, want)
			}
		}
	}
}

// A credential that would inject headers fails its request, unsent, with
// either client.
func TestRun_BadCredentialNotSent(t *testing.T) {
	t.Parallel()
	var received atomic.Int64
	s := startRaw(t, func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		received.Add(n)
	})
	for _, client := range []*http.Client{nil, bench.NewClient(1)} {
		sc := bench.Scenario{Name: "evil", URL: s.URL, Body: []byte("{}"), Credential: func(int, int) string { return "lk_x\r\nX-Evil: 1" }}
		r, err := bench.Run(context.Background(), client, sc, bench.Options{Concurrency: 1, Duration: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if r.Requests == 0 || r.ErrorKinds[bench.ErrBadCredential.Error()] != r.Requests {
			t.Errorf("client %v: requests %d, kinds %v, want all %q", client != nil, r.Requests, r.ErrorKinds, bench.ErrBadCredential)
		}
		for k := range r.ErrorKinds {
			if strings.Contains(k, "Evil") {
				t.Errorf("kind %q shows the credential", k)
			}
		}
	}
	if c := s.conns.Load(); c != 0 || received.Load() != 0 {
		t.Errorf("%d connections, %d bytes received, want none", c, received.Load())
	}
}

func TestRun_InvalidURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "https://127.0.0.1/", "127.0.0.1:80", "http:///graphql", "http://:80/", "http://user:pw@127.0.0.1/", "http://127.0.0.1/\r\nX: 1", "http://127.0.0.1/?a b"} {
		for _, client := range []*http.Client{nil, bench.NewClient(1)} {
			start := time.Now()
			r, err := bench.Run(context.Background(), client, bench.Scenario{Name: "bad", URL: u}, bench.Options{Concurrency: 1, Warmup: time.Second, Duration: time.Second})
			if err == nil || r != nil {
				t.Errorf("URL %q: no error", u)
			} else if strings.Contains(err.Error(), "pw") {
				t.Errorf("URL %q: error %q shows the password", u, err)
			}
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Errorf("URL %q: returned after %s", u, d)
			}
		}
	}
}

// Cancelling Run's context unblocks workers waiting for answers that
// never come, long before the requests' timeout.
func TestRun_CancelUnblocks(t *testing.T) {
	s := startRaw(t, func(c net.Conn) { io.Copy(io.Discard, c) }) // never answers
	for _, client := range []*http.Client{nil, bench.NewClient(2)} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		sc := bench.Scenario{Name: "stuck", URL: s.URL, Body: []byte("{}")}
		_, err := bench.Run(ctx, client, sc, bench.Options{Concurrency: 2, Duration: 5 * time.Second, Timeout: 10 * time.Second})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("client %v: err = %v, want context.Canceled", client != nil, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("client %v: returned %s after the start, want about 100ms", client != nil, d)
		}
	}
}

// A request that gets no answer fails after at least 3/4 of Timeout and
// at most Timeout.
func TestRun_DirectTimeout(t *testing.T) {
	s := startRaw(t, func(c net.Conn) { io.Copy(io.Discard, c) }) // never answers
	start := time.Now()
	sc := bench.Scenario{Name: "stuck", URL: s.URL, Body: []byte("{}")}
	r, err := bench.Run(context.Background(), nil, sc, bench.Options{Concurrency: 1, Duration: 50 * time.Millisecond, Timeout: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 2*time.Second {
		t.Errorf("returned after %s, want about 400ms", d)
	}
	if want := "transport: read: i/o timeout"; r.Requests != 1 || r.ErrorKinds[want] != 1 {
		t.Errorf("requests %d, kinds %v, want 1 %q", r.Requests, r.ErrorKinds, want)
	}
	if r.Max < 300*time.Millisecond || r.Max > 500*time.Millisecond {
		t.Errorf("latency %s, want 300 to 400ms", r.Max)
	}
}

// startAllocFree starts a server that allocates nothing per request, for
// measuring the load generator's allocations: it reads a request's head
// up to its empty line, skips bodyLen bytes and answers BaselineBody.
func startAllocFree(tb testing.TB, bodyLen int) *rawServer {
	answer := []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(bench.BaselineBody), bench.BaselineBody))
	return startRaw(tb, func(c net.Conn) {
		br := bufio.NewReaderSize(c, 16<<10)
		for {
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) == 2 {
					break
				}
			}
			if _, err := br.Discard(bodyLen); err != nil {
				return
			}
			if _, err := c.Write(answer); err != nil {
				return
			}
		}
	})
}

var benchCreds = []string{
	"lk_u_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
	"lk_u_1123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
	"lk_u_2123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
}

func benchScenario(url string) bench.Scenario {
	return bench.Scenario{
		Name:       "auth_info",
		URL:        url + "/graphql",
		Body:       []byte(`{"query":"query { auth_info { tenant_id } }","variables":"null"}`),
		Credential: func(w, i int) string { return benchCreds[(w*7919+i)%len(benchCreds)] },
		Check:      bench.CheckBody(bench.BaselineBody),
	}
}

// In the steady state a direct worker allocates nothing per request.
func TestDirect_NoAllocsPerRequest(t *testing.T) {
	sc := benchScenario("")
	s := startAllocFree(t, len(sc.Body))
	sc = benchScenario(s.URL)
	do, stop, err := bench.DirectRoundTrip(sc, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for range 10 {
		if kind := do(); kind != "" {
			t.Fatal(kind)
		}
	}
	var failed string
	allocs := testing.AllocsPerRun(1000, func() {
		if kind := do(); kind != "" {
			failed = kind
		}
	})
	if failed != "" {
		t.Fatal(failed)
	}
	if allocs != 0 {
		t.Errorf("%v allocations per request, want 0", allocs)
	}
	if c := s.conns.Load(); c != 1 {
		t.Errorf("%d connections, want 1", c)
	}
}

// BenchmarkDirectRoundTrip is one direct request and its answer against
// a server that allocates nothing: -benchmem shows the load generator's
// allocations per request.
func BenchmarkDirectRoundTrip(b *testing.B) {
	s := startAllocFree(b, len(benchScenario("").Body))
	do, stop, err := bench.DirectRoundTrip(benchScenario(s.URL), 10*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	b.ReportAllocs()
	for b.Loop() {
		if kind := do(); kind != "" {
			b.Fatal(kind)
		}
	}
}

// BenchmarkRun_Direct runs one 300ms closed loop of one connection per
// op (ns/op is therefore meaningless) and reports per request: the
// process's allocations (allocs/req, B/req; against "baseline" they
// include net/http's server, against "allocfree" they are the load
// generator's alone), its CPU time (cpu-ns/req, the server's included) and
// the throughput.
func BenchmarkRun_Direct(b *testing.B) {
	for _, srv := range []string{"allocfree", "baseline"} {
		b.Run(srv, func(b *testing.B) {
			var url string
			if srv == "baseline" {
				url = MustStartBaseline(b).URL
			} else {
				url = startAllocFree(b, len(benchScenario("").Body)).URL
			}
			sc := benchScenario(url)
			var (
				m0, m1   runtime.MemStats
				requests int64
				cpu      time.Duration
				elapsed  time.Duration
			)
			runtime.ReadMemStats(&m0)
			for b.Loop() {
				r, err := bench.Run(context.Background(), nil, sc, bench.Options{Concurrency: 1, Duration: 300 * time.Millisecond})
				if err != nil {
					b.Fatal(err)
				} else if r.Errors != 0 {
					b.Fatal(r.ErrorKinds)
				}
				requests += r.Requests
				cpu += r.CPU
				elapsed += r.Elapsed
			}
			runtime.ReadMemStats(&m1)
			b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(requests), "allocs/req")
			b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(requests), "B/req")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(requests), "cpu-ns/req")
			b.ReportMetric(float64(requests)/elapsed.Seconds(), "req/s")
		})
	}
}

// Unique gives every request a body of its own, of the same length, on the
// direct and the net/http paths, with and without a credential.
func TestScenario_Unique(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen[string(b)] = true
		mu.Unlock()
		w.Write([]byte("{}"))
	}))
	defer srv.Close()
	const ph = "XXXXXXXXXXXXXXXX"
	body := []byte(`{"name": "k-` + ph + `"}`)
	for _, cred := range []func(w, i int) string{nil, func(w, i int) string { return "lku_x" }} {
		sc := bench.Scenario{Name: "u", URL: srv.URL, Body: body, Unique: ph, Credential: cred}
		do, stop, err := bench.DirectRoundTrip(sc, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if kind := do(); kind != "" {
				t.Fatalf("direct: %s", kind)
			}
		}
		stop()
		for i := range 2 {
			req, err := sc.NewRequest(context.Background(), 7, i)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	if len(seen) != 5 { // 3 direct (the same i for both credential kinds) + 2 net/http
		t.Fatalf("%d distinct bodies, want 5: %v", len(seen), seen)
	}
	for b := range seen {
		if len(b) != len(body) || strings.Contains(b, ph) {
			t.Fatalf("body %q", b)
		}
	}
	if !seen[`{"name": "k-0000000700000001"}`] {
		t.Fatalf("no body for worker 7, request 1: %v", seen)
	}
	bad := bench.Scenario{Name: "bad", URL: srv.URL, Body: body, Unique: "short"}
	if _, _, err := bench.DirectRoundTrip(bad, time.Second); err == nil {
		t.Fatal("a short Unique was accepted")
	}
}
