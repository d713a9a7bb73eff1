package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/agent"
	"github.com/latchkey/latchkey/client"
	main "github.com/latchkey/latchkey/cmd/latchkey"
)

// execMainEnv, when set to 1, makes this test binary behave as the latchkey
// binary: the end-to-end tests start the agent this way, and the agent
// starts its run processes (`latchkey execute flow-run`) the same way,
// since os.Executable is this binary.
const execMainEnv = "LATCHKEY_TEST_EXEC_MAIN"

func init() {
	if os.Getenv(execMainEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := main.Run(ctx, os.Args[1:], main.StdEnv())
		stop()
		os.Exit(code)
	}
}

const (
	qCreateServiceAccount = "mutation($input: create_service_account_input!) {\n    create_service_account(input: $input) {\n        id\n    }\n}"
	qCreateKeyWithID      = "mutation($input: create_api_key_input!) {\n    create_api_key(input: $input) {\n        id\n        key\n    }\n}"
	qCreateFlowRun        = "mutation($input: create_flow_run_input!) {\n    create_flow_run(input: $input) {\n        id\n    }\n}"
	qFlowRunStatus        = `query($id: uuid!) { flow_run(where: { id: { _eq: $id } }) {
		id state state_message version start_time end_time heartbeat_at lost_contact_at agent_id
		logs { name level message } } }`
	qAgents = "query { agent { id name type labels last_seen_at } }"
)

type e2eRun struct {
	ID            string  `json:"id"`
	State         string  `json:"state"`
	StateMessage  *string `json:"state_message"`
	Version       int     `json:"version"`
	StartTime     *string `json:"start_time"`
	EndTime       *string `json:"end_time"`
	HeartbeatAt   *string `json:"heartbeat_at"`
	LostContactAt *string `json:"lost_contact_at"`
	AgentID       *string `json:"agent_id"`
	Logs          []struct {
		Name, Level, Message string
	} `json:"logs"`
}

func (r *e2eRun) hasLog(name, level, msg string) bool {
	for _, l := range r.Logs {
		if l.Name == name && l.Level == level && strings.Contains(l.Message, msg) {
			return true
		}
	}
	return false
}

// agentProc is an agent started as a child process.
type agentProc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	err            error
}

func (p *agentProc) output() string {
	return "stdout:\n" + p.stdout.String() + "\nstderr:\n" + p.stderr.String()
}

// wait waits up to d for the agent to exit.
func (p *agentProc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

func mustStartAgent(tb testing.TB, args, env []string) *agentProc {
	tb.Helper()
	p := &agentProc{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], append([]string{"agent", "local", "start"}, args...)...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() {
		if !p.wait(0) {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			if !p.wait(15 * time.Second) {
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
	})
	return p
}

// waitFor polls fn every 50 ms until it returns true, or fails after d.
func waitFor(tb testing.TB, d time.Duration, what string, fn func() bool, debug func() string) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !fn() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s\n%s", d, what, debug())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAgent_EndToEnd is the acceptance test of issue 5: an admin creates a
// service-account key; an agent started with it runs two flow runs to
// Success with their states and logs recorded; a long run is in progress
// when the key is revoked; the agent then exits with the revocation
// message within seconds, the server rejects the run's heartbeat, and the
// run is marked as having lost contact. The key reaches the agent by flag,
// by environment variable and by ~/.prefect/config.toml.
func TestAgent_EndToEnd(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(t *testing.T, home, key, api string) (args, env []string)
	}{
		{"token flag", func(t *testing.T, home, key, _ string) ([]string, []string) {
			return []string{"-t", key}, []string{agent.EnvHeartbeatInterval + "=0.5"}
		}},
		{"environment", func(t *testing.T, home, key, _ string) ([]string, []string) {
			return nil, []string{agent.EnvAPIKey + "=" + key, agent.EnvHeartbeatInterval + "=0.5"}
		}},
		{"config file", func(t *testing.T, home, key, _ string) ([]string, []string) {
			dir := filepath.Join(home, ".prefect")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			// The heartbeat interval comes from the file too.
			cfg := "[cloud]\nheartbeat_interval = 0.5\n\n[cloud.agent]\nauth_token = \"" + key + "\"\n"
			if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			return nil, nil
		}},
		{"auth file", func(t *testing.T, home, key, api string) ([]string, []string) {
			// What `latchkey auth login -k KEY` leaves for this server.
			dir := filepath.Join(home, ".prefect")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			saved := "[\"" + client.ServerSlug(api) + "\"]\napi_key = \"" + key + "\"\n"
			if err := os.WriteFile(filepath.Join(dir, "auth.toml"), []byte(saved), 0o600); err != nil {
				t.Fatal(err)
			}
			return nil, []string{agent.EnvHeartbeatInterval + "=0.5"}
		}},
	}
	eachEngine(t, func(t *testing.T, engine string) {
		for _, tc := range cases {
			if engine != "sqlite" && tc.name != "token flag" {
				continue // the key's source is the agent's business; one case covers the engine
			}
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				home := t.TempDir()
				s := MustRunMain(t, engine, func(m *main.Main) {
					m.FlowRunHeartbeatTimeout = 3 * time.Second
					m.FlowRunSweepInterval = 200 * time.Millisecond
				})
				keyID, key := mustServiceAccountKey(t, s)
				args, extraEnv := tc.setup(t, home, key, s.URL+"/graphql")
				env := append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, execMainEnv + "=1"}, extraEnv...)
				runAgentScenario(t, s, keyID, key, append([]string{"--api", s.URL + "/graphql", "-l", "e2e", "-n", "e2e-agent"}, args...), env)
			})
		}
	})
}

// mustServiceAccountKey has the bootstrap admin create a service account
// and a key for it, over GraphQL; it returns the key's id and text.
func mustServiceAccountKey(tb testing.TB, s *TestServer) (string, string) {
	tb.Helper()
	var sa struct{ ID string }
	s.MustDo(tb, s.AdminKey, "", qCreateServiceAccount, map[string]any{"input": map[string]any{"name": "e2e agent"}}, "create_service_account", &sa)
	var k struct{ ID, Key string }
	s.MustDo(tb, s.AdminKey, "", qCreateKeyWithID, map[string]any{"input": map[string]any{"name": "agent key", "user_id": sa.ID}}, "create_api_key", &k)
	if !strings.HasPrefix(k.Key, latchkey.PrefixServiceKey) {
		tb.Fatalf("service-account key %q", k.Key[:4])
	}
	return k.ID, k.Key
}

func runAgentScenario(t *testing.T, s *TestServer, keyID, key string, args, env []string) {
	createRun := func(name string, command ...string) string {
		var out struct{ ID string }
		s.MustDo(t, s.AdminKey, "", qCreateFlowRun, map[string]any{"input": map[string]any{
			"name": name, "command": command, "labels": []string{"e2e"},
		}}, "create_flow_run", &out)
		return out.ID
	}
	getRun := func(id string) *e2eRun {
		var runs []*e2eRun
		s.MustDo(t, s.AdminKey, "", qFlowRunStatus, map[string]any{"id": id}, "flow_run", &runs)
		if len(runs) != 1 {
			t.Fatalf("flow run %s: %d rows", id, len(runs))
		}
		return runs[0]
	}

	p := mustStartAgent(t, args, env)

	// Two short runs succeed.
	one := createRun("one", "sh", "-c", "echo hello from one; echo to stderr >&2; exit 0")
	two := createRun("two", "sh", "-c", "echo hello from two")
	for _, id := range []string{one, two} {
		waitFor(t, 15*time.Second, "run "+id+" to succeed", func() bool {
			if p.wait(0) {
				t.Fatalf("agent exited early: %v\n%s", p.err, p.output())
			}
			return latchkey.FlowRunState(getRun(id).State).Finished()
		}, p.output)
	}
	var agentID string
	for i, id := range []string{one, two} {
		r := getRun(id)
		if r.State != "Success" || r.Version != 4 || r.StartTime == nil || r.EndTime == nil || r.HeartbeatAt == nil || r.LostContactAt != nil || r.AgentID == nil {
			t.Errorf("run %d: %+v", i+1, r)
			continue
		}
		agentID = *r.AgentID
		if r.StateMessage == nil || *r.StateMessage != "The command exited with code 0." {
			t.Errorf("run %d: state message %v", i+1, r.StateMessage)
		}
		want := []struct{ name, level, msg string }{
			{"agent", "INFO", "Submitted for execution by agent e2e-agent"},
			{agent.LogNameExecute, "INFO", "Started the command"},
			{agent.LogNameStdout, "INFO", "hello from " + []string{"one", "two"}[i]},
			{agent.LogNameExecute, "INFO", "The command exited with code 0."},
		}
		if i == 0 {
			want = append(want, struct{ name, level, msg string }{agent.LogNameStderr, "ERROR", "to stderr"})
		}
		for _, w := range want {
			if !r.hasLog(w.name, w.level, w.msg) {
				t.Errorf("run %d: no %s %s log %q in %+v", i+1, w.level, w.name, w.msg, r.Logs)
			}
		}
	}

	// The agent is listed, seen recently.
	var agents []struct {
		ID, Name, Type string
		Labels         []string
		LastSeenAt     string `json:"last_seen_at"`
	}
	s.MustDo(t, s.AdminKey, "", qAgents, nil, "agent", &agents)
	// Its labels: -l e2e, and the host's name (Prefect's --hostname-label).
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := []string{"e2e", hostname}
	slices.Sort(wantLabels)
	if len(agents) != 1 || agents[0].ID != agentID || agents[0].Name != "e2e-agent" || agents[0].Type != "LocalAgent" || !slices.Equal(agents[0].Labels, wantLabels) {
		t.Fatalf("agents = %+v (runs submitted by %s)", agents, agentID)
	}
	if seen, err := time.Parse(time.RFC3339Nano, agents[0].LastSeenAt); err != nil || time.Since(seen) > 15*time.Second {
		t.Errorf("last_seen_at = %q (%v)", agents[0].LastSeenAt, err)
	}

	// A long run is in progress when the key is revoked.
	long := createRun("long", "sleep", "30")
	waitFor(t, 15*time.Second, "the long run to be Running", func() bool {
		r := getRun(long)
		return r.State == "Running" && r.hasLog(agent.LogNameExecute, "INFO", "Started the command")
	}, p.output)
	var revoked struct{ Success bool }
	s.MustDo(t, s.AdminKey, "", qRevokeKey, map[string]any{"input": map[string]any{"key_id": keyID}}, "delete_api_key", &revoked)
	if !revoked.Success {
		t.Fatal("revocation failed")
	}
	revokedAt := time.Now()

	// The agent says so and exits non-zero within seconds.
	if !p.wait(10 * time.Second) {
		t.Fatalf("agent still running 10s after the revocation\n%s", p.output())
	}
	var exitErr *exec.ExitError
	if !errors.As(p.err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Errorf("agent exit: %v, want exit status 1", p.err)
	}
	t.Logf("agent exited %s after the revocation", time.Since(revokedAt).Round(10*time.Millisecond))
	if !strings.Contains(p.stderr.String(), agent.RevokedMessage) {
		t.Errorf("no revocation message in the agent's output\n%s", p.output())
	}
	// The run process's own heartbeat was rejected, and it stopped.
	if !strings.Contains(p.stderr.String(), "The API key used by this flow run was revoked or is no longer valid: the server rejected its heartbeat") {
		t.Errorf("the run process did not report its heartbeat being rejected\n%s", p.output())
	}
	// The server rejects the run's next heartbeat (the revoked key is
	// all a run process of this agent has).
	hb := s.Do(t, "/graphql", key, "", agentHeartbeat(long), nil)
	hb.mustFail(t, "UNAUTHENTICATED")

	// The command was stopped: its pid no longer exists.
	r := getRun(long)
	if pid := startedPID(r); pid <= 0 {
		t.Errorf("no pid in the long run's logs: %+v", r.Logs)
	} else if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the long run's command (pid %d) is still alive: %v", pid, err)
	}

	// Nothing could report on the long run; the server marks it as having
	// lost contact once its heartbeat timeout (3 s here) passes.
	waitFor(t, 10*time.Second, "the long run to be marked as having lost contact", func() bool {
		return getRun(long).LostContactAt != nil
	}, func() string { b, _ := json.Marshal(getRun(long)); return string(b) })
	r = getRun(long)
	if r.State != "Failed" || r.StateMessage == nil || !strings.HasPrefix(*r.StateMessage, latchkey.LostContactMessagePrefix) || r.EndTime == nil {
		t.Errorf("long run = %+v", r)
	}
	if !r.hasLog("latchkey.server", "ERROR", latchkey.LostContactMessagePrefix) {
		t.Errorf("no lost-contact log line: %+v", r.Logs)
	}

	// The key was never printed or logged.
	for where, text := range map[string]string{"agent output": p.output(), "server logs": s.Logs.String(), "server stdout": s.Stdout.String()} {
		if strings.Contains(text, key[4:]) {
			t.Errorf("the key appears in the %s", where)
		}
	}
}

func agentHeartbeat(runID string) string { return agent.MutationHeartbeat(runID) }

var pidRE = regexp.MustCompile(`Started the command \(pid (\d+)\)`)

// startedPID returns the pid the run process logged for its command.
func startedPID(r *e2eRun) int {
	for _, l := range r.Logs {
		if m := pidRE.FindStringSubmatch(l.Message); m != nil {
			pid, _ := strconv.Atoi(m[1])
			return pid
		}
	}
	return 0
}

const qRotateKey = "mutation($input: rotate_api_key_input!) {\n    rotate_api_key(input: $input) {\n        id\n        key\n        old_key_expires_at\n    }\n}"

// e2eClock is the server's clock: real time, moved forward on demand.
type e2eClock struct{ offset atomic.Int64 }

func (c *e2eClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *e2eClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// TestAgent_RollKeyWithSIGHUP is issue 16's zero-downtime key rotation: an
// agent reads its service-account key from ~/.prefect/config.toml; while a
// run is executing, an admin rolls the key with an hour's grace, the
// operator writes the new key to the config and sends the agent SIGHUP.
// The run finishes (its process keeps the old key, valid during the grace
// period), the agent polls with the new key, and once the grace period is
// over the old key is refused while the agent, unaffected, runs the next
// flow run.
func TestAgent_RollKeyWithSIGHUP(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine string) {
		t.Parallel()
		clock := &e2eClock{}
		s := MustRunMain(t, engine, func(m *main.Main) {
			m.Now = clock.Now
			m.FlowRunHeartbeatTimeout = 30 * time.Second
			m.FlowRunSweepInterval = 200 * time.Millisecond
		})
		oldKeyID, oldKey := mustServiceAccountKey(t, s)
		home := t.TempDir()
		dir := filepath.Join(home, ".prefect")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		writeKey := func(key string) {
			t.Helper()
			cfg := "[cloud]\nheartbeat_interval = 0.5\n\n[cloud.agent]\nauth_token = \"" + key + "\"\n"
			if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		writeKey(oldKey)
		createRun := func(name string, command ...string) string {
			var out struct{ ID string }
			// Due by the agent's clock, which the server's runs ahead of
			// once the grace period is made to pass.
			s.MustDo(t, s.AdminKey, "", qCreateFlowRun, map[string]any{"input": map[string]any{
				"name": name, "command": command, "labels": []string{"e2e"}, "scheduled_start_time": time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano),
			}}, "create_flow_run", &out)
			return out.ID
		}
		getRun := func(id string) *e2eRun {
			var runs []*e2eRun
			s.MustDo(t, s.AdminKey, "", qFlowRunStatus, map[string]any{"id": id}, "flow_run", &runs)
			if len(runs) != 1 {
				t.Fatalf("flow run %s: %d rows", id, len(runs))
			}
			return runs[0]
		}
		lastUsed := func(keyID string) *string {
			var keys []struct {
				ID       string
				LastUsed *string `json:"last_used_at"`
			}
			s.MustDo(t, s.AdminKey, "", `query($id: uuid) { auth_api_key(where: {id: {_eq: $id}}) { id last_used_at } }`, map[string]any{"id": keyID}, "auth_api_key", &keys)
			if len(keys) != 1 {
				t.Fatalf("key %s: %d rows", keyID, len(keys))
			}
			return keys[0].LastUsed
		}

		env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, execMainEnv + "=1"}
		p := mustStartAgent(t, []string{"--api", s.URL + "/graphql", "-l", "e2e", "-n", "e2e-agent"}, env)
		alive := func() {
			t.Helper()
			if p.wait(0) {
				t.Fatalf("agent exited: %v\n%s", p.err, p.output())
			}
		}

		// A run that goes on until the test lets it finish.
		release := filepath.Join(t.TempDir(), "release")
		long := createRun("long", "sh", "-c", "echo started; while [ ! -e '"+release+"' ]; do sleep 0.05; done; echo finished")
		waitFor(t, 15*time.Second, "the long run to be Running", func() bool {
			alive()
			r := getRun(long)
			return r.State == "Running" && r.hasLog(agent.LogNameStdout, "INFO", "started")
		}, p.output)

		// Roll the key with an hour's grace; update the config; SIGHUP.
		var rolled struct {
			ID, Key         string
			OldKeyExpiresAt string `json:"old_key_expires_at"`
		}
		s.MustDo(t, s.AdminKey, "", qRotateKey, map[string]any{"input": map[string]any{
			"key_id": oldKeyID, "old_key_expires_in_seconds": 3600,
		}}, "rotate_api_key", &rolled)
		if rolled.ID == oldKeyID || !strings.HasPrefix(rolled.Key, latchkey.PrefixServiceKey) {
			t.Fatalf("rolled key: id %s, prefix %.4s", rolled.ID, rolled.Key)
		}
		if lastUsed(rolled.ID) != nil {
			t.Fatal("the new key was used before the agent had it")
		}
		writeKey(rolled.Key)
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 15*time.Second, "the agent to reload its key", func() bool {
			alive()
			return strings.Contains(p.stderr.String(), "reloaded the API key: polls and new flow runs use the new key")
		}, p.output)
		waitFor(t, 15*time.Second, "the agent to poll with the new key", func() bool {
			alive()
			return lastUsed(rolled.ID) != nil
		}, p.output)

		// The run in flight was not disturbed: it finishes.
		if r := getRun(long); r.State != "Running" {
			t.Fatalf("long run = %+v", r)
		}
		if err := os.WriteFile(release, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 15*time.Second, "the long run to succeed", func() bool {
			alive()
			return latchkey.FlowRunState(getRun(long).State).Finished()
		}, p.output)
		if r := getRun(long); r.State != "Success" || r.LostContactAt != nil || !r.hasLog(agent.LogNameStdout, "INFO", "finished") {
			t.Fatalf("long run = %+v", r)
		}

		// The grace period ends: the old key is refused, the agent goes on.
		if r := s.Do(t, "/graphql", oldKey, "", qAuthInfoTenant, nil); len(r.Errors) > 0 || r.status != 200 {
			t.Fatalf("the old key was refused during its grace period: %s", r.raw)
		}
		clock.Advance(time.Hour + time.Second)
		s.Do(t, "/graphql", oldKey, "", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")
		next := createRun("next", "sh", "-c", "echo after the grace period")
		waitFor(t, 15*time.Second, "the next run to succeed", func() bool {
			alive()
			return latchkey.FlowRunState(getRun(next).State).Finished()
		}, p.output)
		if r := getRun(next); r.State != "Success" || !r.hasLog(agent.LogNameStdout, "INFO", "after the grace period") {
			t.Fatalf("next run = %+v", r)
		}
		alive()
		if strings.Contains(p.stderr.String(), agent.RevokedMessage) {
			t.Errorf("the agent reported its key revoked\n%s", p.output())
		}
		for where, text := range map[string]string{"agent output": p.output(), "server logs": s.Logs.String(), "server stdout": s.Stdout.String()} {
			for _, k := range []string{oldKey, rolled.Key} {
				if strings.Contains(text, k[4:]) {
					t.Errorf("a key appears in the %s", where)
				}
			}
		}
	})
}
