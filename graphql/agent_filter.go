package graphql

import (
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// This file evaluates flow_run_bool_exp and agent_bool_exp, which, unlike
// the other where arguments, support _or and _not: the Prefect agent's
// flow_run query uses _or. Top-level conditions the service can answer are
// pushed down; a where with anything more is checked in memory, over the
// rows a top-level id condition names, and refused without one.

// timeMatch reports whether t satisfies every operator of e. A null column
// satisfies none (SQL comparisons with NULL are not true).
func timeMatch(e *TimestamptzComparisonExp, t *time.Time) bool {
	if e == nil {
		return true
	}
	if t == nil {
		return e.Eq == nil && e.Neq == nil && e.Gt == nil && e.Gte == nil && e.Lt == nil && e.Lte == nil
	}
	switch {
	case e.Eq != nil && !t.Equal(*e.Eq),
		e.Neq != nil && t.Equal(*e.Neq),
		e.Gt != nil && !t.After(*e.Gt),
		e.Gte != nil && t.Before(*e.Gte),
		e.Lt != nil && !t.Before(*e.Lt),
		e.Lte != nil && t.After(*e.Lte):
		return false
	}
	return true
}

// condsMatch reports whether v satisfies every condition. A null (empty)
// column satisfies none.
func condsMatch(cs []cond, v string, null bool) bool {
	for _, c := range cs {
		if null || !c.match(v) {
			return false
		}
	}
	return true
}

func (w *FlowRunBoolExp) and() []*FlowRunBoolExp { return w.And }
func (w *FlowRunBoolExp) or() []*FlowRunBoolExp  { return w.Or }
func (w *FlowRunBoolExp) not() *FlowRunBoolExp   { return w.Not }
func (w *AgentBoolExp) and() []*AgentBoolExp     { return w.And }
func (w *AgentBoolExp) or() []*AgentBoolExp      { return w.Or }
func (w *AgentBoolExp) not() *AgentBoolExp       { return w.Not }

// evalBoolExp evaluates w's _and, _or and _not with eval, then w's own
// fields with fields. A nil expression matches; an empty _or matches
// nothing.
func evalBoolExp[T boolExp[T]](w T, fields func(T) bool) bool {
	var zero T
	if w == zero {
		return true
	}
	for _, sub := range w.and() {
		if !evalBoolExp(sub, fields) {
			return false
		}
	}
	if w.or() != nil {
		matched := false
		for _, sub := range w.or() {
			if evalBoolExp(sub, fields) {
				matched = true
				break
			}
		}
		if !matched {
			return false
		}
	}
	if n := w.not(); n != zero && evalBoolExp(n, fields) {
		return false
	}
	return fields(w)
}

// flowRunFieldsMatch checks the column conditions of one flow_run_bool_exp
// level (not its _and, _or, _not).
func flowRunFieldsMatch(w *FlowRunBoolExp, r *latchkey.FlowRun) bool {
	if w.TaskRuns != nil {
		return false // Latchkey runs have no task runs, so none matches
	}
	return condsMatch(uuidConds("id", w.ID), r.ID, false) &&
		condsMatch(stringConds("name", w.Name), r.Name, false) &&
		condsMatch(stringConds("state", w.State), string(r.State), false) &&
		condsMatch(uuidConds("agent_id", w.AgentID), r.AgentID, r.AgentID == "") &&
		timeMatch(w.ScheduledStartTime, &r.ScheduledStartTime)
}

// flowRunFilter returns the FlowRunFilter to fetch with and, when the
// store cannot answer the whole where, a predicate for it. A where of
// top-level id (_eq, _in), name (_eq), state (_eq, _in) and agent_id (_eq)
// conditions goes to the store entirely, as does a top-level task_runs
// (which no run matches). Anything else (_and, _or, _not, other fields
// or operators) is checked in memory, and only when a top-level id
// condition names the rows (as the Prefect agent's query does, with
// id: {_in: [...]} and an _or on state): otherwise it is refused.
func flowRunFilter(where *FlowRunBoolExp, orderBy []*FlowRunOrderBy) (latchkey.FlowRunFilter, func(*latchkey.FlowRun) bool, error) {
	var f latchkey.FlowRunFilter
	for _, o := range orderBy {
		if o == nil {
			continue
		}
		f.OrderBy = appendSort(f.OrderBy, "scheduled_start_time", o.ScheduledStartTime)
		f.OrderBy = appendSort(f.OrderBy, "created_at", o.CreatedAt)
		f.OrderBy = appendSort(f.OrderBy, "name", o.Name)
	}
	if where == nil {
		return f, nil, nil
	}
	if where.TaskRuns != nil {
		// Latchkey runs have no task runs, so no run matches: an empty id
		// list asks the store for nothing.
		f.IDs = []string{}
		return f, nil, nil
	}
	var rest []string
	if where.And != nil || where.Or != nil || where.Not != nil {
		rest = append(rest, "_and, _or or _not")
	}
	if e := where.ScheduledStartTime; e != nil && (e.Eq != nil || e.Neq != nil || e.Gt != nil || e.Gte != nil || e.Lt != nil || e.Lte != nil) {
		rest = append(rest, "scheduled_start_time")
	}
	cs := slices.Concat(uuidConds("id", where.ID), stringConds("state", where.State),
		uuidConds("agent_id", where.AgentID), stringConds("name", where.Name))
	for _, c := range pushDown(cs,
		pushRule{"id", opEq, setOne(&f.ID)},
		pushRule{"id", opIn, setAll(&f.IDs)},
		pushRule{"state", opEq, setAll(&f.States)},
		pushRule{"state", opIn, setAll(&f.States)},
		pushRule{"agent_id", opEq, setOne(&f.AgentID)},
		pushRule{"name", opEq, setOne(&f.Name)}) {
		rest = append(rest, c.String())
	}
	if len(rest) == 0 {
		return f, nil, nil
	}
	if !byIDs(f.ID, f.IDs) {
		return f, nil, unsupported("flow_run", strings.Join(rest, ", "), "top-level id (_eq, _in), name (_eq), state (_eq, _in) and agent_id (_eq)")
	}
	// The predicate re-checks the pushed-down conditions too.
	return f, func(r *latchkey.FlowRun) bool {
		return evalBoolExp(where, func(w *FlowRunBoolExp) bool { return flowRunFieldsMatch(w, r) })
	}, nil
}

// agentFilter returns the AgentFilter to fetch with and, when the store
// cannot answer the whole where, a predicate for it; as flowRunFilter, for
// top-level id (_eq, _in), name (_eq) and type (_eq) conditions.
func agentFilter(where *AgentBoolExp) (latchkey.AgentFilter, func(*latchkey.Agent) bool, error) {
	var f latchkey.AgentFilter
	if where == nil {
		return f, nil, nil
	}
	var rest []string
	if where.And != nil || where.Or != nil || where.Not != nil {
		rest = append(rest, "_and, _or or _not")
	}
	cs := slices.Concat(uuidConds("id", where.ID), stringConds("name", where.Name), stringConds("type", where.Type))
	for _, c := range pushDown(cs,
		pushRule{"id", opEq, setOne(&f.ID)},
		pushRule{"id", opIn, setAll(&f.IDs)},
		pushRule{"name", opEq, setOne(&f.Name)},
		pushRule{"type", opEq, setOne(&f.Type)}) {
		rest = append(rest, c.String())
	}
	if len(rest) == 0 {
		return f, nil, nil
	}
	if !byIDs(f.ID, f.IDs) {
		return f, nil, unsupported("agent", strings.Join(rest, ", "), "top-level id (_eq, _in), name (_eq) and type (_eq)")
	}
	return f, func(ag *latchkey.Agent) bool {
		return evalBoolExp(where, func(w *AgentBoolExp) bool {
			return condsMatch(uuidConds("id", w.ID), ag.ID, false) &&
				condsMatch(stringConds("name", w.Name), ag.Name, false) &&
				condsMatch(stringConds("type", w.Type), ag.Type, false)
		})
	}, nil
}

// headerUUID returns the uuid in a request header, or "" if it is absent or
// not a uuid.
func headerUUID(v string) string {
	id, ok := latchkey.ParseUUID(strings.TrimSpace(v))
	if !ok {
		return ""
	}
	return id
}
