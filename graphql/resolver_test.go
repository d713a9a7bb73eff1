package graphql_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

func TestQuery_User(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.Memberships.FindMembershipsFn = func(ctx context.Context, f latchkey.MembershipFilter) ([]*latchkey.Membership, int, error) {
		if f.UserID == nil || *f.UserID != userID {
			t.Errorf("filter.UserID = %v", f.UserID)
		}
		ms := []*latchkey.Membership{
			{ID: memberID, TenantID: tenantOneID, UserID: userID, Role: latchkey.RoleTenantAdmin},
			{ID: "99999999-9999-9999-9999-999999999999", TenantID: tenantTwoID, UserID: userID, Role: latchkey.RoleReadOnlyUser},
		}
		if f.TenantID != nil {
			ms = ms[:1]
		}
		return ms, len(ms), nil
	}
	var data struct {
		User []struct {
			ID, Email, Name, Kind string
			DefaultMembership     struct{ TenantID, Role string } `json:"default_membership"`
			Memberships           []struct {
				TenantID string `json:"tenant_id"`
				Role     string
			}
		}
	}
	e.Query(t, "{ user { id email name kind default_membership { tenant_id role } memberships { tenant_id role } } }", nil).MustData(t, &data)
	if len(data.User) != 1 {
		t.Fatalf("len(user) = %d, want 1", len(data.User))
	}
	u := data.User[0]
	if u.ID != userID || u.Email != "ada@example.com" || u.Name != "Ada" || u.Kind != "USER" {
		t.Errorf("user = %+v", u)
	}
	if u.DefaultMembership.Role != "TENANT_ADMIN" {
		t.Errorf("default_membership = %+v", u.DefaultMembership)
	}
	if len(u.Memberships) != 2 || u.Memberships[1].TenantID != tenantTwoID || u.Memberships[1].Role != "READ_ONLY_USER" {
		t.Errorf("memberships = %+v", u.Memberships)
	}
}

func TestQuery_AuthAPIKeyAllFields(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	used := time.Date(2022, 3, 1, 8, 30, 15, 123456789, time.FixedZone("X", 3600))
	e.APIKeys.FindAPIKeysFn = func(ctx context.Context, f latchkey.APIKeyFilter) ([]*latchkey.APIKey, int, error) {
		return []*latchkey.APIKey{{ID: keyID, Name: "k1", UserID: saID, CreatedByUserID: userID, DefaultTenantID: tenantOneID, CreatedAt: created, LastUsedAt: &used}}, 1, nil
	}
	var data struct {
		AuthAPIKey []map[string]any `json:"auth_api_key"`
	}
	e.Query(t, "{ auth_api_key { id name expires_at created_at last_used_at user_id created_by_user_id default_tenant_id } }", nil).MustData(t, &data)
	want := map[string]any{
		"id": keyID, "name": "k1", "expires_at": nil, "created_at": "2022-02-23T12:00:00+00:00",
		"last_used_at": "2022-03-01T07:30:15.123456+00:00", "user_id": saID,
		"created_by_user_id": userID, "default_tenant_id": tenantOneID,
	}
	if len(data.AuthAPIKey) != 1 {
		t.Fatalf("len = %d", len(data.AuthAPIKey))
	}
	mustFields(t, "", data.AuthAPIKey[0], want)
}

func TestQuery_ServiceAccount(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var gotFilter latchkey.ServiceAccountFilter
	e.ServiceAccounts.FindServiceAccountsFn = func(ctx context.Context, f latchkey.ServiceAccountFilter) ([]*latchkey.ServiceAccount, int, error) {
		gotFilter = f
		return []*latchkey.ServiceAccount{{ID: saID, TenantID: tenantOneID, Name: "agent", Role: latchkey.RoleUser, CreatedByUserID: userID, CreatedAt: created}}, 1, nil
	}
	e.APIKeys.FindAPIKeysFn = func(ctx context.Context, f latchkey.APIKeyFilter) ([]*latchkey.APIKey, int, error) {
		if f.UserID == nil || *f.UserID != saID {
			t.Errorf("api_keys filter.UserID = %v, want %s", f.UserID, saID)
		}
		return []*latchkey.APIKey{{ID: keyID, Name: "agent-key", UserID: saID, CreatedAt: created}}, 1, nil
	}
	var data struct {
		ServiceAccount []struct {
			ID, Name, Role  string
			TenantID        string                      `json:"tenant_id"`
			CreatedAt       string                      `json:"created_at"`
			CreatedByUserID string                      `json:"created_by_user_id"`
			APIKeys         []struct{ ID, Name string } `json:"api_keys"`
		} `json:"service_account"`
	}
	e.Query(t, `{ service_account(where: {id: {_eq: "55555555-5555-5555-5555-555555555555"}}, limit: 5, offset: 1) { id name role tenant_id created_at created_by_user_id api_keys { id name } } }`, nil).MustData(t, &data)
	if gotFilter.ID == nil || *gotFilter.ID != saID || gotFilter.Limit != 5 || gotFilter.Offset != 1 {
		t.Errorf("filter = %+v", gotFilter)
	}
	if len(data.ServiceAccount) != 1 {
		t.Fatalf("len = %d", len(data.ServiceAccount))
	}
	sa := data.ServiceAccount[0]
	if sa.ID != saID || sa.Name != "agent" || sa.Role != "USER" || sa.TenantID != tenantOneID || sa.CreatedByUserID != userID || sa.CreatedAt != "2022-02-23T12:00:00+00:00" {
		t.Errorf("service_account = %+v", sa)
	}
	if len(sa.APIKeys) != 1 || sa.APIKeys[0].Name != "agent-key" {
		t.Errorf("api_keys = %+v", sa.APIKeys)
	}
}

func TestQuery_Membership(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var gotFilter latchkey.MembershipFilter
	other := &latchkey.User{ID: "88888888-8888-8888-8888-888888888888", Kind: latchkey.UserKindHuman, Email: "bob@example.com", Name: "Bob"}
	e.Memberships.FindMembershipsFn = func(ctx context.Context, f latchkey.MembershipFilter) ([]*latchkey.Membership, int, error) {
		gotFilter = f
		return []*latchkey.Membership{
			{ID: memberID, TenantID: tenantOneID, UserID: userID, Role: latchkey.RoleTenantAdmin, CreatedAt: created, User: humanUser()},
			{ID: "99999999-9999-9999-9999-999999999999", TenantID: tenantOneID, UserID: other.ID, Role: latchkey.RoleUser, CreatedAt: created},
		}, 2, nil
	}
	e.Users.FindUserByIDFn = func(ctx context.Context, id string) (*latchkey.User, error) {
		if id != other.ID {
			t.Errorf("FindUserByID(%q)", id)
		}
		return other, nil
	}
	var data struct {
		Membership []struct {
			ID       string
			TenantID string `json:"tenant_id"`
			UserID   string `json:"user_id"`
			Role     string
			User     struct{ ID, Email, Name string }
		}
	}
	e.Query(t, `{ membership(where: {tenant_id: {_eq: "11111111-1111-1111-1111-111111111111"}}) { id tenant_id user_id role created_at user { id email name } } }`, nil).MustData(t, &data)
	if gotFilter.TenantID == nil || *gotFilter.TenantID != tenantOneID {
		t.Errorf("filter = %+v", gotFilter)
	}
	if len(data.Membership) != 2 {
		t.Fatalf("len = %d", len(data.Membership))
	}
	if m := data.Membership[0]; m.Role != "TENANT_ADMIN" || m.User.Email != "ada@example.com" || m.UserID != userID {
		t.Errorf("membership[0] = %+v", m)
	}
	if m := data.Membership[1]; m.User.Email != "bob@example.com" || m.User.ID != other.ID {
		t.Errorf("membership[1] = %+v", m)
	}
}

func TestQuery_APITokenAllFields(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.APITokens.FindAPITokensFn = func(ctx context.Context, f latchkey.APITokenFilter) ([]*latchkey.APIToken, int, error) {
		return []*latchkey.APIToken{{ID: tokenID, Name: "agent", Scope: latchkey.TokenScopeTenant, UserID: userID, TenantID: tenantOneID, CreatedAt: created}}, 1, nil
	}
	var data struct {
		APIToken []map[string]any `json:"api_token"`
	}
	e.Query(t, "{ api_token { id name scope created_at last_used_at tenant_id user_id } }", nil).MustData(t, &data)
	want := map[string]any{"id": tokenID, "name": "agent", "scope": "TENANT", "created_at": "2022-02-23T12:00:00+00:00", "last_used_at": nil, "tenant_id": tenantOneID, "user_id": userID}
	mustFields(t, "", data.APIToken[0], want)
}

func TestMutation_CreateAPIKeyPayload(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var got *latchkey.APIKey
	e.APIKeys.CreateAPIKeyFn = func(ctx context.Context, k *latchkey.APIKey) (string, error) {
		got = k
		k.ID = keyID
		return "lku_shownonceshownonceshownonceshoAAAAAA", nil
	}
	var data struct {
		CreateAPIKey map[string]string `json:"create_api_key"`
	}
	e.Query(t, `mutation { create_api_key(input: {name: "agent-key", user_id: "55555555-5555-5555-5555-555555555555", default_tenant_id: "22222222-2222-2222-2222-222222222222"}) { id key token } }`, nil).MustData(t, &data)
	want := map[string]string{"id": keyID, "key": "lku_shownonceshownonceshownonceshoAAAAAA", "token": "lku_shownonceshownonceshownonceshoAAAAAA"}
	mustFields(t, "", data.CreateAPIKey, want)
	if got.UserID != saID || got.DefaultTenantID != tenantTwoID || got.ExpiresAt != nil {
		t.Errorf("CreateAPIKey got %+v", got)
	}
}

func TestMutation_ServiceAccounts(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var got *latchkey.ServiceAccount
	e.ServiceAccounts.CreateServiceAccountFn = func(ctx context.Context, sa *latchkey.ServiceAccount) error {
		got = sa
		sa.ID, sa.CreatedAt, sa.CreatedByUserID = saID, created, userID
		if sa.TenantID == "" {
			sa.TenantID = tenantOneID
		}
		return nil
	}
	var data struct {
		CreateServiceAccount struct {
			ID, Name, Role string
			TenantID       string `json:"tenant_id"`
		} `json:"create_service_account"`
	}
	e.Query(t, `mutation($input: create_service_account_input!) { create_service_account(input: $input) { id name role tenant_id } }`,
		map[string]any{"input": map[string]any{"name": "agent"}}).MustData(t, &data)
	if got.Name != "agent" || got.Role != latchkey.RoleUser || got.TenantID != tenantOneID {
		t.Errorf("CreateServiceAccount got %+v", got)
	}
	if sa := data.CreateServiceAccount; sa.ID != saID || sa.Role != "USER" || sa.TenantID != tenantOneID {
		t.Errorf("create_service_account = %+v", sa)
	}

	e.Query(t, `mutation { create_service_account(input: {name: "ro", role: "READ_ONLY_USER", tenant_id: "22222222-2222-2222-2222-222222222222"}) { id } }`, nil).MustData(t, &data)
	if got.Role != latchkey.RoleReadOnlyUser || got.TenantID != tenantTwoID {
		t.Errorf("CreateServiceAccount got %+v", got)
	}

	got = nil
	e.Query(t, `mutation { create_service_account(input: {name: "x", role: "ADMIN"}) { id } }`, nil).MustError(t, "BAD_USER_INPUT", false)
	if got != nil {
		t.Error("CreateServiceAccount called with a bad role")
	}

	for _, tt := range []struct {
		err  error
		want bool
	}{{nil, true}, {latchkey.Errorf(latchkey.ENOTFOUND, "Service account not found."), false}} {
		var gotID string
		e.ServiceAccounts.DeleteServiceAccountFn = func(ctx context.Context, id string) error {
			gotID = id
			return tt.err
		}
		var del struct {
			DeleteServiceAccount struct{ Success bool } `json:"delete_service_account"`
		}
		e.Query(t, `mutation { delete_service_account(input: {service_account_id: "55555555-5555-5555-5555-555555555555"}) { success } }`, nil).MustData(t, &del)
		if gotID != saID || del.DeleteServiceAccount.Success != tt.want {
			t.Errorf("id %q success %v, want %v", gotID, del.DeleteServiceAccount.Success, tt.want)
		}
	}
}

func TestMutation_Memberships(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var got latchkey.MembershipCreate
	e.Memberships.CreateMembershipFn = func(ctx context.Context, in latchkey.MembershipCreate) (*latchkey.Membership, *latchkey.Invitation, error) {
		got = in
		if in.UserID != "" { // an existing user: invited
			return nil, &latchkey.Invitation{ID: "99999999-9999-9999-9999-999999999999", TenantID: in.TenantID, Invitee: in.UserID, Role: in.Role, CreatedAt: created}, nil
		}
		return &latchkey.Membership{ID: memberID, TenantID: in.TenantID, UserID: "88888888-8888-8888-8888-888888888888", Role: in.Role, CreatedAt: created}, nil, nil
	}
	type invitation struct {
		ID, Role, Invitee string
		TenantID          string  `json:"tenant_id"`
		TenantName        *string `json:"tenant_name"`
	}
	var data struct {
		CreateMembership struct {
			Membership *struct {
				ID, Role string
				TenantID string `json:"tenant_id"`
			}
			Invitation *invitation
		} `json:"create_membership"`
	}
	const fields = `{ membership { id tenant_id role } invitation { id tenant_id role invitee tenant_name } }`
	e.Query(t, `mutation { create_membership(input: {email: "bob@example.com"}) `+fields+` }`, nil).MustData(t, &data)
	if want := (latchkey.MembershipCreate{TenantID: tenantOneID, Email: "bob@example.com", Role: latchkey.RoleUser}); got != want {
		t.Errorf("CreateMembership got %+v, want %+v", got, want)
	}
	if m := data.CreateMembership.Membership; m == nil || m.ID != memberID || m.Role != "USER" || m.TenantID != tenantOneID || data.CreateMembership.Invitation != nil {
		t.Errorf("create_membership = %+v", data.CreateMembership)
	}

	data.CreateMembership.Membership = nil
	e.Query(t, `mutation { create_membership(input: {tenant_id: "22222222-2222-2222-2222-222222222222", user_id: "88888888-8888-8888-8888-888888888888", role: "TENANT_ADMIN"}) `+fields+` }`, nil).MustData(t, &data)
	if want := (latchkey.MembershipCreate{TenantID: tenantTwoID, UserID: "88888888-8888-8888-8888-888888888888", Role: latchkey.RoleTenantAdmin}); got != want {
		t.Errorf("CreateMembership got %+v, want %+v", got, want)
	}
	if inv := data.CreateMembership.Invitation; inv == nil || data.CreateMembership.Membership != nil ||
		*inv != (invitation{ID: "99999999-9999-9999-9999-999999999999", Role: "TENANT_ADMIN", Invitee: "88888888-8888-8888-8888-888888888888", TenantID: tenantTwoID}) {
		t.Errorf("create_membership of an existing user = %+v", data.CreateMembership)
	}

	got = latchkey.MembershipCreate{}
	for _, q := range []string{
		`mutation { create_membership(input: {email: "bob@example.com", user_id: "88888888-8888-8888-8888-888888888888"}) { membership { id } } }`,
		`mutation { create_membership(input: {role: "USER"}) { membership { id } } }`,
		`mutation { create_membership(input: {email: "bob@example.com", role: "OWNER"}) { membership { id } } }`,
	} {
		e.Query(t, q, nil).MustError(t, "BAD_USER_INPUT", false)
	}
	if got != (latchkey.MembershipCreate{}) {
		t.Errorf("CreateMembership called with bad input: %+v", got)
	}

	var gotID string
	var gotRole latchkey.Role
	e.Memberships.UpdateMembershipRoleFn = func(ctx context.Context, id string, role latchkey.Role) (*latchkey.Membership, error) {
		gotID, gotRole = id, role
		return &latchkey.Membership{ID: id, TenantID: tenantOneID, UserID: userID, Role: role, CreatedAt: created}, nil
	}
	var upd struct {
		UpdateMembershipRole struct{ ID, Role string } `json:"update_membership_role"`
	}
	e.Query(t, `mutation($input: update_membership_role_input!) { update_membership_role(input: $input) { id role } }`,
		map[string]any{"input": map[string]any{"membership_id": memberID, "role": "READ_ONLY_USER"}}).MustData(t, &upd)
	if gotID != memberID || gotRole != latchkey.RoleReadOnlyUser || upd.UpdateMembershipRole.Role != "READ_ONLY_USER" {
		t.Errorf("UpdateMembershipRole(%q, %q) -> %+v", gotID, gotRole, upd)
	}
	gotID = ""
	e.Query(t, `mutation { update_membership_role(input: {membership_id: "66666666-6666-6666-6666-666666666666", role: "GOD"}) { id } }`, nil).MustError(t, "BAD_USER_INPUT", false)
	e.Query(t, `mutation { update_membership_role(input: {membership_id: "66666666-6666-6666-6666-666666666666", role: ""}) { id } }`, nil).MustError(t, "BAD_USER_INPUT", false)
	if gotID != "" {
		t.Error("UpdateMembershipRole called with a bad role")
	}

	e.Memberships.DeleteMembershipFn = func(ctx context.Context, id string) error {
		if id != memberID {
			t.Errorf("DeleteMembership(%q)", id)
		}
		return latchkey.Errorf(latchkey.ECONFLICT, "A tenant needs at least one admin.")
	}
	resp := e.Query(t, `mutation { delete_membership(input: {membership_id: "66666666-6666-6666-6666-666666666666"}) { success } }`, nil)
	resp.MustError(t, "CONFLICT", false)

	e.Memberships.DeleteMembershipFn = func(ctx context.Context, id string) error { return nil }
	var del struct {
		DeleteMembership struct{ Success bool } `json:"delete_membership"`
	}
	e.Query(t, `mutation { delete_membership(input: {membership_id: "66666666-6666-6666-6666-666666666666"}) { success } }`, nil).MustData(t, &del)
	if !del.DeleteMembership.Success {
		t.Error("success = false")
	}
}

func TestMutation_CreateAPITokenBadScope(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.APITokens.CreateAPITokenFn = func(context.Context, *latchkey.APIToken) (string, error) {
		mustNotCall(t, "CreateAPIToken")()
		return "", nil
	}
	e.Query(t, `mutation { create_api_token(input: {name: "t", scope: "ADMIN"}) { id token } }`, nil).MustError(t, "BAD_USER_INPUT", false)
}

func TestMutation_SwitchTenantDefault(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	got := "unset"
	e.Auth.SwitchTenantFn = func(ctx context.Context, tenantID string) (*latchkey.AccessToken, error) {
		got = tenantID
		return &latchkey.AccessToken{AccessToken: "eyJa.b.c", ExpiresAt: created, RefreshToken: refreshTok}, nil
	}
	var data struct {
		SwitchTenant map[string]string `json:"switch_tenant"`
	}
	e.Query(t, `mutation { switch_tenant(input: {}) { access_token } }`, nil).MustData(t, &data)
	if got != "" {
		t.Errorf("SwitchTenant tenant = %q, want empty", got)
	}
}

func TestFilter_AndIntersects(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var gotFilter latchkey.TenantFilter
	e.Tenants.FindTenantsFn = func(ctx context.Context, f latchkey.TenantFilter) ([]*latchkey.Tenant, int, error) {
		gotFilter = f
		return []*latchkey.Tenant{{ID: tenantOneID, Slug: "tenant-one"}}, 1, nil
	}
	var data struct{ Tenant []struct{ ID string } }
	// The first id goes to the service; the second, different one is
	// checked here and excludes the row.
	e.Query(t, `{ tenant(where: {_and: [{id: {_eq: "11111111-1111-1111-1111-111111111111"}}, {id: {_eq: "22222222-2222-2222-2222-222222222222"}}]}) { id } }`, nil).MustData(t, &data)
	if gotFilter.ID == nil || *gotFilter.ID != tenantOneID {
		t.Errorf("filter.ID = %v", gotFilter.ID)
	}
	if len(data.Tenant) != 0 {
		t.Errorf("tenant = %+v, want none", data.Tenant)
	}

	e.Query(t, `{ tenant(where: {_and: [{id: {_eq: "11111111-1111-1111-1111-111111111111"}}, {slug: {_eq: "tenant-one"}}]}) { id } }`, nil).MustData(t, &data)
	if gotFilter.ID == nil || gotFilter.Slug == nil || *gotFilter.Slug != "tenant-one" {
		t.Errorf("filter = %+v", gotFilter)
	}
	if len(data.Tenant) != 1 {
		t.Errorf("tenant = %+v, want one", data.Tenant)
	}
}

func TestFilter_OrAndNotUnsupported(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.Tenants.FindTenantsFn = func(ctx context.Context, f latchkey.TenantFilter) ([]*latchkey.Tenant, int, error) {
		mustNotCall(t, "FindTenants")()
		return nil, 0, nil
	}
	for _, q := range []string{
		`{ tenant(where: {_or: [{slug: {_eq: "a"}}, {slug: {_eq: "b"}}]}) { id } }`,
		`{ tenant(where: {_not: {slug: {_eq: "a"}}}) { id } }`,
		`{ tenant(where: {_and: [{_or: []}]}) { id } }`,
		`{ tenant(limit: -1) { id } }`,
		`{ tenant(offset: -1) { id } }`,
	} {
		resp := e.Query(t, q, nil)
		resp.MustError(t, "BAD_USER_INPUT", true)
	}
}

func TestFilter_InMemoryConditionsAndPaging(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	tenants := []*latchkey.Tenant{
		{ID: "00000000-0000-0000-0000-000000000001", Slug: "a", Name: "A"},
		{ID: "00000000-0000-0000-0000-000000000002", Slug: "b", Name: "B"},
		{ID: "00000000-0000-0000-0000-000000000003", Slug: "c", Name: "C"},
		{ID: "00000000-0000-0000-0000-000000000004", Slug: "d", Name: "D"},
	}
	var gotFilter latchkey.TenantFilter
	e.Tenants.FindTenantsFn = func(ctx context.Context, f latchkey.TenantFilter) ([]*latchkey.Tenant, int, error) {
		gotFilter = f
		return tenants, len(tenants), nil
	}
	slugs := func(q string) []string {
		t.Helper()
		var data struct{ Tenant []struct{ Slug string } }
		e.Query(t, q, nil).MustData(t, &data)
		var out []string
		for _, x := range data.Tenant {
			out = append(out, x.Slug)
		}
		return out
	}

	// _neq, _nin and _in on other fields than id are checked here, and
	// then only over rows named by id; offset and limit then apply here,
	// not in the service. Without an id they are refused (they used to be
	// checked here over every row).
	for _, q := range []string{
		`{ tenant(where: {slug: {_neq: "b"}}, offset: 1, limit: 1) { slug } }`,
		`{ tenant(where: {slug: {_in: ["a", "d"]}, name: {_nin: ["D"]}}) { slug } }`,
		`{ tenant(where: {id: {_neq: "00000000-0000-0000-0000-000000000001"}}, offset: 5) { slug } }`,
		`{ tenant(where: {_and: [{slug: {_eq: "a"}}, {slug: {_eq: "b"}}]}) { slug } }`,
	} {
		gotFilter = latchkey.TenantFilter{Limit: -7}
		resp := e.Query(t, q, nil)
		resp.MustError(t, "BAD_USER_INPUT", true)
		if !strings.Contains(resp.Errors[0].Message, "is not supported") || gotFilter.Limit != -7 {
			t.Errorf("%s: %q, or the service was asked", q, resp.Errors[0].Message)
		}
	}
	const all = `id: {_in: ["00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002", "00000000-0000-0000-0000-000000000003", "00000000-0000-0000-0000-000000000004"]}`
	if got, want := slugs(`{ tenant(where: {`+all+`, slug: {_neq: "b"}}, offset: 1, limit: 1) { slug } }`), []string{"c"}; !slices.Equal(got, want) {
		t.Errorf("slugs = %v, want %v", got, want)
	}
	if gotFilter.Limit != 0 || gotFilter.Offset != 0 || len(gotFilter.IDs) != 4 {
		t.Errorf("service got limit %d offset %d ids %v, want 0 0 and the ids", gotFilter.Limit, gotFilter.Offset, gotFilter.IDs)
	}
	if got, want := slugs(`{ tenant(where: {`+all+`, slug: {_in: ["a", "d"]}, name: {_nin: ["D"]}}) { slug } }`), []string{"a"}; !slices.Equal(got, want) {
		t.Errorf("slugs = %v, want %v", got, want)
	}
	if got, want := slugs(`{ tenant(where: {id: {_eq: "00000000-0000-0000-0000-000000000002", _neq: "00000000-0000-0000-0000-000000000001"}}, offset: 5) { slug } }`), []string(nil); !slices.Equal(got, want) {
		t.Errorf("slugs = %v, want %v", got, want)
	}

	// id _in goes to the service as IDs; an empty list matches nothing there.
	slugs(`{ tenant(where: {id: {_in: []}}) { slug } }`)
	if gotFilter.IDs == nil || len(gotFilter.IDs) != 0 {
		t.Errorf("IDs = %#v, want empty non-nil", gotFilter.IDs)
	}
	slugs(`{ tenant(where: {id: {_in: ["00000000-0000-0000-0000-00000000000A"]}}) { slug } }`)
	if !slices.Equal(gotFilter.IDs, []string{"00000000-0000-0000-0000-00000000000a"}) {
		t.Errorf("IDs = %v, want lower-cased", gotFilter.IDs)
	}

	// Pushed down entirely: paging goes to the service.
	slugs(`{ tenant(where: {slug: {_eq: "a"}, name: {_eq: "A"}}, limit: 3, offset: 2, order_by: [{name: desc_nulls_last}, {created_at: asc_nulls_first, id: desc}]) { slug } }`)
	if gotFilter.Limit != 3 || gotFilter.Offset != 2 || *gotFilter.Slug != "a" || *gotFilter.Name != "A" {
		t.Errorf("filter = %+v", gotFilter)
	}
	wantOrder := []latchkey.SortOrder{{Field: "name", Desc: true}, {Field: "id", Desc: true}, {Field: "created_at"}}
	if !slices.Equal(gotFilter.OrderBy, wantOrder) {
		t.Errorf("OrderBy = %+v, want %+v", gotFilter.OrderBy, wantOrder)
	}

	// limit: 0 returns nothing without asking the service.
	gotFilter = latchkey.TenantFilter{Limit: -7}
	if got := slugs(`{ tenant(limit: 0) { slug } }`); len(got) != 0 {
		t.Errorf("slugs = %v, want none", got)
	}
	if gotFilter.Limit != -7 {
		t.Error("FindTenants called for limit: 0")
	}
}

func TestFilter_EqNullIsNoCondition(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var gotFilter latchkey.APIKeyFilter
	e.APIKeys.FindAPIKeysFn = func(ctx context.Context, f latchkey.APIKeyFilter) ([]*latchkey.APIKey, int, error) {
		gotFilter = f
		return nil, 0, nil
	}
	var data struct {
		AuthAPIKey []any `json:"auth_api_key"`
	}
	e.Query(t, `{ auth_api_key(where: {id: {_eq: null}, user_id: {_eq: null, _in: null}, name: {}}) { id } }`, nil).MustData(t, &data)
	if gotFilter.ID != nil || gotFilter.UserID != nil || gotFilter.IDs != nil || gotFilter.TenantID != nil {
		t.Errorf("filter = %+v, want no conditions", gotFilter)
	}
}

func TestFilter_APIKeyWhere(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var gotFilter latchkey.APIKeyFilter
	e.APIKeys.FindAPIKeysFn = func(ctx context.Context, f latchkey.APIKeyFilter) ([]*latchkey.APIKey, int, error) {
		gotFilter = f
		return []*latchkey.APIKey{
			{ID: keyID, Name: "keep", UserID: saID, CreatedAt: created},
			{ID: "88888888-8888-8888-8888-888888888888", Name: "drop", UserID: saID, CreatedAt: created},
		}, 2, nil
	}
	var data struct {
		AuthAPIKey []struct{ Name string } `json:"auth_api_key"`
	}
	e.Query(t, `query($uid: uuid, $tid: uuid) { auth_api_key(where: {user_id: {_eq: $uid}, default_tenant_id: {_eq: $tid}, name: {_eq: "keep"}}, order_by: {expires_at: desc}) { name } }`,
		map[string]any{"uid": saID, "tid": tenantOneID}).MustData(t, &data)
	if gotFilter.UserID == nil || *gotFilter.UserID != saID || gotFilter.TenantID == nil || *gotFilter.TenantID != tenantOneID {
		t.Errorf("filter = %+v", gotFilter)
	}
	if !slices.Equal(gotFilter.OrderBy, []latchkey.SortOrder{{Field: "expires_at", Desc: true}}) {
		t.Errorf("OrderBy = %+v", gotFilter.OrderBy)
	}
	// The name goes to the service too (which, here, answers both keys).
	if gotFilter.Name == nil || *gotFilter.Name != "keep" || len(data.AuthAPIKey) != 2 {
		t.Errorf("filter = %+v, auth_api_key = %+v", gotFilter, data.AuthAPIKey)
	}
}

func TestFilter_MembershipRole(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.Memberships.FindMembershipsFn = func(ctx context.Context, f latchkey.MembershipFilter) ([]*latchkey.Membership, int, error) {
		// The role goes to the service.
		if f.Role == nil || *f.Role != latchkey.RoleUser {
			t.Errorf("filter = %+v", f)
		}
		return []*latchkey.Membership{
			{ID: memberID, TenantID: tenantOneID, UserID: userID, Role: latchkey.RoleTenantAdmin, User: humanUser()},
			{ID: "99999999-9999-9999-9999-999999999999", TenantID: tenantOneID, UserID: userID, Role: latchkey.RoleUser, User: humanUser()},
		}, 2, nil
	}
	var data struct{ Membership []struct{ Role string } }
	e.Query(t, `{ membership(where: {role: {_eq: "USER"}}) { role } }`, nil).MustData(t, &data)
	if len(data.Membership) != 2 {
		t.Errorf("membership = %+v", data.Membership)
	}
}

func TestInvitations(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	const invID = "99999999-9999-9999-9999-999999999999"
	var calls []string
	e.Invitations.FindInvitationsFn = func(ctx context.Context, f latchkey.InvitationFilter) ([]*latchkey.Invitation, int, error) {
		calls = append(calls, fmt.Sprintf("find offset=%d limit=%d", f.Offset, f.Limit))
		return []*latchkey.Invitation{{ID: invID, TenantID: tenantOneID, Invitee: "bob@example.com", Role: latchkey.RoleUser, CreatedAt: created}}, 1, nil
	}
	e.Invitations.FindMyInvitationsFn = func(ctx context.Context, limit int) ([]*latchkey.Invitation, error) {
		calls = append(calls, fmt.Sprintf("mine limit=%d", limit))
		return []*latchkey.Invitation{{ID: invID, TenantID: tenantTwoID, TenantName: "Two", Role: latchkey.RoleReadOnlyUser, CreatedAt: created}}, nil
	}
	e.Invitations.AcceptInvitationFn = func(ctx context.Context, id string) (*latchkey.Membership, error) {
		calls = append(calls, "accept "+id)
		return &latchkey.Membership{ID: memberID, TenantID: tenantTwoID, UserID: userID, Role: latchkey.RoleReadOnlyUser, CreatedAt: created}, nil
	}
	e.Invitations.DeclineInvitationFn = func(ctx context.Context, id string) error {
		calls = append(calls, "decline "+id)
		return latchkey.Errorf(latchkey.ENOTFOUND, "Invitation not found.")
	}
	e.Invitations.DeleteInvitationFn = func(ctx context.Context, id string) error {
		calls = append(calls, "delete "+id)
		return nil
	}
	var data struct {
		Invitation []struct {
			Invitee    *string
			TenantName *string `json:"tenant_name"`
		}
		MyInvitations []struct {
			Invitee    *string
			TenantName *string `json:"tenant_name"`
			Role       string
		} `json:"my_invitations"`
	}
	// One query each: root query fields may resolve concurrently.
	e.Query(t, `query { invitation(limit: 5, offset: 2) { invitee tenant_name } }`, nil).MustData(t, &data)
	e.Query(t, `query { my_invitations(limit: 3) { invitee tenant_name role } }`, nil).MustData(t, &data)
	if len(data.Invitation) != 1 || data.Invitation[0].Invitee == nil || *data.Invitation[0].Invitee != "bob@example.com" || data.Invitation[0].TenantName != nil {
		t.Errorf("invitation = %+v", data.Invitation)
	}
	if len(data.MyInvitations) != 1 || data.MyInvitations[0].Invitee != nil || data.MyInvitations[0].TenantName == nil ||
		*data.MyInvitations[0].TenantName != "Two" || data.MyInvitations[0].Role != "READ_ONLY_USER" {
		t.Errorf("my_invitations = %+v", data.MyInvitations)
	}
	var m struct {
		Accept struct {
			ID       string
			TenantID string `json:"tenant_id"`
		} `json:"accept_invitation"`
		Decline struct{ Success bool } `json:"decline_invitation"`
		Delete  struct{ Success bool } `json:"delete_invitation"`
	}
	in := `(input: {invitation_id: "` + invID + `"})`
	e.Query(t, `mutation { accept_invitation`+in+` { id tenant_id } decline_invitation`+in+` { success } delete_invitation`+in+` { success } }`, nil).MustData(t, &m)
	if m.Accept.ID != memberID || m.Accept.TenantID != tenantTwoID || m.Decline.Success || !m.Delete.Success {
		t.Errorf("mutations = %+v", m)
	}
	want := []string{"find offset=2 limit=5", "mine limit=3", "accept " + invID, "decline " + invID, "delete " + invID}
	if !slices.Equal(calls, want) {
		t.Errorf("calls = %q, want %q", calls, want)
	}
}
