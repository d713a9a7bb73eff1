package graphql_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/graphql"
)

// fuzzMaxBody is the body limit of the fuzzed handler: small, so that
// mutated inputs reach the 413 path too.
const fuzzMaxBody = 4096

// fuzzSlow is how long one request may take before the fuzzer reports it:
// a request that is refused should be cheap.
const fuzzSlow = 2 * time.Second

// fuzzHandler is the API on mocks that answer every call with a small,
// valid result, so that any internal error or panic the fuzzer provokes is
// the handler's or the resolvers' own. Logs go to the returned buffer.
type fuzzHandler struct {
	h    http.Handler
	logs *bytes.Buffer
}

func newFuzzHandler(tb testing.TB) *fuzzHandler {
	tb.Helper()
	e := MustNewEnv(tb)
	tenant := &latchkey.Tenant{ID: tenantOneID, Slug: "one", Name: "One", CreatedAt: created}
	key := &latchkey.APIKey{ID: keyID, Name: "k", UserID: userID, CreatedByUserID: userID, DefaultTenantID: tenantOneID, CreatedAt: created}
	token := &latchkey.APIToken{ID: tokenID, Name: "t", Scope: latchkey.TokenScopeRunner, UserID: userID, TenantID: tenantOneID, CreatedAt: created}
	sa := &latchkey.ServiceAccount{ID: saID, TenantID: tenantOneID, Name: "sa", Role: latchkey.RoleUser, CreatedByUserID: userID, CreatedAt: created}
	member := func() *latchkey.Membership {
		return &latchkey.Membership{ID: memberID, TenantID: tenantOneID, UserID: userID, Role: latchkey.RoleTenantAdmin, CreatedAt: created, User: humanUser()}
	}
	pair := &latchkey.AccessToken{AccessToken: "a.b.c", ExpiresAt: created.Add(10 * time.Minute), RefreshToken: refreshTok}

	e.Auth.SwitchTenantFn = func(ctx context.Context, tenantID string) (*latchkey.AccessToken, error) { return pair, nil }
	e.Auth.RefreshAccessTokenFn = func(ctx context.Context, refresh, access string) (*latchkey.AccessToken, error) {
		if refresh != refreshTok {
			return nil, latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Invalid refresh token.")
		}
		return pair, nil
	}
	e.Tenants.FindTenantByIDFn = func(ctx context.Context, id string) (*latchkey.Tenant, error) { return tenant, nil }
	e.Tenants.FindTenantsFn = func(ctx context.Context, f latchkey.TenantFilter) ([]*latchkey.Tenant, int, error) {
		return []*latchkey.Tenant{tenant}, 1, nil
	}
	e.Tenants.CreateTenantFn = func(ctx context.Context, t *latchkey.Tenant) error {
		t.ID, t.CreatedAt = tenantTwoID, created
		if t.Slug == "" {
			t.Slug = "two"
		}
		return nil
	}
	e.Users.FindUserByIDFn = func(ctx context.Context, id string) (*latchkey.User, error) { return humanUser(), nil }
	e.Users.FindUsersFn = func(ctx context.Context, f latchkey.UserFilter) ([]*latchkey.User, int, error) {
		return []*latchkey.User{humanUser()}, 1, nil
	}
	e.Memberships.FindMembershipsFn = func(ctx context.Context, f latchkey.MembershipFilter) ([]*latchkey.Membership, int, error) {
		return []*latchkey.Membership{member()}, 1, nil
	}
	e.Memberships.CreateMembershipFn = func(ctx context.Context, in latchkey.MembershipCreate) (*latchkey.Membership, *latchkey.Invitation, error) {
		return member(), nil, nil
	}
	e.Memberships.UpdateMembershipRoleFn = func(ctx context.Context, id string, role latchkey.Role) (*latchkey.Membership, error) {
		return member(), nil
	}
	e.Memberships.DeleteMembershipFn = func(ctx context.Context, id string) error { return nil }
	e.ServiceAccounts.FindServiceAccountsFn = func(ctx context.Context, f latchkey.ServiceAccountFilter) ([]*latchkey.ServiceAccount, int, error) {
		return []*latchkey.ServiceAccount{sa}, 1, nil
	}
	e.ServiceAccounts.CreateServiceAccountFn = func(ctx context.Context, in *latchkey.ServiceAccount) error {
		in.ID, in.TenantID, in.CreatedAt = saID, tenantOneID, created
		return nil
	}
	e.ServiceAccounts.DeleteServiceAccountFn = func(ctx context.Context, id string) error { return nil }
	e.APIKeys.FindAPIKeysFn = func(ctx context.Context, f latchkey.APIKeyFilter) ([]*latchkey.APIKey, int, error) {
		return []*latchkey.APIKey{key}, 1, nil
	}
	e.APIKeys.CreateAPIKeyFn = func(ctx context.Context, k *latchkey.APIKey) (string, error) {
		k.ID = keyID
		return goodKey, nil
	}
	e.APIKeys.DeleteAPIKeyFn = func(ctx context.Context, id string) error { return nil }
	e.APITokens.FindAPITokensFn = func(ctx context.Context, f latchkey.APITokenFilter) ([]*latchkey.APIToken, int, error) {
		return []*latchkey.APIToken{token}, 1, nil
	}
	e.APITokens.CreateAPITokenFn = func(ctx context.Context, t *latchkey.APIToken) (string, error) {
		t.ID = tokenID
		return runnerToken, nil
	}
	e.APITokens.DeleteAPITokenFn = func(ctx context.Context, id string) error { return nil }

	logs := &bytes.Buffer{}
	e.Server.Logger = slog.New(slog.NewTextHandler(logs, nil))
	e.Server.MaxBodyBytes = fuzzMaxBody
	return &fuzzHandler{h: e.Server.Handler(), logs: logs}
}

// credential picks the Authorization credential: none, the mocks' key,
// their RUNNER token, a refresh token, or the fuzzer's text.
func credential(pick uint8, text string) string {
	switch pick % 5 {
	case 0:
		return ""
	case 1:
		return goodKey
	case 2:
		return runnerToken
	case 3:
		return refreshTok
	}
	return text
}

// serve posts body and checks the invariants every answer must keep: the
// handler never panics, answers within fuzzSlow, answers 200 (or 400 for a body that is not a
// GraphQL request, 413 only for one over the limit), always with a JSON
// body whose errors list is absent or non-empty and free of "API_ERROR",
// and never hits an internal error (the mocks never fail).
func (f *fuzzHandler) serve(t *testing.T, body []byte, auth, tenant string) {
	t.Helper()
	f.logs.Reset()
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-PREFECT-CORE-VERSION", "1.0.0")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if tenant != "" {
		req.Header.Set("X-PREFECT-TENANT-ID", tenant)
	}
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.h.ServeHTTP(rec, req) // a panic here crashes the test binary: a failure
	}()
	select {
	case <-done:
	case <-time.After(fuzzSlow):
		t.Fatalf("a %d-byte request took over %s: the limits let expensive queries through", len(body), fuzzSlow)
	}

	switch rec.Code {
	case http.StatusOK, http.StatusBadRequest:
	case http.StatusRequestEntityTooLarge:
		if len(body) <= fuzzMaxBody {
			t.Fatalf("413 for a %d-byte body (limit %d)", len(body), fuzzMaxBody)
		}
	default:
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q: %s", ct, rec.Body)
	}
	var resp struct {
		Data   json.RawMessage   `json:"data"`
		Errors []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("status %d: body is not JSON: %v: %q", rec.Code, err, rec.Body)
	}
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(rec.Body.Bytes(), &raw)
	if e, ok := raw["errors"]; ok && (len(resp.Errors) == 0 || string(e) == "null") {
		t.Fatalf("empty errors: %s", rec.Body)
	}
	if rec.Code != http.StatusOK && len(resp.Errors) == 0 {
		t.Fatalf("status %d without errors: %s", rec.Code, rec.Body)
	}
	if len(resp.Errors) == 0 && (len(resp.Data) == 0 || string(resp.Data) == "null") {
		t.Fatalf("neither data nor errors: %s", rec.Body)
	}
	for _, e := range resp.Errors {
		if bytes.Contains(e, []byte("API_ERROR")) {
			t.Fatalf("API_ERROR in errors: %s", rec.Body)
		}
		var ge struct {
			Message    string `json:"message"`
			Extensions struct {
				Code string `json:"code"`
			} `json:"extensions"`
		}
		if err := json.Unmarshal(e, &ge); err != nil || ge.Message == "" || ge.Extensions.Code == "" {
			t.Fatalf("error without message or code: %s", rec.Body)
		}
		if ge.Extensions.Code == graphql.CodeInternal {
			t.Fatalf("internal error: %s\nlogs:\n%s", rec.Body, f.logs)
		}
	}
	if strings.Contains(f.logs.String(), "panic") {
		t.Fatalf("panic logged:\n%s", f.logs)
	}
}

// prefectQueries are query texts the Prefect 1.x client sends, and a few
// hostile ones, to seed the fuzzers.
var prefectQueries = []string{
	"query { hello }",
	"query {\n    auth_info {\n        tenant_id\n    }\n}",
	"query { auth_info { tenant_id user_id api_token_scope role } }",
	"query {\n    tenant(order_by: {slug: asc}) {\n        id\n        slug\n        name\n    }\n}",
	"query($slug: String) {\n    tenant(where: {slug: { _eq: $slug } }) {\n        id\n    }\n}",
	"query($slug: String, $id: uuid) {\n    tenant(where: {slug: { _eq: $slug }, id: { _eq: $id } }) {\n        id\n    }\n}",
	"mutation($input: create_api_key_input!) {\n    create_api_key(input: $input) {\n        key\n    }\n}",
	"query {\n    auth_api_key {\n        id\n        name\n        expires_at\n    }\n}",
	"mutation($input: delete_api_key_input!) {\n    delete_api_key(input: $input) {\n        success\n    }\n}",
	"mutation($input: rotate_api_key_input!) { rotate_api_key(input: $input) { id key old_key_expires_at } }",
	"mutation($input: switch_tenant_input!) {\n    switch_tenant(input: $input) {\n        access_token\n        expires_at\n        refresh_token\n    }\n}",
	"mutation($input: refresh_token_input!) {\n    refresh_token(input: $input) {\n        access_token\n        expires_at\n        refresh_token\n    }\n}",
	"mutation($input: create_api_token_input!) { create_api_token(input: $input) { id token } }",
	"query { api_token { id name scope tenant_id user_id created_at last_used_at } }",
	"query { user { id email name kind default_membership { id role } memberships { id tenant_id user { id } } } }",
	"query { service_account(where: {tenant_id: {_eq: \"11111111-1111-1111-1111-111111111111\"}}) { id name role api_keys { id } } }",
	"query { membership(where: {_or: [{role: {_eq: \"USER\"}}, {_not: {id: {_in: []}}}]}, limit: 2, offset: 1) { id role user { email } } }",
	"mutation { create_tenant(input: {name: \"T\", slug: \"t\"}) { id slug } create_service_account(input: {name: \"s\", role: \"USER\"}) { id } }",
	"mutation { create_membership(input: {email: \"a@b.c\"}) { membership { id } invitation { id } } update_membership_role(input: {membership_id: \"66666666-6666-6666-6666-666666666666\", role: \"USER\"}) { id } delete_membership(input: {membership_id: \"66666666-6666-6666-6666-666666666666\"}) { success } }",
	"mutation { delete_service_account(input: {service_account_id: \"55555555-5555-5555-5555-555555555555\"}) { success } delete_api_token(input: {token_id: \"x\"}) { success } }",
	"query A { hello } query B { auth_info { role } }",
	"fragment F on tenant { id ...F } query { tenant { ...F } }",
	"query { __schema { types { name fields { name } } } }",
	"query { __typename API_ERROR: hello }",
	"subscription { hello }",
	"{ a: hello b: hello c: hello }",
	"query ($x: Int = 1e400) { tenant(limit: $x) { id } }",
	"query { tenant(limit: -1, offset: 99999999999) { id } }",
	"{{{{{{{{{{{{{{{{{{{{",
	"",
}

// FuzzHandler_Request fuzzes the fields of a well-formed request body: the
// query, the variables (as the Prefect client's JSON-encoded string, or as
// a JSON object when they parse as one), the operation name and headers.
func FuzzHandler_Request(f *testing.F) {
	vars := []string{
		"null", "", "{}", `{"slug": "one"}`, `{"slug": null, "id": "11111111-1111-1111-1111-111111111111"}`,
		`{"input": {"name": "ci", "user_id": null, "expires_at": "2030-01-01T00:00:00+00:00"}}`,
		`{"input": {"key_id": "44444444-4444-4444-4444-444444444444"}}`,
		`{"input": {"tenant_id": "22222222-2222-2222-2222-222222222222"}}`,
		`{"input": {"access_token": "a.b.c"}}`,
		`{"input": {"name": "t", "scope": "RUNNER"}}`,
		`{"input": {"name": "API_ERROR", "expires_at": "API_ERROR"}}`,
		`{"input": {"key_id": "not-a-uuid"}}`, `[1,2]`, `"nested"`, `{"a": 1e999}`, `{"input": {"expires_at": 12}}`,
	}
	for i, q := range prefectQueries {
		f.Add(q, vars[i%len(vars)], "", uint8(i), "lku_whatever", "", i%2 == 0)
	}
	f.Add(prefectQueries[1], "null", "", uint8(1), "", tenantTwoID, false)
	f.Add(prefectQueries[1], "null", "", uint8(1), "", "not-a-uuid", false)
	f.Add(prefectQueries[19], "null", "B", uint8(1), "", "", false)
	f.Add(prefectQueries[19], "null", "C", uint8(1), "", "", false)
	f.Add(prefectQueries[10], vars[8], "", uint8(3), "", "", false)
	f.Add(prefectQueries[10], vars[8], "", uint8(4), "Bearer lkr_garbage", "", false)
	f.Add(prefectQueries[1], "null", "", uint8(4), "Token abc", "", false)
	f.Add(prefectQueries[1], "null", "", uint8(4), "Bearer a b", "", false)
	f.Add(prefectQueries[1], "null", "", uint8(4), "Bearer "+strings.Repeat("x.", 3000), "", false)

	h := newFuzzHandler(f)
	f.Fuzz(func(t *testing.T, query, variables, opName string, pick uint8, authText, tenant string, varsAsObject bool) {
		req := map[string]any{"query": query, "variables": variables}
		if opName != "" {
			req["operationName"] = opName
		}
		if varsAsObject && json.Valid([]byte(variables)) {
			req["variables"] = json.RawMessage(variables)
		}
		body, err := json.Marshal(req)
		if err != nil {
			return // not valid UTF-8 for a JSON string; FuzzHandler_Body covers raw bytes
		}
		auth := authText
		if c := credential(pick, authText); pick%5 != 4 {
			auth = ""
			if c != "" {
				auth = "Bearer " + c
			}
		}
		h.serve(t, body, auth, tenant)
	})
}

// FuzzHandler_Body fuzzes the raw request body.
func FuzzHandler_Body(f *testing.F) {
	for i, q := range prefectQueries {
		b, _ := json.Marshal(map[string]any{"query": q, "variables": "null"})
		f.Add(b, uint8(i))
	}
	for _, s := range []string{
		``, `null`, `[]`, `"x"`, `{}`, `{"query": 1}`, `{"query": "{ hello }", "variables": "{\"a\":"}`,
		`{"query": "{ hello }", "variables": "[1]"}`, `{"query": "{ hello }", "variables": 7}`,
		`{"query": "{ hello }", "variables": "\"null\""}`, `{"query": "{ hello }", "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "abc"}}}`,
		`{"query": "{ hello }"} trailing`, `{"query": "{ hello }", "query": "{ auth_info { role } }"}`,
		`{"query": "{ hello }", "variables": "` + strings.Repeat("[", 5000) + `"}`,
		`{"query": "` + strings.Repeat("{ tenant ", 40) + `"}`,
		`{"query": "{ hello }", "variables": {"x": ` + strings.Repeat(`[`, 2000) + strings.Repeat(`]`, 2000) + `}}`,
		strings.Repeat(" ", fuzzMaxBody+1),
		"\xff\xfe{\"query\": \"{ hello }\"}",
	} {
		f.Add([]byte(s), uint8(1))
	}
	h := newFuzzHandler(f)
	f.Fuzz(func(t *testing.T, body []byte, pick uint8) {
		auth := ""
		if c := credential(pick, ""); c != "" {
			auth = "Bearer " + c
		}
		h.serve(t, body, auth, "")
	})
}
