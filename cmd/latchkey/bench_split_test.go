package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/bench"
	main "github.com/latchkey/latchkey/cmd/latchkey"
)

func TestBench_SplitCoresFlag(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	env := &main.Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }, Now: time.Now}
	if got, want := main.Run(context.Background(), []string{"bench", "--help"}, env), 0; got != want {
		t.Fatalf("--help: exit %d, want %d", got, want)
	}
	if !strings.Contains(stderr.String(), "-split-cores") {
		t.Errorf("--help does not list --split-cores:\n%s", stderr.String())
	}
	stderr.Reset()
	if got, want := main.Run(context.Background(), []string{"bench", "--split-cores", "--verify-scaling"}, env), 2; got != want {
		t.Fatalf("--split-cores --verify-scaling: exit %d, want %d; stderr:\n%s", got, want, stderr.String())
	}
	if got, want := stderr.String(), "--split-cores does not apply to --verify-scaling"; !strings.Contains(got, want) {
		t.Errorf("stderr = %q, want it to contain %q", got, want)
	}
}

// TestBench_LoadGeneratorChild drives the --split-cores child in-process:
// the request goes in on stdin, results with their latencies come back
// as JSON on stdout.
func TestBench_LoadGeneratorChild(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	auths := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths[r.Header.Get("Authorization")] = true
		mu.Unlock()
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, bench.BaselineBody)
	}))
	defer srv.Close()
	const secret = "lk_test_child_credential"
	req := map[string]any{
		"cpu": -1, "concurrency": 2, "warmup_ns": 0, "duration_ns": int64(150 * time.Millisecond), "rounds": 2,
		"scenarios": []map[string]any{
			{"name": "ok", "url": srv.URL + "/graphql", "body": []byte(`{}`), "credentials": []string{secret}, "check_body": bench.BaselineBody},
			{"name": "bad", "url": srv.URL + "/graphql", "body": []byte(`{}`), "credentials": []string{secret}, "check_body": "other"},
		},
	}
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	env := &main.Env{Stdin: bytes.NewReader(in), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }, Now: time.Now}
	if code := main.Run(context.Background(), []string{"bench", "--load-generator-child"}, env); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if strings.Contains(stdout.String()+stderr.String(), secret) {
		t.Error("the child's output contains the credential")
	}
	var resp struct {
		Results [][]*bench.Result `json:"results"`
		Error   string            `json:"error"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		t.Fatalf("answer: %v\n%s", err, stdout.String())
	}
	if got, want := len(resp.Results), 2; got != want {
		t.Fatalf("rounds = %d, want %d", got, want)
	}
	for round, rs := range resp.Results {
		if got, want := len(rs), 2; got != want {
			t.Fatalf("round %d: %d results, want %d", round, got, want)
		}
		ok, bad := rs[0], rs[1]
		if ok.Scenario != "ok" || bad.Scenario != "bad" {
			t.Errorf("round %d: scenarios %q, %q", round, ok.Scenario, bad.Scenario)
		}
		if ok.Requests == 0 || ok.Errors != 0 || ok.P50 <= 0 || ok.P99 < ok.P50 || ok.Concurrency != 2 {
			t.Errorf("round %d: ok: requests %d errors %d p50 %s p99 %s conns %d", round, ok.Requests, ok.Errors, ok.P50, ok.P99, ok.Concurrency)
		}
		if bad.Requests == 0 || bad.Errors != bad.Requests {
			t.Errorf("round %d: bad: requests %d errors %d, want all failed", round, bad.Requests, bad.Errors)
		}
	}
	if m := bench.Merge(resp.Results[0][0], resp.Results[1][0]); m.Requests != resp.Results[0][0].Requests+resp.Results[1][0].Requests || m.P99 <= 0 {
		t.Errorf("merged: requests %d p99 %s", m.Requests, m.P99)
	}
	mu.Lock()
	if got, want := len(auths), 1; got != want || !auths["Bearer "+secret] {
		t.Errorf("%d distinct Authorization headers, want only the credential", len(auths))
	}
	mu.Unlock()

	// A request it cannot run is answered with an error and exit 1.
	stdout.Reset()
	env.Stdin = strings.NewReader(`{"cpu": -1, "concurrency": 0, "rounds": 1, "duration_ns": 1000000, "scenarios": []}`)
	if got, want := main.Run(context.Background(), []string{"bench", "--load-generator-child"}, env), 1; got != want {
		t.Fatalf("invalid request: exit %d, want %d", got, want)
	}
	if !strings.Contains(stdout.String(), `"error":"concurrency must be 1 to 4096"`) {
		t.Errorf("invalid request: stdout %q", stdout.String())
	}
}
