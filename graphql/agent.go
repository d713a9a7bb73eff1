package graphql

import (
	"context"
	"log/slog"

	gql "github.com/99designs/gqlgen/graphql"

	"github.com/latchkey/latchkey"
)

// Headers the Prefect agent and its flow runs send.
const (
	// HeaderAgentID carries the id register_agent returned, on every later
	// request of the agent.
	HeaderAgentID = "X-PREFECT-AGENT-ID"

	// HeaderHeartbeatID carries the flow run id on heartbeats; tolerated.
	HeaderHeartbeatID = "X-PREFECT-HEARTBEAT-ID"
)

// stateCoreVersion is the __version__ written into serialized states.
const stateCoreVersion = "1.0.0"

// requestHeader returns a header of the HTTP request being served, or "".
func requestHeader(ctx context.Context, name string) string {
	if !gql.HasOperationContext(ctx) {
		return ""
	}
	if h := gql.GetOperationContext(ctx).Headers; h != nil {
		return h.Get(name)
	}
	return ""
}

// parseSerializedState reads the state of a set_flow_run_states input: a
// Prefect serialized state, an object with a "type" (one of Latchkey's six
// states) and an optional "message". Other keys (_result, context,
// cached_inputs, __version__) are ignored.
func parseSerializedState(v any) (latchkey.FlowRunState, string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return "", "", latchkey.Errorf(latchkey.EINVALID, "state must be a serialized state: an object with a \"type\".")
	}
	typ, _ := m["type"].(string)
	state := latchkey.FlowRunState(typ)
	if !state.Valid() {
		return "", "", latchkey.Errorf(latchkey.EINVALID, "Unsupported state type %q: use Scheduled, Submitted, Running, Success, Failed or Cancelled.", truncate(typ, 64))
	}
	var msg string
	switch x := m["message"].(type) {
	case nil:
	case string:
		msg = x
	default:
		return "", "", latchkey.Errorf(latchkey.EINVALID, "state.message must be a string or null.")
	}
	return state, msg, nil
}

// serializeState writes a state as the Prefect 1.x client serializes it.
func serializeState(state latchkey.FlowRunState, msg string) map[string]any {
	var message any
	if msg != "" {
		message = msg
	}
	return map[string]any{
		"type":          string(state),
		"message":       message,
		"context":       map[string]any{},
		"cached_inputs": map[string]any{},
		"_result":       map[string]any{"type": "NoResultType", "__version__": stateCoreVersion},
		"__version__":   stateCoreVersion,
	}
}

// logRefusedFlowRun logs, once, at info, a flow-run request the server
// refused: a state change (a finished run, a run another agent took, a
// stale version on a run with version locking, a bad state, a missing
// role) or a heartbeat for a finished run. It names the runs, the caller
// and the client address, never a credential. Internal errors are logged
// by the error presenter, and refused credentials by the authentication
// middleware, so neither is logged here.
func (s *Server) logRefusedFlowRun(ctx context.Context, msg string, err error, attrs ...slog.Attr) {
	if s.Logger == nil {
		return
	}
	if err != nil {
		switch latchkey.ErrorCode(err) {
		case latchkey.EINTERNAL, latchkey.EUNAUTHENTICATED, latchkey.ERATELIMIT:
			return
		}
		attrs = append(attrs, slog.String("code", string(latchkey.ErrorCode(err))), slog.String("reason", latchkey.ErrorMessage(err)))
	}
	if a := latchkey.AuthFromContext(ctx); a != nil && a.User != nil {
		attrs = append(attrs, slog.String("tenant_id", a.TenantID), slog.String("user_id", a.User.ID))
	}
	attrs = append(attrs, slog.String("addr", latchkey.ClientInfoFromContext(ctx).Addr))
	s.Logger.LogAttrs(ctx, slog.LevelInfo, msg, attrs...)
}

// stateChangeAttrs describes the state changes of one set_flow_run_states
// request for the log: each run, the state asked for and the version sent.
func stateChangeAttrs(updates []*latchkey.FlowRunStateUpdate) []slog.Attr {
	out := make([]slog.Attr, 0, 3)
	ids := make([]string, 0, len(updates))
	states := make([]string, 0, len(updates))
	versions := make([]any, 0, len(updates))
	for _, u := range updates {
		ids, states = append(ids, u.FlowRunID), append(states, string(u.State))
		if u.Version != nil {
			versions = append(versions, *u.Version)
		} else {
			versions = append(versions, nil)
		}
	}
	if len(updates) == 1 {
		return append(out, slog.String("flow_run_id", ids[0]), slog.String("state", states[0]), slog.Any("version", versions[0]))
	}
	return append(out, slog.Any("flow_run_ids", ids), slog.Any("states", states), slog.Any("versions", versions))
}
