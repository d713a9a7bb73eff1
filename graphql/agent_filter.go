package graphql

import (
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// This file evaluates flow_run_bool_exp and agent_bool_exp, which, unlike
// the other where arguments, support _or and _not: the Prefect agent's
// flow_run query uses _or. The whole expression is checked in memory;
// top-level id and state conditions are also pushed down to the service so
// that it fetches only candidate rows.

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

// boolExp is the shape shared by the where types evaluated here.
type boolExp[T any] interface {
	and() []T
	or() []T
	not() T
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
func evalBoolExp[T interface {
	comparable
	boolExp[T]
}](w T, fields func(T) bool) bool {
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

// flowRunFilter returns the FlowRunFilter to fetch candidates with, and a
// predicate for the whole where (nil when there is no where).
func flowRunFilter(where *FlowRunBoolExp, orderBy []*FlowRunOrderBy) (latchkey.FlowRunFilter, func(*latchkey.FlowRun) bool) {
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
		return f, nil
	}
	// Push down top-level id and state conditions; the predicate re-checks them.
	for _, c := range append(uuidConds("id", where.ID), stringConds("state", where.State)...) {
		switch {
		case c.field == "id" && c.op == opEq && f.ID == nil:
			f.ID = ptr(c.values[0])
		case c.field == "id" && c.op == opIn && f.IDs == nil:
			f.IDs = c.values
		case c.field == "state" && (c.op == opEq || c.op == opIn) && f.States == nil:
			f.States = []latchkey.FlowRunState{}
			for _, v := range c.values {
				f.States = append(f.States, latchkey.FlowRunState(v))
			}
		}
	}
	return f, func(r *latchkey.FlowRun) bool {
		return evalBoolExp(where, func(w *FlowRunBoolExp) bool { return flowRunFieldsMatch(w, r) })
	}
}

// agentFilter returns the AgentFilter to fetch candidates with, and a
// predicate for the whole where (nil when there is no where).
func agentFilter(where *AgentBoolExp) (latchkey.AgentFilter, func(*latchkey.Agent) bool) {
	var f latchkey.AgentFilter
	if where == nil {
		return f, nil
	}
	for _, c := range append(uuidConds("id", where.ID), stringConds("name", where.Name)...) {
		switch {
		case c.field == "id" && c.op == opEq && f.ID == nil:
			f.ID = ptr(c.values[0])
		case c.field == "id" && c.op == opIn && f.IDs == nil:
			f.IDs = c.values
		case c.field == "name" && c.op == opEq && f.Name == nil:
			f.Name = ptr(c.values[0])
		}
	}
	return f, func(ag *latchkey.Agent) bool {
		return evalBoolExp(where, func(w *AgentBoolExp) bool {
			return condsMatch(uuidConds("id", w.ID), ag.ID, false) &&
				condsMatch(stringConds("name", w.Name), ag.Name, false) &&
				condsMatch(stringConds("type", w.Type), ag.Type, false)
		})
	}
}

// filterPage fetches one page: through the service when keep is nil,
// otherwise by fetching every candidate, keeping the matches and paging in
// memory.
func filterPage[T any](p page, keep func(*T) bool, fetch func(offset, limit int) ([]*T, error)) ([]*T, error) {
	if p.empty {
		return []*T{}, nil
	}
	if keep == nil {
		return fetch(p.offset, p.limit)
	}
	all, err := fetch(0, 0)
	if err != nil {
		return nil, err
	}
	out := all[:0:0]
	for _, t := range all {
		if keep(t) {
			out = append(out, t)
		}
	}
	if p.offset >= len(out) {
		return []*T{}, nil
	}
	out = out[p.offset:]
	if p.limit > 0 && p.limit < len(out) {
		out = out[:p.limit]
	}
	return out, nil
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
