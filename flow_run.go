package latchkey

import (
	"context"
	"slices"
	"strings"
	"time"
)

// FlowRunState is the state of a flow run.
type FlowRunState string

// Flow run states. A run is created Scheduled; an agent moves it to
// Submitted when it picks it up, the run process to Running when the
// command starts, and to Success or Failed when it ends. Anyone who may
// change states can set Cancelled. Success, Failed and Cancelled are final.
const (
	FlowRunScheduled FlowRunState = "Scheduled"
	FlowRunSubmitted FlowRunState = "Submitted"
	FlowRunRunning   FlowRunState = "Running"
	FlowRunSuccess   FlowRunState = "Success"
	FlowRunFailed    FlowRunState = "Failed"
	FlowRunCancelled FlowRunState = "Cancelled"
)

// Valid reports whether s is a known state.
func (s FlowRunState) Valid() bool {
	switch s {
	case FlowRunScheduled, FlowRunSubmitted, FlowRunRunning, FlowRunSuccess, FlowRunFailed, FlowRunCancelled:
		return true
	}
	return false
}

// Finished reports whether s is final: Success, Failed or Cancelled.
func (s FlowRunState) Finished() bool {
	return s == FlowRunSuccess || s == FlowRunFailed || s == FlowRunCancelled
}

// Limits on flow runs, agents and their logs.
const (
	MaxLabels          = 50       // labels per run or agent
	MaxLabelLength     = 100      // bytes per label
	MaxCommandBytes    = 64 << 10 // a run's argv, all arguments together
	MaxRunLogMessage   = 64 << 10 // bytes per log message
	MaxRunLogsPerWrite = 1000     // log lines per WriteRunLogs call
	maxNameLength      = 200      // run and agent names
	maxLogNameLength   = 200      // a log line's logger name
	maxStateMessage    = 16 << 10 // a state's message
	maxCommandArgs     = 4096     // arguments in a run's argv
	maxAgentTypeLength = 100      // an agent's type, e.g. "LocalAgent"
)

// DefaultFlowRunHeartbeatTimeout is how long a Submitted or Running run may
// go without a heartbeat before the server marks it as having lost contact.
const DefaultFlowRunHeartbeatTimeout = 2 * time.Minute

// LostContactMessagePrefix starts the state message of a run the server
// marked Failed because its heartbeats stopped.
const LostContactMessagePrefix = "Lost contact:"

// FlowRun is one execution of a command by an agent, in one tenant.
//
// A run that stops heartbeating while Submitted or Running (its process
// died, its host went away, or the API key it used was revoked) is marked
// by the server: State becomes Failed, StateMessage starts with
// LostContactMessagePrefix, and LostContactAt records when.
type FlowRun struct {
	ID       string
	TenantID string
	Name     string

	// Command is the argv the agent's run process executes, without a shell.
	Command []string

	// Labels select agents: an agent runs the flow run only if every one of
	// the run's labels is among the agent's. Sorted, without duplicates.
	Labels []string

	State        FlowRunState
	StateMessage string

	// Version is incremented by every state change. On a run with
	// VersionLocking, a state change that names a version must name the
	// current one (see SetFlowRunStates).
	Version int

	// VersionLocking, chosen when the run is created and off by default,
	// makes SetFlowRunStates refuse a state change that names a version
	// other than the current one. It is Prefect Cloud 1.x's opt-in
	// "version locking" flow setting: without it, the Prefect 1.x agent's
	// Failed after a failed deployment, sent with the version it read
	// before it marked the run Submitted, is applied. Whether locking is
	// on or not, a finished run never changes and a run is submitted once.
	VersionLocking bool

	ScheduledStartTime time.Time
	StartTime          *time.Time // first Running
	EndTime            *time.Time // reached a final state
	HeartbeatAt        *time.Time // last heartbeat (or Submitted/Running transition)
	LostContactAt      *time.Time // set when the server marked the run as having lost contact

	// AgentID is the agent that submitted the run; empty until then.
	AgentID string

	// CreatedByUserID is the user or service account that created it.
	CreatedByUserID string

	CreatedAt time.Time
	UpdatedAt time.Time
}

// LostContact reports whether the server marked the run as having lost contact.
func (r *FlowRun) LostContact() bool { return r.LostContactAt != nil }

// Validate returns EINVALID for a missing or oversized command, or bad
// name or labels. It normalizes Labels (sorted, deduplicated).
func (r *FlowRun) Validate() error {
	if len(r.Command) == 0 || r.Command[0] == "" {
		return Errorf(EINVALID, "A flow run needs a command: a non-empty list of arguments, the program first.")
	} else if len(r.Command) > maxCommandArgs {
		return Errorf(EINVALID, "A command may have at most %d arguments.", maxCommandArgs)
	}
	n := 0
	for _, arg := range r.Command {
		if strings.IndexByte(arg, 0) >= 0 {
			return Errorf(EINVALID, "Command arguments may not contain NUL bytes.")
		}
		n += len(arg)
	}
	if n > MaxCommandBytes {
		return Errorf(EINVALID, "A command may be at most %d bytes long.", MaxCommandBytes)
	}
	if r.Name != "" { // empty: derived from the id
		if err := ValidateName("Flow run name", r.Name, maxNameLength); err != nil {
			return err
		}
	}
	labels, err := NormalizeLabels(r.Labels)
	if err != nil {
		return err
	}
	r.Labels = labels
	return nil
}

// NormalizeLabels returns labels sorted and without duplicates (never nil),
// or EINVALID for an empty or over-long label or too many labels.
func NormalizeLabels(labels []string) ([]string, error) {
	out := make([]string, 0, len(labels))
	for _, l := range labels {
		if l == "" {
			return nil, Errorf(EINVALID, "Labels may not be empty.")
		} else if len(l) > MaxLabelLength {
			return nil, Errorf(EINVALID, "Labels must be at most %d characters.", MaxLabelLength)
		}
		out = append(out, l)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxLabels {
		return nil, Errorf(EINVALID, "At most %d labels are allowed.", MaxLabels)
	}
	return out, nil
}

// LabelsMatch reports whether an agent with agentLabels may run a flow run
// with runLabels: every run label must be an agent label (Prefect's rule; a
// run without labels matches every agent).
func LabelsMatch(runLabels, agentLabels []string) bool {
	for _, l := range runLabels {
		if !slices.Contains(agentLabels, l) {
			return false
		}
	}
	return true
}

// FlowRunFilter selects flow runs of the caller's acting tenant. Nil fields
// do not filter.
type FlowRunFilter struct {
	ID      *string
	IDs     []string       // nil: no filter; empty: matches nothing
	States  []FlowRunState // nil: no filter; empty: matches nothing
	AgentID *string
	Name    *string

	OrderBy []SortOrder // allowed fields: scheduled_start_time, created_at, name
	Offset  int
	Limit   int
}

// FlowRunQueue asks for the runs an agent may start now.
type FlowRunQueue struct {
	// TenantID must be empty or the caller's acting tenant.
	TenantID string

	// Before is the latest scheduled start time to include; zero means now.
	Before time.Time

	// Labels are the agent's labels.
	Labels []string
}

// FlowRunStateUpdate asks for a run's state to change.
type FlowRunStateUpdate struct {
	FlowRunID string

	// Version, if not nil and the run has VersionLocking, must be the
	// run's current version (EVERSIONLOCK otherwise). Without locking it
	// is not checked.
	Version *int

	State   FlowRunState
	Message string

	// AgentID, when State is Submitted, records the agent that took the
	// run. It must be an agent of the acting tenant.
	AgentID string
}

// Validate returns EINVALID for a missing run id, an unknown state or an
// oversized message.
func (u *FlowRunStateUpdate) Validate() error {
	if u.FlowRunID == "" {
		return Errorf(EINVALID, "A state change needs a flow_run_id.")
	} else if !u.State.Valid() {
		return Errorf(EINVALID, "Invalid flow run state: use Scheduled, Submitted, Running, Success, Failed or Cancelled.")
	} else if len(u.Message) > maxStateMessage {
		return Errorf(EINVALID, "State messages must be at most %d bytes.", maxStateMessage)
	}
	return nil
}

// RunLogLevel is the level of a log line, as Python's logging names them.
type RunLogLevel string

// Log levels.
const (
	RunLogDebug    RunLogLevel = "DEBUG"
	RunLogInfo     RunLogLevel = "INFO"
	RunLogWarning  RunLogLevel = "WARNING"
	RunLogError    RunLogLevel = "ERROR"
	RunLogCritical RunLogLevel = "CRITICAL"
)

// ParseRunLogLevel returns the level named by s (case-insensitive; "" is
// INFO, "WARN" is WARNING), or EINVALID.
func ParseRunLogLevel(s string) (RunLogLevel, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "":
		return RunLogInfo, nil
	case "DEBUG":
		return RunLogDebug, nil
	case "INFO":
		return RunLogInfo, nil
	case "WARNING", "WARN":
		return RunLogWarning, nil
	case "ERROR":
		return RunLogError, nil
	case "CRITICAL":
		return RunLogCritical, nil
	}
	return "", Errorf(EINVALID, "Invalid log level: use DEBUG, INFO, WARNING, ERROR or CRITICAL.")
}

// RunLog is one log line of a flow run.
type RunLog struct {
	ID        int64 // assigned by the store, increasing
	TenantID  string
	FlowRunID string
	Timestamp time.Time // when it was logged; zero means now
	Name      string    // the logger, e.g. "flow_run.stdout"
	Level     RunLogLevel
	Message   string
	CreatedAt time.Time
}

// Validate returns EINVALID for a missing run, a bad level, or an oversized
// name or message.
func (l *RunLog) Validate() error {
	if l.FlowRunID == "" {
		return Errorf(EINVALID, "A log line needs a flow_run_id.")
	} else if len(l.Name) > maxLogNameLength {
		return Errorf(EINVALID, "Log names must be at most %d characters.", maxLogNameLength)
	} else if len(l.Message) > MaxRunLogMessage {
		return Errorf(EINVALID, "Log messages must be at most %d bytes.", MaxRunLogMessage)
	}
	level, err := ParseRunLogLevel(string(l.Level))
	if err != nil {
		return err
	}
	l.Level = level
	return nil
}

// RunLogFilter selects log lines of the caller's acting tenant, oldest
// first. Nil fields do not filter.
type RunLogFilter struct {
	FlowRunID *string

	Offset int
	Limit  int
}

// FlowRunService stores flow runs, their states, heartbeats and logs.
//
// Every method but MarkLostFlowRuns needs a caller and works only in the
// caller's acting tenant: runs of other tenants do not exist for it
// (ENOTFOUND), and an input naming another tenant is EFORBIDDEN.
//
// Who may call: creating runs needs a writing role (USER or TENANT_ADMIN)
// and is not open to RUNNER tokens. The agent-side methods (the queue,
// state changes, heartbeats, log writes) need a writing role and are open
// to users, service accounts and RUNNER tokens alike. Reads are open to
// every member, READ_ONLY_USER and RUNNER tokens included.
type FlowRunService interface {
	// FindFlowRunByID returns a run of the acting tenant, or ENOTFOUND.
	FindFlowRunByID(ctx context.Context, id string) (*FlowRun, error)

	// FindFlowRuns returns the acting tenant's runs matching filter
	// (default order: scheduled start time, then id), and the count before
	// Offset and Limit.
	FindFlowRuns(ctx context.Context, filter FlowRunFilter) ([]*FlowRun, int, error)

	// CreateFlowRun creates a Scheduled run (version 1, with the
	// VersionLocking the caller chose) in the acting tenant and fills in
	// ID, TenantID, State, Version, CreatedByUserID,
	// CreatedAt and UpdatedAt; a zero ScheduledStartTime means now and an
	// empty name is derived from the id. Needs USER or TENANT_ADMIN and no
	// RUNNER token (EFORBIDDEN); a bad command, name or labels is EINVALID;
	// a TenantID other than the acting tenant is EFORBIDDEN.
	CreateFlowRun(ctx context.Context, run *FlowRun) error

	// FindFlowRunsInQueue returns the ids of the acting tenant's Scheduled
	// runs due by q.Before whose labels are all among q.Labels, earliest
	// first (at most 100). A q.TenantID other than the acting tenant is
	// EFORBIDDEN.
	FindFlowRunsInQueue(ctx context.Context, q FlowRunQueue) ([]string, error)

	// SetFlowRunStates applies the updates in one transaction: all or
	// nothing. Each bumps the run's version; Submitted records the agent
	// and the heartbeat time, Running the start time (first time only) and
	// heartbeat time, a final state the end time. Returns ENOTFOUND for a
	// run outside the acting tenant; EVERSIONLOCK for a run that has
	// already finished, for Submitted on a run that is no longer Scheduled
	// (another agent took it), and, on a run with VersionLocking only, for
	// a stale version; EINVALID for a bad state or unknown agent.
	SetFlowRunStates(ctx context.Context, updates []*FlowRunStateUpdate) ([]*FlowRun, error)

	// HeartbeatFlowRun records that the run's process is alive. It returns
	// false, and changes nothing, when the run has already finished (it was
	// cancelled or marked as having lost contact): the process should stop.
	// ENOTFOUND for a run outside the acting tenant.
	HeartbeatFlowRun(ctx context.Context, id string) (bool, error)

	// WriteRunLogs stores log lines (at most MaxRunLogsPerWrite) of runs of
	// the acting tenant, all or nothing. ENOTFOUND if any run is outside
	// it; EINVALID for a bad line.
	WriteRunLogs(ctx context.Context, logs []*RunLog) error

	// FindRunLogs returns the acting tenant's log lines matching filter,
	// oldest first, and the count before Offset and Limit.
	FindRunLogs(ctx context.Context, filter RunLogFilter) ([]*RunLog, int, error)

	// MarkLostFlowRuns marks every Submitted or Running run, in every
	// tenant, whose last heartbeat is older than timeout as Failed with a
	// LostContactMessagePrefix message, sets LostContactAt and EndTime,
	// bumps its version and writes a log line saying so. It returns how
	// many runs it marked. It needs no caller: only the server's sweeper
	// calls it, and it is not exposed over the API.
	MarkLostFlowRuns(ctx context.Context, timeout time.Duration) (int, error)
}
