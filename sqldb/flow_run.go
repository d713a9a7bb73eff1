package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

var _ latchkey.FlowRunService = (*FlowRunService)(nil)

// FlowRunService stores flow runs, their states, heartbeats and logs.
type FlowRunService struct {
	db *DB
}

// NewFlowRunService returns a FlowRunService on db.
func NewFlowRunService(db *DB) *FlowRunService {
	return &FlowRunService{db: db}
}

// maxQueue caps how many run ids one poll of the queue returns.
const maxQueue = 100

// FindFlowRunByID returns a run of the caller's acting tenant, or ENOTFOUND.
func (s *FlowRunService) FindFlowRunByID(ctx context.Context, id string) (*latchkey.FlowRun, error) {
	a, tx, err := s.db.beginAs(ctx, requireAuth, false)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	run, err := findFlowRun(ctx, tx, a.TenantID, id)
	if err != nil {
		return nil, err
	}
	return run, tx.Commit()
}

// FindFlowRuns returns the runs of the caller's acting tenant matching
// filter, and their count before Offset and Limit. Any member may read them.
func (s *FlowRunService) FindFlowRuns(ctx context.Context, filter latchkey.FlowRunFilter) ([]*latchkey.FlowRun, int, error) {
	a, tx, err := s.db.beginAs(ctx, requireAuth, false)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	runs, n, err := findFlowRuns(ctx, tx, a.TenantID, filter)
	if err != nil {
		return nil, 0, err
	}
	return runs, n, tx.Commit()
}

// CreateFlowRun creates a Scheduled run in the caller's acting tenant. The
// caller needs USER or TENANT_ADMIN and no RUNNER token (EFORBIDDEN); a
// TenantID naming another tenant is EFORBIDDEN; a bad command, name or
// labels EINVALID.
func (s *FlowRunService) CreateFlowRun(ctx context.Context, run *latchkey.FlowRun) error {
	a, err := requireAuth(ctx)
	if err != nil {
		return err
	} else if err := requireWrite(a); err != nil {
		return err
	}
	if run.TenantID != "" && run.TenantID != a.TenantID {
		return errSwitchTenant()
	}
	if err := run.Validate(); err != nil {
		return err
	}
	command, err := json.Marshal(run.Command)
	if err != nil {
		return fmt.Errorf("create flow run: %w", err)
	}
	labels, err := json.Marshal(run.Labels)
	if err != nil {
		return fmt.Errorf("create flow run: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	id, err := tx.db.newID()
	if err != nil {
		return fmt.Errorf("create flow run: %w", err)
	}
	now := tx.Now()
	name := run.Name
	if name == "" {
		name = "flow-run-" + id[:8]
	}
	scheduled := run.ScheduledStartTime.UTC().Truncate(time.Microsecond)
	if run.ScheduledStartTime.IsZero() {
		scheduled = now
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO flow_runs (id, tenant_id, name, command, labels, state, state_message, version,
			version_locking, scheduled_start_time, created_by_user_id, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, '', 1, ?, ?, ?, ?, ?)`,
		id, a.TenantID, name, string(command), string(labels), string(latchkey.FlowRunScheduled),
		run.VersionLocking, Time(scheduled), a.User.ID, Time(now), Time(now)); err != nil {
		return fmt.Errorf("create flow run: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create flow run: commit: %w", err)
	}
	*run = latchkey.FlowRun{
		ID: id, TenantID: a.TenantID, Name: name, Command: run.Command, Labels: run.Labels,
		State: latchkey.FlowRunScheduled, Version: 1, VersionLocking: run.VersionLocking, ScheduledStartTime: scheduled,
		CreatedByUserID: a.User.ID, CreatedAt: now, UpdatedAt: now,
	}
	return nil
}

// FindFlowRunsInQueue returns the ids of the acting tenant's Scheduled runs
// due by q.Before (zero: now) whose labels are all among q.Labels, earliest
// first, at most 100. Needs a writing role (EFORBIDDEN); a q.TenantID
// naming another tenant is EFORBIDDEN.
func (s *FlowRunService) FindFlowRunsInQueue(ctx context.Context, q latchkey.FlowRunQueue) ([]string, error) {
	a, err := requireAgentWrite(ctx)
	if err != nil {
		return nil, err
	}
	if q.TenantID != "" && q.TenantID != a.TenantID {
		return nil, errSwitchTenant()
	}
	agentLabels, err := latchkey.NormalizeLabels(q.Labels)
	if err != nil {
		return nil, err
	}
	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	before := q.Before
	if before.IsZero() {
		before = tx.Now()
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, labels FROM flow_runs
		WHERE tenant_id = ? AND state = ? AND scheduled_start_time <= ?
		ORDER BY scheduled_start_time, id`,
		a.TenantID, string(latchkey.FlowRunScheduled), Time(before))
	if err != nil {
		return nil, fmt.Errorf("find flow runs in queue: %w", err)
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() && len(ids) < maxQueue {
		var id, text string
		if err := rows.Scan(&id, &text); err != nil {
			return nil, fmt.Errorf("find flow runs in queue: %w", err)
		}
		var labels []string
		if err := json.Unmarshal([]byte(text), &labels); err != nil {
			return nil, fmt.Errorf("find flow runs in queue: labels of %s: %w", id, err)
		}
		if latchkey.LabelsMatch(labels, agentLabels) {
			ids = append(ids, id)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find flow runs in queue: %w", err)
	}
	return ids, tx.Commit()
}

// SetFlowRunStates applies updates to runs of the acting tenant in one
// transaction. Needs a writing role (EFORBIDDEN). Returns ENOTFOUND for a
// run outside the acting tenant, EVERSIONLOCK for a finished run, for
// Submitted on a run that is no longer Scheduled, or (on a run with
// VersionLocking) for a stale version, EINVALID for a bad state or an
// unknown agent.
func (s *FlowRunService) SetFlowRunStates(ctx context.Context, updates []*latchkey.FlowRunStateUpdate) ([]*latchkey.FlowRun, error) {
	a, err := requireAgentWrite(ctx)
	if err != nil {
		return nil, err
	}
	if len(updates) == 0 {
		return []*latchkey.FlowRun{}, nil
	} else if len(updates) > maxQueue {
		return nil, latchkey.Errorf(latchkey.EINVALID, "At most %d state changes per request.", maxQueue)
	}
	for _, u := range updates {
		if err := u.Validate(); err != nil {
			return nil, err
		}
	}
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	runs := make([]*latchkey.FlowRun, 0, len(updates))
	for _, u := range updates {
		run, err := setFlowRunState(ctx, tx, a.TenantID, u)
		if err != nil {
			return nil, err
		}
		runs = append(runs, run)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("set flow run states: commit: %w", err)
	}
	return runs, nil
}

// setFlowRunState applies one validated update and returns the run as it
// is afterwards.
func setFlowRunState(ctx context.Context, tx *Tx, tenantID string, u *latchkey.FlowRunStateUpdate) (*latchkey.FlowRun, error) {
	run, err := findFlowRun(ctx, tx, tenantID, u.FlowRunID)
	if err != nil {
		return nil, err
	}
	if run.State.Finished() {
		return nil, latchkey.Errorf(latchkey.EVERSIONLOCK, "Flow run %s has already finished (%s); its state can no longer change.", run.ID, run.State)
	}
	// Whether or not the run locks versions, it is submitted once: a
	// second agent that polled it at the same time stops here.
	if u.State == latchkey.FlowRunSubmitted && run.State != latchkey.FlowRunScheduled {
		return nil, latchkey.Errorf(latchkey.EVERSIONLOCK, "Flow run %s is already %s; only a Scheduled run can be submitted.", run.ID, run.State)
	}
	if run.VersionLocking && u.Version != nil && *u.Version != run.Version {
		return nil, latchkey.Errorf(latchkey.EVERSIONLOCK, "Flow run %s is at version %d, not %d: its state was changed by someone else.", run.ID, run.Version, *u.Version)
	}
	now := tx.Now()
	if u.State == latchkey.FlowRunSubmitted && u.AgentID != "" {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM agents WHERE id = ? AND tenant_id = ?`, u.AgentID, tenantID).Scan(&n); err != nil {
			return nil, fmt.Errorf("set flow run state: find agent: %w", err)
		} else if n == 0 {
			return nil, latchkey.Errorf(latchkey.EINVALID, "Unknown agent: register it first.")
		}
		run.AgentID = u.AgentID
	}
	switch {
	case u.State == latchkey.FlowRunSubmitted:
		run.HeartbeatAt = &now
	case u.State == latchkey.FlowRunRunning:
		run.HeartbeatAt = &now
		if run.StartTime == nil {
			run.StartTime = &now
		}
	case u.State.Finished():
		run.EndTime = &now
	}
	res, err := tx.ExecContext(ctx, `UPDATE flow_runs SET state = ?, state_message = ?, version = version + 1, agent_id = ?,
			start_time = ?, end_time = ?, heartbeat_at = ?, updated_at = ?
		WHERE id = ? AND tenant_id = ? AND version = ?`,
		string(u.State), u.Message, nullString(run.AgentID), timePtr(run.StartTime), timePtr(run.EndTime), timePtr(run.HeartbeatAt), Time(now),
		run.ID, tenantID, run.Version)
	if err != nil {
		return nil, fmt.Errorf("set flow run state: %w", err)
	} else if n, err := res.RowsAffected(); err != nil {
		return nil, fmt.Errorf("set flow run state: %w", err)
	} else if n == 0 {
		return nil, latchkey.Errorf(latchkey.EVERSIONLOCK, "Flow run %s was changed by someone else at the same time.", run.ID)
	}
	run.State, run.StateMessage, run.Version, run.UpdatedAt = u.State, u.Message, run.Version+1, now
	return run, nil
}

// HeartbeatFlowRun records a heartbeat of a run of the acting tenant and
// returns true, or returns false and changes nothing if the run has
// finished. Needs a writing role (EFORBIDDEN); ENOTFOUND for a run outside
// the acting tenant.
func (s *FlowRunService) HeartbeatFlowRun(ctx context.Context, id string) (bool, error) {
	a, tx, err := s.db.beginAs(ctx, requireAgentWrite, true)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var state string
	err = tx.QueryRowContext(ctx, `SELECT state FROM flow_runs WHERE id = ? AND tenant_id = ?`, id, a.TenantID).Scan(&state)
	if errNoRows(err) {
		return false, errFlowRunNotFound()
	} else if err != nil {
		return false, fmt.Errorf("heartbeat flow run: %w", err)
	}
	if latchkey.FlowRunState(state).Finished() {
		return false, nil
	}
	res, err := tx.ExecContext(ctx, `UPDATE flow_runs SET heartbeat_at = ? WHERE id = ? AND state = ?`, Time(tx.Now()), id, state)
	if err != nil {
		return false, fmt.Errorf("heartbeat flow run: %w", err)
	} else if n, err := res.RowsAffected(); err != nil {
		return false, fmt.Errorf("heartbeat flow run: %w", err)
	} else if n == 0 {
		return false, nil // finished meanwhile
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("heartbeat flow run: commit: %w", err)
	}
	return true, nil
}

// WriteRunLogs stores log lines of runs of the acting tenant, all or
// nothing. Needs a writing role (EFORBIDDEN); ENOTFOUND if any run is
// outside the acting tenant; EINVALID for a bad line or too many.
func (s *FlowRunService) WriteRunLogs(ctx context.Context, logs []*latchkey.RunLog) error {
	a, err := requireAgentWrite(ctx)
	if err != nil {
		return err
	}
	if len(logs) > latchkey.MaxRunLogsPerWrite {
		return latchkey.Errorf(latchkey.EINVALID, "At most %d log lines per request.", latchkey.MaxRunLogsPerWrite)
	}
	runIDs := map[string]bool{}
	for _, l := range logs {
		if err := l.Validate(); err != nil {
			return err
		}
		runIDs[l.FlowRunID] = true
	}
	if len(logs) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ids := make([]any, 0, len(runIDs)+1)
	ids = append(ids, a.TenantID)
	for id := range runIDs {
		ids = append(ids, id)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM flow_runs WHERE tenant_id = ? AND id IN (`+placeholders(len(runIDs))+`)`, ids...).Scan(&n); err != nil {
		return fmt.Errorf("write run logs: %w", err)
	} else if n != len(runIDs) {
		return errFlowRunNotFound()
	}
	if err := insertRunLogs(ctx, tx, a.TenantID, logs); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("write run logs: commit: %w", err)
	}
	return nil
}

// insertRunLogs inserts validated log lines of runs known to be in tenantID.
func insertRunLogs(ctx context.Context, tx *Tx, tenantID string, logs []*latchkey.RunLog) error {
	const chunk = 100
	now := tx.Now()
	for start := 0; start < len(logs); start += chunk {
		part := logs[start:min(start+chunk, len(logs))]
		values := make([]string, len(part))
		args := make([]any, 0, 7*len(part))
		for i, l := range part {
			ts := l.Timestamp.UTC().Truncate(time.Microsecond)
			if l.Timestamp.IsZero() {
				ts = now
			}
			values[i] = `(?, ?, ?, ?, ?, ?, ?)`
			args = append(args, tenantID, l.FlowRunID, Time(ts), l.Name, string(l.Level), l.Message, Time(now))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO flow_run_logs (tenant_id, flow_run_id, logged_at, name, level, message, created_at)
			VALUES `+strings.Join(values, ", "), args...); err != nil {
			return fmt.Errorf("write run logs: %w", err)
		}
	}
	return nil
}

// FindRunLogs returns log lines of the acting tenant's runs, oldest first,
// and their count before Offset and Limit. Any member may read them.
func (s *FlowRunService) FindRunLogs(ctx context.Context, filter latchkey.RunLogFilter) ([]*latchkey.RunLog, int, error) {
	a, tx, err := s.db.beginAs(ctx, requireAuth, false)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	conds, args := []string{`tenant_id = ?`}, []any{a.TenantID}
	if v := filter.FlowRunID; v != nil {
		conds, args = append(conds, `flow_run_id = ?`), append(args, *v)
	}
	where := strings.Join(conds, " AND ")
	query := `SELECT id, tenant_id, flow_run_id, logged_at, name, level, message, created_at
		FROM flow_run_logs WHERE ` + where + ` ORDER BY logged_at, id` + formatLimitOffset(filter.Limit, filter.Offset)
	logs, n, err := findPage(ctx, tx, "run logs", "flow_run_logs", where, args, query, func(rows *sql.Rows) (*latchkey.RunLog, error) {
		var (
			l             latchkey.RunLog
			level         string
			ts, createdAt Time
		)
		if err := rows.Scan(&l.ID, &l.TenantID, &l.FlowRunID, &ts, &l.Name, &level, &l.Message, &createdAt); err != nil {
			return nil, fmt.Errorf("scan run log: %w", err)
		}
		l.Level, l.Timestamp, l.CreatedAt = latchkey.RunLogLevel(level), time.Time(ts), time.Time(createdAt)
		return &l, nil
	})
	if err != nil {
		return nil, 0, err
	}
	return logs, n, tx.Commit()
}

// MarkLostFlowRuns marks every Submitted or Running run, in every tenant,
// whose last heartbeat is older than timeout as Failed with a "Lost
// contact:" message and LostContactAt set, and logs a line on it. It needs
// no caller. A run that heartbeats between the read and the write is left
// alone.
func (s *FlowRunService) MarkLostFlowRuns(ctx context.Context, timeout time.Duration) (int, error) {
	if timeout <= 0 {
		return 0, fmt.Errorf("mark lost flow runs: timeout must be positive")
	}
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	now := tx.Now()
	cutoff := now.Add(-timeout)
	active := []any{string(latchkey.FlowRunSubmitted), string(latchkey.FlowRunRunning)}
	rows, err := tx.QueryContext(ctx, `SELECT id, tenant_id, COALESCE(heartbeat_at, updated_at) FROM flow_runs
		WHERE state IN (?, ?) AND COALESCE(heartbeat_at, updated_at) < ?`, append(active, Time(cutoff))...)
	if err != nil {
		return 0, fmt.Errorf("mark lost flow runs: %w", err)
	}
	type lost struct {
		id, tenantID string
		last         Time
	}
	found, err := collect(rows, func(rows *sql.Rows) (lost, error) {
		var l lost
		return l, rows.Scan(&l.id, &l.tenantID, &l.last)
	})
	if err != nil {
		return 0, fmt.Errorf("mark lost flow runs: %w", err)
	}
	marked := 0
	for _, l := range found {
		msg := fmt.Sprintf("%s no heartbeat since %s (timeout %s). The run's process stopped, its host went away, or the API key it used was revoked.",
			latchkey.LostContactMessagePrefix, time.Time(l.last).Format(time.RFC3339), timeout)
		res, err := tx.ExecContext(ctx, `UPDATE flow_runs SET state = ?, state_message = ?, version = version + 1,
				end_time = ?, lost_contact_at = ?, updated_at = ?
			WHERE id = ? AND state IN (?, ?) AND COALESCE(heartbeat_at, updated_at) < ?`,
			append([]any{string(latchkey.FlowRunFailed), msg, Time(now), Time(now), Time(now), l.id}, append(active, Time(cutoff))...)...)
		if err != nil {
			return 0, fmt.Errorf("mark lost flow runs: %w", err)
		} else if n, err := res.RowsAffected(); err != nil {
			return 0, fmt.Errorf("mark lost flow runs: %w", err)
		} else if n == 0 {
			continue
		}
		if err := insertRunLogs(ctx, tx, l.tenantID, []*latchkey.RunLog{{
			FlowRunID: l.id, Timestamp: now, Name: "latchkey.server", Level: latchkey.RunLogError, Message: msg,
		}}); err != nil {
			return 0, err
		}
		marked++
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("mark lost flow runs: commit: %w", err)
	}
	return marked, nil
}

func errFlowRunNotFound() error {
	return latchkey.Errorf(latchkey.ENOTFOUND, "Flow run not found.")
}

const flowRunColumns = `flow_runs.id, flow_runs.tenant_id, flow_runs.name, flow_runs.command, flow_runs.labels, flow_runs.state,
	flow_runs.state_message, flow_runs.version, flow_runs.version_locking, flow_runs.scheduled_start_time, flow_runs.start_time, flow_runs.end_time,
	flow_runs.heartbeat_at, flow_runs.lost_contact_at, flow_runs.agent_id, flow_runs.created_by_user_id,
	flow_runs.created_at, flow_runs.updated_at`

func scanFlowRun(s rowScanner, extra ...any) (*latchkey.FlowRun, error) {
	var (
		r                                    latchkey.FlowRun
		command, labels, state               string
		agentID, createdBy                   sql.NullString
		scheduled, start, end, heartbeat, lc Time
		createdAt, updatedAt                 Time
	)
	dest := append([]any{&r.ID, &r.TenantID, &r.Name, &command, &labels, &state, &r.StateMessage, &r.Version, &r.VersionLocking,
		&scheduled, &start, &end, &heartbeat, &lc, &agentID, &createdBy, &createdAt, &updatedAt}, extra...)
	if err := s.Scan(dest...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(command), &r.Command); err != nil {
		return nil, fmt.Errorf("flow run command: %w", err)
	}
	if err := json.Unmarshal([]byte(labels), &r.Labels); err != nil {
		return nil, fmt.Errorf("flow run labels: %w", err)
	}
	r.State = latchkey.FlowRunState(state)
	r.ScheduledStartTime = time.Time(scheduled)
	r.StartTime, r.EndTime, r.HeartbeatAt, r.LostContactAt = start.Ptr(), end.Ptr(), heartbeat.Ptr(), lc.Ptr()
	r.AgentID, r.CreatedByUserID = agentID.String, createdBy.String
	r.CreatedAt, r.UpdatedAt = time.Time(createdAt), time.Time(updatedAt)
	return &r, nil
}

// findFlowRun returns the run with id in tenantID, or ENOTFOUND.
func findFlowRun(ctx context.Context, tx *Tx, tenantID, id string) (*latchkey.FlowRun, error) {
	run, err := scanFlowRun(tx.QueryRowContext(ctx, `SELECT `+flowRunColumns+` FROM flow_runs WHERE id = ? AND tenant_id = ?`, id, tenantID))
	if errNoRows(err) {
		return nil, errFlowRunNotFound()
	} else if err != nil {
		return nil, fmt.Errorf("find flow run: %w", err)
	}
	return run, nil
}

// flowRunOrderColumns maps the sort fields FlowRunFilter allows to columns.
var flowRunOrderColumns = map[string]string{
	"scheduled_start_time": "flow_runs.scheduled_start_time",
	"created_at":           "flow_runs.created_at",
	"name":                 "flow_runs.name",
}

func findFlowRuns(ctx context.Context, tx *Tx, tenantID string, filter latchkey.FlowRunFilter) ([]*latchkey.FlowRun, int, error) {
	conds, args := []string{`flow_runs.tenant_id = ?`}, []any{tenantID}
	if v := filter.ID; v != nil {
		conds, args = append(conds, `flow_runs.id = ?`), append(args, *v)
	}
	if filter.IDs != nil {
		if len(filter.IDs) == 0 {
			return []*latchkey.FlowRun{}, 0, nil
		}
		conds, args = appendIn(conds, args, `flow_runs.id`, filter.IDs)
	}
	if filter.States != nil {
		if len(filter.States) == 0 {
			return []*latchkey.FlowRun{}, 0, nil
		}
		conds, args = appendIn(conds, args, `flow_runs.state`, filter.States)
	}
	if v := filter.AgentID; v != nil {
		conds, args = append(conds, `flow_runs.agent_id = ?`), append(args, *v)
	}
	if v := filter.Name; v != nil {
		conds, args = append(conds, `flow_runs.name = ?`), append(args, *v)
	}
	var orderBy []string
	for _, o := range filter.OrderBy {
		col, ok := flowRunOrderColumns[o.Field]
		if !ok {
			return nil, 0, latchkey.Errorf(latchkey.EINVALID, "Cannot order flow runs by %q.", o.Field)
		}
		if o.Desc {
			col += " DESC"
		}
		orderBy = append(orderBy, col)
	}
	orderBy = append(orderBy, "flow_runs.scheduled_start_time", "flow_runs.id")
	where := strings.Join(conds, " AND ")
	query := `SELECT ` + flowRunColumns + ` FROM flow_runs WHERE ` + where +
		` ORDER BY ` + strings.Join(orderBy, ", ") + formatLimitOffset(filter.Limit, filter.Offset)
	return findPage(ctx, tx, "flow runs", "flow_runs", where, args, query, func(rows *sql.Rows) (*latchkey.FlowRun, error) { return scanFlowRun(rows) })
}
