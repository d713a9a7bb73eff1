package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
)

// Exit codes of `latchkey execute flow-run`. The agent reads them.
const (
	// ExitSuccess: the command exited 0 and Success was reported.
	ExitSuccess = 0

	// ExitFailed: the command failed or was stopped, or could not start,
	// and (if the API still answered) Failed was reported.
	ExitFailed = 1

	// ExitUsage: the environment lacks what the run process needs.
	ExitUsage = 2

	// ExitKeyRevoked: the server rejected the API key (UNAUTHENTICATED).
	// The command was stopped and nothing more could be reported; the
	// server marks the run as having lost contact once its heartbeat
	// timeout passes.
	ExitKeyRevoked = 3
)

// Log names of the lines a run process writes.
const (
	LogNameStdout  = "flow_run.stdout"
	LogNameStderr  = "flow_run.stderr"
	LogNameExecute = "latchkey.execute"
)

// Defaults of Executor.
const (
	DefaultKillGrace        = 5 * time.Second
	DefaultLogFlushInterval = time.Second
	maxPendingLogs          = 10000
	maxLogLine              = 16 << 10
)

// Executor is the run process, `latchkey execute flow-run`: it marks its
// run Running, runs the run's command as a child process, writes the
// command's output as run logs, heartbeats, and reports Success or Failed
// when the command exits. Every call uses Client's credential: the key the
// agent handed down.
//
// When the server rejects the key (it was revoked), the executor stops the
// command and exits with ExitKeyRevoked. When a heartbeat answers that the
// run is no longer active (cancelled, or marked as having lost contact), it
// stops the command and exits with ExitFailed. SIGTERM or SIGINT (ctx done)
// stops the command and reports Failed.
type Executor struct {
	Client    *client.Client
	FlowRunID string

	// HeartbeatInterval is how often the run heartbeats; zero means
	// DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration

	// Environ is the command's environment; nil means os.Environ().
	Environ []string

	// Logger receives the executor's own messages (never the key); nil
	// discards them.
	Logger *slog.Logger

	// Stderr receives the one-line explanation when the run stops early;
	// nil discards it.
	Stderr io.Writer

	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// KillGrace is how long the command has to exit after SIGTERM before
	// SIGKILL; zero means DefaultKillGrace.
	KillGrace time.Duration

	// LogFlushInterval is how often captured output is sent; zero means
	// DefaultLogFlushInterval.
	LogFlushInterval time.Duration
}

// RunRevokedMessage explains ExitKeyRevoked; %s is the call that was rejected.
const RunRevokedMessage = "The API key used by this flow run was revoked or is no longer valid: the server rejected its %s (UNAUTHENTICATED). " +
	"The command was stopped; the run stays Running until the server marks it as having lost contact."

// stopReason says why the executor stopped the command.
type stopReason int

const (
	stopNone        stopReason = iota
	stopRevoked                // the key was rejected
	stopNotActive              // the server says the run has finished
	stopInterrupted            // SIGTERM or SIGINT
)

func (e *Executor) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Executor) say(format string, args ...any) {
	if e.Stderr != nil {
		fmt.Fprintln(e.Stderr, latchkey.RedactSecrets(fmt.Sprintf(format, args...)))
	}
}

// Run runs the flow run and returns the process exit code.
func (e *Executor) Run(ctx context.Context) int {
	if e.Logger == nil {
		e.Logger = slog.New(slog.DiscardHandler)
	}
	interval := e.HeartbeatInterval
	if interval <= 0 {
		interval = DefaultHeartbeatInterval
	}
	flushEvery := e.LogFlushInterval
	if flushEvery <= 0 {
		flushEvery = DefaultLogFlushInterval
	}
	if _, ok := latchkey.ParseUUID(e.FlowRunID); !ok {
		e.say("%s must be set to the flow run id (a uuid).", EnvFlowRunID)
		return ExitUsage
	}
	a := api{e.Client}
	log := e.Logger.With("flow_run_id", e.FlowRunID)

	run, err := a.flowRunForExecute(ctx, e.FlowRunID)
	if err != nil {
		return e.apiFailure(log, err, "query for the flow run")
	}
	state := latchkey.FlowRunState(run.State)
	if state != latchkey.FlowRunSubmitted && state != latchkey.FlowRunScheduled {
		e.say("Flow run %s is %s, not Submitted: not running it.", run.ID, run.State)
		return ExitFailed
	}
	if len(run.Command) == 0 || run.Command[0] == "" {
		e.say("Flow run %s has no command.", run.ID)
		return ExitFailed
	}
	if err := a.setState(ctx, run.ID, run.Version, latchkey.FlowRunRunning, "Running the command."); err != nil {
		return e.apiFailure(log, err, "state change to Running")
	}
	version := run.Version + 1
	logs := &logBuffer{api: a, now: e.now}

	proc, err := startCommand(run.Command, e.environ(), logs, run.ID)
	if err != nil {
		msg := fmt.Sprintf("Could not start the command: %v", err)
		log.Error("could not start the command", "error", err)
		logs.add(newLogLine(run.ID, e.now(), LogNameExecute, latchkey.RunLogError, msg))
		return e.finish(ctx, log, logs, run.ID, version, latchkey.FlowRunFailed, msg)
	}
	log.Info("command started", "pid", proc.cmd.Process.Pid)
	logs.add(newLogLine(run.ID, e.now(), LogNameExecute, latchkey.RunLogInfo, fmt.Sprintf("Started the command (pid %d).", proc.cmd.Process.Pid)))

	heartbeat := time.NewTicker(interval)
	defer heartbeat.Stop()
	flush := time.NewTicker(flushEvery)
	defer flush.Stop()
	reason, rejected := stopNone, ""
	var waitErr error
loop:
	for {
		select {
		case waitErr = <-proc.done:
			break loop
		case <-heartbeat.C:
			ok, err := a.heartbeat(ctx, run.ID)
			switch {
			case IsAuthError(err):
				reason, rejected = stopRevoked, "heartbeat"
			case err != nil:
				log.Warn("heartbeat failed; will retry", "error", err)
			case !ok:
				reason = stopNotActive
			}
		case <-flush.C:
			if err := logs.flush(ctx); IsAuthError(err) {
				reason, rejected = stopRevoked, "log write"
			} else if err != nil {
				log.Warn("writing run logs failed; will retry", "error", err)
			}
		case <-ctx.Done():
			reason = stopInterrupted
		}
		if reason != stopNone {
			waitErr = proc.stop(e.killGrace())
			break loop
		}
	}
	proc.cleanup()

	switch reason {
	case stopRevoked:
		log.Error("API key rejected; stopped the command", "call", rejected)
		e.say(RunRevokedMessage, rejected)
		return ExitKeyRevoked
	case stopNotActive:
		msg := "The server reports that this flow run is no longer active (it was cancelled or marked as having lost contact); the command was stopped."
		logs.add(newLogLine(run.ID, e.now(), LogNameExecute, latchkey.RunLogWarning, msg))
		bg, cancel := e.finalContext(ctx)
		defer cancel()
		if err := logs.flush(bg); IsAuthError(err) {
			e.say(RunRevokedMessage, "log write")
			return ExitKeyRevoked
		}
		e.say("%s", msg)
		return ExitFailed
	case stopInterrupted:
		msg := "The flow run process was interrupted; the command was stopped."
		logs.add(newLogLine(run.ID, e.now(), LogNameExecute, latchkey.RunLogError, msg))
		return e.finish(ctx, log, logs, run.ID, version, latchkey.FlowRunFailed, msg)
	}
	msg, st := exitMessage(waitErr), latchkey.FlowRunSuccess
	if waitErr != nil {
		st = latchkey.FlowRunFailed
	}
	logs.add(newLogLine(run.ID, e.now(), LogNameExecute, latchkey.RunLogInfo, msg))
	return e.finish(ctx, log, logs, run.ID, version, st, msg)
}

func (e *Executor) killGrace() time.Duration {
	if e.KillGrace > 0 {
		return e.KillGrace
	}
	return DefaultKillGrace
}

func (e *Executor) environ() []string {
	if e.Environ != nil {
		return e.Environ
	}
	return os.Environ()
}

// finalContext is for the last reports after ctx may have been cancelled
// by a signal: it outlives ctx but not by much.
func (e *Executor) finalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), client.DefaultTimeout)
}

// finish flushes the logs and reports the final state, and returns the
// exit code.
func (e *Executor) finish(ctx context.Context, log *slog.Logger, logs *logBuffer, runID string, version int, state latchkey.FlowRunState, msg string) int {
	bg, cancel := e.finalContext(ctx)
	defer cancel()
	if err := logs.flush(bg); IsAuthError(err) {
		e.say(RunRevokedMessage, "log write")
		return ExitKeyRevoked
	} else if err != nil {
		log.Warn("could not write the last run logs", "error", err)
	}
	if err := (api{e.Client}).setState(bg, runID, version, state, msg); err != nil {
		switch {
		case IsAuthError(err):
			e.say(RunRevokedMessage, "final state change")
			return ExitKeyRevoked
		case IsVersionLockError(err):
			e.say("Could not report %s: the run's state was changed by someone else (cancelled, or marked as having lost contact).", state)
		default:
			e.say("Could not report %s: %v", state, err)
		}
		return ExitFailed
	}
	log.Info("flow run finished", "state", state)
	if state != latchkey.FlowRunSuccess {
		return ExitFailed
	}
	return ExitSuccess
}

// apiFailure reports a failed call before the command started.
func (e *Executor) apiFailure(log *slog.Logger, err error, what string) int {
	if IsAuthError(err) {
		e.say(RunRevokedMessage, what)
		return ExitKeyRevoked
	}
	if IsVersionLockError(err) {
		e.say("Could not start the flow run: its state was changed by someone else.")
		return ExitFailed
	}
	log.Error("flow run failed to start", "call", what, "error", err)
	e.say("Could not start the flow run: %s failed: %v", what, err)
	return ExitFailed
}

// exitMessage describes how the command ended.
func exitMessage(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "The command exited with code 0."
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return fmt.Sprintf("The command exited with code %d.", ee.ExitCode())
	case errors.As(err, &ee):
		return fmt.Sprintf("The command was stopped: %v.", ee.ProcessState)
	}
	return fmt.Sprintf("The command failed: %v.", err)
}

// process is a started command with its output readers.
type process struct {
	cmd     *exec.Cmd
	done    chan error // receives cmd.Wait's result once
	readers sync.WaitGroup
	pipes   []*os.File // read ends
}

// startCommand starts argv in a process group of its own, its stdout and
// stderr read line by line into logs.
func startCommand(argv []string, env []string, logs *logBuffer, runID string) (*process, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	newProcessGroup(cmd)
	p := &process{cmd: cmd, done: make(chan error, 1)}
	type stream struct {
		name  string
		level latchkey.RunLogLevel
		set   func(*os.File)
	}
	var writeEnds []*os.File
	closeAll := func() {
		for _, f := range append(writeEnds, p.pipes...) {
			f.Close()
		}
	}
	streams := []stream{
		{LogNameStdout, latchkey.RunLogInfo, func(f *os.File) { cmd.Stdout = f }},
		{LogNameStderr, latchkey.RunLogError, func(f *os.File) { cmd.Stderr = f }},
	}
	for _, s := range streams {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll()
			return nil, err
		}
		p.pipes, writeEnds = append(p.pipes, r), append(writeEnds, w)
		s.set(w)
	}
	if err := cmd.Start(); err != nil {
		closeAll()
		return nil, err
	}
	// The child has its copies; ours would keep the readers from seeing EOF.
	for _, w := range writeEnds {
		w.Close()
	}
	for i, s := range streams {
		p.readers.Add(1)
		go func(r io.Reader, name string, level latchkey.RunLogLevel) {
			defer p.readers.Done()
			readLines(r, func(line string) { logs.add(newLogLine(runID, logs.now(), name, level, line)) })
		}(p.pipes[i], s.name, s.level)
	}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// stop sends SIGTERM to the command's process group, then SIGKILL after
// grace, and returns cmd.Wait's result.
func (p *process) stop(grace time.Duration) error {
	_ = terminateGroup(p.cmd.Process)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-p.done:
		return err
	case <-t.C:
		_ = killGroup(p.cmd.Process)
		return <-p.done
	}
}

// cleanup kills what is left of the command's process group (background
// processes it started would hold its output open) and waits briefly for
// the output readers.
func (p *process) cleanup() {
	_ = killGroup(p.cmd.Process)
	drained := make(chan struct{})
	go func() { p.readers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(2 * time.Second):
	}
	for _, f := range p.pipes {
		f.Close()
	}
}

// readLines calls fn for each line of r, without the line end; lines longer
// than maxLogLine are split.
func readLines(r io.Reader, fn func(string)) {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, isPrefix, err := br.ReadLine()
		if len(line) > 0 || (err == nil && !isPrefix) {
			fn(strings.ToValidUTF8(strings.TrimSuffix(string(line), "\r"), "\uFFFD"))
		}
		if err != nil {
			return
		}
	}
}

// logBuffer collects log lines until they are written.
type logBuffer struct {
	api     api
	now     func() time.Time
	mu      sync.Mutex
	pending []logLine
	dropped int
}

func (b *logBuffer) add(l logLine) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pending) >= maxPendingLogs {
		b.dropped++ // the API is not keeping up; keep what is queued
		return
	}
	b.pending = append(b.pending, l)
}

// flush writes every pending line. Lines of a failed write are kept for
// the next flush, unless the key was rejected.
func (b *logBuffer) flush(ctx context.Context) error {
	for {
		b.mu.Lock()
		n := min(len(b.pending), latchkey.MaxRunLogsPerWrite)
		batch := append([]logLine(nil), b.pending[:n]...)
		b.mu.Unlock()
		if n == 0 {
			return nil
		}
		if err := b.api.writeLogs(ctx, batch); err != nil {
			if IsAuthError(err) {
				b.mu.Lock()
				b.pending = nil
				b.mu.Unlock()
			}
			return err
		}
		b.mu.Lock()
		b.pending = b.pending[n:]
		b.mu.Unlock()
	}
}
