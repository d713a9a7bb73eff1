package graphql

import (
	"context"

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
