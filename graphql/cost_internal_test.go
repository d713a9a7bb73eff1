package graphql

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestListCost(t *testing.T) {
	t.Parallel()
	n := func(v int) *int { return &v }
	id := "11111111-1111-1111-1111-111111111111"
	for _, tc := range []struct {
		name  string
		child int
		limit *int
		id    *UUIDComparisonExp
		want  int
	}{
		{"default", 3, nil, nil, 1 + DefaultLimit*3},
		{"limit", 3, n(7), nil, 22},
		{"over the maximum counts as the maximum", 2, n(MaxLimit + 1), nil, 1 + MaxLimit*2},
		{"limit 0 counts one row", 5, n(0), nil, 6},
		{"id _eq", 4, nil, &UUIDComparisonExp{Eq: &id}, 5},
		{"id _in", 4, nil, &UUIDComparisonExp{In: []string{id, id, id}}, 13},
		{"id _in over limit", 4, n(2), &UUIDComparisonExp{In: []string{id, id, id}}, 9},
		{"id _in empty", 4, nil, &UUIDComparisonExp{In: []string{}}, 5},
		{"id _neq", 1, nil, &UUIDComparisonExp{Neq: &id}, 1 + DefaultLimit},
		{"saturates", math.MaxInt32, n(MaxLimit), nil, math.MaxInt32},
	} {
		if got := listCost(tc.child, tc.limit, tc.id); got != tc.want {
			t.Errorf("%s: listCost = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// The cost counts list sizes, nested lists multiply, and operations over
// DefaultMaxCost are refused before they run; what the Prefect client and
// Latchkey's agent send stays under both limits.
func TestLimits_Cost(t *testing.T) {
	t.Parallel()
	l := &limits{maxDepth: 10, maxComplexity: 500}
	opCtx := mustValidateLimits(t, l)
	ctx := context.Background()
	cost := func(query string, vars map[string]any) int {
		t.Helper()
		return l.cost(ctx, opCtx(query, vars))
	}

	for _, tc := range []struct {
		query string
		vars  map[string]any
		want  int
	}{
		{"{ hello }", nil, 1},
		{"{ tenant { id slug name } }", nil, 1 + 100*3},
		{"{ tenant(limit: 2) { id } auth_info { tenant_id } }", nil, 3 + 2},
		{"query($n: Int) { tenant(limit: $n) { id } }", map[string]any{"n": 5}, 6},
		{"{ flow_run(limit: 10) { logs(limit: 10) { message timestamp } } }", nil, 1 + 10*(1+10*2)},
		{"{ flow_run { logs { message } } }", nil, 1 + 100*(1+100)},
		{`{ flow_run(where: {id: {_eq: "11111111-1111-1111-1111-111111111111"}}) { id task_runs { id } } }`, nil, 1 + (1 + 2)},
		{"{ user { memberships(limit: 3) { id } } }", nil, 1 + (1 + 3)},
		{"{ service_account(limit: 2) { api_keys { id } } }", nil, 1 + 2*(1+100)},
		{"{ api_token(limit: 4) { id name } }", nil, 9},
	} {
		if got := cost(tc.query, tc.vars); got != tc.want {
			t.Errorf("%s: cost = %d, want %d", tc.query, got, tc.want)
		}
	}

	// Refused: a read-only member's aliased query for every log line.
	for _, field := range []string{"flow_run { logs { message } }", "flow_run(limit: 1) { logs(limit: 1000) { message } }"} {
		var b strings.Builder
		b.WriteString("{")
		for i := range 50 {
			fmt.Fprintf(&b, " a%d: %s", i, field)
		}
		b.WriteString(" }")
		err := l.MutateOperationContext(ctx, opCtx(b.String(), nil))
		if err == nil || !strings.HasPrefix(err.Message, "Query is too complex: it could return ") || !strings.Contains(err.Message, "over the limit of 10000") {
			t.Errorf("50 × %s: err = %v", field, err)
		}
	}

	// Accepted: the Prefect agent's read of a full poll (100 runs), and the
	// client's listings.
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprintf(`"%08d-1111-1111-1111-111111111111"`, i)
	}
	agentQuery := "query {\n    flow_run(where: { id: { _in: [" + strings.Join(ids, ", ") + "] }, _or: [{ state: { _eq: \"Scheduled\" } }, { state: { _eq: \"Running\" }, task_runs: { state_start_time: { _lte: \"2022-02-23T12:00:00+00:00\" } } }] }) {\n" +
		"        id\n        version\n        state\n        serialized_state\n        parameters\n        scheduled_start_time\n        run_config\n        name\n" +
		"        flow {\n            id\n            name\n            environment\n            storage\n            version\n            core_version\n        }\n" +
		"        task_runs(where: { state_start_time: { _lte: \"2022-02-23T12:00:00+00:00\" } }) {\n            id\n            version\n            task_id\n            serialized_state\n        }\n" +
		"    }\n}"
	for _, q := range []string{
		agentQuery,
		"query {\n    tenant(order_by: {slug: asc}) {\n        id\n        slug\n        name\n    }\n}",
		"query {\n    auth_api_key {\n        id\n        name\n        expires_at\n    }\n}",
		"query {\n    api_token {\n        id\n        name\n    }\n}",
		"query {\n    user {\n        default_membership {\n            tenant_id\n        }\n    }\n}",
		"query($id: uuid!) {\n    flow_run(where: { id: { _eq: $id } }) {\n        id\n        version\n        state\n        name\n        command\n    }\n}",
	} {
		if err := l.MutateOperationContext(ctx, opCtx(q, map[string]any{"id": "11111111-1111-1111-1111-111111111111"})); err != nil {
			t.Errorf("%.60s: %v", q, err)
		}
	}
	if got, want := cost(agentQuery, nil), 1+100*(8+7+5); got != want {
		t.Errorf("agent query cost = %d, want %d", got, want)
	}
}
