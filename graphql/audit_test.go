package graphql_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/mock"
)

// withAudit gives e an audit service and rebuilds its handler.
func (e *Env) withAudit(fn func(ctx context.Context, f latchkey.AuditFilter) ([]*latchkey.AuditEvent, int, error)) {
	e.Server.Audit = &mock.AuditService{FindAuditEventsFn: fn}
	e.SetHandler(e.Server.Handler())
}

const qAuditEvents = `query($w: audit_event_bool_exp, $o: [audit_event_order_by!], $l: Int, $off: Int) {
  audit_event(where: $w, order_by: $o, limit: $l, offset: $off) {
    id tenant_id action actor_user_id actor_kind actor_credential_id target_type target_id details client_addr user_agent created_at
  }
}`

func TestAuditEvent_Query(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var got latchkey.AuditFilter
	e.withAudit(func(ctx context.Context, f latchkey.AuditFilter) ([]*latchkey.AuditEvent, int, error) {
		got = f
		return []*latchkey.AuditEvent{
			{ID: "aaaaaaaa-0000-0000-0000-000000000001", TenantID: tenantOneID, ActorUserID: userID, ActorKind: latchkey.CredentialAPIKey,
				ActorCredentialID: keyID, Action: latchkey.AuditAPIKeyCreate, TargetType: latchkey.AuditTargetAPIKey, TargetID: keyID,
				Details: map[string]string{"name": "ci"}, ClientAddr: "203.0.113.7", UserAgent: "prefect/1.4", CreatedAt: created},
			{ID: "aaaaaaaa-0000-0000-0000-000000000002", TenantID: tenantOneID, Action: latchkey.AuditTenantCreate,
				TargetType: latchkey.AuditTargetTenant, TargetID: tenantOneID, ClientAddr: "local", CreatedAt: created},
		}, 2, nil
	})
	r := e.Query(t, qAuditEvents, map[string]any{
		"w": map[string]any{
			"action":        map[string]any{"_eq": "api_key.create"},
			"target_id":     map[string]any{"_eq": strings.ToUpper(keyID)},
			"actor_user_id": map[string]any{"_eq": userID},
		},
		"o": map[string]any{"created_at": "asc"},
		"l": 10, "off": 5,
	})
	var data struct {
		AuditEvent []map[string]any `json:"audit_event"`
	}
	r.MustData(t, &data)
	if got.Action == nil || *got.Action != latchkey.AuditAPIKeyCreate || got.TargetID == nil || *got.TargetID != keyID ||
		got.ActorUserID == nil || *got.ActorUserID != userID || got.Limit != 10 || got.Offset != 5 ||
		len(got.OrderBy) != 1 || got.OrderBy[0] != (latchkey.SortOrder{Field: "created_at"}) {
		t.Fatalf("filter=%+v", got)
	}
	if len(data.AuditEvent) != 2 {
		t.Fatalf("events=%v", data.AuditEvent)
	}
	first, _ := json.Marshal(data.AuditEvent[0])
	want := `{"action":"api_key.create","actor_credential_id":"44444444-4444-4444-4444-444444444444","actor_kind":"api_key","actor_user_id":"33333333-3333-3333-3333-333333333333","client_addr":"203.0.113.7","created_at":"2022-02-23T12:00:00+00:00","details":{"name":"ci"},"id":"aaaaaaaa-0000-0000-0000-000000000001","target_id":"44444444-4444-4444-4444-444444444444","target_type":"api_key","tenant_id":"11111111-1111-1111-1111-111111111111","user_agent":"prefect/1.4"}`
	if string(first) != want {
		t.Errorf("event=%s\nwant  %s", first, want)
	}
	second := data.AuditEvent[1]
	if second["actor_user_id"] != nil || second["actor_credential_id"] != nil || second["actor_kind"] != "" || second["client_addr"] != "local" {
		t.Errorf("operator event=%v", second)
	}
	if d, ok := second["details"].(map[string]any); !ok || len(d) != 0 {
		t.Errorf("empty details=%#v, want {}", second["details"])
	}
}

// Conditions the store cannot answer are refused unless the where names the
// event by id; they used to be checked here over every event of the tenant.
func TestAuditEvent_InMemoryConditionsAndErrors(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	calls := 0
	e.withAudit(func(ctx context.Context, f latchkey.AuditFilter) ([]*latchkey.AuditEvent, int, error) {
		calls++
		if f.Limit != 0 || f.Offset != 0 || f.Action != nil || f.ID == nil {
			t.Errorf("with conditions left in memory the store must be asked for the named event: %+v", f)
		}
		return []*latchkey.AuditEvent{
			{ID: "aaaaaaaa-0000-0000-0000-000000000002", Action: latchkey.AuditAPIKeyDelete, TargetID: keyID, CreatedAt: created},
		}, 1, nil
	})
	r := e.Query(t, `query { audit_event(where: {action: {_neq: "api_key.create"}}, limit: 1) { id action } }`, nil)
	r.MustError(t, "BAD_USER_INPUT", true)
	if msg := r.Errors[0].Message; msg != "audit_event: filtering by action _neq is not supported. Filter by id, action, target_type, target_id and actor_user_id (_eq), or name the rows with id: {_eq: ...} or id: {_in: [...]} (at most 1000 ids) alongside it." || calls != 0 {
		t.Fatalf("message %q after %d calls", msg, calls)
	}
	var data struct {
		AuditEvent []struct{ ID, Action string } `json:"audit_event"`
	}
	for _, tc := range []struct {
		neq  string
		want int
	}{{"api_key.create", 1}, {"api_key.delete", 0}} {
		r = e.Query(t, `query { audit_event(where: {id: {_eq: "aaaaaaaa-0000-0000-0000-000000000002"}, action: {_neq: "`+tc.neq+`"}}, limit: 1) { id action } }`, nil)
		r.MustData(t, &data)
		if len(data.AuditEvent) != tc.want {
			t.Fatalf("_neq %s: events=%+v (calls %d)", tc.neq, data.AuditEvent, calls)
		}
	}
	e.Query(t, `query { audit_event(where: {_or: [{action: {_eq: "x"}}]}) { id } }`, nil).MustError(t, "BAD_USER_INPUT", true)

	e.withAudit(func(ctx context.Context, f latchkey.AuditFilter) ([]*latchkey.AuditEvent, int, error) {
		return nil, 0, latchkey.Errorf(latchkey.EFORBIDDEN, "Only a tenant admin may do that.")
	})
	e.Query(t, `query { audit_event { id } }`, nil).MustError(t, "FORBIDDEN", true)
	// Anonymous callers never reach the service.
	e.QueryAs(t, "", nil, `query { audit_event { id } }`, nil).MustError(t, "UNAUTHENTICATED", true)
}

// A refused refresh token counts against the client like a refused
// bearer credential (the middleware counts those; see package http).
func TestServer_RefreshFailuresCount(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var fails []string
	e.Server.Failures = failureFunc(func(addr, credential string) { fails = append(fails, addr+" "+credential) })
	e.SetHandler(e.Server.Handler())
	e.Auth.RefreshAccessTokenFn = func(ctx context.Context, refreshToken, accessToken string) (*latchkey.AccessToken, error) {
		return nil, latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Invalid refresh token.")
	}
	e.QueryAs(t, refreshTok, nil, `mutation { refresh_token(input: {access_token: "x.y.z"}) { access_token } }`, nil).MustError(t, "UNAUTHENTICATED", false)
	if len(fails) != 1 || fails[0] != "192.0.2.1 "+refreshTok {
		t.Fatalf("failures=%q", fails)
	}
	// An internal error is no failed attempt.
	e.Auth.RefreshAccessTokenFn = func(ctx context.Context, refreshToken, accessToken string) (*latchkey.AccessToken, error) {
		return nil, context.DeadlineExceeded
	}
	e.QueryAs(t, refreshTok, nil, `mutation { refresh_token(input: {access_token: "x.y.z"}) { access_token } }`, nil).MustError(t, "INTERNAL_SERVER_ERROR", false)
	if len(fails) != 1 {
		t.Fatalf("failures=%q", fails)
	}
}

type failureFunc func(addr, credential string)

func (f failureFunc) FailCredential(addr, credential string) { f(addr, credential) }
