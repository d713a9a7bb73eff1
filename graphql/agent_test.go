package graphql_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/mock"
)

// Ids of the agent fixtures.
const (
	agentID = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	runOne  = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbb1"
	runTwo  = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbb2"
	runSix  = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbb6"
)

// Operations as the Prefect 1.0 agent and flow runner send them
// (prefect1-wire.md §3.2; the client's parse_graphql layout).
const (
	qRegisterAgent = "mutation($input: register_agent_input!) {\n    register_agent(input: $input) {\n        id\n    }\n}"
	qRunsInQueue   = "mutation($input: get_runs_in_queue_input!) {\n    get_runs_in_queue(input: $input) {\n        flow_run_ids\n    }\n}"
	qSetStates     = "mutation($input: set_flow_run_states_input!) {\n    set_flow_run_states(input: $input) {\n        states {\n            id\n            status\n            message\n        }\n    }\n}"
	qWriteLogs     = "mutation($input: write_run_logs_input!) {\n    write_run_logs(input: $input) {\n        success\n    }\n}"
)

// agentFlowRunQuery is the agent's flow_run query for ids, with now inlined.
func agentFlowRunQuery(now string, ids ...string) string {
	return `query {
    flow_run(where: { id: { _in: ["` + strings.Join(ids, `", "`) + `"] }, _or: [{ state: { _eq: "Scheduled" } }, { state: { _eq: "Running" }, task_runs: { state_start_time: { _lte: "` + now + `" } } }] }) {
        id
        version
        state
        serialized_state
        parameters
        scheduled_start_time
        run_config
        name
        flow {
            id
            name
            environment
            storage
            version
            core_version
        }
        task_runs(where: { state_start_time: { _lte: "` + now + `" } }) {
            id
            version
            task_id
            serialized_state
        }
    }
}`
}

// withAgentServices adds agent and flow-run mocks to e's server.
func withAgentServices(e *Env) (*mock.FlowRunService, *mock.AgentService) {
	runs, agents := &mock.FlowRunService{}, &mock.AgentService{}
	e.Server.FlowRuns, e.Server.Agents = runs, agents
	e.SetHandler(e.Server.Handler())
	return runs, agents
}

func TestAgent_RegisterAgent(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	_, agents := withAgentServices(e)
	var got *latchkey.Agent
	agents.RegisterAgentFn = func(ctx context.Context, ag *latchkey.Agent) error {
		got = ag
		ag.ID = agentID
		return nil
	}
	var data struct {
		RegisterAgent map[string]string `json:"register_agent"`
	}
	e.QueryAs(t, goodKey, map[string]string{"X-PREFECT-TENANT-ID": tenantOneID}, qRegisterAgent, map[string]any{"input": map[string]any{
		"type": "LocalAgent", "name": "agent", "labels": []string{"foo", "vm"}, "tenant_id": tenantOneID, "agent_config_id": nil,
	}}).MustData(t, &data)
	if data.RegisterAgent["id"] != agentID {
		t.Errorf("id = %q, want %q", data.RegisterAgent["id"], agentID)
	}
	if got.Type != "LocalAgent" || got.Name != "agent" || !slices.Equal(got.Labels, []string{"foo", "vm"}) || got.TenantID != tenantOneID {
		t.Errorf("RegisterAgent got %+v", got)
	}

	got = nil
	e.Query(t, qRegisterAgent, map[string]any{"input": map[string]any{
		"type": "LocalAgent", "agent_config_id": "cccccccc-cccc-4ccc-8ccc-cccccccccccc",
	}}).MustError(t, "BAD_USER_INPUT", false)
	if got != nil {
		t.Error("RegisterAgent called with an agent config")
	}
	agents.RegisterAgentFn = func(ctx context.Context, ag *latchkey.Agent) error {
		return latchkey.Errorf(latchkey.EFORBIDDEN, "Your role does not allow running agents or flow runs.")
	}
	e.Query(t, qRegisterAgent, map[string]any{"input": map[string]any{"type": "LocalAgent"}}).MustError(t, "FORBIDDEN", false)
}

func TestAgent_GetRunsInQueue(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	runs, agents := withAgentServices(e)
	var gotQ latchkey.FlowRunQueue
	runs.FindFlowRunsInQueueFn = func(ctx context.Context, q latchkey.FlowRunQueue) ([]string, error) {
		gotQ = q
		return []string{runOne, runTwo}, nil
	}
	var seen []string
	agents.UpdateAgentLastSeenFn = func(ctx context.Context, id string) error {
		seen = append(seen, id)
		if id != agentID {
			return latchkey.Errorf(latchkey.ENOTFOUND, "Agent not found.")
		}
		return nil
	}
	vars := map[string]any{"input": map[string]any{"before": "2022-02-23T12:00:10.123456+00:00", "labels": []string{"foo", "vm"}, "tenant_id": tenantOneID}}
	for _, tt := range []struct {
		name   string
		header string
		seen   []string
	}{
		{"registered agent", agentID, []string{agentID}},
		{"upper-case id", strings.ToUpper(agentID), []string{agentID}},
		{"unknown agent is tolerated", runSix, []string{runSix}},
		{"no header", "", nil},
		{"malformed header is ignored", "not-a-uuid", nil},
	} {
		seen = nil
		headers := map[string]string{"X-PREFECT-TENANT-ID": tenantOneID}
		if tt.header != "" {
			headers["X-PREFECT-AGENT-ID"] = tt.header
		}
		var data struct {
			GetRunsInQueue struct {
				FlowRunIDs []string `json:"flow_run_ids"`
			} `json:"get_runs_in_queue"`
		}
		e.QueryAs(t, goodKey, headers, qRunsInQueue, vars).MustData(t, &data)
		if got, want := data.GetRunsInQueue.FlowRunIDs, []string{runOne, runTwo}; !slices.Equal(got, want) {
			t.Errorf("%s: ids = %v, want %v", tt.name, got, want)
		}
		if !slices.Equal(seen, tt.seen) {
			t.Errorf("%s: last seen recorded for %v, want %v", tt.name, seen, tt.seen)
		}
	}
	if want := time.Date(2022, 2, 23, 12, 0, 10, 123456000, time.UTC); !gotQ.Before.Equal(want) || gotQ.TenantID != tenantOneID || !slices.Equal(gotQ.Labels, []string{"foo", "vm"}) {
		t.Errorf("queue = %+v", gotQ)
	}

	// A failed poll records nothing.
	runs.FindFlowRunsInQueueFn = func(ctx context.Context, q latchkey.FlowRunQueue) ([]string, error) {
		return nil, latchkey.Errorf(latchkey.EFORBIDDEN, "Switch to that tenant first.")
	}
	seen = nil
	e.QueryAs(t, goodKey, map[string]string{"X-PREFECT-AGENT-ID": agentID}, qRunsInQueue, vars).MustError(t, "FORBIDDEN", false)
	if seen != nil {
		t.Errorf("last seen recorded on a failed poll: %v", seen)
	}
}

func TestAgent_FlowRunQueryAsTheAgentSendsIt(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	runs, _ := withAgentServices(e)
	sched := time.Date(2022, 2, 23, 12, 0, 0, 0, time.UTC)
	var gotFilter latchkey.FlowRunFilter
	runs.FindFlowRunsFn = func(ctx context.Context, f latchkey.FlowRunFilter) ([]*latchkey.FlowRun, int, error) {
		gotFilter = f
		return []*latchkey.FlowRun{
			{ID: runOne, Name: "one", Command: []string{"true"}, Labels: []string{}, State: latchkey.FlowRunScheduled, Version: 1, ScheduledStartTime: sched},
			// Running, but without task runs: the _or's second branch never matches.
			{ID: runTwo, Name: "two", Command: []string{"true"}, Labels: []string{}, State: latchkey.FlowRunRunning, Version: 3, ScheduledStartTime: sched},
		}, 2, nil
	}
	var data struct {
		FlowRun []map[string]json.RawMessage `json:"flow_run"`
	}
	e.Query(t, agentFlowRunQuery("2022-02-23T12:00:10+00:00", runOne, runTwo), nil).MustData(t, &data)
	if !slices.Equal(gotFilter.IDs, []string{runOne, runTwo}) || gotFilter.Offset != 0 || gotFilter.Limit != 0 {
		t.Errorf("filter = %+v, want the ids pushed down", gotFilter)
	}
	if len(data.FlowRun) != 1 {
		t.Fatalf("flow_run = %d rows, want 1 (the Scheduled one)", len(data.FlowRun))
	}
	row := data.FlowRun[0]
	want := map[string]string{
		"id":                   `"` + runOne + `"`,
		"version":              `1`,
		"state":                `"Scheduled"`,
		"parameters":           `{}`,
		"scheduled_start_time": `"2022-02-23T12:00:00+00:00"`,
		"run_config":           `null`,
		"name":                 `"one"`,
		"flow":                 `{"id":"` + runOne + `","name":"one","environment":null,"storage":null,"version":1,"core_version":null}`,
		"task_runs":            `[]`,
	}
	for k, v := range want {
		if got := string(row[k]); got != v {
			t.Errorf("%s = %s, want %s", k, got, v)
		}
	}
	var state map[string]any
	if err := json.Unmarshal(row["serialized_state"], &state); err != nil {
		t.Fatal(err)
	} else if state["type"] != "Scheduled" || state["message"] != nil || state["__version__"] != "1.0.0" {
		t.Errorf("serialized_state = %s", row["serialized_state"])
	}
	if len(row) != 10 {
		t.Errorf("row has %d fields, want the 10 selected: %v", len(row), row)
	}
}

// A where goes to the service when it can answer it; anything more is
// checked here over the rows a top-level id condition names, and refused
// without one (it used to be checked here over every row).
func TestAgent_FlowRunWhere(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	runs, _ := withAgentServices(e)
	sched := time.Date(2022, 2, 23, 12, 0, 0, 0, time.UTC)
	all := []*latchkey.FlowRun{
		{ID: runOne, Name: "one", State: latchkey.FlowRunScheduled, ScheduledStartTime: sched},
		{ID: runTwo, Name: "two", State: latchkey.FlowRunRunning, AgentID: agentID, ScheduledStartTime: sched.Add(time.Hour)},
		{ID: runSix, Name: "six", State: latchkey.FlowRunFailed, ScheduledStartTime: sched.Add(2 * time.Hour)},
	}
	var gotFilter latchkey.FlowRunFilter
	calls := 0
	// A fake store: it answers the conditions a FlowRunFilter carries.
	runs.FindFlowRunsFn = func(ctx context.Context, f latchkey.FlowRunFilter) ([]*latchkey.FlowRun, int, error) {
		gotFilter = f
		calls++
		var match []*latchkey.FlowRun
		for _, r := range all {
			if f.ID != nil && r.ID != *f.ID || f.IDs != nil && !slices.Contains(f.IDs, r.ID) ||
				f.States != nil && !slices.Contains(f.States, r.State) || f.AgentID != nil && r.AgentID != *f.AgentID ||
				f.Name != nil && r.Name != *f.Name {
				continue
			}
			match = append(match, r)
		}
		out := match[min(f.Offset, len(match)):]
		if f.Limit > 0 && f.Limit < len(out) {
			out = out[:f.Limit]
		}
		return out, len(match), nil
	}
	byID := `id: { _in: ["` + runOne + `", "` + runTwo + `", "` + runSix + `"] }, `
	for _, tt := range []struct {
		where string
		want  []string // nil: refused
	}{
		// Answered by the service.
		{`{ state: { _in: ["Running", "Failed"] } }`, []string{"two", "six"}},
		{`{ name: { _eq: "one" } }`, []string{"one"}},
		{`{ agent_id: { _eq: "` + agentID + `" } }`, []string{"two"}},
		{`{ task_runs: {} }`, []string{}},
		// Checked here, over the rows named by id.
		{`{ ` + byID + `_not: { state: { _eq: "Running" } } }`, []string{"one", "six"}},
		{`{ ` + byID + `_or: [{ name: { _eq: "one" } }, { agent_id: { _eq: "` + agentID + `" } }] }`, []string{"one", "two"}},
		{`{ ` + byID + `agent_id: { _neq: "` + agentID + `" } }`, []string{}}, // NULL <> x is not true
		{`{ ` + byID + `scheduled_start_time: { _gt: "2022-02-23T12:00:00+00:00", _lte: "2022-02-23T13:00:00Z" } }`, []string{"two"}},
		{`{ ` + byID + `_and: [{ state: { _neq: "Failed" } }, { name: { _nin: ["one"] } }] }`, []string{"two"}},
		{`{ ` + byID + `_or: [] }`, []string{}},
		// Refused: the service cannot answer them and no id names the rows.
		{`{ _not: { state: { _eq: "Running" } } }`, nil},
		{`{ _or: [{ name: { _eq: "one" } }, { agent_id: { _eq: "` + agentID + `" } }] }`, nil},
		{`{ agent_id: { _neq: "` + agentID + `" } }`, nil},
		{`{ scheduled_start_time: { _gt: "2022-02-23T12:00:00+00:00" } }`, nil},
		{`{ name: { _nin: ["one"] } }`, nil},
	} {
		calls = 0
		resp := e.Query(t, `query { flow_run(where: `+tt.where+`) { name } }`, nil)
		if tt.want == nil {
			resp.MustError(t, "BAD_USER_INPUT", true)
			if msg := resp.Errors[0].Message; !strings.Contains(msg, "is not supported") || calls != 0 {
				t.Errorf("where %s: %q after %d calls, want refused before the service", tt.where, msg, calls)
			}
			continue
		}
		var data struct {
			FlowRun []struct{ Name string } `json:"flow_run"`
		}
		resp.MustData(t, &data)
		got := []string{}
		for _, r := range data.FlowRun {
			got = append(got, r.Name)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("where %s: %v, want %v", tt.where, got, tt.want)
		}
	}
	// State conditions are pushed down, with paging.
	var data struct {
		FlowRun []struct{ Name string } `json:"flow_run"`
	}
	e.Query(t, `query { flow_run(where: { state: { _in: ["Running", "Failed"] } }, limit: 1, offset: 1, order_by: [{ name: desc }]) { name } }`, nil).MustData(t, &data)
	if len(data.FlowRun) != 1 || data.FlowRun[0].Name != "six" {
		t.Errorf("page = %+v", data.FlowRun)
	}
	if !slices.Equal(gotFilter.States, []latchkey.FlowRunState{"Running", "Failed"}) || len(gotFilter.OrderBy) != 1 || gotFilter.OrderBy[0] != (latchkey.SortOrder{Field: "name", Desc: true}) ||
		gotFilter.Limit != 1 || gotFilter.Offset != 1 {
		t.Errorf("filter = %+v", gotFilter)
	}
	// Checked here: the named rows are fetched, then paged here.
	e.Query(t, `query { flow_run(where: { `+byID+`_not: { state: { _eq: "Scheduled" } } }, limit: 1, offset: 1) { name } }`, nil).MustData(t, &data)
	if len(data.FlowRun) != 1 || data.FlowRun[0].Name != "six" || len(gotFilter.IDs) != 3 || gotFilter.Limit != 0 || gotFilter.Offset != 0 {
		t.Errorf("filter = %+v, data = %+v", gotFilter, data.FlowRun)
	}
	// Without where, paging goes to the service.
	e.Query(t, `query { flow_run(limit: 2, offset: 1) { name } }`, nil).MustData(t, &data)
	if gotFilter.Limit != 2 || gotFilter.Offset != 1 || len(data.FlowRun) != 2 || data.FlowRun[0].Name != "two" {
		t.Errorf("filter = %+v, data = %+v", gotFilter, data.FlowRun)
	}
}

func TestAgent_FlowRunOwnFields(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	runs, _ := withAgentServices(e)
	t0 := time.Date(2022, 2, 23, 12, 0, 0, 0, time.UTC)
	t1, t2 := t0.Add(time.Second), t0.Add(time.Minute)
	runs.FindFlowRunsFn = func(ctx context.Context, f latchkey.FlowRunFilter) ([]*latchkey.FlowRun, int, error) {
		return []*latchkey.FlowRun{{
			ID: runOne, TenantID: tenantOneID, Name: "one", Command: []string{"sh", "-c", "echo hello"}, Labels: []string{"a", "b"},
			State: latchkey.FlowRunFailed, StateMessage: "Lost contact: no heartbeat", Version: 4, ScheduledStartTime: t0,
			StartTime: &t1, EndTime: &t2, HeartbeatAt: &t1, LostContactAt: &t2, AgentID: agentID, CreatedByUserID: userID,
			CreatedAt: t0, UpdatedAt: t2,
		}}, 1, nil
	}
	var gotLogFilter latchkey.RunLogFilter
	runs.FindRunLogsFn = func(ctx context.Context, f latchkey.RunLogFilter) ([]*latchkey.RunLog, int, error) {
		gotLogFilter = f
		return []*latchkey.RunLog{{ID: 7, FlowRunID: runOne, Timestamp: t1, Name: "flow_run.stdout", Level: latchkey.RunLogInfo, Message: "hello"}}, 1, nil
	}
	var data struct {
		FlowRun []map[string]json.RawMessage `json:"flow_run"`
	}
	e.Query(t, `query { flow_run { command labels state state_message start_time end_time heartbeat_at lost_contact_at agent_id created_by_user_id tenant_id
		logs(limit: 10) { flow_run_id timestamp name level message } } }`, nil).MustData(t, &data)
	want := map[string]string{
		"command":            `["sh","-c","echo hello"]`,
		"labels":             `["a","b"]`,
		"state":              `"Failed"`,
		"state_message":      `"Lost contact: no heartbeat"`,
		"start_time":         `"2022-02-23T12:00:01+00:00"`,
		"end_time":           `"2022-02-23T12:01:00+00:00"`,
		"heartbeat_at":       `"2022-02-23T12:00:01+00:00"`,
		"lost_contact_at":    `"2022-02-23T12:01:00+00:00"`,
		"agent_id":           `"` + agentID + `"`,
		"created_by_user_id": `"` + userID + `"`,
		"tenant_id":          `"` + tenantOneID + `"`,
		"logs":               `[{"flow_run_id":"` + runOne + `","timestamp":"2022-02-23T12:00:01+00:00","name":"flow_run.stdout","level":"INFO","message":"hello"}]`,
	}
	for k, v := range want {
		if got := string(data.FlowRun[0][k]); got != v {
			t.Errorf("%s = %s, want %s", k, got, v)
		}
	}
	if gotLogFilter.FlowRunID == nil || *gotLogFilter.FlowRunID != runOne || gotLogFilter.Limit != 10 {
		t.Errorf("log filter = %+v", gotLogFilter)
	}
}

func TestAgent_SetFlowRunStates(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	runs, _ := withAgentServices(e)
	var got []*latchkey.FlowRunStateUpdate
	runs.SetFlowRunStatesFn = func(ctx context.Context, updates []*latchkey.FlowRunStateUpdate) ([]*latchkey.FlowRun, error) {
		got = updates
		out := []*latchkey.FlowRun{}
		for _, u := range updates {
			out = append(out, &latchkey.FlowRun{ID: u.FlowRunID, State: u.State})
		}
		return out, nil
	}
	// A state as Prefect's State.serialize() writes it.
	submitted := map[string]any{
		"message": "Submitted for execution", "_result": map[string]any{"type": "NoResultType", "__version__": "1.0.0"},
		"context": map[string]any{}, "cached_inputs": map[string]any{}, "__version__": "1.0.0", "type": "Submitted",
	}
	vars := map[string]any{"input": map[string]any{"states": []any{map[string]any{"state": submitted, "flow_run_id": runOne, "version": 1}}}}
	var data struct {
		SetFlowRunStates struct {
			States []map[string]any `json:"states"`
		} `json:"set_flow_run_states"`
	}
	e.QueryAs(t, goodKey, map[string]string{"X-PREFECT-AGENT-ID": agentID}, qSetStates, vars).MustData(t, &data)
	if len(got) != 1 || got[0].FlowRunID != runOne || got[0].Version == nil || *got[0].Version != 1 ||
		got[0].State != latchkey.FlowRunSubmitted || got[0].Message != "Submitted for execution" || got[0].AgentID != agentID {
		t.Errorf("updates = %+v", got[0])
	}
	if s := data.SetFlowRunStates.States; len(s) != 1 || s[0]["id"] != runOne || s[0]["status"] != "SUCCESS" || s[0]["message"] != nil {
		t.Errorf("states = %v", s)
	}

	// Only Submitted records the agent; a null version is passed on as nil.
	vars = map[string]any{"input": map[string]any{"states": []any{
		map[string]any{"flow_run_id": runOne, "version": nil, "state": map[string]any{"type": "Running"}},
		map[string]any{"flow_run_id": runTwo, "state": map[string]any{"type": "Success", "message": "done"}},
	}}}
	e.QueryAs(t, goodKey, map[string]string{"X-PREFECT-AGENT-ID": agentID}, qSetStates, vars).MustData(t, &data)
	if len(got) != 2 || got[0].Version != nil || got[0].AgentID != "" || got[0].State != latchkey.FlowRunRunning || got[1].Message != "done" {
		t.Errorf("updates = %+v, %+v", got[0], got[1])
	}

	for _, state := range []any{"Running", map[string]any{"type": "Paused"}, map[string]any{"message": "x"}, map[string]any{"type": "Running", "message": 3}} {
		got = nil
		vars := map[string]any{"input": map[string]any{"states": []any{map[string]any{"flow_run_id": runOne, "state": state}}}}
		e.Query(t, qSetStates, vars).MustError(t, "BAD_USER_INPUT", false)
		if got != nil {
			t.Errorf("state %v reached the service", state)
		}
	}

	// A lost race is Prefect Cloud's VERSION_LOCKING_ERROR.
	runs.SetFlowRunStatesFn = func(ctx context.Context, updates []*latchkey.FlowRunStateUpdate) ([]*latchkey.FlowRun, error) {
		return nil, latchkey.Errorf(latchkey.EVERSIONLOCK, "Flow run %s is at version 2, not 1: its state was changed by someone else.", runOne)
	}
	vars = map[string]any{"input": map[string]any{"states": []any{map[string]any{"state": submitted, "flow_run_id": runOne, "version": 1}}}}
	resp := e.Query(t, qSetStates, vars)
	resp.MustError(t, "VERSION_LOCKING_ERROR", false)
	if !strings.Contains(resp.Errors[0].Message, "changed by someone else") {
		t.Errorf("message = %q", resp.Errors[0].Message)
	}
	// The refusal is logged once, at info, with the run, the state and
	// version asked for, the reason and the caller; never the key.
	logs := e.Logs.String()
	if n := strings.Count(logs, "flow run state change refused"); n != 1 {
		t.Fatalf("%d refusal lines, want 1:\n%s", n, logs)
	}
	for _, want := range []string{"level=INFO", "flow_run_id=" + runOne, "state=Submitted", "version=1", "code=version_lock",
		"changed by someone else", "tenant_id=" + tenantOneID, "user_id=" + userID} {
		if !strings.Contains(logs, want) {
			t.Errorf("refusal line lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, goodKey) || strings.Contains(logs, goodKey[4:12]) {
		t.Errorf("the log holds the key:\n%s", logs)
	}
	// Internal errors are the error presenter's to log, not refusals.
	e.Logs.Reset()
	runs.SetFlowRunStatesFn = func(ctx context.Context, updates []*latchkey.FlowRunStateUpdate) ([]*latchkey.FlowRun, error) {
		return nil, errors.New("database is down")
	}
	e.Query(t, qSetStates, vars).MustError(t, "INTERNAL_SERVER_ERROR", false)
	if logs := e.Logs.String(); strings.Contains(logs, "refused") {
		t.Errorf("an internal error was logged as a refusal:\n%s", logs)
	}
}

func TestAgent_WriteRunLogs(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	runs, _ := withAgentServices(e)
	var got []*latchkey.RunLog
	runs.WriteRunLogsFn = func(ctx context.Context, logs []*latchkey.RunLog) error {
		got = logs
		return nil
	}
	vars := map[string]any{"input": map[string]any{"logs": []any{
		map[string]any{"flow_run_id": runOne, "name": "agent", "message": "Submitted for execution", "level": "INFO"},
		map[string]any{"flow_run_id": runOne, "task_run_id": nil, "timestamp": "2022-02-23T12:00:00.5+00:00", "name": "prefect.CloudFlowRunner", "message": "Beginning", "level": "DEBUG", "info": map[string]any{"x": 1}},
		map[string]any{"flow_run_id": runOne, "message": "bare"},
	}}}
	var data struct {
		WriteRunLogs map[string]bool `json:"write_run_logs"`
	}
	e.Query(t, qWriteLogs, vars).MustData(t, &data)
	if !data.WriteRunLogs["success"] || len(got) != 3 {
		t.Fatalf("data = %v, logs = %v", data, got)
	}
	if l := got[0]; l.FlowRunID != runOne || l.Name != "agent" || l.Message != "Submitted for execution" || l.Level != "INFO" || !l.Timestamp.IsZero() {
		t.Errorf("log 0 = %+v", l)
	}
	if l := got[1]; !l.Timestamp.Equal(time.Date(2022, 2, 23, 12, 0, 0, 500e6, time.UTC)) || l.Level != "DEBUG" {
		t.Errorf("log 1 = %+v", l)
	}
	if l := got[2]; l.Name != "" || l.Level != "" || l.Message != "bare" {
		t.Errorf("log 2 = %+v", l)
	}
	runs.WriteRunLogsFn = func(ctx context.Context, logs []*latchkey.RunLog) error {
		return latchkey.Errorf(latchkey.ENOTFOUND, "Flow run not found.")
	}
	e.Query(t, qWriteLogs, vars).MustError(t, "NOT_FOUND", false)
}

func TestAgent_Heartbeat(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	runs, _ := withAgentServices(e)
	alive := true
	var got string
	runs.HeartbeatFlowRunFn = func(ctx context.Context, id string) (bool, error) {
		got = id
		if id == runSix {
			return false, latchkey.Errorf(latchkey.ENOTFOUND, "Flow run not found.")
		}
		return alive, nil
	}
	// As Prefect sends it: the id inlined, and X-PREFECT-HEARTBEAT-ID.
	q := func(id string) string {
		return "mutation {\n    update_flow_run_heartbeat(input: { flow_run_id: \"" + id + "\" }) {\n        success\n    }\n}"
	}
	var data struct {
		Heartbeat map[string]bool `json:"update_flow_run_heartbeat"`
	}
	e.QueryAs(t, goodKey, map[string]string{"X-PREFECT-HEARTBEAT-ID": runOne}, q(runOne), nil).MustData(t, &data)
	if got != runOne || !data.Heartbeat["success"] {
		t.Errorf("heartbeat of %q: %v", got, data)
	}
	alive = false
	e.QueryAs(t, goodKey, map[string]string{"X-PREFECT-HEARTBEAT-ID": "whatever"}, q(runOne), nil).MustData(t, &data)
	if success, ok := data.Heartbeat["success"]; !ok || success {
		t.Errorf("finished run: %v, want success false", data)
	}
	if logs := e.Logs.String(); strings.Count(logs, "flow run heartbeat refused") != 1 || !strings.Contains(logs, "flow_run_id="+runOne) ||
		!strings.Contains(logs, "already finished") || !strings.Contains(logs, "level=INFO") {
		t.Errorf("want one refusal line for the finished run:\n%s", logs)
	}
	e.Query(t, q(runSix), nil).MustError(t, "NOT_FOUND", false)
	if logs := e.Logs.String(); strings.Count(logs, "flow run heartbeat refused") != 2 || !strings.Contains(logs, "flow_run_id="+runSix) {
		t.Errorf("want a refusal line for the unknown run:\n%s", logs)
	}
	// A revoked key fails like any other request: UNAUTHENTICATED, HTTP 200.
	got = ""
	e.QueryAs(t, "lks_revokedrevokedrevokedrevokedrevoAAAAAA", nil, q(runOne), nil).MustError(t, "UNAUTHENTICATED", true)
	if got != "" {
		t.Error("heartbeat reached the service without a valid credential")
	}
}

func TestAgent_CreateFlowRun(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	runs, _ := withAgentServices(e)
	var got *latchkey.FlowRun
	runs.CreateFlowRunFn = func(ctx context.Context, run *latchkey.FlowRun) error {
		got = run
		run.ID = runOne
		return nil
	}
	const q = "mutation($input: create_flow_run_input!) {\n    create_flow_run(input: $input) {\n        id\n    }\n}"
	var data struct {
		CreateFlowRun map[string]string `json:"create_flow_run"`
	}
	e.Query(t, q, map[string]any{"input": map[string]any{
		"name": "hello", "command": []string{"sh", "-c", "echo hello; exit 0"}, "labels": []string{"vm"}, "scheduled_start_time": "2030-01-01T01:00:00+01:00",
	}}).MustData(t, &data)
	if data.CreateFlowRun["id"] != runOne {
		t.Errorf("id = %q", data.CreateFlowRun["id"])
	}
	if got.Name != "hello" || !slices.Equal(got.Command, []string{"sh", "-c", "echo hello; exit 0"}) || !slices.Equal(got.Labels, []string{"vm"}) ||
		!got.ScheduledStartTime.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("run = %+v", got)
	}
	e.Query(t, q, map[string]any{"input": map[string]any{"command": []string{"true"}}}).MustData(t, &data)
	if got.Name != "" || len(got.Labels) != 0 || !got.ScheduledStartTime.IsZero() || got.VersionLocking {
		t.Errorf("defaults: run = %+v", got)
	}
	// Version locking is opt-in.
	e.Query(t, q, map[string]any{"input": map[string]any{"command": []string{"true"}, "version_locking": true}}).MustData(t, &data)
	if !got.VersionLocking {
		t.Errorf("version_locking true: run = %+v", got)
	}
	e.Query(t, q, map[string]any{"input": map[string]any{"command": []string{"true"}, "version_locking": nil}}).MustData(t, &data)
	if got.VersionLocking {
		t.Errorf("version_locking null: run = %+v", got)
	}
	e.Query(t, q, map[string]any{"input": map[string]any{"name": "x"}}).MustError(t, "GRAPHQL_VALIDATION_FAILED", true)
}

func TestAgent_ListAgents(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	_, agents := withAgentServices(e)
	seen := time.Date(2022, 2, 23, 12, 0, 0, 0, time.UTC)
	var gotFilter latchkey.AgentFilter
	agents.FindAgentsFn = func(ctx context.Context, f latchkey.AgentFilter) ([]*latchkey.Agent, int, error) {
		gotFilter = f
		return []*latchkey.Agent{
			{ID: agentID, TenantID: tenantOneID, Name: "agent", Type: "LocalAgent", Labels: []string{"vm"}, UserID: saID, CreatedAt: seen, LastSeenAt: seen},
			{ID: runSix, TenantID: tenantOneID, Name: "other", Type: "DockerAgent", Labels: []string{}, CreatedAt: seen, LastSeenAt: seen},
		}, 2, nil
	}
	var data struct {
		Agent []map[string]any `json:"agent"`
	}
	e.Query(t, `query { agent(where: { type: { _eq: "LocalAgent" } }) { id name type labels last_seen_at user_id } }`, nil).MustData(t, &data)
	// The type goes to the service (which, here, answers both agents).
	if len(data.Agent) != 2 || gotFilter.Type == nil || *gotFilter.Type != "LocalAgent" {
		t.Fatalf("agents = %v, filter = %+v", data.Agent, gotFilter)
	}
	a := data.Agent[0]
	if a["id"] != agentID || a["name"] != "agent" || a["type"] != "LocalAgent" || a["last_seen_at"] != "2022-02-23T12:00:00+00:00" || a["user_id"] != saID {
		t.Errorf("agent = %v", a)
	}
	e.Query(t, `query { agent(where: { name: { _eq: "other" } }) { id } }`, nil).MustData(t, &data)
	if gotFilter.Name == nil || *gotFilter.Name != "other" {
		t.Errorf("filter = %+v, want the name pushed down", gotFilter)
	}
}
