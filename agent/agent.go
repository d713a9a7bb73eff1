// Package agent is Latchkey's flow-run agent, `latchkey agent local start`,
// and the run process it starts for each flow run, `latchkey execute
// flow-run`. Both speak the Prefect 1.x agent protocol through the client
// package, with the agent's API key as the bearer.
//
// The agent registers, checks the API with `query { hello }`, then polls
// get_runs_in_queue with Prefect's backoff (0.25, 0.5, 1, 2, 4, 8, 10 s
// while idle). For each run it finds still Scheduled it sets Submitted and
// starts `<this binary> execute flow-run` as a child process, with the API
// URL, the agent's key, the tenant and the run id in its environment
// (PREFECT__CLOUD__API, PREFECT__CLOUD__API_KEY, PREFECT__CLOUD__TENANT_ID,
// PREFECT__CONTEXT__FLOW_RUN_ID, PREFECT__BACKEND=cloud). That process
// marks the run Running, runs the command, writes its output as run logs,
// heartbeats, and reports Success or Failed.
//
// Revocation. The server checks the key on every request, so once it is
// revoked the agent's next call and every run process's next heartbeat get
// UNAUTHENTICATED. The agent then stops polling, says that its key was
// revoked and that it must be restarted with a new key, gives its run
// processes a heartbeat interval to notice on their own (they stop their
// commands and exit with ExitKeyRevoked), stops any that remain, and
// returns ErrKeyRevoked. Nothing can report on those runs any more: they
// stay Running until the server's heartbeat timeout marks them Failed with
// "Lost contact".
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
)

// DefaultBackoff returns Prefect's agent poll backoff: the wait after each
// poll that found nothing grows along it; a poll that finds runs starts over.
// Each call returns a new slice.
func DefaultBackoff() []time.Duration {
	return []time.Duration{
		250 * time.Millisecond, 500 * time.Millisecond, time.Second,
		2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second,
	}
}

// DefaultShutdownGrace is how long run processes have to exit after SIGTERM
// before the agent kills them.
const DefaultShutdownGrace = 10 * time.Second

// RevokedMessage is what the agent says when the server rejects its key.
const RevokedMessage = "The API key used by this agent was revoked or is no longer valid (the server answered UNAUTHENTICATED). " +
	"The agent has stopped polling; restart it with a new key."

// ErrKeyRevoked is returned by Agent.Run when the server rejected the key;
// tell the user RevokedMessage.
var ErrKeyRevoked = errors.New("the server rejected the API key (UNAUTHENTICATED): revoked or no longer valid")

// ErrNotServiceAccount is returned by Agent.Run when RequireServiceAccount
// is set and the key belongs to a user.
var ErrNotServiceAccount = errors.New("this agent requires a service-account key (--require-service-account), but the key belongs to a user: " +
	"create a key for a service account and restart the agent with it")

// Agent polls a tenant for flow runs and runs them. Set the fields, then
// call Run once.
type Agent struct {
	// Client talks to the API: URL, and the key as APIKey. TenantID, if
	// empty, is looked up with auth_info (as Prefect does) and set. After
	// a reload (see Reload) the agent uses a copy with the new key.
	Client *client.Client

	// Reload, if set, asks the agent to reload its key (`latchkey agent`
	// sends on it on SIGHUP). Between two polls the agent calls LoadKey,
	// checks the new key with the server, and from then on polls, and
	// hands new runs, the new key. Runs in flight keep the key they were
	// started with. If the new key cannot be read or the server refuses
	// it, the agent says so and keeps the key it has.
	Reload <-chan struct{}

	// LoadKey reads the key again, and says where it came from.
	LoadKey func() (key, source string, err error)

	Name   string   // "agent" if empty
	Type   string   // "LocalAgent" if empty
	Labels []string // the runs it may take need a subset of these

	// MaxPolls stops the agent, once its runs finish, after that many
	// polls; zero means never.
	MaxPolls int

	// RequireServiceAccount refuses keys of human users.
	RequireServiceAccount bool

	// Executable is the program started as `Executable execute flow-run`
	// for each run; empty means this binary (os.Executable).
	Executable string

	// Environ is the base environment of run processes; nil means
	// os.Environ(). The PREFECT__ variables that address the API are
	// always replaced.
	Environ []string

	// HeartbeatInterval is handed to run processes; zero means
	// DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration

	// Backoff is the idle poll backoff; nil means DefaultBackoff().
	Backoff []time.Duration

	// ShutdownGrace is how long run processes have to exit after SIGTERM;
	// zero means DefaultShutdownGrace.
	ShutdownGrace time.Duration

	// Logger receives what the agent does and its run processes' output,
	// never the key. Nil discards it.
	Logger *slog.Logger

	// Now is the clock; nil means time.Now.
	Now func() time.Time

	id   string
	cur  atomic.Pointer[client.Client] // Client, or its copy with a reloaded key
	wake chan struct{}
	mu   sync.Mutex
	runs map[string]*exec.Cmd // run id → run process in flight
	wg   sync.WaitGroup
}

func (a *Agent) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// client returns the client in use: Client, or its copy with a reloaded key.
func (a *Agent) client() *client.Client { return a.cur.Load() }

// apiNow returns the operations on the client in use.
func (a *Agent) apiNow() api { return api{a.client()} }

// ID returns the id register_agent gave the agent ("" before that).
func (a *Agent) ID() string { return a.id }

// Run registers the agent and polls until ctx is done (returns nil after
// stopping its runs), MaxPolls is reached (returns nil once its runs have
// finished), or the server rejects the key (returns ErrKeyRevoked after
// the steps described in the package documentation). Other API errors
// while polling are logged and retried with backoff.
func (a *Agent) Run(ctx context.Context) error {
	if a.Logger == nil {
		a.Logger = slog.New(slog.DiscardHandler)
	}
	if a.Name == "" {
		a.Name = "agent"
	}
	if a.Type == "" {
		a.Type = "LocalAgent"
	}
	if a.HeartbeatInterval <= 0 {
		a.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if a.Backoff == nil {
		a.Backoff = DefaultBackoff()
	}
	if a.ShutdownGrace <= 0 {
		a.ShutdownGrace = DefaultShutdownGrace
	}
	if a.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the latchkey binary: %w", err)
		}
		a.Executable = exe
	}
	a.cur.Store(a.Client)
	a.wake = make(chan struct{}, 1)
	a.runs = map[string]*exec.Cmd{}

	if err := a.start(ctx); err != nil {
		if IsAuthError(err) {
			a.Logger.Error(RevokedMessage, "api", a.Client.URL)
			return ErrKeyRevoked
		}
		return err
	}
	a.Logger.Info("agent started", "agent_id", a.id, "name", a.Name, "labels", strings.Join(a.Labels, ","),
		"tenant_id", a.Client.TenantID, "api", a.Client.URL)

	err := a.loop(ctx)
	switch {
	case errors.Is(err, ErrKeyRevoked):
		a.Logger.Error(RevokedMessage, "agent_id", a.id)
		a.shutdownRevoked()
		return ErrKeyRevoked
	case ctx.Err() != nil:
		a.Logger.Info("shutting down: stopping flow runs in flight", "runs", a.inFlight())
		a.stopAll(a.ShutdownGrace)
		return nil
	}
	a.wg.Wait()
	a.Logger.Info("agent stopped", "polls", a.MaxPolls)
	return err
}

// start finds the tenant, checks the key's owner if asked to, registers
// and says hello.
func (a *Agent) start(ctx context.Context) error {
	if a.Client.TenantID == "" {
		info, err := a.Client.AuthInfo(ctx, "tenant_id", "api_token_scope")
		if err != nil {
			return err
		}
		switch {
		case info.TenantID != nil && *info.TenantID != "":
			a.Client.TenantID = *info.TenantID
		case info.APITokenScope != nil:
			// A deprecated API token: it is bound to one tenant.
			ids, err := a.Client.AnyTenantIDs(ctx)
			if err != nil {
				return err
			} else if len(ids) != 1 {
				return fmt.Errorf("the API token sees %d tenants; pass --tenant-id", len(ids))
			}
			a.Client.TenantID = ids[0]
		default:
			return errors.New("the server did not say which tenant the key belongs to; pass --tenant-id")
		}
	}
	if a.RequireServiceAccount {
		kind, err := a.apiNow().userKind(ctx)
		if err != nil {
			return err
		} else if kind != string(latchkey.UserKindServiceAccount) {
			return ErrNotServiceAccount
		}
	}
	id, err := a.apiNow().registerAgent(ctx, a.Type, a.Name, a.Labels, a.Client.TenantID)
	if err != nil {
		return err
	}
	a.id = id
	h := a.Client.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set(HeaderAgentID, id)
	a.Client.Header = h
	if _, err := a.Client.Hello(ctx); err != nil {
		if IsAuthError(err) {
			return err
		}
		return fmt.Errorf("error while contacting API at %s: %w", a.Client.URL, err)
	}
	return nil
}

// loop polls until ctx is done, MaxPolls is reached or the key is rejected.
func (a *Agent) loop(ctx context.Context) error {
	step := 0
	for polls := 0; a.MaxPolls <= 0 || polls < a.MaxPolls; polls++ {
		n, err := a.poll(ctx)
		switch {
		case IsAuthError(err):
			return ErrKeyRevoked
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			a.Logger.Error("poll failed; will retry", "error", err)
		}
		if n > 0 {
			step = 0
		} else if step < len(a.Backoff)-1 {
			step++
		}
		if a.MaxPolls > 0 && polls+1 >= a.MaxPolls {
			break
		}
		t := time.NewTimer(a.Backoff[step])
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-a.wake:
			// A run process had its key rejected: check at once.
			t.Stop()
		case <-a.Reload:
			t.Stop()
			a.reload(ctx)
			step = 0
		case <-t.C:
		}
	}
	return nil
}

// reload switches to the key LoadKey reads, once the server has accepted
// it for the agent's tenant; otherwise it keeps the current key.
func (a *Agent) reload(ctx context.Context) {
	if a.LoadKey == nil {
		a.Logger.Warn("asked to reload the API key, but this agent cannot read it again")
		return
	}
	key, source, err := a.LoadKey()
	if err != nil {
		a.Logger.Error("could not read the API key again; still using the current key", "error", err)
		return
	}
	cur := a.client()
	if key == cur.APIKey {
		a.Logger.Info("reloaded the API key: it has not changed", "key_from", source)
		return
	}
	next := *cur
	next.APIKey = key
	next.Header = cur.Header.Clone()
	if err := a.checkKey(ctx, &next); err != nil {
		a.Logger.Error("the new API key was refused; still using the current key", "key_from", source, "error", err)
		return
	}
	a.cur.Store(&next)
	a.Logger.Info("reloaded the API key: polls and new flow runs use the new key; runs in flight keep theirs",
		"key_from", source, "runs_in_flight", a.inFlight())
}

// checkKey asks the server whether c's key may act for the agent: in its
// tenant and, if required, as a service account.
func (a *Agent) checkKey(ctx context.Context, c *client.Client) error {
	info, err := c.AuthInfo(ctx, "tenant_id", "api_token_scope")
	if err != nil {
		return err
	}
	tenantID := ""
	switch {
	case info.TenantID != nil:
		tenantID = *info.TenantID
	case info.APITokenScope != nil:
		// A deprecated API token: it is bound to one tenant.
		ids, err := c.AnyTenantIDs(ctx)
		if err != nil {
			return err
		} else if len(ids) == 1 {
			tenantID = ids[0]
		}
	}
	if tenantID != c.TenantID {
		return fmt.Errorf("the key does not act in the agent's tenant %s", c.TenantID)
	}
	if a.RequireServiceAccount {
		kind, err := api{c}.userKind(ctx)
		if err != nil {
			return err
		} else if kind != string(latchkey.UserKindServiceAccount) {
			return ErrNotServiceAccount
		}
	}
	return nil
}

// poll asks for due runs and submits those still Scheduled. It returns how
// many it found.
func (a *Agent) poll(ctx context.Context) (int, error) {
	now := a.now()
	ids, err := a.apiNow().runsInQueue(ctx, now.Add(10*time.Second), a.Labels, a.client().TenantID)
	if err != nil {
		return 0, err
	}
	a.mu.Lock()
	fresh := ids[:0:0]
	for _, id := range ids {
		if a.runs[id] == nil {
			fresh = append(fresh, id)
		}
	}
	a.mu.Unlock()
	if len(fresh) == 0 {
		return 0, nil
	}
	runs, err := a.apiNow().agentFlowRuns(ctx, fresh, now)
	if err != nil {
		return 0, err
	}
	for _, run := range runs {
		if latchkey.FlowRunState(run.State) != latchkey.FlowRunScheduled {
			continue
		}
		if err := a.submit(ctx, run); err != nil {
			return len(runs), err
		}
	}
	return len(runs), nil
}

// submit marks a run Submitted and starts its run process.
func (a *Agent) submit(ctx context.Context, run flowRun) error {
	log := a.Logger.With("flow_run_id", run.ID)
	if err := a.apiNow().setState(ctx, run.ID, run.Version, latchkey.FlowRunSubmitted, "Submitted for execution"); err != nil {
		if IsVersionLockError(err) {
			log.Info("flow run taken by another agent")
			return nil
		}
		return err
	}
	cmd := exec.Command(a.Executable, "execute", "flow-run")
	cmd.Env = a.runEnviron(run.ID)
	newProcessGroup(cmd)
	stdout, err1 := cmd.StdoutPipe()
	stderr, err2 := cmd.StderrPipe()
	err := errors.Join(err1, err2)
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		msg := fmt.Sprintf("The agent could not start the flow run process: %v", err)
		log.Error("could not start the flow run process", "error", err)
		if err := a.apiNow().setState(ctx, run.ID, run.Version+1, latchkey.FlowRunFailed, msg); err != nil && IsAuthError(err) {
			return err
		}
		return nil
	}
	log.Info("flow run submitted", "name", run.Name, "pid", cmd.Process.Pid)
	a.mu.Lock()
	a.runs[run.ID] = cmd
	a.mu.Unlock()
	a.wg.Add(1)
	go a.watch(ctx, run, cmd, stdout, stderr)
	line := newLogLine(run.ID, a.now(), "agent", latchkey.RunLogInfo,
		fmt.Sprintf("Submitted for execution by agent %s (%s): PID %d", a.Name, a.id, cmd.Process.Pid))
	if err := a.apiNow().writeLogs(ctx, []logLine{line}); err != nil {
		if IsAuthError(err) {
			return err
		}
		log.Warn("could not write the submission log", "error", err)
	}
	return nil
}

// watch relays a run process's output to the log and waits for it.
func (a *Agent) watch(ctx context.Context, run flowRun, cmd *exec.Cmd, stdout, stderr io.Reader) {
	defer a.wg.Done()
	log := a.Logger.With("flow_run_id", run.ID)
	var relay sync.WaitGroup
	for _, s := range []struct {
		name string
		r    io.Reader
	}{{"stdout", stdout}, {"stderr", stderr}} {
		relay.Add(1)
		go func() {
			defer relay.Done()
			readLines(s.r, func(line string) { log.Info("flow run process: "+line, "stream", s.name) })
		}()
	}
	relay.Wait()
	err := cmd.Wait()
	a.mu.Lock()
	delete(a.runs, run.ID)
	a.mu.Unlock()
	code := cmd.ProcessState.ExitCode()
	switch {
	case err == nil:
		log.Info("flow run process finished")
	case code == ExitKeyRevoked:
		log.Error("flow run process stopped: the server rejected the API key")
		select {
		case a.wake <- struct{}{}:
		default:
		}
	default:
		log.Warn("flow run process exited", "exit_code", code, "error", err)
		a.failIfUnfinished(ctx, run.ID, code)
	}
}

// failIfUnfinished marks a run Failed if its process died without
// reporting a final state (it crashed, or was killed).
func (a *Agent) failIfUnfinished(ctx context.Context, id string, code int) {
	if ctx.Err() != nil {
		return
	}
	run, err := a.apiNow().flowRunForExecute(ctx, id)
	if err != nil || latchkey.FlowRunState(run.State).Finished() {
		return
	}
	msg := fmt.Sprintf("The flow run process exited with code %d before reporting a final state.", code)
	if err := a.apiNow().setState(ctx, id, run.Version, latchkey.FlowRunFailed, msg); err != nil {
		a.Logger.Warn("could not mark the flow run Failed", "flow_run_id", id, "error", err)
	}
}

// runEnviron is the environment of a run process: the base environment
// without the variables that address the API, then those, as LocalAgent's
// populate_env_vars sets them.
func (a *Agent) runEnviron(runID string) []string {
	base := a.Environ
	if base == nil {
		base = os.Environ()
	}
	c := a.client()
	set := map[string]string{
		EnvBackend:                           "cloud",
		EnvAPI:                               c.URL,
		EnvAPIKey:                            c.APIKey,
		EnvTenantID:                          c.TenantID,
		EnvFlowRunID:                         runID,
		EnvFlowID:                            runID,
		EnvAgentLabels:                       pyListRepr(a.Labels),
		EnvHeartbeatInterval:                 fmt.Sprint(a.HeartbeatInterval.Seconds()),
		"PREFECT__CLOUD__USE_LOCAL_SECRETS":  "false",
		"PREFECT__CLOUD__SEND_FLOW_RUN_LOGS": "true",
	}
	env := make([]string, 0, len(base)+len(set))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; ok || k == EnvAuthToken || k == EnvAgentAuthToken {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// pyListRepr writes labels as Python's str(list) does: ['a', 'b'].
func pyListRepr(labels []string) string {
	q := make([]string, len(labels))
	for i, l := range labels {
		q[i] = "'" + strings.ReplaceAll(strings.ReplaceAll(l, `\`, `\\`), "'", `\'`) + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func (a *Agent) inFlight() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.runs)
}

// shutdownRevoked gives run processes one heartbeat interval (plus slack)
// to notice the revocation themselves, then stops the rest.
func (a *Agent) shutdownRevoked() {
	n := a.inFlight()
	if n == 0 {
		return
	}
	a.Logger.Warn("flow runs in flight cannot report any more; waiting for them to stop",
		"runs", n, "wait", a.HeartbeatInterval+2*time.Second)
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(a.HeartbeatInterval + 2*time.Second):
		a.stopAll(a.ShutdownGrace)
	}
	a.Logger.Warn("the server will mark the flow runs that were in flight as having lost contact once their heartbeats time out", "runs", n)
}

// stopAll sends SIGTERM to every run process, then SIGKILL after grace, and
// waits for them.
func (a *Agent) stopAll(grace time.Duration) {
	a.mu.Lock()
	for _, cmd := range a.runs {
		_ = terminate(cmd.Process)
	}
	a.mu.Unlock()
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(grace):
	}
	a.mu.Lock()
	for id, cmd := range a.runs {
		a.Logger.Warn("killing flow run process", "flow_run_id", id)
		_ = killGroup(cmd.Process)
	}
	a.mu.Unlock()
	<-done
}
