package graphql

import "math"

// DefaultMaxCost caps an operation's cost: how many values it could
// return, counting each field once per row of every list around it (see
// listComplexity). The Prefect agent's flow_run query for a full poll (100
// runs) costs about 2,000; a flow_run page of 1,000 rows with 9 fields about
// 10,000.
const DefaultMaxCost = 10000

// listComplexity returns the complexity functions the limits extension
// computes an operation's cost with. gqlgen's default scores a field as
// one plus its children; a list field here scores one plus its children
// times the rows it can return: its limit, or DefaultLimit without one,
// capped at MaxLimit (a larger limit is refused when the field resolves),
// and at the number of ids its where names. Fields without a function keep
// the default: user (one row), task_runs (always empty), and scalar lists
// capped when written (command, labels, flow_run_ids).
func listComplexity() ComplexityRoot {
	var c ComplexityRoot
	c.Query.APIToken = func(child int, limit, _ *int) int {
		return listCost(child, limit, nil)
	}
	c.Query.Agent = func(child int, where *AgentBoolExp, limit, _ *int) int {
		var id *UUIDComparisonExp
		if where != nil {
			id = where.ID
		}
		return listCost(child, limit, id)
	}
	c.Query.AuditEvent = func(child int, where *AuditEventBoolExp, _ []*AuditEventOrderBy, limit, _ *int) int {
		var id *UUIDComparisonExp
		if where != nil {
			id = where.ID
		}
		return listCost(child, limit, id)
	}
	c.Query.AuthAPIKey = func(child int, where *AuthAPIKeyBoolExp, _ []*AuthAPIKeyOrderBy, limit, _ *int) int {
		var id *UUIDComparisonExp
		if where != nil {
			id = where.ID
		}
		return listCost(child, limit, id)
	}
	c.Query.FlowRun = func(child int, where *FlowRunBoolExp, _ []*FlowRunOrderBy, limit, _ *int) int {
		var id *UUIDComparisonExp
		if where != nil {
			id = where.ID
		}
		return listCost(child, limit, id)
	}
	c.Query.Membership = func(child int, where *MembershipBoolExp, limit, _ *int) int {
		var id *UUIDComparisonExp
		if where != nil {
			id = where.ID
		}
		return listCost(child, limit, id)
	}
	c.Query.ServiceAccount = func(child int, where *ServiceAccountBoolExp, limit, _ *int) int {
		var id *UUIDComparisonExp
		if where != nil {
			id = where.ID
		}
		return listCost(child, limit, id)
	}
	c.Query.Tenant = func(child int, where *TenantBoolExp, _ []*TenantOrderBy, limit, _ *int) int {
		var id *UUIDComparisonExp
		if where != nil {
			id = where.ID
		}
		return listCost(child, limit, id)
	}
	c.Flow_run.Logs = func(child int, limit, _ *int) int {
		return listCost(child, limit, nil)
	}
	c.Service_account.APIKeys = func(child int, limit, _ *int) int {
		return listCost(child, limit, nil)
	}
	c.User.Memberships = func(child int, limit, _ *int) int {
		return listCost(child, limit, nil)
	}
	c.Query.Invitation = func(child int, limit, _ *int) int {
		return listCost(child, limit, nil)
	}
	c.Query.MyInvitations = func(child int, limit *int) int {
		return listCost(child, limit, nil)
	}
	return c
}

// listCost is the cost of a list field whose rows cost child each, given
// its limit argument and its where's top-level id condition. It saturates
// rather than overflow.
func listCost(child int, limit *int, id *UUIDComparisonExp) int {
	rows := limitArg(limit)
	if id != nil {
		if id.Eq != nil {
			rows = 1
		} else if id.In != nil {
			rows = max(min(rows, len(id.In)), 1)
		}
	}
	if child > (math.MaxInt32-1)/rows {
		return math.MaxInt32
	}
	return 1 + rows*child
}
