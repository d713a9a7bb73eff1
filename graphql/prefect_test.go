package graphql_test

import (
	"context"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/graphql"
)

// The query texts below are copied verbatim from prefect1-wire.md §1-§3:
// what the Prefect 1.0.0 (and 0.15.13) client really sends.

func TestPrefect_LoginAuthInfo(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var gotTenant = "unset"
	authenticate := e.Auth.AuthenticateFn
	e.Auth.AuthenticateFn = func(ctx context.Context, credential, tenantID string) (*latchkey.Auth, error) {
		gotTenant = tenantID
		return authenticate(ctx, credential, tenantID)
	}
	resp := e.Query(t, `query {
    auth_info {
        tenant_id
    }
}`, nil)
	var data struct {
		AuthInfo map[string]any `json:"auth_info"`
	}
	resp.MustData(t, &data)
	if got, want := data.AuthInfo["tenant_id"], tenantOneID; got != want {
		t.Errorf("tenant_id = %v, want %v", got, want)
	}
	if got, want := len(data.AuthInfo), 1; got != want {
		t.Errorf("auth_info has %d fields, want %d: %v", got, want, data.AuthInfo)
	}
	if gotTenant != "" {
		t.Errorf("Authenticate tenant = %q, want empty (no header)", gotTenant)
	}
}

func TestPrefect_LoginTenantByIDLiteral(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var gotFilter latchkey.TenantFilter
	e.Tenants.FindTenantsFn = func(ctx context.Context, f latchkey.TenantFilter) ([]*latchkey.Tenant, int, error) {
		if a := latchkey.AuthFromContext(ctx); a == nil || a.TenantID != tenantOneID {
			t.Errorf("FindTenants caller = %+v, want tenant one", a)
		}
		gotFilter = f
		return []*latchkey.Tenant{{ID: tenantOneID, Slug: "tenant-one", Name: "Tenant One", CreatedAt: created}}, 1, nil
	}
	resp := e.QueryAs(t, goodKey, map[string]string{"X-PREFECT-TENANT-ID": tenantOneID}, `query {
    tenant(where: { id: { _eq: "11111111-1111-1111-1111-111111111111" } }) {
        id
        slug
        name
    }
}`, nil)
	var data struct {
		Tenant []map[string]string `json:"tenant"`
	}
	resp.MustData(t, &data)
	if gotFilter.ID == nil || *gotFilter.ID != tenantOneID {
		t.Errorf("filter.ID = %v, want %s", gotFilter.ID, tenantOneID)
	}
	if gotFilter.Slug != nil || gotFilter.Name != nil || gotFilter.IDs != nil || gotFilter.Limit != graphql.DefaultLimit || gotFilter.Offset != 0 {
		t.Errorf("filter = %+v, want only ID", gotFilter)
	}
	if got, want := len(data.Tenant), 1; got != want {
		t.Fatalf("len(tenant) = %d, want %d", got, want)
	}
	want := map[string]string{"id": tenantOneID, "slug": "tenant-one", "name": "Tenant One"}
	mustFields(t, "tenant.", data.Tenant[0], want)
}

func TestPrefect_FieldOrderDoesNotMatter(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.Tenants.FindTenantsFn = func(ctx context.Context, f latchkey.TenantFilter) ([]*latchkey.Tenant, int, error) {
		return []*latchkey.Tenant{{ID: tenantOneID, Slug: "tenant-one", Name: "Tenant One"}}, 1, nil
	}
	for _, q := range []string{
		"query {\n    tenant(where: { id: { _eq: \"11111111-1111-1111-1111-111111111111\" } }) {\n        name\n        id\n        slug\n    }\n}",
		"query {\n    tenant(where: { id: { _eq: \"11111111-1111-1111-1111-111111111111\" } }) {\n        slug\n        id\n        name\n    }\n}",
	} {
		var data struct {
			Tenant []map[string]string `json:"tenant"`
		}
		e.Query(t, q, nil).MustData(t, &data)
		if len(data.Tenant) != 1 || data.Tenant[0]["slug"] != "tenant-one" || data.Tenant[0]["name"] != "Tenant One" || data.Tenant[0]["id"] != tenantOneID {
			t.Errorf("tenant = %v", data.Tenant)
		}
	}
}

func TestPrefect_ListTenantsOrderBySlug(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var gotFilter latchkey.TenantFilter
	e.Tenants.FindTenantsFn = func(ctx context.Context, f latchkey.TenantFilter) ([]*latchkey.Tenant, int, error) {
		gotFilter = f
		return []*latchkey.Tenant{
			{ID: tenantOneID, Slug: "tenant-one", Name: "Tenant One"},
			{ID: tenantTwoID, Slug: "tenant-two", Name: "Tenant Two"},
		}, 2, nil
	}
	resp := e.Query(t, `query {
    tenant(order_by: {slug: asc}) {
        id
        slug
        name
    }
}`, nil)
	var data struct {
		Tenant []struct{ ID, Slug, Name string } `json:"tenant"`
	}
	resp.MustData(t, &data)
	if got, want := len(gotFilter.OrderBy), 1; got != want {
		t.Fatalf("len(OrderBy) = %d, want %d", got, want)
	}
	if got, want := gotFilter.OrderBy[0], (latchkey.SortOrder{Field: "slug"}); got != want {
		t.Errorf("OrderBy[0] = %+v, want %+v", got, want)
	}
	if gotFilter.ID != nil || gotFilter.Slug != nil {
		t.Errorf("filter = %+v, want no conditions", gotFilter)
	}
	if got, want := len(data.Tenant), 2; got != want {
		t.Fatalf("len(tenant) = %d, want %d", got, want)
	}
	if data.Tenant[1].Slug != "tenant-two" || data.Tenant[1].ID != tenantTwoID {
		t.Errorf("tenant[1] = %+v", data.Tenant[1])
	}
}

func TestPrefect_SwitchTenantsBySlug(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var gotFilter latchkey.TenantFilter
	e.Tenants.FindTenantsFn = func(ctx context.Context, f latchkey.TenantFilter) ([]*latchkey.Tenant, int, error) {
		gotFilter = f
		return []*latchkey.Tenant{{ID: tenantTwoID, Slug: "tenant-two", Name: "Tenant Two"}}, 1, nil
	}
	// The old tenant header is still attached.
	resp := e.QueryAs(t, goodKey, map[string]string{"X-PREFECT-TENANT-ID": tenantOneID}, `query($slug: String) {
    tenant(where: {slug: { _eq: $slug } }) {
        id
    }
}`, map[string]any{"slug": "tenant-two"})
	var data struct {
		Tenant []map[string]any `json:"tenant"`
	}
	resp.MustData(t, &data)
	if gotFilter.Slug == nil || *gotFilter.Slug != "tenant-two" {
		t.Errorf("filter.Slug = %v, want tenant-two", gotFilter.Slug)
	}
	if gotFilter.ID != nil {
		t.Errorf("filter.ID = %v, want nil", *gotFilter.ID)
	}
	if len(data.Tenant) != 1 || data.Tenant[0]["id"] != tenantTwoID || len(data.Tenant[0]) != 1 {
		t.Errorf("tenant = %v", data.Tenant)
	}
}

func TestPrefect_SwitchTenantsVerifiesMembership(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	const q = "query {\n    auth_info {\n        tenant_id\n    }\n}"
	var data struct {
		AuthInfo struct {
			TenantID string `json:"tenant_id"`
		} `json:"auth_info"`
	}
	e.QueryAs(t, goodKey, map[string]string{"X-PREFECT-TENANT-ID": tenantTwoID}, q, nil).MustData(t, &data)
	if got, want := data.AuthInfo.TenantID, tenantTwoID; got != want {
		t.Errorf("tenant_id = %q, want %q", got, want)
	}
	// Not a member of that tenant: UNAUTHENTICATED, HTTP 200.
	resp := e.QueryAs(t, goodKey, map[string]string{"X-PREFECT-TENANT-ID": "99999999-9999-9999-9999-999999999999"}, q, nil)
	resp.MustError(t, "UNAUTHENTICATED", true)
}

func TestPrefect_CreateKey(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var data struct {
		AuthInfo struct {
			UserID string `json:"user_id"`
		} `json:"auth_info"`
	}
	e.Query(t, `query {
    auth_info {
        user_id
    }
}`, nil).MustData(t, &data)
	if got, want := data.AuthInfo.UserID, userID; got != want {
		t.Fatalf("user_id = %q, want %q", got, want)
	}

	const mutation = `mutation($input: create_api_key_input!) {
    create_api_key(input: $input) {
        key
    }
}`
	for _, tt := range []struct {
		expires any
		want    *time.Time
	}{
		{nil, nil},
		{"2030-01-01T00:00:00+00:00", new(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))},
		{"2030-01-01T02:00:00.5+02:00", new(time.Date(2030, 1, 1, 0, 0, 0, 500e6, time.UTC))},
	} {
		var got *latchkey.APIKey
		e.APIKeys.CreateAPIKeyFn = func(ctx context.Context, k *latchkey.APIKey) (string, error) {
			got = k
			k.ID = keyID
			return "lku_thenewkeythenewkeythenewkeythenAAAAAA", nil
		}
		var out struct {
			CreateAPIKey map[string]string `json:"create_api_key"`
		}
		e.Query(t, mutation, map[string]any{"input": map[string]any{"name": "mykey", "user_id": userID, "expires_at": tt.expires}}).MustData(t, &out)
		if got, want := out.CreateAPIKey["key"], "lku_thenewkeythenewkeythenewkeythenAAAAAA"; got != want {
			t.Errorf("key = %q, want %q", got, want)
		}
		if got.Name != "mykey" || got.UserID != userID || got.DefaultTenantID != "" {
			t.Errorf("CreateAPIKey got %+v", got)
		}
		switch {
		case tt.want == nil && got.ExpiresAt != nil:
			t.Errorf("ExpiresAt = %v, want nil", got.ExpiresAt)
		case tt.want != nil && (got.ExpiresAt == nil || !got.ExpiresAt.Equal(*tt.want)):
			t.Errorf("ExpiresAt = %v, want %v", got.ExpiresAt, tt.want)
		}
	}
}

func TestPrefect_ListKeys(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	expires := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	e.APIKeys.FindAPIKeysFn = func(ctx context.Context, f latchkey.APIKeyFilter) ([]*latchkey.APIKey, int, error) {
		if f.ID != nil || f.UserID != nil || f.TenantID != nil || f.IDs != nil || f.OrderBy != nil {
			t.Errorf("filter = %+v, want none", f)
		}
		return []*latchkey.APIKey{
			{ID: keyID, Name: "k1", UserID: userID, CreatedAt: created},
			{ID: "88888888-8888-8888-8888-888888888888", Name: "k2", UserID: userID, CreatedAt: created, ExpiresAt: &expires},
		}, 2, nil
	}
	resp := e.Query(t, `query {
    auth_api_key {
        id
        name
        expires_at
    }
}`, nil)
	var data struct {
		AuthAPIKey []map[string]any `json:"auth_api_key"`
	}
	resp.MustData(t, &data)
	if got, want := len(data.AuthAPIKey), 2; got != want {
		t.Fatalf("len = %d, want %d", got, want)
	}
	if v, ok := data.AuthAPIKey[0]["expires_at"]; !ok || v != nil {
		t.Errorf("k1 expires_at = %v (present %v), want null", v, ok)
	}
	if got, want := data.AuthAPIKey[1]["expires_at"], "2030-01-01T00:00:00+00:00"; got != want {
		t.Errorf("k2 expires_at = %v, want %v", got, want)
	}
	if got, want := data.AuthAPIKey[0]["name"], "k1"; got != want {
		t.Errorf("name = %v, want %v", got, want)
	}
}

func TestPrefect_RevokeKey(t *testing.T) {
	t.Parallel()
	const mutation = `mutation($input: delete_api_key_input!) {
    delete_api_key(input: $input) {
        success
    }
}`
	for _, tt := range []struct {
		name    string
		err     error
		success bool
		code    string
	}{
		{"deleted", nil, true, ""},
		{"not found", latchkey.Errorf(latchkey.ENOTFOUND, "API key not found."), false, ""},
		{"forbidden", latchkey.Errorf(latchkey.EFORBIDDEN, "Read-only users cannot revoke keys."), false, "FORBIDDEN"},
		{"unauthenticated", latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Unauthenticated"), false, "UNAUTHENTICATED"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := MustNewEnv(t)
			var gotID string
			e.APIKeys.DeleteAPIKeyFn = func(ctx context.Context, id string) error {
				gotID = id
				return tt.err
			}
			resp := e.Query(t, mutation, map[string]any{"input": map[string]any{"key_id": keyID}})
			if gotID != keyID {
				t.Errorf("DeleteAPIKey id = %q, want %q", gotID, keyID)
			}
			if tt.code != "" {
				resp.MustError(t, tt.code, false)
				return
			}
			var data struct {
				DeleteAPIKey struct{ Success bool } `json:"delete_api_key"`
			}
			resp.MustData(t, &data)
			if got, want := data.DeleteAPIKey.Success, tt.success; got != want {
				t.Errorf("success = %v, want %v", got, want)
			}
		})
	}
}

func TestPrefect_AgentHello(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var data struct{ Hello string }
	e.QueryAs(t, goodKey, map[string]string{"X-PREFECT-TENANT-ID": tenantOneID, "X-PREFECT-AGENT-ID": "agent-1"}, "query { hello }", nil).MustData(t, &data)
	if got, want := data.Hello, "👋"; got != want {
		t.Errorf("hello = %q, want %q", got, want)
	}
}

func TestPrefect015_LoginToTenant(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var gotFilter latchkey.TenantFilter
	e.Tenants.FindTenantsFn = func(ctx context.Context, f latchkey.TenantFilter) ([]*latchkey.Tenant, int, error) {
		gotFilter = f
		return []*latchkey.Tenant{{ID: tenantOneID, Slug: "tenant-one", Name: "Tenant One"}}, 1, nil
	}
	// slug is null: `_eq: null` is no condition.
	resp := e.Query(t, `query($slug: String, $id: uuid) {
    tenant(where: {slug: { _eq: $slug }, id: { _eq: $id } }) {
        id
    }
}`, map[string]any{"slug": nil, "id": tenantOneID})
	var data struct {
		Tenant []map[string]string `json:"tenant"`
	}
	resp.MustData(t, &data)
	if gotFilter.Slug != nil {
		t.Errorf("filter.Slug = %q, want nil (_eq: null is no condition)", *gotFilter.Slug)
	}
	if gotFilter.ID == nil || *gotFilter.ID != tenantOneID {
		t.Errorf("filter.ID = %v, want %s", gotFilter.ID, tenantOneID)
	}
	if len(data.Tenant) != 1 || data.Tenant[0]["id"] != tenantOneID {
		t.Errorf("tenant = %v", data.Tenant)
	}
}

func TestPrefect015_SwitchTenant(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	expires := time.Date(2022, 1, 25, 10, 10, 0, 0, time.UTC)
	var gotTenant string
	e.Auth.SwitchTenantFn = func(ctx context.Context, tenantID string) (*latchkey.AccessToken, error) {
		if latchkey.AuthFromContext(ctx) == nil {
			t.Error("SwitchTenant called without a caller")
		}
		gotTenant = tenantID
		return &latchkey.AccessToken{AccessToken: "eyJhbGciOiJFZERTQSJ9.e30.sig", ExpiresAt: expires, RefreshToken: refreshTok}, nil
	}
	resp := e.QueryAs(t, runnerToken, nil, `mutation($input: switch_tenant_input!) {
    switch_tenant(input: $input) {
        access_token
        expires_at
        refresh_token
    }
}`, map[string]any{"input": map[string]any{"tenant_id": tenantOneID}})
	var data struct {
		SwitchTenant map[string]string `json:"switch_tenant"`
	}
	resp.MustData(t, &data)
	if gotTenant != tenantOneID {
		t.Errorf("SwitchTenant tenant = %q, want %q", gotTenant, tenantOneID)
	}
	want := map[string]string{"access_token": "eyJhbGciOiJFZERTQSJ9.e30.sig", "expires_at": "2022-01-25T10:10:00+00:00", "refresh_token": refreshTok}
	mustFields(t, "", data.SwitchTenant, want)
}

func TestPrefect015_RefreshToken(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.Auth.AuthenticateFn = func(ctx context.Context, credential, tenantID string) (*latchkey.Auth, error) {
		t.Errorf("Authenticate must not be called for refresh_token (got a %d-byte credential)", len(credential))
		return nil, latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Unauthorized")
	}
	var gotRefresh, gotAccess string
	e.Auth.RefreshAccessTokenFn = func(ctx context.Context, refresh, access string) (*latchkey.AccessToken, error) {
		gotRefresh, gotAccess = refresh, access
		return &latchkey.AccessToken{AccessToken: "eyJnew.e30.sig", ExpiresAt: created, RefreshToken: "lkr_next"}, nil
	}
	resp := e.QueryAs(t, refreshTok, nil, `mutation($input: refresh_token_input!) {
    refresh_token(input: $input) {
        access_token
        expires_at
        refresh_token
    }
}`, map[string]any{"input": map[string]any{"access_token": "eyJold.e30.sig"}})
	var data struct {
		RefreshToken map[string]string `json:"refresh_token"`
	}
	resp.MustData(t, &data)
	if gotRefresh != refreshTok || gotAccess != "eyJold.e30.sig" {
		t.Errorf("RefreshAccessToken(%q, %q), want (%q, %q)", gotRefresh, gotAccess, refreshTok, "eyJold.e30.sig")
	}
	if got, want := data.RefreshToken["refresh_token"], "lkr_next"; got != want {
		t.Errorf("refresh_token = %q, want %q", got, want)
	}
	if got, want := data.RefreshToken["expires_at"], "2022-02-23T12:00:00+00:00"; got != want {
		t.Errorf("expires_at = %q, want %q", got, want)
	}
}

func TestPrefect015_TokenLogin(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	// First tried as a key: a raw token answers tenant_id null.
	var info struct {
		AuthInfo map[string]any `json:"auth_info"`
	}
	e.QueryAs(t, runnerToken, nil, "query {\n    auth_info {\n        tenant_id\n        api_token_scope\n    }\n}", nil).MustData(t, &info)
	if v, ok := info.AuthInfo["tenant_id"]; !ok || v != nil {
		t.Errorf("tenant_id = %v (present %v), want null for a raw token", v, ok)
	}
	if got, want := info.AuthInfo["api_token_scope"], "RUNNER"; got != want {
		t.Errorf("api_token_scope = %v, want %v", got, want)
	}

	// Then the user's default tenant.
	e.Memberships.FindMembershipsFn = func(ctx context.Context, f latchkey.MembershipFilter) ([]*latchkey.Membership, int, error) {
		if f.UserID == nil || *f.UserID != userID || f.TenantID == nil || *f.TenantID != tenantOneID {
			t.Errorf("FindMemberships filter = %+v", f)
		}
		return []*latchkey.Membership{{ID: memberID, TenantID: tenantOneID, UserID: userID, Role: latchkey.RoleUser}}, 1, nil
	}
	var data struct {
		User []struct {
			DefaultMembership struct {
				TenantID string `json:"tenant_id"`
			} `json:"default_membership"`
		} `json:"user"`
	}
	e.QueryAs(t, runnerToken, nil, `query {
    user {
        default_membership {
            tenant_id
        }
    }
}`, nil).MustData(t, &data)
	if len(data.User) != 1 || data.User[0].DefaultMembership.TenantID != tenantOneID {
		t.Errorf("user = %+v", data.User)
	}
}

func TestPrefect015_Tokens(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var gotToken *latchkey.APIToken
	e.APITokens.CreateAPITokenFn = func(ctx context.Context, tok *latchkey.APIToken) (string, error) {
		gotToken = tok
		tok.ID = tokenID
		return "lkt_newtokennewtokennewtokennewtokAAAAAA", nil
	}
	var made struct {
		CreateAPIToken map[string]string `json:"create_api_token"`
	}
	e.Query(t, `mutation($input: create_api_token_input!) {
    create_api_token(input: $input) {
        token
    }
}`, map[string]any{"input": map[string]any{"name": "agent", "scope": "RUNNER"}}).MustData(t, &made)
	if got, want := made.CreateAPIToken["token"], "lkt_newtokennewtokennewtokennewtokAAAAAA"; got != want {
		t.Errorf("token = %q, want %q", got, want)
	}
	if gotToken == nil || gotToken.Name != "agent" || gotToken.Scope != latchkey.TokenScopeRunner {
		t.Errorf("CreateAPIToken got %+v", gotToken)
	}

	e.APITokens.FindAPITokensFn = func(ctx context.Context, f latchkey.APITokenFilter) ([]*latchkey.APIToken, int, error) {
		return []*latchkey.APIToken{{ID: tokenID, Name: "agent", Scope: latchkey.TokenScopeRunner, UserID: userID, TenantID: tenantOneID, CreatedAt: created}}, 1, nil
	}
	var list struct {
		APIToken []map[string]any `json:"api_token"`
	}
	e.Query(t, "query {\n    api_token {\n        id\n        name\n    }\n}", nil).MustData(t, &list)
	if len(list.APIToken) != 1 || list.APIToken[0]["id"] != tokenID || list.APIToken[0]["name"] != "agent" {
		t.Errorf("api_token = %v", list.APIToken)
	}

	for _, tt := range []struct {
		err  error
		want bool
	}{{nil, true}, {latchkey.Errorf(latchkey.ENOTFOUND, "API token not found."), false}} {
		e.APITokens.DeleteAPITokenFn = func(ctx context.Context, id string) error {
			if id != tokenID {
				t.Errorf("DeleteAPIToken id = %q", id)
			}
			return tt.err
		}
		var del struct {
			DeleteAPIToken struct{ Success bool } `json:"delete_api_token"`
		}
		e.Query(t, `mutation($input: delete_api_token_input!) {
    delete_api_token(input: $input) {
        success
    }
}`, map[string]any{"input": map[string]any{"token_id": tokenID}}).MustData(t, &del)
		if got := del.DeleteAPIToken.Success; got != tt.want {
			t.Errorf("success = %v, want %v", got, tt.want)
		}
	}
}

func TestPrefect_CreateTenantServerBackend(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var got *latchkey.Tenant
	e.Tenants.CreateTenantFn = func(ctx context.Context, tenant *latchkey.Tenant) error {
		got = tenant
		tenant.ID = tenantTwoID
		tenant.CreatedAt = created
		return nil
	}
	var data struct {
		CreateTenant map[string]string `json:"create_tenant"`
	}
	e.Query(t, `mutation($input: create_tenant_input!) {
    create_tenant(input: $input) {
        id
        slug
        name
        created_at
    }
}`, map[string]any{"input": map[string]any{"name": "Tenant Two", "slug": "tenant-two"}}).MustData(t, &data)
	if got == nil || got.Name != "Tenant Two" || got.Slug != "tenant-two" {
		t.Fatalf("CreateTenant got %+v", got)
	}
	want := map[string]string{"id": tenantTwoID, "slug": "tenant-two", "name": "Tenant Two", "created_at": "2022-02-23T12:00:00+00:00"}
	mustFields(t, "", data.CreateTenant, want)
}

// identifier is the key's stored prefix and last four characters, and null
// for a key stored without one.
func TestAPIKey_Identifier(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.APIKeys.FindAPIKeysFn = func(ctx context.Context, f latchkey.APIKeyFilter) ([]*latchkey.APIKey, int, error) {
		return []*latchkey.APIKey{
			{ID: keyID, Name: "k1", Identifier: "lku_…x9Qz", UserID: userID, CreatedAt: created},
			{ID: "88888888-8888-8888-8888-888888888888", Name: "old", UserID: userID, CreatedAt: created},
		}, 2, nil
	}
	resp := e.Query(t, `query { auth_api_key { id identifier } }`, nil)
	var data struct {
		AuthAPIKey []map[string]any `json:"auth_api_key"`
	}
	resp.MustData(t, &data)
	if len(data.AuthAPIKey) != 2 {
		t.Fatalf("keys = %v", data.AuthAPIKey)
	}
	if got := data.AuthAPIKey[0]["identifier"]; got != "lku_…x9Qz" {
		t.Errorf("identifier = %v, want lku_…x9Qz", got)
	}
	if v, ok := data.AuthAPIKey[1]["identifier"]; !ok || v != nil {
		t.Errorf("identifier of an old key = %v (present %v), want null", v, ok)
	}
}
