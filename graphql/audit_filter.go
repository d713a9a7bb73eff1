package graphql

import (
	"slices"

	"github.com/latchkey/latchkey"
)

func (w *AuditEventBoolExp) and() []*AuditEventBoolExp { return w.And }
func (w *AuditEventBoolExp) or() []*AuditEventBoolExp  { return w.Or }
func (w *AuditEventBoolExp) not() *AuditEventBoolExp   { return w.Not }

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
	cs, err := whereConds("audit_event_bool_exp", where, func(w *AuditEventBoolExp) []cond {
		return slices.Concat(uuidConds("id", w.ID), stringConds("action", w.Action), stringConds("target_type", w.TargetType),
			uuidConds("target_id", w.TargetID), uuidConds("actor_user_id", w.ActorUserID))
	})
	if err != nil {
		return f, nil, err
	}
	// uuids arrive lower-cased, as the store keeps them.
	rest := pushDown(cs,
		pushRule{"id", opEq, setOne(&f.ID)},
		pushRule{"action", opEq, setOne(&f.Action)},
		pushRule{"target_type", opEq, setOne(&f.TargetType)},
		pushRule{"target_id", opEq, setOne(&f.TargetID)},
		pushRule{"actor_user_id", opEq, setOne(&f.ActorUserID)})
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
