package main_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	main "github.com/latchkey/latchkey/cmd/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// The authorization matrix: every GraphQL operation, as one or more rows,
// against every kind of caller, with the outcome AUTHZ.md and the resolvers
// define. It runs on one server per engine. Rows that change something get
// fresh objects of their own, so no row depends on another; after the whole
// matrix, each tenant's admin checks that nothing of theirs changed, and
// every response along the way is checked for the other tenant's ids and
// names.
//
// Tenant A ("Alpha") is bootstrapped by the server; tenant B ("Bravo") is a
// second, unrelated tenant. The columns (callers) are:
//
//	anon  no credential
//	bad   a well-formed API key that does not exist
//	typo  A's admin key with one character changed (bad checksum)
//	exp   an expired key of A's admin (the server clock is moved past it)
//	rev   a revoked key of A's admin
//	ro    a READ_ONLY_USER of A, personal key
//	user  a USER of A, personal key
//	adm   the TENANT_ADMIN of A, personal key
//	sa    a service account of A with role USER, its key
//	saA   a service account of A with role TENANT_ADMIN, its key
//	oth   B's TENANT_ADMIN with their own key, acting in B, aiming at A's objects
//	othA  the same key with A's X-PREFECT-TENANT-ID header
//	tokU  a legacy USER token of A's admin
//	tokT  a legacy TENANT token of A's admin (role capped at USER)
//	tokR  a legacy RUNNER token of A's admin
//	jwt   an access token for A of "dual", a USER of A and READ_ONLY_USER of B
//	jwtB  that access token with B's tenant header
//
// Outcomes: ok (data, no error; a delete answers success: true), no (a
// delete answers success: false: the thing is invisible), U
// (UNAUTHENTICATED), F (FORBIDDEN), NF (NOT_FOUND).
var azColumns = strings.Fields("anon bad typo exp rev ro user adm sa saA oth othA tokU tokT tokR jwt jwtB")

// azOps is the table. Each want has one outcome per column of azColumns.
//
// A new operation gets rows here (or, for the time being, an entry in
// azPendingFields): TestAuthzMatrix_CoversSchema fails for any root field
// of the schema that has neither.
var azOps = []azOp{
	// Queries.
	//      anon bad typo exp rev ro user adm sa saA oth othA tokU tokT tokR jwt jwtB
	{want: "ok   U   U    U   U   ok ok   ok  ok ok  ok  U    ok   ok   ok   ok  U", name: "hello", field: "hello", query: `query { hello }`},
	{want: "U    U   U    U   U   ok ok   ok  ok ok  ok  U    ok   ok   ok   ok  U", name: "auth_info", field: "auth_info", query: qAZAuthInfo},
	{want: "U    U   U    U   U   ok ok   ok  ok ok  ok  U    ok   ok   ok   ok  U", name: "tenant", field: "tenant", query: qAZTenants},
	{want: "U    U   U    U   U   ok ok   ok  ok ok  ok  U    ok   ok   ok   ok  U", name: "tenant where id = A", field: "tenant", query: qAZTenantByID, in: azVarsTenantA},
	{want: "U    U   U    U   U   ok ok   ok  ok ok  ok  U    ok   ok   ok   ok  U", name: "user", field: "user", query: qAZUserSelf},
	{want: "U    U   U    U   U   ok ok   ok  ok ok  ok  U    ok   ok   F    ok  U", name: "user with memberships", field: "user", query: qAZUser},
	{want: "U    U   U    U   U   ok ok   ok  ok ok  ok  U    ok   F    F    ok  U", name: "auth_api_key", field: "auth_api_key", query: qAZKeys},
	{want: "U    U   U    U   U   ok ok   ok  ok ok  ok  U    ok   F    F    ok  U", name: "auth_api_key of A", field: "auth_api_key", query: qAZKeysOfTenant, in: azVarsTenantA},
	{want: "U    U   U    U   U   ok ok   ok  F  F   ok  U    ok   F    F    ok  U", name: "api_token", field: "api_token", query: qAZTokens},
	{want: "U    U   U    U   U   F  F    ok  F  F   ok  U    ok   F    F    F   U", name: "service_account", field: "service_account", query: qAZServiceAccounts},
	{want: "U    U   U    U   U   F  F    ok  F  F   ok  U    ok   F    F    F   U", name: "service_account of A", field: "service_account", query: qAZServiceAccountsOf, in: azVarsTenantA},
	{want: "U    U   U    U   U   ok ok   ok  ok ok  ok  U    ok   ok   F    ok  U", name: "membership", field: "membership", query: qAZMemberships},
	{want: "U    U   U    U   U   ok ok   ok  ok ok  ok  U    ok   ok   F    ok  U", name: "membership of A", field: "membership", query: qAZMembershipsOf, in: azVarsTenantA},

	// API keys.
	//      anon bad typo exp rev ro user adm sa saA oth othA tokU tokT tokR jwt jwtB
	{want: "U    U   U    U   U   ok ok   ok  F  F   ok  U    ok   F    F    ok  U", name: "create_api_key for self", field: "create_api_key", query: qAZCreateKey, in: azCreateKeySelf},
	{want: "U    U   U    U   U   ok ok   ok  F  F   F   U    ok   F    F    ok  U", name: "create_api_key for self, default tenant A", field: "create_api_key", query: qAZCreateKey, in: azCreateKeySelfInA},
	{want: "U    U   U    U   U   F  F    ok  F  F   F   U    ok   F    F    F   U", name: "create_api_key for A's service account", field: "create_api_key", query: qAZCreateKey, in: azCreateKeyForSA},
	{want: "U    U   U    U   U   F  F    F   F  F   F   U    F    F    F    F   U", name: "create_api_key for another human", field: "create_api_key", query: qAZCreateKey, in: azCreateKeyForHuman},
	{want: "U    U   U    U   U   ok ok   ok  ok ok  ok  U    ok   F    F    ok  U", name: "delete_api_key own", field: "delete_api_key", query: qAZDeleteKey, in: azDeleteOwnKey},
	{want: "U    U   U    U   U   no no   ok  no no  no  U    ok   F    F    no  U", name: "delete_api_key of A's service account", field: "delete_api_key", query: qAZDeleteKey, in: azDeleteSAKeyA},
	{want: "U    U   U    U   U   no no   no  no no  no  U    no   F    F    no  U", name: "delete_api_key of another human of A", field: "delete_api_key", query: qAZDeleteKey, in: azDeleteHumanKey},
	{want: "U    U   U    U   U   no no   no  no no  ok  U    no   F    F    no  U", name: "delete_api_key of B's service account", field: "delete_api_key", query: qAZDeleteKey, in: azDeleteSAKeyB},
	{want: "U    U   U    U   U   ok ok   ok  F  F   ok  U    ok   F    F    ok  U", name: "rotate_api_key own", field: "rotate_api_key", query: qAZRotateKey, in: azRotate(azDeleteOwnKey)},
	{want: "U    U   U    U   U   NF NF   ok  F  F   NF  U    ok   F    F    NF  U", name: "rotate_api_key of A's service account", field: "rotate_api_key", query: qAZRotateKey, in: azRotate(azDeleteSAKeyA)},
	{want: "U    U   U    U   U   NF NF   NF  F  F   NF  U    NF   F    F    NF  U", name: "rotate_api_key of another human of A", field: "rotate_api_key", query: qAZRotateKey, in: azRotate(azDeleteHumanKey)},
	{want: "U    U   U    U   U   NF NF   NF  F  F   ok  U    NF   F    F    NF  U", name: "rotate_api_key of B's service account", field: "rotate_api_key", query: qAZRotateKey, in: azRotate(azDeleteSAKeyB)},

	// Service accounts.
	//      anon bad typo exp rev ro user adm sa saA oth othA tokU tokT tokR jwt jwtB
	{want: "U    U   U    U   U   F  F    ok  F  F   F   U    ok   F    F    F   U", name: "create_service_account in A", field: "create_service_account", query: qAZCreateSA, in: azCreateSAInA},
	{want: "U    U   U    U   U   F  F    ok  F  F   no  U    ok   F    F    F   U", name: "delete_service_account of A", field: "delete_service_account", query: qAZDeleteSA, in: azDeleteSAOfA},
	{want: "U    U   U    U   U   F  F    no  F  F   ok  U    no   F    F    F   U", name: "delete_service_account of B", field: "delete_service_account", query: qAZDeleteSA, in: azDeleteSAOfB},

	// Tenants and memberships.
	//      anon bad typo exp rev ro user adm sa saA oth othA tokU tokT tokR jwt jwtB
	{want: "U    U   U    U   U   F  F    ok  F  F   ok  U    ok   F    F    F   U", name: "create_tenant", field: "create_tenant", query: qAZCreateTenant, in: azCreateTenant},
	{want: "U    U   U    U   U   F  F    ok  F  F   F   U    ok   F    F    F   U", name: "create_membership in A", field: "create_membership", query: qAZCreateMembership, in: azCreateMembershipInA},
	{want: "U    U   U    U   U   F  F    ok  F  F   NF  U    ok   F    F    F   U", name: "update_membership_role in A", field: "update_membership_role", query: qAZUpdateRole, in: azUpdateRoleInA},
	{want: "U    U   U    U   U   F  F    NF  F  F   ok  U    NF   F    F    F   U", name: "update_membership_role in B", field: "update_membership_role", query: qAZUpdateRole, in: azUpdateRoleInB},
	{want: "U    U   U    U   U   F  F    ok  F  F   no  U    ok   F    F    F   U", name: "delete_membership in A", field: "delete_membership", query: qAZDeleteMembership, in: azDeleteMembershipInA},
	{want: "U    U   U    U   U   F  F    no  F  F   ok  U    no   F    F    F   U", name: "delete_membership in B", field: "delete_membership", query: qAZDeleteMembership, in: azDeleteMembershipInB},

	// Invitations (an unknown id: the rows say who may ask at all).
	//      anon bad typo exp rev ro user adm sa saA oth othA tokU tokT tokR jwt jwtB
	{want: "U    U   U    U   U   F  F    ok  F  F   ok  U    ok   F    F    F   U", name: "invitation", field: "invitation", query: `query { invitation { id tenant_id invitee role } }`},
	{want: "U    U   U    U   U   ok ok   ok  F  F   ok  U    ok   F    F    ok  U", name: "my_invitations", field: "my_invitations", query: `query { my_invitations { id tenant_id tenant_name role } }`},
	{want: "U    U   U    U   U   NF NF   NF  F  F   NF  U    NF   F    F    NF  U", name: "accept_invitation unknown", field: "accept_invitation", query: qAZAcceptInvitation, in: azUnknownInvitation},
	{want: "U    U   U    U   U   no no   no  F  F   no  U    no   F    F    no  U", name: "decline_invitation unknown", field: "decline_invitation", query: qAZDeclineInvitation, in: azUnknownInvitation},
	{want: "U    U   U    U   U   F  F    no  F  F   no  U    no   F    F    F   U", name: "delete_invitation unknown", field: "delete_invitation", query: qAZDeleteInvitation, in: azUnknownInvitation},

	// Access and refresh tokens.
	//      anon bad typo exp rev ro user adm sa saA oth othA tokU tokT tokR jwt jwtB
	{want: "U    U   U    U   U   ok ok   ok  ok ok  U   U    ok   ok   ok   ok  U", name: "switch_tenant to A", field: "switch_tenant", query: qAZSwitchTenant, in: azSwitchToA},
	{want: "U    U   U    U   U   U  U    U   U  U   ok  U    U    F    F    ok  U", name: "switch_tenant to B", field: "switch_tenant", query: qAZSwitchTenant, in: azSwitchToB},
	{want: "U    U   U    U   U   ok ok   ok  ok ok  ok  U    ok   ok   ok   ok  U", name: "switch_tenant to the current tenant", field: "switch_tenant", query: qAZSwitchTenant, in: azSwitchToCurrent},
	{want: "U    U   U    U   U   U  U    U   U  U   U   U    U    U    U    U   U", name: "refresh_token with the caller's credential", field: "refresh_token", query: qAZRefresh, in: azRefresh},

	// Legacy API tokens.
	//      anon bad typo exp rev ro user adm sa saA oth othA tokU tokT tokR jwt jwtB
	{want: "U    U   U    U   U   ok ok   ok  F  F   ok  U    ok   F    F    ok  U", name: "create_api_token USER", field: "create_api_token", query: qAZCreateToken, in: azCreateToken("USER")},
	{want: "U    U   U    U   U   F  F    ok  F  F   ok  U    ok   F    F    F   U", name: "create_api_token TENANT", field: "create_api_token", query: qAZCreateToken, in: azCreateToken("TENANT")},
	{want: "U    U   U    U   U   F  F    ok  F  F   ok  U    ok   F    F    F   U", name: "create_api_token RUNNER", field: "create_api_token", query: qAZCreateToken, in: azCreateToken("RUNNER")},
	{want: "U    U   U    U   U   ok ok   ok  F  F   ok  U    ok   F    F    ok  U", name: "delete_api_token own (SAs: an admin's USER token)", field: "delete_api_token", query: qAZDeleteToken, in: azDeleteOwnToken},
	{want: "U    U   U    U   U   no no   ok  F  F   no  U    ok   F    F    no  U", name: "delete_api_token RUNNER of A by another admin", field: "delete_api_token", query: qAZDeleteToken, in: azDeleteTenantTokenA},
	{want: "U    U   U    U   U   no no   no  F  F   no  U    no   F    F    no  U", name: "delete_api_token USER of another human of A", field: "delete_api_token", query: qAZDeleteToken, in: azDeleteHumanToken},
	{want: "U    U   U    U   U   no no   no  F  F   ok  U    no   F    F    no  U", name: "delete_api_token RUNNER of B", field: "delete_api_token", query: qAZDeleteToken, in: azDeleteTenantTokenB},

	// The audit log: human tenant admins only.
	//      anon bad typo exp rev ro user adm sa saA oth othA tokU tokT tokR jwt jwtB
	{want: "U    U   U    U   U   F  F    ok  F  F   ok  U    ok   F    F    F   U", name: "audit_event", field: "audit_event", query: qAZAuditEvents},
	{want: "U    U   U    U   U   F  F    ok  F  F   ok  U    ok   F    F    F   U", name: "audit_event of key creations", field: "audit_event", query: qAZAuditEventsOf, in: azVarsAuditAction},

	// Agents and flow runs (what the Prefect agent and its flow runs do).
	//      anon bad typo exp rev ro user adm sa saA oth othA tokU tokT tokR jwt jwtB
	{want: "U    U   U    U   U   ok ok   ok  ok ok  ok  U    ok   ok   ok   ok  U", name: "agent", field: "agent", query: qAZAgents},
	{want: "U    U   U    U   U   ok ok   ok  ok ok  ok  U    ok   ok   ok   ok  U", name: "flow_run", field: "flow_run", query: qAZFlowRuns},
	{want: "U    U   U    U   U   F  ok   ok  ok ok  F   U    ok   ok   ok   ok  U", name: "register_agent in A", field: "register_agent", query: qAZRegisterAgent, in: azRegisterAgentInA},
	{want: "U    U   U    U   U   F  ok   ok  ok ok  F   U    ok   ok   ok   ok  U", name: "get_runs_in_queue of A", field: "get_runs_in_queue", query: qAZRunsInQueue, in: azVarsQueueOfA},
	{want: "U    U   U    U   U   F  ok   ok  ok ok  ok  U    ok   ok   F    ok  U", name: "create_flow_run", field: "create_flow_run", query: qAZCreateRun, in: azCreateRun},
	{want: "U    U   U    U   U   F  ok   ok  ok ok  NF  U    ok   ok   ok   ok  U", name: "set_flow_run_states of A's run", field: "set_flow_run_states", query: qAZSetStates, in: azSetStateA},
	{want: "U    U   U    U   U   F  NF   NF  NF NF  ok  U    NF   NF   NF   NF  U", name: "set_flow_run_states of B's run", field: "set_flow_run_states", query: qAZSetStates, in: azSetStateB},
	{want: "U    U   U    U   U   F  ok   ok  ok ok  NF  U    ok   ok   ok   ok  U", name: "write_run_logs of A's run", field: "write_run_logs", query: qAZWriteLogs, in: azWriteLogsA},
	{want: "U    U   U    U   U   F  ok   ok  ok ok  NF  U    ok   ok   ok   ok  U", name: "update_flow_run_heartbeat of A's run", field: "update_flow_run_heartbeat", query: qAZHeartbeat, in: azHeartbeatA},
}

// azPendingFields are root fields with no row yet (see azOps).
var azPendingFields = map[string]bool{}

// Query texts.
const (
	qAZAcceptInvitation  = `mutation($input: invitation_id_input!) { accept_invitation(input: $input) { id tenant_id } }`
	qAZDeclineInvitation = `mutation($input: invitation_id_input!) { decline_invitation(input: $input) { success } }`
	qAZDeleteInvitation  = `mutation($input: invitation_id_input!) { delete_invitation(input: $input) { success } }`
	qAZAuthInfo          = `query { auth_info { tenant_id user_id api_token_scope role } }`
	qAZTenants           = `query { tenant(order_by: {slug: asc}) { id slug name created_at } }`
	qAZTenantByID        = `query($t: uuid) { tenant(where: {id: {_eq: $t}}) { id slug name } }`
	qAZUserSelf          = `query { user { id email name kind } }`
	qAZUser              = `query { user { id email name kind default_membership { id tenant_id user_id role } memberships { id tenant_id user_id role user { id email name } } } }`
	qAZKeys              = `query { auth_api_key { id name user_id default_tenant_id created_by_user_id expires_at } }`
	qAZKeysOfTenant      = `query($t: uuid) { auth_api_key(where: {default_tenant_id: {_eq: $t}}) { id name user_id default_tenant_id created_by_user_id } }`
	qAZTokens            = `query { api_token { id name scope tenant_id user_id } }`
	qAZServiceAccounts   = `query { service_account(limit: 20) { id name role tenant_id created_by_user_id api_keys(limit: 100) { id name user_id default_tenant_id } } }`
	qAZServiceAccountsOf = `query($t: uuid) { service_account(where: {tenant_id: {_eq: $t}}, limit: 20) { id name role tenant_id api_keys(limit: 100) { id name user_id } } }`
	qAZMemberships       = `query { membership { id tenant_id user_id role user { id email name kind } } }`
	qAZMembershipsOf     = `query($t: uuid) { membership(where: {tenant_id: {_eq: $t}}) { id tenant_id user_id role user { id email name kind } } }`
	qAZCreateKey         = `mutation($input: create_api_key_input!) { create_api_key(input: $input) { id key token } }`
	qAZDeleteKey         = `mutation($input: delete_api_key_input!) { delete_api_key(input: $input) { success } }`
	qAZRotateKey         = `mutation($input: rotate_api_key_input!) { rotate_api_key(input: $input) { id key old_key_id old_key_expires_at } }`
	qAZCreateSA          = `mutation($input: create_service_account_input!) { create_service_account(input: $input) { id name role tenant_id created_by_user_id } }`
	qAZDeleteSA          = `mutation($input: delete_service_account_input!) { delete_service_account(input: $input) { success } }`
	qAZCreateTenant      = `mutation($input: create_tenant_input!) { create_tenant(input: $input) { id slug name } }`
	qAZCreateMembership  = `mutation($input: create_membership_input!) { create_membership(input: $input) { membership { id tenant_id user_id role } } }`
	qAZUpdateRole        = `mutation($input: update_membership_role_input!) { update_membership_role(input: $input) { id tenant_id user_id role } }`
	qAZDeleteMembership  = `mutation($input: delete_membership_input!) { delete_membership(input: $input) { success } }`
	qAZSwitchTenant      = `mutation($input: switch_tenant_input!) { switch_tenant(input: $input) { access_token expires_at refresh_token } }`
	qAZRefresh           = `mutation($input: refresh_token_input!) { refresh_token(input: $input) { access_token expires_at refresh_token } }`
	qAZCreateToken       = `mutation($input: create_api_token_input!) { create_api_token(input: $input) { id token } }`
	qAZDeleteToken       = `mutation($input: delete_api_token_input!) { delete_api_token(input: $input) { success } }`
	qAZAgents            = `query { agent { id tenant_id name type labels user_id } }`
	qAZFlowRuns          = `query { flow_run { id tenant_id name state version labels logs(limit: 10) { message } } }`
	qAZRegisterAgent     = `mutation($input: register_agent_input!) { register_agent(input: $input) { id } }`
	qAZRunsInQueue       = `mutation($input: get_runs_in_queue_input!) { get_runs_in_queue(input: $input) { flow_run_ids } }`
	qAZCreateRun         = `mutation($input: create_flow_run_input!) { create_flow_run(input: $input) { id } }`
	qAZSetStates         = `mutation($input: set_flow_run_states_input!) { set_flow_run_states(input: $input) { states { id status } } }`
	qAZWriteLogs         = `mutation($input: write_run_logs_input!) { write_run_logs(input: $input) { success } }`
	qAZAuditEvents       = `query { audit_event(order_by: {created_at: desc}, limit: 200) { id tenant_id action actor_user_id actor_kind actor_credential_id target_type target_id details client_addr user_agent created_at } }`
	qAZAuditEventsOf     = `query($a: String) { audit_event(where: {action: {_eq: $a}}) { id tenant_id action actor_user_id target_type target_id details } }`
	qAZHeartbeat         = `mutation($input: update_flow_run_heartbeat_input!) { update_flow_run_heartbeat(input: $input) { success } }`
)

// azOp is a row of the matrix.
type azOp struct {
	name  string
	field string // the root field
	query string
	// in returns the row's variables for caller c, creating the objects
	// the row acts on. Nil: no variables.
	in   func(t *testing.T, x *azWorld, c *azCaller) azInput
	want string
}

// azInput is what a row sends and what it may change.
type azInput struct {
	vars map[string]any
	// target is the object a delete or update acts on: gone (or changed)
	// after ok, untouched otherwise.
	target *azTarget
	// grows is the table that gains a row on ok.
	grows string
}

// azTarget is a row of a table. With col set, the row stays and its
// column col goes from before to after on ok (and stays before otherwise);
// without, the row is gone after ok.
type azTarget struct {
	table, id          string
	col, before, after string
}

// azCaller is a column of the matrix.
type azCaller struct {
	name   string
	cred   string
	tenant string // X-PREFECT-TENANT-ID, "" for none

	// The principal and the tenant it acts in, "" for callers that do not
	// authenticate. role is the effective role (capped for tokens).
	user   *latchkey.User
	acting string
	role   latchkey.Role
	scope  latchkey.TokenScope
	isSA   bool

	// owner is whose "own" keys and tokens the delete rows target: the
	// principal, or A's admin for callers without one.
	owner       *latchkey.User
	ownerTenant string
	ownerRole   latchkey.Role

	// private is what this caller must never be shown (the other tenant's
	// ids and names), unless it sent it.
	private func() []string
}

// azWorld is the server and its fixtures.
type azWorld struct {
	s     *TestServer
	db    *sqldb.DB
	clock *azClock
	seq   atomic.Int64
	tag   string // makes names unique per run

	tenantA, tenantB *latchkey.Tenant
	adminA, adminA2  *latchkey.User
	adminB           *latchkey.User
	ro, user, victim *latchkey.User
	dual             *latchkey.User
	saUser, saAdmin  *latchkey.ServiceAccount
	sa2, saB         *latchkey.ServiceAccount
	callers          []*azCaller

	// fixtures lists every object the matrix created in each tenant on
	// purpose (tenant id → ids).
	fixtures map[string]map[string]bool
	// privA and privB are the strings only members of A (resp. B) may see.
	privA, privB []string
}

// azClock is the server clock: real time plus an offset the test moves.
type azClock struct{ offset atomic.Int64 }

func (c *azClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *azClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

func TestAuthzMatrix(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine string) {
		x := newAZWorld(t, engine)
		before := map[string]map[string]string{
			x.tenantA.ID: x.snapshot(t, x.adminCaller(), x.tenantA.ID),
			x.tenantB.ID: x.snapshot(t, x.callerNamed("oth"), x.tenantB.ID),
		}
		for _, op := range azOps {
			wants := strings.Fields(op.want)
			if len(wants) != len(azColumns) {
				t.Fatalf("%s: %d outcomes for %d callers", op.name, len(wants), len(azColumns))
			}
			x.refreshPrivate(t)
			for i, c := range x.callers {
				x.run(t, op, c, wants[i])
			}
		}
		x.checkUnchanged(t, before)
	})
}

// run runs one cell of the matrix.
func (x *azWorld) run(t *testing.T, op azOp, c *azCaller, want string) {
	t.Helper()
	var in azInput
	if op.in != nil {
		in = op.in(t, x, c)
	}
	isMutation := strings.HasPrefix(op.query, "mutation")
	var countsBefore map[string]string
	if isMutation {
		countsBefore = x.counts(t)
	}
	r := x.s.Do(t, "/graphql", c.cred, c.tenant, op.query, in.vars)
	cell := fmt.Sprintf("%s × %s", op.name, c.name)

	if r.status != 200 {
		t.Fatalf("%s: HTTP %d: %s", cell, r.status, r.raw)
	}
	if strings.Contains(string(r.raw), "API_ERROR") {
		t.Fatalf("%s: API_ERROR: %s", cell, r.raw)
	}
	data := r.Data[op.field]
	got := ""
	switch {
	case len(r.Errors) > 0:
		switch code := r.code(); code {
		case "UNAUTHENTICATED":
			got = "U"
		case "FORBIDDEN":
			got = "F"
		case "NOT_FOUND":
			got = "NF"
		default:
			got = code
		}
		if len(data) != 0 && string(data) != "null" {
			t.Errorf("%s: %s with data: %s", cell, got, r.raw)
		}
	case len(data) == 0 || string(data) == "null":
		got = "null"
	case strings.HasPrefix(op.field, "delete_") || op.field == "decline_invitation" || op.field == "write_run_logs" || op.field == "update_flow_run_heartbeat":
		var p struct{ Success *bool }
		if err := json.Unmarshal(data, &p); err != nil || p.Success == nil {
			t.Fatalf("%s: %v: %s", cell, err, r.raw)
		}
		got = map[bool]string{true: "ok", false: "no"}[*p.Success]
	default:
		got = "ok"
	}
	if got != want {
		t.Errorf("%s: got %s, want %s: %s", cell, got, want, r.raw)
	}

	// Nothing the caller may not see, and nothing secret about others.
	x.checkNoLeak(t, cell, c, op.query, in.vars, string(r.raw))
	if got == "ok" && !isMutation {
		x.checkVisible(t, cell, c, op.field, data)
	}

	if !isMutation {
		return
	}
	countsAfter := x.counts(t)
	if got != "ok" {
		// A refusal writes nothing at all.
		for k, v := range countsBefore {
			if countsAfter[k] != v {
				t.Errorf("%s: refused (%s) but %s went from %s to %s", cell, got, k, v, countsAfter[k])
			}
		}
	} else if in.grows != "" {
		if countsAfter[in.grows] == countsBefore[in.grows] {
			t.Errorf("%s: ok but %s did not grow", cell, in.grows)
		}
	}
	if got == "ok" && azAudited[op.field] != "" {
		x.checkAudited(t, cell, c, op.field, data, countsBefore, countsAfter)
	}
	if tg := in.target; tg != nil {
		rows := latchkeytest.MustQueryAll(t, x.db, `SELECT id FROM `+tg.table+` WHERE id = ?`, tg.id)
		if tg.col != "" {
			rows = latchkeytest.MustQueryAll(t, x.db, `SELECT `+tg.col+` FROM `+tg.table+` WHERE id = ?`, tg.id)
			want := tg.before
			if got == "ok" {
				want = tg.after
			}
			if len(rows) != 1 || rows[0][tg.col] != want {
				t.Errorf("%s: %s.%s %v, want %s", cell, tg.table, tg.col, rows, want)
			}
		} else if gone := len(rows) == 0; gone != (got == "ok") {
			t.Errorf("%s: outcome %s but target %s %s gone=%v", cell, got, tg.table, tg.id, gone)
		}
	}
	if got == "ok" && (strings.HasPrefix(op.field, "create_") && op.field != "create_tenant" || op.field == "rotate_api_key") {
		// What the caller made belongs to its tenant from now on.
		var made struct {
			ID     string `json:"id"`
			UserID string `json:"user_id"`
		}
		raw := data
		if op.field == "create_membership" { // a create_membership_payload
			var p struct{ Membership json.RawMessage }
			_ = json.Unmarshal(data, &p)
			raw = p.Membership
		}
		_ = json.Unmarshal(raw, &made)
		x.fixture(c.acting, made.ID)
		x.fixture(c.acting, made.UserID)
	}
	if got == "ok" && op.field == "create_service_account" {
		var sa struct {
			TenantID string `json:"tenant_id"`
		}
		_ = json.Unmarshal(data, &sa)
		if sa.TenantID != c.acting {
			t.Errorf("%s: service account created in %s, caller acts in %s", cell, sa.TenantID, c.acting)
		}
	}
}

// checkAudited checks that an allowed change wrote one audit event, with
// the caller as its actor, from the test's address, in the tenant whose
// admins should see it.
func (x *azWorld) checkAudited(t *testing.T, cell string, c *azCaller, field string, data json.RawMessage, before, after map[string]string) {
	t.Helper()
	if before["audit_events"] == after["audit_events"] {
		t.Errorf("%s: ok but no audit event (%s)", cell, after["audit_events"])
		return
	}
	evs := latchkeytest.MustQueryAll(t, x.db, `SELECT tenant_id, actor_user_id, action, client_addr, details FROM audit_events ORDER BY seq DESC LIMIT 1`)
	var n, m int
	fmt.Sscan(before["audit_events"], &n)
	fmt.Sscan(after["audit_events"], &m)
	if m-n != 1 {
		t.Errorf("%s: %d audit events, want 1: %v", cell, m-n, evs)
		return
	}
	ev := evs[0]
	wantTenant := c.acting
	if field == "create_tenant" {
		var tn struct{ ID string }
		_ = json.Unmarshal(data, &tn)
		wantTenant = tn.ID
	}
	if ev["tenant_id"] != wantTenant || ev["actor_user_id"] != c.user.ID || ev["client_addr"] != "127.0.0.1" || ev["action"] != string(azAudited[field]) {
		t.Errorf("%s: audit event %v, want %s in tenant %s by %s from 127.0.0.1", cell, ev, azAudited[field], wantTenant, c.user.ID)
	}
	if secretTextRE.MatchString(ev["details"]) {
		t.Errorf("%s: audit details hold a secret", cell)
	}
}

// newAZWorld starts the server and creates tenants A and B with their
// members, service accounts, keys and tokens, and the matrix's callers.
func newAZWorld(t *testing.T, engine string) *azWorld {
	t.Helper()
	x := &azWorld{clock: &azClock{}, fixtures: map[string]map[string]bool{}}
	var b [4]byte
	_, _ = rand.Read(b[:])
	x.tag = fmt.Sprintf("%x", b)
	x.s = MustRunMain(t, engine, func(m *main.Main) {
		m.Now = x.clock.Now
		m.BootstrapTenant = "Alpha Tenant " + x.tag
		m.BootstrapEmail = "alpha-admin-" + x.tag + "@example.com"
	})
	x.db = x.s.DB
	ctx := context.Background()

	var info authInfo
	x.s.MustDo(t, x.s.AdminKey, "", qAuthInfoTenant, nil, "auth_info", &info)
	x.tenantA = &latchkey.Tenant{ID: *info.TenantID}
	row := latchkeytest.MustQueryAll(t, x.db, `SELECT slug, name FROM tenants WHERE id = ?`, x.tenantA.ID)[0]
	x.tenantA.Slug, x.tenantA.Name = row["slug"], row["name"]
	x.adminA = x.mustUser(t, "alpha-admin-"+x.tag+"@example.com")
	A := x.tenantA.ID

	res, err := sqldb.NewBootstrapService(x.db).Bootstrap(ctx, latchkey.BootstrapInput{
		Email: "bravo-admin-" + x.tag + "@example.com", TenantName: "Bravo Tenant " + x.tag,
	})
	if err != nil {
		t.Fatal(err)
	}
	x.tenantB, x.adminB = res.Tenant, res.User
	B := x.tenantB.ID
	keyB := res.Secret

	x.adminA2 = latchkeytest.MustCreateMember(t, x.db, A, "alpha-admin2-"+x.tag+"@example.com", latchkey.RoleTenantAdmin)
	x.ro = latchkeytest.MustCreateMember(t, x.db, A, "alpha-readonly-"+x.tag+"@example.com", latchkey.RoleReadOnlyUser)
	x.user = latchkeytest.MustCreateMember(t, x.db, A, "alpha-user-"+x.tag+"@example.com", latchkey.RoleUser)
	x.victim = latchkeytest.MustCreateMember(t, x.db, A, "alpha-victim-"+x.tag+"@example.com", latchkey.RoleUser)
	x.dual = latchkeytest.MustCreateMember(t, x.db, A, "dual-"+x.tag+"@example.com", latchkey.RoleUser)
	latchkeytest.MustCreateMember(t, x.db, B, "dual-"+x.tag+"@example.com", latchkey.RoleReadOnlyUser)
	latchkeytest.MustCreateMember(t, x.db, B, "bravo-user-"+x.tag+"@example.com", latchkey.RoleUser)

	x.saUser = x.mustSA(t, A, "alpha-sa-user-"+x.tag, latchkey.RoleUser)
	x.saAdmin = x.mustSA(t, A, "alpha-sa-admin-"+x.tag, latchkey.RoleTenantAdmin)
	x.sa2 = x.mustSA(t, A, "alpha-sa-other-"+x.tag, latchkey.RoleUser)
	x.saB = x.mustSA(t, B, "bravo-sa-"+x.tag, latchkey.RoleUser)

	keyRO := x.mustKey(t, x.ro, A, latchkey.RoleReadOnlyUser, "")
	keyUser := x.mustKey(t, x.user, A, latchkey.RoleUser, "")
	keySA := x.mustKey(t, x.adminA, A, latchkey.RoleTenantAdmin, x.saUser.ID)
	keySAAdmin := x.mustKey(t, x.adminA, A, latchkey.RoleTenantAdmin, x.saAdmin.ID)
	keyDual := x.mustKey(t, x.dual, A, latchkey.RoleUser, "")
	x.mustKey(t, x.adminA, A, latchkey.RoleTenantAdmin, x.sa2.ID)
	x.mustKey(t, x.victim, A, latchkey.RoleUser, "")
	x.mustKey(t, x.adminB, B, latchkey.RoleTenantAdmin, x.saB.ID)
	x.mustToken(t, x.adminB, B, latchkey.RoleTenantAdmin, latchkey.TokenScopeRunner)
	tokU := x.mustToken(t, x.adminA, A, latchkey.RoleTenantAdmin, latchkey.TokenScopeUser)
	tokT := x.mustToken(t, x.adminA, A, latchkey.RoleTenantAdmin, latchkey.TokenScopeTenant)
	tokR := x.mustToken(t, x.adminA, A, latchkey.RoleTenantAdmin, latchkey.TokenScopeRunner)

	// The expired key: valid for an hour, then the clock moves past it.
	expiring := &latchkey.APIKey{Name: "alpha-expiring-" + x.tag, ExpiresAt: ptrTime(x.clock.Now().Add(time.Hour))}
	expired, err := sqldb.NewAPIKeyService(x.db).CreateAPIKey(x.ctxOf(x.adminA, A, latchkey.RoleTenantAdmin), expiring)
	if err != nil {
		t.Fatal(err)
	}
	x.s.MustDo(t, expired, "", qAuthInfoTenant, nil, "auth_info", nil)
	x.clock.Advance(time.Hour + time.Second)

	// The revoked key, revoked through the API.
	var rev struct{ ID, Key string }
	x.s.MustDo(t, x.s.AdminKey, "", qAZCreateKey, map[string]any{"input": map[string]any{"name": "alpha-revoked-" + x.tag}}, "create_api_key", &rev)
	x.s.MustDo(t, rev.Key, "", qAuthInfoTenant, nil, "auth_info", nil)
	var ok struct{ Success bool }
	x.s.MustDo(t, x.s.AdminKey, "", qRevokeKey, map[string]any{"input": map[string]any{"key_id": rev.ID}}, "delete_api_key", &ok)
	if !ok.Success {
		t.Fatal("revoke failed")
	}

	// An access token for A, minted after the clock moved.
	var pair tokenPair
	x.s.MustDo(t, keyDual, "", qSwitchTenant, map[string]any{"input": map[string]any{"tenant_id": A}}, "switch_tenant", &pair)

	bad, err := latchkey.NewSecret(rand.Reader, latchkey.PrefixUserKey)
	if err != nil {
		t.Fatal(err)
	}
	typo := []byte(x.s.AdminKey)
	typo[10] ^= 1
	if _, err := latchkey.ParseSecret(string(typo)); err == nil {
		t.Fatal("typo has a valid checksum")
	}

	saUser, saAdmin := latchkeytest.ServiceAccountUser(x.saUser), latchkeytest.ServiceAccountUser(x.saAdmin)
	notB := func() []string { return x.privB }
	notA := func() []string { return x.privA }
	neither := func() []string { return append(slices.Clone(x.privA), x.privB...) }
	dualView := func() []string { // dual belongs to B too: B's name is theirs to see
		return slices.DeleteFunc(slices.Clone(x.privB), func(s string) bool {
			return s == B || s == x.tenantB.Slug || s == x.tenantB.Name
		})
	}
	noOne := func(name, cred, tenant string) *azCaller {
		return &azCaller{name: name, cred: cred, tenant: tenant, owner: x.adminA, ownerTenant: A, ownerRole: latchkey.RoleTenantAdmin, private: neither}
	}
	human := func(name, cred string, u *latchkey.User, role latchkey.Role, private func() []string) *azCaller {
		return &azCaller{name: name, cred: cred, user: u, acting: A, role: role,
			owner: u, ownerTenant: A, ownerRole: role, private: private}
	}
	token := func(name, cred string, scope latchkey.TokenScope, role latchkey.Role) *azCaller {
		c := human(name, cred, x.adminA, role, notB)
		c.scope, c.ownerRole = scope, latchkey.RoleTenantAdmin
		return c
	}
	sa := func(name, cred string, u *latchkey.User, role latchkey.Role) *azCaller {
		c := human(name, cred, u, role, notB)
		c.isSA = true
		return c
	}
	adm := human("adm", x.s.AdminKey, x.adminA, latchkey.RoleTenantAdmin, notB)
	oth := &azCaller{name: "oth", cred: keyB, user: x.adminB, acting: B, role: latchkey.RoleTenantAdmin,
		owner: x.adminB, ownerTenant: B, ownerRole: latchkey.RoleTenantAdmin, private: notA}
	othA := &azCaller{name: "othA", cred: keyB, tenant: A, owner: x.adminB, ownerTenant: B, ownerRole: latchkey.RoleTenantAdmin, private: neither}
	jwt := human("jwt", pair.AccessToken, x.dual, latchkey.RoleUser, dualView)
	jwtB := &azCaller{name: "jwtB", cred: pair.AccessToken, tenant: B, owner: x.dual, ownerTenant: A, ownerRole: latchkey.RoleUser, private: neither}
	x.callers = []*azCaller{
		noOne("anon", "", ""),
		noOne("bad", bad, ""),
		noOne("typo", string(typo), ""),
		noOne("exp", expired, ""),
		noOne("rev", rev.Key, ""),
		human("ro", keyRO, x.ro, latchkey.RoleReadOnlyUser, notB),
		human("user", keyUser, x.user, latchkey.RoleUser, notB),
		adm,
		sa("sa", keySA, saUser, latchkey.RoleUser),
		sa("saA", keySAAdmin, saAdmin, latchkey.RoleTenantAdmin),
		oth,
		othA,
		token("tokU", tokU, latchkey.TokenScopeUser, latchkey.RoleTenantAdmin),
		token("tokT", tokT, latchkey.TokenScopeTenant, latchkey.RoleUser),
		token("tokR", tokR, latchkey.TokenScopeRunner, latchkey.RoleUser),
		jwt,
		jwtB,
	}
	for i, c := range x.callers {
		if c.name != azColumns[i] {
			t.Fatalf("caller %d is %s, column is %s", i, c.name, azColumns[i])
		}
	}
	return x
}

func ptrTime(t time.Time) *time.Time { return &t }

func (x *azWorld) callerNamed(name string) *azCaller {
	for _, c := range x.callers {
		if c.name == name {
			return c
		}
	}
	panic("no caller " + name)
}

func (x *azWorld) adminCaller() *azCaller { return x.callerNamed("adm") }

// name returns a unique, recognisable name for an object of tenant.
func (x *azWorld) name(prefix string) string {
	return fmt.Sprintf("%s-%s-%05d", prefix, x.tag, x.seq.Add(1))
}

func (x *azWorld) fixture(tenantID, id string) {
	if x.fixtures[tenantID] == nil {
		x.fixtures[tenantID] = map[string]bool{}
	}
	x.fixtures[tenantID][id] = true
}

func (x *azWorld) mustUser(t *testing.T, email string) *latchkey.User {
	t.Helper()
	rows := latchkeytest.MustQueryAll(t, x.db, `SELECT id FROM users WHERE email = ?`, email)
	if len(rows) != 1 {
		t.Fatalf("user %s: %v", email, rows)
	}
	return &latchkey.User{ID: rows[0]["id"], Kind: latchkey.UserKindHuman, Email: email}
}

// tenantsOf returns what `tenant` may list for c: the tenants its
// principal belongs to, or only the acting one for TENANT and RUNNER tokens.
func (x *azWorld) tenantsOf(t *testing.T, c *azCaller) []string {
	t.Helper()
	if c.scope == latchkey.TokenScopeTenant || c.scope == latchkey.TokenScopeRunner {
		return []string{c.acting}
	}
	var out []string
	for _, r := range latchkeytest.MustQueryAll(t, x.db, `SELECT tenant_id FROM memberships WHERE user_id = ?`, c.user.ID) {
		out = append(out, r["tenant_id"])
	}
	return out
}

// ctxOf is a context in which u acts in tenantID with role, for creating
// fixtures through the services.
func (x *azWorld) ctxOf(u *latchkey.User, tenantID string, role latchkey.Role) context.Context {
	return latchkeytest.AuthContext(context.Background(), u, tenantID, role)
}

func (x *azWorld) adminOf(tenantID string) *latchkey.User {
	if tenantID == x.tenantB.ID {
		return x.adminB
	}
	return x.adminA
}

func (x *azWorld) mustSA(t *testing.T, tenantID, name string, role latchkey.Role) *latchkey.ServiceAccount {
	t.Helper()
	sa := &latchkey.ServiceAccount{Name: name, Role: role}
	if err := sqldb.NewServiceAccountService(x.db).CreateServiceAccount(x.ctxOf(x.adminOf(tenantID), tenantID, latchkey.RoleTenantAdmin), sa); err != nil {
		t.Fatal(err)
	}
	x.fixture(tenantID, sa.ID)
	return sa
}

// mustKey creates a key as u (acting in tenantID with role) for u, or for
// the service account forID, and returns its text.
func (x *azWorld) mustKey(t *testing.T, u *latchkey.User, tenantID string, role latchkey.Role, forID string) string {
	t.Helper()
	_, secret := x.mustKeyID(t, u, tenantID, role, forID)
	return secret
}

func (x *azWorld) mustKeyID(t *testing.T, u *latchkey.User, tenantID string, role latchkey.Role, forID string) (id, secret string) {
	t.Helper()
	k := &latchkey.APIKey{Name: x.name(map[bool]string{true: "alpha-key", false: "bravo-key"}[tenantID == x.tenantA.ID]), UserID: forID}
	secret, err := sqldb.NewAPIKeyService(x.db).CreateAPIKey(x.ctxOf(u, tenantID, role), k)
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	x.fixture(tenantID, k.ID)
	return k.ID, secret
}

func (x *azWorld) mustToken(t *testing.T, u *latchkey.User, tenantID string, role latchkey.Role, scope latchkey.TokenScope) string {
	t.Helper()
	_, secret := x.mustTokenID(t, u, tenantID, role, scope)
	return secret
}

func (x *azWorld) mustTokenID(t *testing.T, u *latchkey.User, tenantID string, role latchkey.Role, scope latchkey.TokenScope) (id, secret string) {
	t.Helper()
	tok := &latchkey.APIToken{Name: x.name(map[bool]string{true: "alpha-token", false: "bravo-token"}[tenantID == x.tenantA.ID]), Scope: scope}
	secret, err := sqldb.NewAPITokenService(x.db).CreateAPIToken(x.ctxOf(u, tenantID, role), tok)
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	x.fixture(tenantID, tok.ID)
	return tok.ID, secret
}

// mustMember adds a new human to tenantID with role USER and returns the
// membership id.
func (x *azWorld) mustMember(t *testing.T, tenantID string) string {
	t.Helper()
	prefix := map[bool]string{true: "alpha-member", false: "bravo-member"}[tenantID == x.tenantA.ID]
	u := latchkeytest.MustCreateMember(t, x.db, tenantID, x.name(prefix)+"@example.com", latchkey.RoleUser)
	rows := latchkeytest.MustQueryAll(t, x.db, `SELECT id FROM memberships WHERE user_id = ? AND tenant_id = ?`, u.ID, tenantID)
	x.fixture(tenantID, u.ID)
	x.fixture(tenantID, rows[0]["id"])
	return rows[0]["id"]
}

// Row inputs.

func azVarsTenantA(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azInput{vars: map[string]any{"t": x.tenantA.ID}}
}

func azVarsAuditAction(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azInput{vars: map[string]any{"a": string(latchkey.AuditAPIKeyCreate)}}
}

// azAudited are the mutations that write exactly one audit event when they
// succeed (a delete: when it answers success: true).
var azAudited = map[string]latchkey.AuditAction{
	"create_api_key":         latchkey.AuditAPIKeyCreate,
	"delete_api_key":         latchkey.AuditAPIKeyDelete,
	"rotate_api_key":         latchkey.AuditAPIKeyRotate,
	"create_api_token":       latchkey.AuditAPITokenCreate,
	"delete_api_token":       latchkey.AuditAPITokenDelete,
	"create_service_account": latchkey.AuditServiceAccountCreate,
	"delete_service_account": latchkey.AuditServiceAccountDelete,
	"create_tenant":          latchkey.AuditTenantCreate,
	"create_membership":      latchkey.AuditMembershipCreate,
	"update_membership_role": latchkey.AuditMembershipUpdateRole,
	"delete_membership":      latchkey.AuditMembershipDelete,
}

func azCreateKeySelf(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azInput{vars: map[string]any{"input": map[string]any{"name": x.name("row-key")}}, grows: "api_keys"}
}

func azCreateKeySelfInA(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azInput{vars: map[string]any{"input": map[string]any{"name": x.name("row-key"), "default_tenant_id": x.tenantA.ID}}, grows: "api_keys"}
}

func azCreateKeyForSA(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azInput{vars: map[string]any{"input": map[string]any{"name": x.name("row-key"), "user_id": x.saUser.ID}}, grows: "api_keys"}
}

func azCreateKeyForHuman(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azInput{vars: map[string]any{"input": map[string]any{"name": x.name("row-key"), "user_id": x.victim.ID}}, grows: "api_keys"}
}

func azDeleteKey(id string) azInput {
	return azInput{vars: map[string]any{"input": map[string]any{"key_id": id}}, target: &azTarget{table: "api_keys", id: id}}
}

func azDeleteOwnKey(t *testing.T, x *azWorld, c *azCaller) azInput {
	var id string
	if c.isSA {
		id, _ = x.mustKeyID(t, x.adminA, x.tenantA.ID, latchkey.RoleTenantAdmin, c.user.ID)
	} else {
		id, _ = x.mustKeyID(t, c.owner, c.ownerTenant, c.ownerRole, "")
	}
	return azDeleteKey(id)
}

func azDeleteSAKeyA(t *testing.T, x *azWorld, c *azCaller) azInput {
	id, _ := x.mustKeyID(t, x.adminA, x.tenantA.ID, latchkey.RoleTenantAdmin, x.sa2.ID)
	return azDeleteKey(id)
}

func azDeleteHumanKey(t *testing.T, x *azWorld, c *azCaller) azInput {
	id, _ := x.mustKeyID(t, x.victim, x.tenantA.ID, latchkey.RoleUser, "")
	return azDeleteKey(id)
}

func azDeleteSAKeyB(t *testing.T, x *azWorld, c *azCaller) azInput {
	id, _ := x.mustKeyID(t, x.adminB, x.tenantB.ID, latchkey.RoleTenantAdmin, x.saB.ID)
	return azDeleteKey(id)
}

// azRotate rolls the key del would delete, with a grace period: allowed,
// it adds a key.
func azRotate(del func(t *testing.T, x *azWorld, c *azCaller) azInput) func(t *testing.T, x *azWorld, c *azCaller) azInput {
	return func(t *testing.T, x *azWorld, c *azCaller) azInput {
		in := del(t, x, c)
		in.vars["input"].(map[string]any)["old_key_expires_in_seconds"] = 3600
		return azInput{vars: in.vars, grows: "api_keys"}
	}
}

func azCreateSAInA(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azInput{vars: map[string]any{"input": map[string]any{"name": x.name("row-sa"), "tenant_id": x.tenantA.ID}}, grows: "users"}
}

func azDeleteSA(id string) azInput {
	return azInput{vars: map[string]any{"input": map[string]any{"service_account_id": id}}, target: &azTarget{table: "users", id: id}}
}

func azDeleteSAOfA(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azDeleteSA(x.mustSA(t, x.tenantA.ID, x.name("alpha-sa"), latchkey.RoleUser).ID)
}

func azDeleteSAOfB(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azDeleteSA(x.mustSA(t, x.tenantB.ID, x.name("bravo-sa"), latchkey.RoleUser).ID)
}

func azCreateTenant(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azInput{vars: map[string]any{"input": map[string]any{"name": x.name("Row Tenant")}}, grows: "tenants"}
}

func azUnknownInvitation(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azInput{vars: map[string]any{"input": map[string]any{"invitation_id": "00000000-0000-4000-8000-000000000007"}}}
}

func azCreateMembershipInA(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azInput{vars: map[string]any{"input": map[string]any{"tenant_id": x.tenantA.ID, "email": x.name("row-member") + "@example.com", "role": "USER"}}, grows: "memberships"}
}

func azUpdateRole(id string) azInput {
	return azInput{vars: map[string]any{"input": map[string]any{"membership_id": id, "role": "READ_ONLY_USER"}},
		target: &azTarget{table: "memberships", id: id, col: "role", before: "USER", after: "READ_ONLY_USER"}}
}

func azUpdateRoleInA(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azUpdateRole(x.mustMember(t, x.tenantA.ID))
}

func azUpdateRoleInB(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azUpdateRole(x.mustMember(t, x.tenantB.ID))
}

func azDeleteMembership(id string) azInput {
	return azInput{vars: map[string]any{"input": map[string]any{"membership_id": id}}, target: &azTarget{table: "memberships", id: id}}
}

func azDeleteMembershipInA(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azDeleteMembership(x.mustMember(t, x.tenantA.ID))
}

func azDeleteMembershipInB(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azDeleteMembership(x.mustMember(t, x.tenantB.ID))
}

// switch_tenant writes nothing (the refresh token describes itself), so
// no table grows; an ok cell is checked by its answer.
func azSwitchToA(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azInput{vars: map[string]any{"input": map[string]any{"tenant_id": x.tenantA.ID}}}
}

func azSwitchToB(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azInput{vars: map[string]any{"input": map[string]any{"tenant_id": x.tenantB.ID}}}
}

func azSwitchToCurrent(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azInput{vars: map[string]any{"input": map[string]any{"tenant_id": nil}}}
}

func azRefresh(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azInput{vars: map[string]any{"input": map[string]any{"access_token": x.callerNamed("jwt").cred}}}
}

func azCreateToken(scope string) func(t *testing.T, x *azWorld, c *azCaller) azInput {
	return func(t *testing.T, x *azWorld, c *azCaller) azInput {
		return azInput{vars: map[string]any{"input": map[string]any{"name": x.name("row-token"), "scope": scope}}, grows: "api_tokens"}
	}
}

func azDeleteToken(id string) azInput {
	return azInput{vars: map[string]any{"input": map[string]any{"token_id": id}}, target: &azTarget{table: "api_tokens", id: id}}
}

func azDeleteOwnToken(t *testing.T, x *azWorld, c *azCaller) azInput {
	owner, tenant, role := c.owner, c.ownerTenant, c.ownerRole
	if c.isSA { // service accounts own no tokens
		owner, tenant, role = x.adminA, x.tenantA.ID, latchkey.RoleTenantAdmin
	}
	id, _ := x.mustTokenID(t, owner, tenant, role, latchkey.TokenScopeUser)
	return azDeleteToken(id)
}

func azDeleteTenantTokenA(t *testing.T, x *azWorld, c *azCaller) azInput {
	id, _ := x.mustTokenID(t, x.adminA2, x.tenantA.ID, latchkey.RoleTenantAdmin, latchkey.TokenScopeRunner)
	return azDeleteToken(id)
}

func azDeleteHumanToken(t *testing.T, x *azWorld, c *azCaller) azInput {
	id, _ := x.mustTokenID(t, x.victim, x.tenantA.ID, latchkey.RoleUser, latchkey.TokenScopeUser)
	return azDeleteToken(id)
}

func azDeleteTenantTokenB(t *testing.T, x *azWorld, c *azCaller) azInput {
	id, _ := x.mustTokenID(t, x.adminB, x.tenantB.ID, latchkey.RoleTenantAdmin, latchkey.TokenScopeRunner)
	return azDeleteToken(id)
}

func azRegisterAgentInA(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azInput{vars: map[string]any{"input": map[string]any{"type": "LocalAgent", "name": x.name("row-agent"), "labels": []string{"az"}, "tenant_id": x.tenantA.ID}}, grows: "agents"}
}

func azVarsQueueOfA(t *testing.T, x *azWorld, c *azCaller) azInput {
	x.mustRun(t, x.tenantA.ID)
	return azInput{vars: map[string]any{"input": map[string]any{"tenant_id": x.tenantA.ID, "labels": []string{}}}}
}

func azCreateRun(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azInput{vars: map[string]any{"input": map[string]any{"name": x.name("row-run"), "command": []string{"true"}}}, grows: "flow_runs"}
}

func azSetState(id string) azInput {
	return azInput{vars: map[string]any{"input": map[string]any{"states": []any{map[string]any{
		"flow_run_id": id, "version": 1, "state": map[string]any{"type": "Running", "message": "az"}}}}},
		target: &azTarget{table: "flow_runs", id: id, col: "state", before: "Scheduled", after: "Running"}}
}

func azSetStateA(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azSetState(x.mustRun(t, x.tenantA.ID))
}

func azSetStateB(t *testing.T, x *azWorld, c *azCaller) azInput {
	return azSetState(x.mustRun(t, x.tenantB.ID))
}

func azWriteLogsA(t *testing.T, x *azWorld, c *azCaller) azInput {
	id := x.mustRun(t, x.tenantA.ID)
	return azInput{vars: map[string]any{"input": map[string]any{"logs": []any{map[string]any{
		"flow_run_id": id, "message": x.name("row-log"), "level": "INFO"}}}}, grows: "flow_run_logs"}
}

func azHeartbeatA(t *testing.T, x *azWorld, c *azCaller) azInput {
	id := x.mustRun(t, x.tenantA.ID)
	return azInput{vars: map[string]any{"input": map[string]any{"flow_run_id": id}},
		target: &azTarget{table: "flow_runs", id: id, col: "state", before: "Scheduled", after: "Scheduled"}}
}

// mustRun creates a Scheduled flow run in tenantID as its admin.
func (x *azWorld) mustRun(t *testing.T, tenantID string) string {
	t.Helper()
	prefix := map[bool]string{true: "alpha-run", false: "bravo-run"}[tenantID == x.tenantA.ID]
	run := &latchkey.FlowRun{Name: x.name(prefix), Command: []string{"true"}}
	if err := sqldb.NewFlowRunService(x.db).CreateFlowRun(x.ctxOf(x.adminOf(tenantID), tenantID, latchkey.RoleTenantAdmin), run); err != nil {
		t.Fatal(err)
	}
	x.fixture(tenantID, run.ID)
	return run.ID
}

// counts returns the row count of every table a mutation could touch.
func (x *azWorld) counts(t *testing.T) map[string]string {
	t.Helper()
	return latchkeytest.MustQueryAll(t, x.db, `SELECT
		(SELECT COUNT(*) FROM tenants) AS tenants,
		(SELECT COUNT(*) FROM users) AS users,
		(SELECT COUNT(*) FROM memberships) AS memberships,
		(SELECT COUNT(*) FROM api_keys) AS api_keys,
		(SELECT COUNT(*) FROM api_tokens) AS api_tokens,
		(SELECT COUNT(*) FROM refresh_tokens) AS refresh_tokens,
		(SELECT COUNT(*) FROM signing_keys) AS signing_keys,
		(SELECT COUNT(*) FROM agents) AS agents,
		(SELECT COUNT(*) FROM flow_runs) AS flow_runs,
		(SELECT COUNT(*) FROM flow_run_logs) AS flow_run_logs,
		(SELECT COUNT(*) FROM audit_events) AS audit_events`)[0]
}

// refreshPrivate recomputes the strings that only members of A (resp. B)
// may see: tenant identity, the ids, emails and names of members that do
// not belong to the other tenant, memberships, and keys and tokens.
func (x *azWorld) refreshPrivate(t *testing.T) {
	t.Helper()
	a, b := x.private(t, x.tenantA, x.tenantB.ID), x.private(t, x.tenantB, x.tenantA.ID)
	// A string both tenants have (a key name such as "bootstrap admin
	// key") is nobody's secret.
	x.privA = slices.DeleteFunc(slices.Clone(a), func(s string) bool { return slices.Contains(b, s) })
	x.privB = slices.DeleteFunc(b, func(s string) bool { return slices.Contains(a, s) })
}

func (x *azWorld) private(t *testing.T, tn *latchkey.Tenant, other string) []string {
	t.Helper()
	out := []string{tn.ID, tn.Slug, tn.Name}
	only := `SELECT user_id FROM memberships WHERE tenant_id = ? AND user_id NOT IN (SELECT user_id FROM memberships WHERE tenant_id = ?)`
	for _, q := range []string{
		`SELECT id, email, name FROM users WHERE id IN (` + only + `)`,
		`SELECT id, name FROM api_keys WHERE user_id IN (` + only + `)`,
		`SELECT id, name FROM api_tokens WHERE user_id IN (` + only + `)`,
	} {
		for _, r := range latchkeytest.MustQueryAll(t, x.db, q, tn.ID, other) {
			for _, v := range r {
				out = append(out, v)
			}
		}
	}
	for _, r := range latchkeytest.MustQueryAll(t, x.db, `SELECT id FROM memberships WHERE tenant_id = ?`, tn.ID) {
		out = append(out, r["id"])
	}
	for _, q := range []string{
		`SELECT id, name FROM api_tokens WHERE tenant_id = ?`,
		`SELECT id, name FROM agents WHERE tenant_id = ?`,
		`SELECT id, name FROM flow_runs WHERE tenant_id = ?`,
		`SELECT message AS id, name FROM flow_run_logs WHERE tenant_id = ?`,
	} {
		for _, r := range latchkeytest.MustQueryAll(t, x.db, q, tn.ID) {
			out = append(out, r["id"], r["name"])
		}
	}
	return slices.DeleteFunc(out, func(s string) bool { return len(s) < 8 })
}

// checkNoLeak fails if the response shows c anything on its private list
// that c did not send itself.
func (x *azWorld) checkNoLeak(t *testing.T, cell string, c *azCaller, query string, vars map[string]any, resp string) {
	t.Helper()
	sent, _ := json.Marshal(vars)
	request := query + string(sent) + c.tenant
	for _, s := range c.private() {
		if strings.Contains(resp, s) && !strings.Contains(request, s) {
			t.Errorf("%s: response shows %q, which the caller may not see: %s", cell, s, resp)
		}
	}
	// Errors never echo the credential.
	if c.cred != "" && strings.Contains(resp, c.cred) && !strings.Contains(request, c.cred) {
		t.Errorf("%s: response echoes the credential: %s", cell, resp)
	}
}

// checkVisible checks every row a successful query returns against what
// the caller may see.
func (x *azWorld) checkVisible(t *testing.T, cell string, c *azCaller, field string, data json.RawMessage) {
	t.Helper()
	var rows []map[string]any
	if err := json.Unmarshal(data, &rows); err != nil {
		return // not a list (hello, auth_info)
	}
	str := func(r map[string]any, k string) string { s, _ := r[k].(string); return s }
	isAdmin := c.role == latchkey.RoleTenantAdmin
	saOfActing := func(id string) bool {
		return len(latchkeytest.MustQueryAll(t, x.db, `SELECT id FROM users WHERE id = ? AND kind = ? AND tenant_id = ?`,
			id, string(latchkey.UserKindServiceAccount), c.acting)) == 1
	}
	for _, r := range rows {
		ok := true
		switch field {
		case "tenant":
			ok = slices.Contains(x.tenantsOf(t, c), str(r, "id"))
		case "user":
			ok = len(rows) == 1 && str(r, "id") == c.user.ID
		case "auth_api_key":
			// Service accounts see their own keys only, whatever their role.
			ok = str(r, "user_id") == c.user.ID || isAdmin && !c.isSA && saOfActing(str(r, "user_id"))
		case "api_token":
			ok = str(r, "user_id") == c.user.ID ||
				isAdmin && str(r, "tenant_id") == c.acting && (str(r, "scope") == "TENANT" || str(r, "scope") == "RUNNER")
		case "service_account":
			ok = str(r, "tenant_id") == c.acting
			if keys, _ := r["api_keys"].([]any); ok {
				for _, k := range keys {
					ok = ok && str(k.(map[string]any), "user_id") == str(r, "id")
				}
			}
		case "membership":
			ok = str(r, "tenant_id") == c.acting && (isAdmin && !c.isSA || str(r, "user_id") == c.user.ID)
		case "agent", "flow_run", "audit_event":
			ok = str(r, "tenant_id") == c.acting
		}
		if !ok {
			t.Errorf("%s: row the caller may not see: %v", cell, r)
		}
	}
	// The caller's own rows are there.
	switch field {
	case "user":
		if len(rows) != 1 {
			t.Errorf("%s: user returned %d rows", cell, len(rows))
		}
	case "membership", "tenant", "audit_event":
		if len(rows) == 0 && !strings.Contains(cell, " of A") && !strings.Contains(cell, "where id = A") {
			t.Errorf("%s: no rows", cell)
		}
	}
}

// snapshot returns, as the admin of tenantID sees them through the API,
// the tenant, its memberships, service accounts, keys and tokens, keyed by
// id. Fields that change with use (last_used_at) are left out.
func (x *azWorld) snapshot(t *testing.T, admin *azCaller, tenantID string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, q := range []struct{ field, query string }{
		{"tenant", `query($t: uuid) { tenant(where: {id: {_eq: $t}}) { id slug name created_at } }`},
		{"membership", `query { membership { id tenant_id user_id role created_at user { id email name kind } } }`},
		{"service_account", `query { service_account { id name role tenant_id created_by_user_id created_at } }`},
		{"auth_api_key", `query { auth_api_key { id name user_id default_tenant_id created_by_user_id expires_at created_at } }`},
		{"api_token", `query { api_token { id name scope tenant_id user_id created_at } }`},
	} {
		var rows []map[string]any
		x.s.MustDo(t, admin.cred, tenantID, q.query, map[string]any{"t": tenantID}, q.field, &rows)
		for _, r := range rows {
			b, _ := json.Marshal(r)
			out[q.field+" "+r["id"].(string)] = string(b)
		}
	}
	return out
}

// checkUnchanged compares each tenant's state after the matrix with before:
// everything that was there is there unchanged, and anything new is an
// object the test made for that tenant (a fixture, or the result of a
// create the tenant's own members were allowed to make).
func (x *azWorld) checkUnchanged(t *testing.T, before map[string]map[string]string) {
	t.Helper()
	admins := map[string]*azCaller{x.tenantA.ID: x.adminCaller(), x.tenantB.ID: x.callerNamed("oth")}
	for tenantID, was := range before {
		now := x.snapshot(t, admins[tenantID], tenantID)
		keys := slices.Sorted(maps.Keys(was))
		for _, k := range keys {
			if now[k] != was[k] {
				t.Errorf("tenant %s: %s changed:\nbefore %s\nafter  %s", tenantID, k, was[k], now[k])
			}
		}
		for _, k := range slices.Sorted(maps.Keys(now)) {
			if _, ok := was[k]; ok {
				continue
			}
			var r struct {
				UserID string `json:"user_id"`
			}
			_ = json.Unmarshal([]byte(now[k]), &r)
			kind, id, _ := strings.Cut(k, " ")
			if !x.fixtures[tenantID][id] && !(kind == "membership" && x.fixtures[tenantID][r.UserID]) {
				t.Errorf("tenant %s: %s appeared, made by nothing the matrix allowed: %s", tenantID, k, now[k])
			}
		}
		if len(now) <= len(was) {
			t.Errorf("tenant %s: nothing new after the matrix (%d entries): the check checks nothing", tenantID, len(now))
		}
	}
}

// TestAuthzMatrix_CoversSchema checks that every root field of the schema
// has a row in azOps or is listed in azPendingFields, so that a new
// operation cannot escape the matrix.
func TestAuthzMatrix_CoversSchema(t *testing.T) {
	t.Parallel()
	s := MustRunMain(t, "sqlite")
	var schema struct {
		Query    struct{ Fields []struct{ Name string } } `json:"queryType"`
		Mutation struct{ Fields []struct{ Name string } } `json:"mutationType"`
	}
	s.MustDo(t, s.AdminKey, "", `query { __schema { queryType { fields { name } } mutationType { fields { name } } } }`, nil, "__schema", &schema)
	covered := map[string]bool{}
	for _, op := range azOps {
		covered[op.field] = true
	}
	n := 0
	for _, f := range append(schema.Query.Fields, schema.Mutation.Fields...) {
		n++
		if !covered[f.Name] && !azPendingFields[f.Name] {
			t.Errorf("root field %s has no row in the authorization matrix (azOps in authz_matrix_test.go)", f.Name)
		}
	}
	if n < 20 {
		t.Fatalf("only %d root fields: %+v", n, schema)
	}
}
