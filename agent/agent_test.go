package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/agent"
	"github.com/latchkey/latchkey/client"
)

const (
	testKey    = "lks_agentkeyagentkeyagentkeyagenAAAAAA"
	testTenant = "11111111-1111-1111-1111-111111111111"
	testAgent  = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	testRun    = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
)

// lockedBuffer is a bytes.Buffer safe for a logger and a test to share.
type lockedBuffer struct {
	changes // each write
	mu      sync.Mutex
	b       bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	n, err := l.b.Write(p)
	l.mu.Unlock()
	l.changed()
	return n, err
}

// changes tells of changes a test waits for: wait returns a channel that
// is closed at the next change.
type changes struct {
	mu   sync.Mutex
	next chan struct{}
}

func (c *changes) wait() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next == nil {
		c.next = make(chan struct{})
	}
	return c.next
}

func (c *changes) changed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next != nil {
		close(c.next)
		c.next = nil
	}
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newTestAgent returns an agent on f with tiny backoff steps.
func newTestAgent(f *fakeAPI, logs *lockedBuffer) *agent.Agent {
	return &agent.Agent{
		Client:  &client.Client{URL: f.URL(), APIKey: testKey},
		Name:    "test-agent",
		Labels:  []string{"foo", "vm"},
		Backoff: []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond},
		Logger:  slog.New(slog.NewTextHandler(logs, nil)),
	}
}

// scriptStartup answers the agent's startup calls.
func scriptStartup(f *fakeAPI) {
	f.Handle["auth_info"] = func(call) string {
		return data(`{"auth_info":{"tenant_id":"` + testTenant + `","api_token_scope":null}}`)
	}
	f.Handle["register_agent"] = func(call) string { return data(`{"register_agent":{"id":"` + testAgent + `"}}`) }
	f.Handle["hello"] = func(call) string { return data(`{"hello":"👋"}`) }
}

func TestAgent_StartsAndPollsAsPrefectDoes(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t)
	scriptStartup(f)
	f.Handle["get_runs_in_queue"] = func(call) string { return data(`{"get_runs_in_queue":{"flow_run_ids":[]}}`) }
	logs := &lockedBuffer{}
	a := newTestAgent(f, logs)
	a.MaxPolls = 3
	if err := a.Run(context.Background()); err != nil {
		t.Fatalf("run: %v\n%s", err, logs)
	}
	if got, want := f.Ops(), []string{"auth_info", "register_agent", "hello", "get_runs_in_queue", "get_runs_in_queue", "get_runs_in_queue"}; !slices.Equal(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
	if a.ID() != testAgent {
		t.Errorf("id = %q", a.ID())
	}
	authInfo := f.Calls("auth_info")[0]
	if authInfo.Header.Get("Authorization") != "Bearer "+testKey || authInfo.Header.Get("X-PREFECT-TENANT-ID") != "" {
		t.Errorf("auth_info headers = %v", authInfo.Header)
	}
	reg := f.Calls("register_agent")[0]
	in := reg.input()
	if in["type"] != "LocalAgent" || in["name"] != "test-agent" || fmt.Sprint(in["labels"]) != "[foo vm]" || in["tenant_id"] != testTenant {
		t.Errorf("register_agent input = %v", in)
	}
	if v, ok := in["agent_config_id"]; !ok || v != nil {
		t.Errorf("agent_config_id = %v (present %v), want null", v, ok)
	}
	if reg.Header.Get("X-PREFECT-TENANT-ID") != testTenant || reg.Header.Get("X-PREFECT-AGENT-ID") != "" {
		t.Errorf("register_agent headers = %v", reg.Header)
	}
	if f.Calls("hello")[0].Query != "query { hello }" {
		t.Errorf("hello = %q", f.Calls("hello")[0].Query)
	}
	for _, c := range f.Calls("get_runs_in_queue") {
		in := c.input()
		before, err := time.Parse(time.RFC3339Nano, fmt.Sprint(in["before"]))
		if err != nil || time.Until(before) < 5*time.Second || time.Until(before) > 11*time.Second {
			t.Errorf("before = %v (%v), want about now+10s", in["before"], err)
		}
		if fmt.Sprint(in["labels"]) != "[foo vm]" || in["tenant_id"] != testTenant {
			t.Errorf("poll input = %v", in)
		}
		if c.Header.Get("X-PREFECT-AGENT-ID") != testAgent || c.Header.Get("Authorization") != "Bearer "+testKey || c.Header.Get("X-PREFECT-TENANT-ID") != testTenant {
			t.Errorf("poll headers = %v", c.Header)
		}
	}
	if strings.Contains(logs.String(), testKey[4:]) {
		t.Error("the key is in the agent's log")
	}
}

func TestAgent_RevokedKeyStopsPolling(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t)
	scriptStartup(f)
	f.Handle["get_runs_in_queue"] = func(c call) string {
		if c.Ordinal >= 2 {
			return unauthenticated
		}
		return data(`{"get_runs_in_queue":{"flow_run_ids":[]}}`)
	}
	logs := &lockedBuffer{}
	a := newTestAgent(f, logs)
	a.Client.TenantID = testTenant // given: no auth_info
	err := a.Run(context.Background())
	if !errors.Is(err, agent.ErrKeyRevoked) {
		t.Fatalf("err = %v, want ErrKeyRevoked", err)
	}
	if got, want := f.Ops(), []string{"register_agent", "hello", "get_runs_in_queue", "get_runs_in_queue", "get_runs_in_queue"}; !slices.Equal(got, want) {
		t.Errorf("calls = %v, want %v (no poll after the rejection)", got, want)
	}
	if !strings.Contains(logs.String(), "restart it with a new key") {
		t.Errorf("log lacks the revocation message:\n%s", logs)
	}
}

func TestAgent_RejectedAtStartup(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t)
	f.Handle["auth_info"] = func(call) string { return unauthenticated }
	a := newTestAgent(f, &lockedBuffer{})
	if err := a.Run(context.Background()); !errors.Is(err, agent.ErrKeyRevoked) {
		t.Fatalf("err = %v, want ErrKeyRevoked", err)
	}
	if got := f.Ops(); !slices.Equal(got, []string{"auth_info"}) {
		t.Errorf("calls = %v", got)
	}
}

func TestAgent_RequireServiceAccount(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		kind string
		err  error
	}{
		{"USER", agent.ErrNotServiceAccount},
		{"SERVICE_ACCOUNT", nil},
	} {
		f := newFakeAPI(t)
		scriptStartup(f)
		f.Handle["user"] = func(call) string { return data(`{"user":[{"kind":"` + tt.kind + `"}]}`) }
		f.Handle["get_runs_in_queue"] = func(call) string { return data(`{"get_runs_in_queue":{"flow_run_ids":[]}}`) }
		a := newTestAgent(f, &lockedBuffer{})
		a.RequireServiceAccount, a.MaxPolls = true, 1
		if err := a.Run(context.Background()); !errors.Is(err, tt.err) {
			t.Errorf("%s: err = %v, want %v", tt.kind, err, tt.err)
		}
		if registered := len(f.Calls("register_agent")) == 1; registered != (tt.err == nil) {
			t.Errorf("%s: registered = %v", tt.kind, registered)
		}
	}
	// Without the option, a user key is fine and the kind is not asked.
	f := newFakeAPI(t)
	scriptStartup(f)
	f.Handle["get_runs_in_queue"] = func(call) string { return data(`{"get_runs_in_queue":{"flow_run_ids":[]}}`) }
	a := newTestAgent(f, &lockedBuffer{})
	a.MaxPolls = 1
	if err := a.Run(context.Background()); err != nil || len(f.Calls("user")) != 0 {
		t.Errorf("err = %v, user calls = %d", err, len(f.Calls("user")))
	}
}

func TestAgent_LegacyTokenFindsItsTenant(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t)
	scriptStartup(f)
	f.Handle["auth_info"] = func(call) string { return data(`{"auth_info":{"tenant_id":null,"api_token_scope":"RUNNER"}}`) }
	f.Handle["tenant"] = func(call) string { return data(`{"tenant":[{"id":"` + testTenant + `"}]}`) }
	f.Handle["get_runs_in_queue"] = func(call) string { return data(`{"get_runs_in_queue":{"flow_run_ids":[]}}`) }
	a := newTestAgent(f, &lockedBuffer{})
	a.MaxPolls = 1
	if err := a.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a.Client.TenantID != testTenant || f.Calls("register_agent")[0].input()["tenant_id"] != testTenant {
		t.Errorf("tenant = %q", a.Client.TenantID)
	}
}

// TestAgent_SubmitsAndRunsFlowRuns drives the agent through one run, with
// this test binary standing in for `latchkey execute flow-run` (see init).
func TestAgent_SubmitsAndRunsFlowRuns(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t)
	scriptStartup(f)
	f.Handle["get_runs_in_queue"] = func(c call) string {
		if c.Ordinal == 0 {
			return data(`{"get_runs_in_queue":{"flow_run_ids":["` + testRun + `"]}}`)
		}
		return data(`{"get_runs_in_queue":{"flow_run_ids":[]}}`)
	}
	f.Handle["flow_run"] = func(c call) string {
		return data(`{"flow_run":[{"id":"` + testRun + `","version":1,"state":"Scheduled","name":"r","serialized_state":null,"parameters":{},"scheduled_start_time":"2030-01-01T00:00:00+00:00","run_config":null,"flow":{"id":"` + testRun + `","name":"r","environment":null,"storage":null,"version":1,"core_version":null},"task_runs":[]}]}`)
	}
	f.Handle["set_flow_run_states"] = func(c call) string {
		return data(`{"set_flow_run_states":{"states":[{"id":"` + testRun + `","status":"SUCCESS","message":null}]}}`)
	}
	f.Handle["write_run_logs"] = func(call) string { return data(`{"write_run_logs":{"success":true}}`) }

	envFile := filepath.Join(t.TempDir(), "env")
	logs := &lockedBuffer{}
	a := newTestAgent(f, logs)
	a.MaxPolls = 2
	a.Executable = os.Args[0]
	a.HeartbeatInterval = 1500 * time.Millisecond
	a.Environ = []string{
		"GO_WANT_HELPER_EXECUTOR=1", "HELPER_ENV_FILE=" + envFile,
		"PREFECT__CLOUD__API_KEY=stale", "PREFECT__CLOUD__AUTH_TOKEN=stale", "KEEP_ME=1",
	}
	if err := a.Run(context.Background()); err != nil {
		t.Fatalf("run: %v\n%s", err, logs)
	}
	// The agent's flow_run query is Prefect's, with the ids it was given.
	q := f.Calls("flow_run")[0].Query
	if !strings.Contains(q, `id: { _in: ["`+testRun+`"] }`) || !strings.Contains(q, `_or: [{ state: { _eq: "Scheduled" } }`) || !strings.Contains(q, "task_runs(where:") {
		t.Errorf("flow_run query = %s", q)
	}
	set := f.Calls("set_flow_run_states")[0].input()["states"].([]any)[0].(map[string]any)
	state := set["state"].(map[string]any)
	if set["flow_run_id"] != testRun || set["version"] != float64(1) || state["type"] != "Submitted" || state["message"] != "Submitted for execution" {
		t.Errorf("set_flow_run_states = %v", set)
	}
	logLine := f.Calls("write_run_logs")[0].input()["logs"].([]any)[0].(map[string]any)
	if logLine["flow_run_id"] != testRun || !strings.HasPrefix(fmt.Sprint(logLine["message"]), "Submitted for execution by agent test-agent") || logLine["level"] != "INFO" {
		t.Errorf("log = %v", logLine)
	}
	envText, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatalf("the run process did not run: %v\n%s", err, logs)
	}
	env := strings.Split(strings.TrimSpace(string(envText)), "\n")
	for _, want := range []string{
		"ARGS=execute flow-run",
		"PREFECT__BACKEND=cloud",
		"PREFECT__CLOUD__API=" + f.URL(),
		"PREFECT__CLOUD__API_KEY=" + testKey,
		"PREFECT__CLOUD__TENANT_ID=" + testTenant,
		"PREFECT__CONTEXT__FLOW_RUN_ID=" + testRun,
		"PREFECT__CLOUD__HEARTBEAT_INTERVAL=1.5",
		"PREFECT__CLOUD__AGENT__LABELS=['foo', 'vm']",
		"KEEP_ME=1",
	} {
		if !slices.Contains(env, want) {
			t.Errorf("run process env lacks %q:\n%s", want, envText)
		}
	}
	for _, kv := range env {
		if strings.HasSuffix(kv, "=stale") {
			t.Errorf("inherited %s was not replaced", kv)
		}
	}
	if !strings.Contains(logs.String(), "flow run process: helper says hi") {
		t.Errorf("the run process's output was not relayed:\n%s", logs)
	}
}

// TestAgent_LosesRaceForRun skips a run another agent submitted first.
func TestAgent_LosesRaceForRun(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t)
	scriptStartup(f)
	f.Handle["get_runs_in_queue"] = func(c call) string {
		return data(`{"get_runs_in_queue":{"flow_run_ids":["` + testRun + `"]}}`)
	}
	f.Handle["flow_run"] = func(c call) string {
		return data(`{"flow_run":[{"id":"` + testRun + `","version":1,"state":"Scheduled","name":"r"}]}`)
	}
	f.Handle["set_flow_run_states"] = func(c call) string {
		return `{"errors":[{"message":"Flow run is at version 2, not 1","extensions":{"code":"VERSION_LOCKING_ERROR"}}],"data":null}`
	}
	a := newTestAgent(f, &lockedBuffer{})
	a.MaxPolls = 2
	a.Executable = "/nonexistent/must-not-run"
	if err := a.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(f.Calls("set_flow_run_states")); n != 2 {
		t.Errorf("set_flow_run_states calls = %d, want 2 (one per poll, both lost)", n)
	}
	if n := len(f.Calls("write_run_logs")); n != 0 {
		t.Errorf("write_run_logs calls = %d, want 0", n)
	}
}

// init makes this test binary the fake run process of
// TestAgent_SubmitsAndRunsFlowRuns: it records its arguments and
// environment, says hi on stderr and exits.
func init() {
	if os.Getenv("GO_WANT_HELPER_EXECUTOR") == "1" {
		env := append([]string{"ARGS=" + strings.Join(os.Args[1:], " ")}, os.Environ()...)
		_ = os.WriteFile(os.Getenv("HELPER_ENV_FILE"), []byte(strings.Join(env, "\n")+"\n"), 0o600)
		fmt.Fprintln(os.Stderr, "helper says hi")
		os.Exit(0)
	}
}
