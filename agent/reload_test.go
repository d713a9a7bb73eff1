package agent_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/agent"
)

const (
	newTestKey     = "lks_rolledkeyrolledkeyrolledkeyrolAAAAAA"
	refusedTestKey = "lks_refusedkeyrefusedkeyrefusedkeAAAAAA"
)

// eventually waits up to 10 s for cond, checking it again after each call
// f records and each write to logs.
func eventually(t *testing.T, f *fakeAPI, logs *lockedBuffer, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		called, written := f.wait(), logs.wait()
		if cond() {
			return
		}
		select {
		case <-called:
		case <-written:
		case <-deadline:
			t.Fatalf("timed out waiting for %s\n%s", what, logs)
		}
	}
}

// On a reload the agent reads its key again and, once the server accepts
// it in the agent's tenant, polls with it; a key it cannot read, or one the
// server refuses, leaves it polling with the key it has.
func TestAgent_ReloadKey(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t)
	scriptStartup(f)
	f.Handle["auth_info"] = func(c call) string {
		if c.Header.Get("Authorization") == "Bearer "+refusedTestKey {
			return unauthenticated
		}
		return data(`{"auth_info":{"tenant_id":"` + testTenant + `","api_token_scope":null}}`)
	}
	f.Handle["get_runs_in_queue"] = func(c call) string {
		if c.Header.Get("Authorization") == "Bearer "+refusedTestKey {
			t.Error("polled with the refused key")
		}
		return data(`{"get_runs_in_queue":{"flow_run_ids":[]}}`)
	}
	logs := &lockedBuffer{}
	a := newTestAgent(f, logs)
	reload := make(chan struct{}, 1)
	a.Reload = reload
	var mu sync.Mutex
	var next struct {
		key string
		err error
	}
	a.LoadKey = func() (string, string, error) {
		mu.Lock()
		defer mu.Unlock()
		return next.key, "the test", next.err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})

	polls := func() int { return len(f.Calls("get_runs_in_queue")) }
	bearersAfter := func(n int) []string {
		var out []string
		for _, c := range f.Calls("get_runs_in_queue")[n:] {
			out = append(out, strings.TrimPrefix(c.Header.Get("Authorization"), "Bearer "))
		}
		return out
	}
	eventually(t, f, logs, "the first polls", func() bool { return polls() >= 2 })

	for _, tt := range []struct {
		name, key string
		err       error
		log       string
	}{
		{"unreadable", "", errors.New("config.toml: no such file"), "could not read the API key again; still using the current key"},
		{"unchanged", testKey, nil, "reloaded the API key: it has not changed"},
		{"refused", refusedTestKey, nil, "the new API key was refused; still using the current key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			next.key, next.err = tt.key, tt.err
			mu.Unlock()
			before := strings.Count(logs.String(), tt.log)
			reload <- struct{}{}
			eventually(t, f, logs, "the reload", func() bool { return strings.Count(logs.String(), tt.log) > before })
			n := polls()
			eventually(t, f, logs, "more polls", func() bool { return polls() >= n+2 })
			for _, b := range bearersAfter(n) {
				if b != testKey {
					t.Fatalf("polled with %q, want the current key", b)
				}
			}
		})
	}

	// A good new key: every later poll uses it, as the same agent.
	mu.Lock()
	next.key, next.err = newTestKey, nil
	mu.Unlock()
	reload <- struct{}{}
	eventually(t, f, logs, "the new key to be used", func() bool {
		b := bearersAfter(0)
		return len(b) > 0 && b[len(b)-1] == newTestKey
	})
	n := polls()
	eventually(t, f, logs, "more polls", func() bool { return polls() >= n+3 })
	for _, c := range f.Calls("get_runs_in_queue")[n:] {
		if got := c.Header.Get("Authorization"); got != "Bearer "+newTestKey {
			t.Errorf("polled with %q after the reload", got)
		}
		if got := c.Header.Get(agent.HeaderAgentID); got != testAgent {
			t.Errorf("agent id header %q after the reload", got)
		}
		if got := c.Header.Get("X-PREFECT-TENANT-ID"); got != testTenant {
			t.Errorf("tenant header %q after the reload", got)
		}
	}
	if !strings.Contains(logs.String(), "reloaded the API key: polls and new flow runs use the new key") {
		t.Errorf("no reload message:\n%s", logs)
	}
	for _, k := range []string{testKey, newTestKey, refusedTestKey} {
		if strings.Contains(logs.String(), k[4:]) {
			t.Errorf("a key in the log:\n%s", logs)
		}
	}
	if len(f.Calls("register_agent")) != 1 {
		t.Errorf("registered %d times", len(f.Calls("register_agent")))
	}
}

// A key that acts in another tenant is refused.
func TestAgent_ReloadKey_OtherTenant(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t)
	scriptStartup(f)
	f.Handle["auth_info"] = func(c call) string {
		tenant := testTenant
		if c.Header.Get("Authorization") == "Bearer "+newTestKey {
			tenant = "22222222-2222-2222-2222-222222222222"
		}
		return data(`{"auth_info":{"tenant_id":"` + tenant + `","api_token_scope":null}}`)
	}
	f.Handle["get_runs_in_queue"] = func(c call) string { return data(`{"get_runs_in_queue":{"flow_run_ids":[]}}`) }
	logs := &lockedBuffer{}
	a := newTestAgent(f, logs)
	reload := make(chan struct{}, 1)
	a.Reload = reload
	a.LoadKey = func() (string, string, error) { return newTestKey, "the test", nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	reload <- struct{}{}
	eventually(t, f, logs, "the refusal", func() bool {
		return strings.Contains(logs.String(), "the new API key was refused") && strings.Contains(logs.String(), "does not act in the agent's tenant")
	})
	n := len(f.Calls("get_runs_in_queue"))
	eventually(t, f, logs, "another poll", func() bool { return len(f.Calls("get_runs_in_queue")) > n })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Calls("get_runs_in_queue") {
		if c.Header.Get("Authorization") != "Bearer "+testKey {
			t.Fatalf("polled with another key")
		}
	}
}
