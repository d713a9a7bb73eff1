package graphql

import (
	"github.com/latchkey/latchkey"
)

func auditEventConds(w *AuditEventBoolExp) ([]cond, error) {
	if w == nil {
		return nil, nil
	}
	if err := checkBoolExp("audit_event_bool_exp", w.Or != nil, w.Not != nil); err != nil {
		return nil, err
	}
	var cs []cond
	for _, sub := range w.And {
		c, err := auditEventConds(sub)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c...)
	}
	cs = append(cs, uuidConds("id", w.ID)...)
	cs = append(cs, stringConds("action", w.Action)...)
	cs = append(cs, stringConds("target_type", w.TargetType)...)
	cs = append(cs, uuidConds("target_id", w.TargetID)...)
	cs = append(cs, uuidConds("actor_user_id", w.ActorUserID)...)
	return cs, nil
}

func auditEventField(e *latchkey.AuditEvent, field string) string {
	switch field {
	case "id":
		return e.ID
	case "action":
		return string(e.Action)
	case "target_type":
		return e.TargetType
	case "target_id":
		return e.TargetID
	case "actor_user_id":
		return e.ActorUserID
	}
	return ""
}

// auditEventFilter builds an AuditFilter from where and order_by, and
// returns the conditions left to check in memory: the first _eq of each
// field goes to the store; the rest is checked here when the filter names
// one event by id, and refused otherwise.
func auditEventFilter(where *AuditEventBoolExp, orderBy []*AuditEventOrderBy) (latchkey.AuditFilter, []cond, error) {
	var f latchkey.AuditFilter
	cs, err := auditEventConds(where)
	if err != nil {
		return f, nil, err
	}
	var rest []cond
	for _, c := range cs {
		v := ""
		if c.op == opEq {
			v = c.values[0] // uuids arrive lower-cased, as the store keeps them
		}
		switch {
		case c.op != opEq:
			rest = append(rest, c)
		case c.field == "id" && f.ID == nil:
			f.ID = ptr(v)
		case c.field == "action" && f.Action == nil:
			f.Action = ptr(latchkey.AuditAction(v))
		case c.field == "target_type" && f.TargetType == nil:
			f.TargetType = ptr(v)
		case c.field == "target_id" && f.TargetID == nil:
			f.TargetID = ptr(v)
		case c.field == "actor_user_id" && f.ActorUserID == nil:
			f.ActorUserID = ptr(v)
		default:
			rest = append(rest, c)
		}
	}
	for _, o := range orderBy {
		if o != nil {
			f.OrderBy = appendSort(f.OrderBy, "created_at", o.CreatedAt)
		}
	}
	if len(rest) > 0 && !byIDs(f.ID, nil) {
		return f, nil, unsupportedConds("audit_event", rest, "id, action, target_type, target_id and actor_user_id (_eq)")
	}
	return f, rest, nil
}
