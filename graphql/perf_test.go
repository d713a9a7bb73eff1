package graphql_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/latchkey/latchkey"
)

// TestHandler_RefreshRoutingPerOperation checks that the handler's memory
// of which operations are refresh_token mutations is keyed by operation
// name too: one document, two operations, each routed its own way however
// often and in whatever order they come.
func TestHandler_RefreshRoutingPerOperation(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var refreshes, switches atomic.Int64
	e.Auth.RefreshAccessTokenFn = func(ctx context.Context, refresh, access string) (*latchkey.AccessToken, error) {
		if refresh != refreshTok {
			t.Errorf("refresh token %q", refresh)
		}
		refreshes.Add(1)
		return &latchkey.AccessToken{AccessToken: "eyJnew.e30.sig", ExpiresAt: created, RefreshToken: "lkr_next"}, nil
	}
	e.Auth.SwitchTenantFn = func(ctx context.Context, tenantID string) (*latchkey.AccessToken, error) {
		if a := latchkey.AuthFromContext(ctx); a == nil || a.APIKeyID != keyID {
			t.Errorf("switch_tenant caller %+v", a)
		}
		switches.Add(1)
		return &latchkey.AccessToken{AccessToken: "eyJsw.e30.sig", ExpiresAt: created, RefreshToken: "lkr_sw"}, nil
	}
	doc := `mutation Refresh($r: refresh_token_input!) { refresh_token(input: $r) { access_token } }
mutation Switch($s: switch_tenant_input!) { switch_tenant(input: $s) { refresh_token } }`
	post := func(op, cred string, vars map[string]any) *Response {
		vb, _ := json.Marshal(vars)
		body, _ := json.Marshal(map[string]any{"query": doc, "operationName": op, "variables": string(vb)})
		return e.Post(t, string(body), map[string]string{"Authorization": "Bearer " + cred})
	}
	for i := range 3 {
		var data map[string]map[string]string
		post("Refresh", refreshTok, map[string]any{"r": map[string]any{"access_token": "eyJold.e30.sig"}}).MustData(t, &data)
		if got := data["refresh_token"]["access_token"]; got != "eyJnew.e30.sig" {
			t.Fatalf("round %d: refresh_token = %v", i, data)
		}
		post("Switch", goodKey, map[string]any{"s": map[string]any{"tenant_id": tenantOneID}}).MustData(t, &data)
		if got := data["switch_tenant"]["refresh_token"]; got != "lkr_sw" {
			t.Fatalf("round %d: switch_tenant = %v", i, data)
		}
	}
	if refreshes.Load() != 3 || switches.Load() != 3 {
		t.Fatalf("refreshes %d, switches %d, want 3 each", refreshes.Load(), switches.Load())
	}
}

// TestHandler_ConcurrentRequestsKeepTheirOwnBodies runs different requests
// at once, so that a buffer recycled too early would mix their bodies up.
func TestHandler_ConcurrentRequestsKeepTheirOwnBodies(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.Tenants.FindTenantsFn = func(ctx context.Context, filter latchkey.TenantFilter) ([]*latchkey.Tenant, int, error) {
		return []*latchkey.Tenant{{ID: *filter.ID, Slug: "s-" + *filter.ID, Name: "n"}}, 1, nil
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				id := fmt.Sprintf("00000000-0000-4000-8000-%012d", w*1000+i)
				resp := e.Query(t, `query($id: uuid) { tenant(where: {id: {_eq: $id}}) { id slug } }`, map[string]any{"id": id})
				var data struct{ Tenant []struct{ ID, Slug string } }
				resp.MustData(t, &data)
				if len(data.Tenant) != 1 || data.Tenant[0].ID != id || data.Tenant[0].Slug != "s-"+id {
					t.Errorf("asked for %s, got %s", id, resp.Body)
					return
				}
			}
		})
	}
	wg.Wait()
}
