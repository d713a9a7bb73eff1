package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
)

// The operations below are written as the Prefect 1.x agent and flow
// runner send them (prefect1-wire.md §3.2): parse_graphql's layout, ids and
// times inlined where Prefect inlines them with with_args.

// MutationRegisterAgent is the agent's registration.
const MutationRegisterAgent = "mutation($input: register_agent_input!) {\n    register_agent(input: $input) {\n        id\n    }\n}"

// MutationRunsInQueue is the agent's poll.
const MutationRunsInQueue = "mutation($input: get_runs_in_queue_input!) {\n    get_runs_in_queue(input: $input) {\n        flow_run_ids\n    }\n}"

// MutationSetFlowRunStates changes a run's state (Client.set_flow_run_state).
const MutationSetFlowRunStates = "mutation($input: set_flow_run_states_input!) {\n    set_flow_run_states(input: $input) {\n        states {\n            id\n            status\n            message\n        }\n    }\n}"

// MutationWriteRunLogs writes log lines (CloudHandler).
const MutationWriteRunLogs = "mutation($input: write_run_logs_input!) {\n    write_run_logs(input: $input) {\n        success\n    }\n}"

// QueryUserKind asks what kind of principal the credential belongs to.
const QueryUserKind = "query {\n    user {\n        kind\n    }\n}"

// QueryFlowRunForExecute is what `latchkey execute flow-run` reads of its run.
const QueryFlowRunForExecute = "query($id: uuid!) {\n    flow_run(where: { id: { _eq: $id } }) {\n        id\n        version\n        state\n        name\n        command\n    }\n}"

// HeaderAgentID and HeaderHeartbeatID are the headers Prefect adds for
// agents and heartbeats.
const (
	HeaderAgentID     = "X-PREFECT-AGENT-ID"
	HeaderHeartbeatID = "X-PREFECT-HEARTBEAT-ID"
)

// QueryAgentFlowRuns is the agent's read of the runs a poll found: only
// those still Scheduled (or Running with task runs due, which Latchkey
// runs never have).
func QueryAgentFlowRuns(ids []string, now time.Time) string {
	quoted := make([]string, len(ids))
	for i, id := range ids {
		quoted[i] = jsonString(id)
	}
	ts := jsonString(isoformat(now))
	return "query {\n    flow_run(where: { id: { _in: [" + strings.Join(quoted, ", ") + "] }, _or: [{ state: { _eq: \"Scheduled\" } }, { state: { _eq: \"Running\" }, task_runs: { state_start_time: { _lte: " + ts + " } } }] }) {\n" +
		"        id\n        version\n        state\n        serialized_state\n        parameters\n        scheduled_start_time\n        run_config\n        name\n" +
		"        flow {\n            id\n            name\n            environment\n            storage\n            version\n            core_version\n        }\n" +
		"        task_runs(where: { state_start_time: { _lte: " + ts + " } }) {\n            id\n            version\n            task_id\n            serialized_state\n        }\n" +
		"    }\n}"
}

// MutationHeartbeat is Client.update_flow_run_heartbeat's text, the id
// inlined; it must be a uuid.
func MutationHeartbeat(flowRunID string) string {
	return "mutation {\n    update_flow_run_heartbeat(input: { flow_run_id: " + jsonString(flowRunID) + " }) {\n        success\n    }\n}"
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// isoformat writes t as pendulum's isoformat() in UTC does.
func isoformat(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.999999-07:00")
}

// IsAuthError reports whether err is the server refusing the credential
// (UNAUTHENTICATED): a revoked, expired or unknown key.
func IsAuthError(err error) bool {
	var ae *client.AuthorizationError
	return errors.As(err, &ae)
}

// IsVersionLockError reports whether err is a lost race on a run's state
// (VERSION_LOCKING_ERROR).
func IsVersionLockError(err error) bool {
	var ce *client.ClientError
	return errors.As(err, &ce) && slices.Contains(ce.Codes(), "VERSION_LOCKING_ERROR")
}

// api wraps a client with the agent and run operations.
type api struct{ c *client.Client }

func (a api) registerAgent(ctx context.Context, typ, name string, labels []string, tenantID string) (string, error) {
	var vars struct {
		Input struct {
			Type          string   `json:"type"`
			Name          string   `json:"name"`
			Labels        []string `json:"labels"`
			TenantID      string   `json:"tenant_id"`
			AgentConfigID *string  `json:"agent_config_id"`
		} `json:"input"`
	}
	vars.Input.Type, vars.Input.Name, vars.Input.Labels, vars.Input.TenantID = typ, name, nonNil(labels), tenantID
	var out struct {
		RegisterAgent *struct {
			ID string `json:"id"`
		} `json:"register_agent"`
	}
	if err := a.c.Do(ctx, MutationRegisterAgent, vars, &out); err != nil {
		return "", err
	}
	if out.RegisterAgent == nil || out.RegisterAgent.ID == "" {
		return "", errors.New("error registering agent: no id in the response")
	}
	return out.RegisterAgent.ID, nil
}

func (a api) runsInQueue(ctx context.Context, before time.Time, labels []string, tenantID string) ([]string, error) {
	var vars struct {
		Input struct {
			Before   string   `json:"before"`
			Labels   []string `json:"labels"`
			TenantID string   `json:"tenant_id"`
		} `json:"input"`
	}
	vars.Input.Before, vars.Input.Labels, vars.Input.TenantID = isoformat(before), nonNil(labels), tenantID
	var out struct {
		GetRunsInQueue *struct {
			FlowRunIDs []string `json:"flow_run_ids"`
		} `json:"get_runs_in_queue"`
	}
	if err := a.c.Do(ctx, MutationRunsInQueue, vars, &out); err != nil {
		return nil, err
	}
	if out.GetRunsInQueue == nil {
		return nil, errors.New("unexpected response: get_runs_in_queue is null")
	}
	return out.GetRunsInQueue.FlowRunIDs, nil
}

// flowRun is the part of a flow_run row the agent and run process read.
type flowRun struct {
	ID      string   `json:"id"`
	Version int      `json:"version"`
	State   string   `json:"state"`
	Name    string   `json:"name"`
	Command []string `json:"command"`
}

func (a api) agentFlowRuns(ctx context.Context, ids []string, now time.Time) ([]flowRun, error) {
	var out struct {
		FlowRun []flowRun `json:"flow_run"`
	}
	if err := a.c.Do(ctx, QueryAgentFlowRuns(ids, now), nil, &out); err != nil {
		return nil, err
	}
	return out.FlowRun, nil
}

func (a api) flowRunForExecute(ctx context.Context, id string) (*flowRun, error) {
	vars := struct {
		ID string `json:"id"`
	}{id}
	var out struct {
		FlowRun []flowRun `json:"flow_run"`
	}
	if err := a.c.Do(ctx, QueryFlowRunForExecute, vars, &out); err != nil {
		return nil, err
	}
	if len(out.FlowRun) != 1 {
		return nil, fmt.Errorf("flow run %s not found in this tenant", id)
	}
	return &out.FlowRun[0], nil
}

// serializedState is a state as Prefect's State.serialize() writes it.
type serializedState struct {
	Message      *string        `json:"message"`
	Result       map[string]any `json:"_result"`
	Context      map[string]any `json:"context"`
	CachedInputs map[string]any `json:"cached_inputs"`
	Version      string         `json:"__version__"`
	Type         string         `json:"type"`
}

// setState moves a run to state. version is the run's current version;
// the new version is version+1.
func (a api) setState(ctx context.Context, id string, version int, state latchkey.FlowRunState, message string) error {
	st := serializedState{
		Result:  map[string]any{"type": "NoResultType", "__version__": client.DefaultCoreVersion},
		Context: map[string]any{}, CachedInputs: map[string]any{},
		Version: client.DefaultCoreVersion, Type: string(state),
	}
	if message != "" {
		st.Message = &message
	}
	type stateInput struct {
		State     serializedState `json:"state"`
		FlowRunID string          `json:"flow_run_id"`
		Version   int             `json:"version"`
	}
	var vars struct {
		Input struct {
			States []stateInput `json:"states"`
		} `json:"input"`
	}
	vars.Input.States = []stateInput{{State: st, FlowRunID: id, Version: version}}
	var out struct {
		SetFlowRunStates *struct {
			States []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"states"`
		} `json:"set_flow_run_states"`
	}
	if err := a.c.Do(ctx, MutationSetFlowRunStates, vars, &out); err != nil {
		return err
	}
	if out.SetFlowRunStates == nil || len(out.SetFlowRunStates.States) != 1 {
		return errors.New("unexpected response: set_flow_run_states has no state")
	}
	return nil
}

// logLine is one entry of write_run_logs.
type logLine struct {
	FlowRunID string `json:"flow_run_id"`
	Timestamp string `json:"timestamp"`
	Name      string `json:"name"`
	Message   string `json:"message"`
	Level     string `json:"level"`
}

func newLogLine(runID string, at time.Time, name string, level latchkey.RunLogLevel, msg string) logLine {
	return logLine{FlowRunID: runID, Timestamp: isoformat(at), Name: name, Message: latchkey.RedactSecrets(msg), Level: string(level)}
}

func (a api) writeLogs(ctx context.Context, lines []logLine) error {
	var vars struct {
		Input struct {
			Logs []logLine `json:"logs"`
		} `json:"input"`
	}
	vars.Input.Logs = lines
	var out struct {
		WriteRunLogs *struct {
			Success bool `json:"success"`
		} `json:"write_run_logs"`
	}
	if err := a.c.Do(ctx, MutationWriteRunLogs, vars, &out); err != nil {
		return err
	}
	if out.WriteRunLogs == nil || !out.WriteRunLogs.Success {
		return errors.New("unexpected response: write_run_logs did not succeed")
	}
	return nil
}

// heartbeat reports the run alive; false means the server considers it
// finished (cancelled, or marked as having lost contact).
func (a api) heartbeat(ctx context.Context, id string) (bool, error) {
	c := *a.c
	c.Header = a.c.Header.Clone()
	if c.Header == nil {
		c.Header = http.Header{}
	}
	c.Header.Set(HeaderHeartbeatID, id)
	var out struct {
		Heartbeat *struct {
			Success bool `json:"success"`
		} `json:"update_flow_run_heartbeat"`
	}
	if err := c.Do(ctx, MutationHeartbeat(id), nil, &out); err != nil {
		return false, err
	}
	if out.Heartbeat == nil {
		return false, errors.New("unexpected response: update_flow_run_heartbeat is null")
	}
	return out.Heartbeat.Success, nil
}

// userKind returns "USER" or "SERVICE_ACCOUNT" for the credential's owner.
func (a api) userKind(ctx context.Context) (string, error) {
	var out struct {
		User []struct {
			Kind string `json:"kind"`
		} `json:"user"`
	}
	if err := a.c.Do(ctx, QueryUserKind, nil, &out); err != nil {
		return "", err
	}
	if len(out.User) != 1 {
		return "", errors.New("unexpected response: no user")
	}
	return out.User[0].Kind, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
