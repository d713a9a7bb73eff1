package graphql_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/mock"
	"github.com/latchkey/latchkey/ratelimit"
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

func TestServer_ClientInfo(t *testing.T) {
	for _, tt := range []struct {
		name    string
		trust   bool
		headers map[string]string
		want    latchkey.ClientInfo
	}{
		{"connection", false, map[string]string{"User-Agent": "prefect/1.4.1"}, latchkey.ClientInfo{Addr: "192.0.2.1", UserAgent: "prefect/1.4.1"}},
		{"untrusted proxy header", false, map[string]string{"X-Forwarded-For": "198.51.100.9"}, latchkey.ClientInfo{Addr: "192.0.2.1"}},
		{"trusted proxy header", true, map[string]string{"X-Forwarded-For": " 198.51.100.9 , 10.0.0.1"}, latchkey.ClientInfo{Addr: "198.51.100.9"}},
		{"trusted, ipv6", true, map[string]string{"X-Forwarded-For": "[2001:db8::1], 10.0.0.1"}, latchkey.ClientInfo{Addr: "2001:db8::1"}},
		{"trusted, no header", true, nil, latchkey.ClientInfo{Addr: "192.0.2.1"}},
		{"trusted, with port", true, map[string]string{"X-Forwarded-For": "[2001:db8::2]:4711"}, latchkey.ClientInfo{Addr: "2001:db8::2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := MustNewEnv(t)
			e.Server.TrustProxyHeaders = tt.trust
			var got latchkey.ClientInfo
			e.withAudit(func(ctx context.Context, f latchkey.AuditFilter) ([]*latchkey.AuditEvent, int, error) {
				got = latchkey.ClientInfoFromContext(ctx)
				return nil, 0, nil
			})
			h := map[string]string{"User-Agent": ""}
			for k, v := range tt.headers {
				h[k] = v
			}
			var data any
			e.QueryAs(t, goodKey, h, `query { audit_event { id } }`, nil).MustData(t, &data)
			if got != tt.want {
				t.Errorf("client=%+v, want %+v", got, tt.want)
			}
		})
	}
}

// fakeLimiter records what the handler asks and refuses what it is told to.
type fakeLimiter struct {
	mu      sync.Mutex
	checks  []string
	fails   []string
	blocked map[string]bool // by credential
}

func (l *fakeLimiter) CheckCredential(addr, credential string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checks = append(l.checks, addr+" "+credential)
	if l.blocked[credential] {
		return latchkey.Errorf(latchkey.ERATELIMIT, "Too many failed attempts; try again later.")
	}
	return nil
}

func (l *fakeLimiter) FailCredential(addr, credential string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fails = append(l.fails, addr+" "+credential)
}

func TestServer_Limiter(t *testing.T) {
	e := MustNewEnv(t)
	lim := &fakeLimiter{blocked: map[string]bool{runnerToken: true}}
	e.Server.Limiter = lim
	e.SetHandler(e.Server.Handler())
	authCalls := 0
	authenticate := e.Auth.AuthenticateFn
	e.Auth.AuthenticateFn = func(ctx context.Context, credential, tenantID string) (*latchkey.Auth, error) {
		authCalls++
		return authenticate(ctx, credential, tenantID)
	}
	const q = `query { auth_info { user_id } }`
	var data any

	// A success: checked, not counted.
	e.Query(t, q, nil).MustData(t, &data)
	// Anonymous: no attempt at all.
	e.QueryAs(t, "", nil, `query { hello }`, nil).MustData(t, &data)
	if want := []string{"192.0.2.1 " + goodKey}; strings.Join(lim.checks, "|") != strings.Join(want, "|") || len(lim.fails) != 0 {
		t.Fatalf("checks=%v fails=%v", lim.checks, lim.fails)
	}
	// A failure counts, with the credential (the limiter keeps its prefix only).
	bad := "lku_" + strings.Repeat("b", 38)
	e.QueryAs(t, bad, nil, q, nil).MustError(t, "UNAUTHENTICATED", true)
	// So does a bad tenant header.
	e.QueryAs(t, goodKey, map[string]string{"X-PREFECT-TENANT-ID": "nope"}, q, nil).MustError(t, "UNAUTHENTICATED", true)
	if want := []string{"192.0.2.1 " + bad, "192.0.2.1 " + goodKey}; strings.Join(lim.fails, "|") != strings.Join(want, "|") {
		t.Fatalf("fails=%v, want %v", lim.fails, want)
	}
	// Over the limit: refused unchecked, as an ordinary authentication
	// failure with HTTP 200, never 429.
	before := authCalls
	r := e.QueryAs(t, runnerToken, nil, q, nil)
	r.MustError(t, "UNAUTHENTICATED", true)
	if r.Errors[0].Message != "Too many failed attempts; try again later." || authCalls != before {
		t.Fatalf("refusal=%s (authenticate called %d times)", r.Body, authCalls-before)
	}
	// An internal error is no failed attempt.
	e.Auth.AuthenticateFn = func(ctx context.Context, credential, tenantID string) (*latchkey.Auth, error) {
		return nil, context.DeadlineExceeded
	}
	n := len(lim.fails)
	e.Query(t, q, nil).MustError(t, "INTERNAL_SERVER_ERROR", true)
	if len(lim.fails) != n {
		t.Fatal("an internal error counted as a failed attempt")
	}
	// A refused refresh token counts too.
	e.Auth.RefreshAccessTokenFn = func(ctx context.Context, refreshToken, accessToken string) (*latchkey.AccessToken, error) {
		return nil, latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Invalid refresh token.")
	}
	e.QueryAs(t, refreshTok, nil, `mutation { refresh_token(input: {access_token: "x.y.z"}) { access_token } }`, nil).MustError(t, "UNAUTHENTICATED", false)
	if got := lim.fails[len(lim.fails)-1]; got != "192.0.2.1 "+refreshTok {
		t.Fatalf("last failure=%q", got)
	}
}

// TestServer_LimiterGuard runs the real limiter: after its budget of
// failures an address is refused even with a good key, and a minute later
// it is let in again.
func TestServer_LimiterGuard(t *testing.T) {
	e := MustNewEnv(t)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	e.Server.Limiter = &ratelimit.Guard{ByAddr: ratelimit.NewLimiter(3, 3, 0, clock), ByKey: ratelimit.NewLimiter(10, 10, 0, clock)}
	e.SetHandler(e.Server.Handler())
	const q = `query { auth_info { user_id } }`
	var data any
	for i := range 3 {
		e.QueryAs(t, "lku_"+strings.Repeat(string(rune('a'+i)), 38), nil, q, nil).MustError(t, "UNAUTHENTICATED", true)
	}
	r := e.Query(t, q, nil)
	r.MustError(t, "UNAUTHENTICATED", true)
	if r.Status != http.StatusOK || !strings.Contains(r.Body, "Too many failed attempts") {
		t.Fatalf("4th attempt: %d %s", r.Status, r.Body)
	}
	now = now.Add(time.Minute)
	e.Query(t, q, nil).MustData(t, &data)
}
