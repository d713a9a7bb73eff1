package agent_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/agent"
	"github.com/latchkey/latchkey/client"
)

// scriptRun answers the executor's calls for a Submitted run of command.
func scriptRun(f *fakeAPI, state string, command ...string) {
	cmd := make([]string, len(command))
	for i, c := range command {
		cmd[i] = strconv.Quote(c)
	}
	f.Handle["flow_run"] = func(call) string {
		return data(`{"flow_run":[{"id":"` + testRun + `","version":2,"state":"` + state + `","name":"r","command":[` + strings.Join(cmd, ",") + `]}]}`)
	}
	f.Handle["set_flow_run_states"] = func(call) string {
		return data(`{"set_flow_run_states":{"states":[{"id":"` + testRun + `","status":"SUCCESS","message":null}]}}`)
	}
	f.Handle["write_run_logs"] = func(call) string { return data(`{"write_run_logs":{"success":true}}`) }
	f.Handle["update_flow_run_heartbeat"] = func(call) string { return data(`{"update_flow_run_heartbeat":{"success":true}}`) }
}

func newExecutor(f *fakeAPI, stderr *lockedBuffer) *agent.Executor {
	return &agent.Executor{
		Client:            &client.Client{URL: f.URL(), APIKey: testKey, TenantID: testTenant},
		FlowRunID:         testRun,
		HeartbeatInterval: 50 * time.Millisecond,
		LogFlushInterval:  20 * time.Millisecond,
		KillGrace:         time.Second,
		Environ:           []string{"PATH=/usr/bin:/bin"},
		Stderr:            stderr,
	}
}

// states returns the state types and versions set, in order.
func states(f *fakeAPI) []string {
	var out []string
	for _, c := range f.Calls("set_flow_run_states") {
		s := c.input()["states"].([]any)[0].(map[string]any)
		st := s["state"].(map[string]any)
		out = append(out, fmt.Sprintf("%v@%v:%v", st["type"], s["version"], st["message"]))
	}
	return out
}

type sentLog struct{ name, level, message string }

func sentLogs(f *fakeAPI) []sentLog {
	var out []sentLog
	for _, c := range f.Calls("write_run_logs") {
		for _, l := range c.input()["logs"].([]any) {
			m := l.(map[string]any)
			if m["flow_run_id"] != testRun {
				panic("log of another run")
			}
			out = append(out, sentLog{fmt.Sprint(m["name"]), fmt.Sprint(m["level"]), fmt.Sprint(m["message"])})
		}
	}
	return out
}

func hasLog(logs []sentLog, name, level, msg string) bool {
	for _, l := range logs {
		if l.name == name && l.level == level && strings.Contains(l.message, msg) {
			return true
		}
	}
	return false
}

var pidRE = regexp.MustCompile(`Started the command \(pid (\d+)\)`)

func commandPID(t *testing.T, logs []sentLog) int {
	t.Helper()
	for _, l := range logs {
		if m := pidRE.FindStringSubmatch(l.message); m != nil {
			pid, _ := strconv.Atoi(m[1])
			return pid
		}
	}
	t.Fatalf("no pid logged: %v", logs)
	return 0
}

func TestExecutor_ReportsTheCommand(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		script string
		code   int
		final  string
	}{
		{"success", "echo out; echo err >&2; printf 'no newline'; echo key lks_leakedleakedleakedleakedleakAAAAAA", agent.ExitSuccess, "Success@3:The command exited with code 0."},
		{"failure", "echo out; echo err >&2; printf 'no newline'; exit 3", agent.ExitFailed, "Failed@3:The command exited with code 3."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t)
			scriptRun(f, "Submitted", "sh", "-c", tt.script)
			stderr := &lockedBuffer{}
			if code := newExecutor(f, stderr).Run(context.Background()); code != tt.code {
				t.Fatalf("exit = %d, want %d; stderr:\n%s", code, tt.code, stderr)
			}
			if got, want := states(f), []string{"Running@2:Running the command.", tt.final}; strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("states = %q, want %q", got, want)
			}
			logs := sentLogs(f)
			for _, w := range []sentLog{
				{agent.LogNameStdout, "INFO", "out"},
				{agent.LogNameStderr, "ERROR", "err"},
				{agent.LogNameStdout, "INFO", "no newline"},
				{agent.LogNameExecute, "INFO", "Started the command (pid "},
			} {
				if !hasLog(logs, w.name, w.level, w.message) {
					t.Errorf("no log %+v in %+v", w, logs)
				}
			}
			for _, l := range logs {
				if strings.Contains(l.message, "leakedleaked") {
					t.Errorf("a secret reached the run logs: %q", l.message)
				}
			}
			// Every log was written before the final state.
			ops := f.Ops()
			lastLog, lastState := -1, -1
			for i, op := range ops {
				switch op {
				case "write_run_logs":
					lastLog = i
				case "set_flow_run_states":
					lastState = i
				}
			}
			if lastLog > lastState {
				t.Errorf("logs written after the final state: %v", ops)
			}
		})
	}
}

func TestExecutor_HeartbeatsWithPrefectHeader(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t)
	scriptRun(f, "Submitted", "sleep", "0.3")
	if code := newExecutor(f, &lockedBuffer{}).Run(context.Background()); code != agent.ExitSuccess {
		t.Fatalf("exit = %d", code)
	}
	beats := f.Calls("update_flow_run_heartbeat")
	if len(beats) < 2 {
		t.Fatalf("%d heartbeats in 0.3 s at 50 ms", len(beats))
	}
	b := beats[0]
	if b.Query != agent.MutationHeartbeat(testRun) || b.Header.Get("X-PREFECT-HEARTBEAT-ID") != testRun ||
		b.Header.Get("Authorization") != "Bearer "+testKey || b.Header.Get("X-PREFECT-TENANT-ID") != testTenant {
		t.Errorf("heartbeat = %q, headers %v", b.Query, b.Header)
	}
	if !strings.Contains(b.Query, `update_flow_run_heartbeat(input: { flow_run_id: "`+testRun+`" })`) {
		t.Errorf("heartbeat text = %q", b.Query)
	}
}

func TestExecutor_RevokedKeyStopsTheCommand(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t)
	scriptRun(f, "Submitted", "sh", "-c", "sleep 30; echo never")
	f.Handle["update_flow_run_heartbeat"] = func(c call) string {
		if c.Ordinal >= 1 {
			return unauthenticated
		}
		return data(`{"update_flow_run_heartbeat":{"success":true}}`)
	}
	stderr := &lockedBuffer{}
	start := time.Now()
	code := newExecutor(f, stderr).Run(context.Background())
	if code != agent.ExitKeyRevoked {
		t.Fatalf("exit = %d, want %d; stderr:\n%s", code, agent.ExitKeyRevoked, stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s to stop", d)
	}
	if !strings.Contains(stderr.String(), "the server rejected its heartbeat (UNAUTHENTICATED)") {
		t.Errorf("stderr = %q", stderr)
	}
	if got := states(f); len(got) != 1 {
		t.Errorf("states = %q, want only Running (nothing can be reported after the rejection)", got)
	}
	// The whole process group is gone, sleep included.
	pgid := commandPID(t, sentLogs(f))
	if live := liveGroupMembers(t, pgid); len(live) > 0 {
		t.Errorf("process group %d still has live processes: %v", pgid, live)
	}
}

// liveGroupMembers returns the pids of processes in group pgid that are
// not zombies (killed processes whose parent died may wait a while for a
// reaper), waiting up to a second for them to go.
func liveGroupMembers(t *testing.T, pgid int) []int {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return nil
		}
		t.Skip("no /proc to tell zombies from live processes")
	}
	var live []int
	for deadline := time.Now().Add(time.Second); ; time.Sleep(20 * time.Millisecond) {
		live = nil
		dirs, _ := os.ReadDir("/proc")
		for _, d := range dirs {
			pid, err := strconv.Atoi(d.Name())
			if err != nil {
				continue
			}
			stat, err := os.ReadFile("/proc/" + d.Name() + "/stat")
			if err != nil {
				continue
			}
			// pid (comm) state ppid pgrp ...; comm may hold spaces.
			fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
			if len(fields) > 2 && fields[2] == strconv.Itoa(pgid) && fields[0] != "Z" {
				live = append(live, pid)
			}
		}
		if len(live) == 0 || time.Now().After(deadline) {
			return live
		}
	}
}

func TestExecutor_StopsWhenRunIsNoLongerActive(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t)
	scriptRun(f, "Submitted", "sleep", "30")
	f.Handle["update_flow_run_heartbeat"] = func(c call) string {
		return data(`{"update_flow_run_heartbeat":{"success":false}}`)
	}
	stderr := &lockedBuffer{}
	if code := newExecutor(f, stderr).Run(context.Background()); code != agent.ExitFailed {
		t.Fatalf("exit = %d; stderr:\n%s", code, stderr)
	}
	if got := states(f); len(got) != 1 {
		t.Errorf("states = %q, want only Running: the server already finished the run", got)
	}
	if !hasLog(sentLogs(f), agent.LogNameExecute, "WARNING", "no longer active") {
		t.Errorf("logs = %+v", sentLogs(f))
	}
}

func TestExecutor_InterruptReportsFailed(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t)
	scriptRun(f, "Submitted", "sleep", "30")
	ctx, cancel := context.WithCancel(context.Background())
	f.Handle["update_flow_run_heartbeat"] = func(c call) string {
		cancel() // as SIGTERM from the agent would
		return data(`{"update_flow_run_heartbeat":{"success":true}}`)
	}
	if code := newExecutor(f, &lockedBuffer{}).Run(ctx); code != agent.ExitFailed {
		t.Fatalf("exit = %d", code)
	}
	got := states(f)
	if len(got) != 2 || !strings.HasPrefix(got[1], "Failed@3:The flow run process was interrupted") {
		t.Errorf("states = %q", got)
	}
}

func TestExecutor_DoesNotStart(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		script func(f *fakeAPI)
		code   int
		states []string
		stderr string
	}{
		{"already running", func(f *fakeAPI) { scriptRun(f, "Running", "true") }, agent.ExitFailed, nil, "is Running, not Submitted"},
		{"key rejected", func(f *fakeAPI) { f.Handle["flow_run"] = func(call) string { return unauthenticated } }, agent.ExitKeyRevoked, nil, "revoked"},
		{"lost the race", func(f *fakeAPI) {
			scriptRun(f, "Submitted", "true")
			f.Handle["set_flow_run_states"] = func(call) string {
				return `{"errors":[{"message":"stale","extensions":{"code":"VERSION_LOCKING_ERROR"}}],"data":null}`
			}
		}, agent.ExitFailed, nil, "changed by someone else"},
		{"no such program", func(f *fakeAPI) { scriptRun(f, "Submitted", "/nonexistent/program") }, agent.ExitFailed,
			[]string{"Running@2:Running the command.", "Failed@3:Could not start the command: fork/exec /nonexistent/program: no such file or directory"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t)
			tt.script(f)
			stderr := &lockedBuffer{}
			if code := newExecutor(f, stderr).Run(context.Background()); code != tt.code {
				t.Fatalf("exit = %d, want %d; stderr:\n%s", code, tt.code, stderr)
			}
			if got := states(f); tt.states != nil && strings.Join(got, "|") != strings.Join(tt.states, "|") {
				t.Errorf("states = %q, want %q", got, tt.states)
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr = %q, want %q", stderr, tt.stderr)
			}
			if n := len(f.Calls("update_flow_run_heartbeat")); n != 0 {
				t.Errorf("%d heartbeats", n)
			}
		})
	}
}

func TestRunExecuteCommand_NeedsItsEnvironment(t *testing.T) {
	t.Parallel()
	stderr := &lockedBuffer{}
	env := &client.Env{Stderr: stderr, Getenv: func(k string) string {
		return map[string]string{agent.EnvAPI: "http://127.0.0.1:1"}[k]
	}}
	if code := runCommand(env, "execute", "flow-run"); code != agent.ExitUsage {
		t.Errorf("exit = %d, want %d", code, agent.ExitUsage)
	}
	if !strings.Contains(stderr.String(), agent.EnvFlowRunID) {
		t.Errorf("stderr = %q", stderr)
	}
	if code := runCommand(&client.Env{Stderr: stderr}, "execute", "flow-run", "extra"); code != 2 {
		t.Errorf("extra argument: exit = %d, want 2", code)
	}
}
