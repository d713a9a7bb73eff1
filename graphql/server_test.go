package graphql_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/graphql"
)

func TestHandler_Variables(t *testing.T) {
	t.Parallel()
	const query = `query($slug: String) { tenant(where: {slug: {_eq: $slug}}) { id } }`
	for _, tt := range []struct {
		name string
		vars string // the JSON text of the "variables" member; "" omits it
		want *string
	}{
		{"string null", `"null"`, nil},
		{"string object", `"{\"slug\": \"tenant-two\"}"`, new("tenant-two")},
		{"string padded", `" {\"slug\": \"tenant-two\"} "`, new("tenant-two")},
		{"string empty", `""`, nil},
		{"object", `{"slug": "tenant-two"}`, new("tenant-two")},
		{"json null", `null`, nil},
		{"absent", ``, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := MustNewEnv(t)
			called := false
			e.Tenants.FindTenantsFn = func(ctx context.Context, f latchkey.TenantFilter) ([]*latchkey.Tenant, int, error) {
				called = true
				switch {
				case tt.want == nil && f.Slug != nil:
					t.Errorf("Slug = %q, want nil", *f.Slug)
				case tt.want != nil && (f.Slug == nil || *f.Slug != *tt.want):
					t.Errorf("Slug = %v, want %q", f.Slug, *tt.want)
				}
				return nil, 0, nil
			}
			body := `{"query": "` + strings.ReplaceAll(query, `"`, `\"`) + `"`
			if tt.vars != "" {
				body += `, "variables": ` + tt.vars
			}
			body += "}"
			var data struct {
				Tenant []any `json:"tenant"`
			}
			e.Post(t, body, map[string]string{"Authorization": "Bearer " + goodKey}).MustData(t, &data)
			if !called {
				t.Error("FindTenants not called")
			}
			if data.Tenant == nil || len(data.Tenant) != 0 {
				t.Errorf("tenant = %v, want []", data.Tenant)
			}
		})
	}
}

func TestHandler_BadVariables(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	for _, vars := range []string{`"[1,2]"`, `"{not json"`, `[1]`, `42`, `"{\"a\": 1}}"`, `"{\"a\": 1} {}"`} {
		resp := e.Post(t, `{"query": "{ hello }", "variables": `+vars+`}`, nil)
		if resp.Status != http.StatusBadRequest || resp.Code() != "BAD_USER_INPUT" {
			t.Errorf("variables %s: status %d code %q, want 400 BAD_USER_INPUT: %s", vars, resp.Status, resp.Code(), resp.Body)
		}
	}
}

func TestHandler_MalformedJSON(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	for _, body := range []string{
		`{"query": `,
		`{"query": "{ hello }"} x`,
		`{"query": "{ hello }"}{}`,
		`{"query": "{ hello }", "extensions": [1]}`,
		`{"query": 1}`,
	} {
		resp := e.Post(t, body, nil)
		if got, want := resp.Status, http.StatusBadRequest; got != want {
			t.Errorf("%s: status = %d, want %d", body, got, want)
		}
		if len(resp.Errors) == 0 || resp.Code() != "BAD_USER_INPUT" {
			t.Errorf("%s: body = %s", body, resp.Body)
		}
	}
}

// Extensions are decoded (numbers kept exact) and otherwise ignored.
func TestHandler_Extensions(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	for _, ext := range []string{`null`, `{}`, `{"n": 12345678901234567890, "s": "x"}`} {
		var data struct{ Hello string }
		e.Post(t, `{"query": "{ hello }", "extensions": `+ext+`}`, nil).MustData(t, &data)
		if data.Hello != "👋" {
			t.Errorf("extensions %s: hello = %q", ext, data.Hello)
		}
	}
}

// A response with data only is written as json.Encoder would write it
// without HTML escaping: compact, strings as gqlgen marshals them.
func TestHandler_DataOnlyResponseBytes(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	user := humanUser()
	user.Name = "<Ada & \u2028 \"Lovelace\"\\ \x01>"
	e.Auth.AuthenticateFn = func(ctx context.Context, credential, tenantID string) (*latchkey.Auth, error) {
		return &latchkey.Auth{User: user, TenantID: tenantOneID, Role: latchkey.RoleUser, Kind: latchkey.CredentialAPIKey, APIKeyID: keyID}, nil
	}
	e.Users.FindUserByIDFn = func(ctx context.Context, id string) (*latchkey.User, error) { return user, nil }
	resp := e.Post(t, `{"query": "{ user { name } }"}`, map[string]string{"Authorization": "Bearer " + goodKey})
	want := "{\"data\":{\"user\":[{\"name\":\"<Ada & \u2028 \\\"Lovelace\\\"\\\\ \\u0001>\"}]}}\n"
	if resp.Body != want {
		t.Errorf("body = %q, want %q", resp.Body, want)
	}
}

func TestHandler_BodyTooLarge(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	auth := map[string]string{"Authorization": "Bearer " + goodKey} // anonymous bodies have a smaller limit
	body := `{"query": "{ hello }", "variables": {"x": "` + strings.Repeat("a", 1<<20) + `"}}`
	resp := e.Post(t, body, auth)
	if got, want := resp.Status, http.StatusRequestEntityTooLarge; got != want {
		t.Errorf("status = %d, want %d", got, want)
	}
	if got, want := resp.Code(), "REQUEST_TOO_LARGE"; got != want {
		t.Errorf("code = %q, want %q", got, want)
	}
	if !strings.Contains(resp.Errors[0].Message, "1048576 bytes") {
		t.Errorf("message = %q, want the limit", resp.Errors[0].Message)
	}

	// Just under the limit is fine.
	body = `{"query": "{ hello }", "variables": {"x": "` + strings.Repeat("a", 1<<19) + `"}}`
	var data struct{ Hello string }
	e.Post(t, body, auth).MustData(t, &data)
	if data.Hello != "👋" {
		t.Errorf("hello = %q", data.Hello)
	}
}

// A request without a credential may send far less: it can only say hello
// or refresh a token.
func TestHandler_AnonymousBodyTooLarge(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	body := `{"query": "{ hello }", "variables": {"x": "` + strings.Repeat("a", graphql.DefaultMaxAnonymousBodyBytes) + `"}}`
	resp := e.Post(t, body, nil)
	if resp.Status != http.StatusRequestEntityTooLarge || resp.Code() != "REQUEST_TOO_LARGE" ||
		!strings.Contains(resp.Errors[0].Message, "65536 bytes") {
		t.Errorf("status %d: %s", resp.Status, resp.Body)
	}
	body = `{"query": "{ hello }", "variables": {"x": "` + strings.Repeat("a", graphql.DefaultMaxAnonymousBodyBytes-100) + `"}}`
	var data struct{ Hello string }
	e.Post(t, body, nil).MustData(t, &data)
	if data.Hello != "👋" {
		t.Errorf("hello = %q", data.Hello)
	}
}

func TestHandler_GET(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	rec := httptest.NewRecorder()
	e.Server.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if got, want := rec.Code, http.StatusMethodNotAllowed; got != want {
		t.Errorf("status = %d, want %d", got, want)
	}
	if got, want := rec.Header().Get("Allow"), "POST"; got != want {
		t.Errorf("Allow = %q, want %q", got, want)
	}
	if !strings.Contains(rec.Body.String(), "POST") {
		t.Errorf("body = %q", rec.Body.String())
	}
}

func TestHandler_HelloAnonymous(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.Auth.AuthenticateFn = func(context.Context, string, string) (*latchkey.Auth, error) {
		mustNotCall(t, "Authenticate")()
		return nil, errors.New("no")
	}
	// Exactly what the Prefect client sends with no variables.
	resp := e.Post(t, `{"query": "query { hello }", "variables": "null"}`, nil)
	var data struct{ Hello *string }
	resp.MustData(t, &data)
	if data.Hello == nil || *data.Hello != "👋" {
		t.Errorf("hello = %v", data.Hello)
	}
	if got, want := resp.Body, `{"data":{"hello":"👋"}}`+"\n"; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
}

// Introspection needs a credential; __typename does not.
func TestHandler_IntrospectionNeedsCredential(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	for _, q := range []string{
		`{ __schema { queryType { name } } }`,
		`{ __type(name: "auth_api_key") { name } }`,
		`{ hello __schema { queryType { name } } }`,
	} {
		resp := e.QueryAs(t, "", nil, q, nil)
		resp.MustError(t, "UNAUTHENTICATED", false)
		if strings.Contains(resp.Body, "queryType") || strings.Contains(resp.Body, `"auth_api_key"`) {
			t.Errorf("%s: introspection answered anonymously: %s", q, resp.Body)
		}
		var data map[string]any
		e.QueryAs(t, goodKey, nil, q, nil).MustData(t, &data)
	}
	var data struct {
		Typename string `json:"__typename"`
	}
	e.QueryAs(t, "", nil, `{ __typename }`, nil).MustData(t, &data)
	if data.Typename != "Query" {
		t.Errorf("__typename = %q", data.Typename)
	}
}

func TestHandler_AnonymousIsUnauthenticated(t *testing.T) {
	t.Parallel()
	queries := []string{
		"query { auth_info { tenant_id } }",
		"query { tenant { id } }",
		"query { user { id } }",
		"query { auth_api_key { id } }",
		"query { api_token { id } }",
		"query { service_account { id } }",
		"query { membership { id } }",
		`mutation { create_api_key(input: {name: "k"}) { key } }`,
		`mutation { delete_api_key(input: {key_id: "44444444-4444-4444-4444-444444444444"}) { success } }`,
		`mutation { create_tenant(input: {name: "t"}) { id } }`,
		`mutation { switch_tenant(input: {}) { access_token } }`,
		`mutation { create_api_token(input: {name: "t", scope: "USER"}) { token } }`,
		`mutation { create_service_account(input: {name: "sa"}) { id } }`,
		`mutation { create_membership(input: {email: "a@example.com"}) { membership { id } } }`,
		"query { my_invitations { id } }",
		`mutation { accept_invitation(input: {invitation_id: "66666666-6666-6666-6666-666666666666"}) { id } }`,
	}
	for _, q := range queries {
		e := MustNewEnv(t) // every service Fn is nil: a call would be an internal error
		resp := e.QueryAs(t, "", nil, q, nil)
		resp.MustError(t, "UNAUTHENTICATED", false)
		if strings.Contains(resp.Body, "Internal") {
			t.Errorf("%s: a service was called: %s", q, resp.Body)
		}
	}
}

func TestHandler_AuthFailureShape(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var gotCredential string
	e.Auth.AuthenticateFn = func(ctx context.Context, credential, tenantID string) (*latchkey.Auth, error) {
		gotCredential = credential
		return nil, latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Unauthorized")
	}
	resp := e.QueryAs(t, "lku_badbadbadbadbadbadbadbadbadbadbAAAAAA", nil, "query {\n    auth_info {\n        tenant_id\n    }\n}", nil)
	resp.MustError(t, "UNAUTHENTICATED", true)
	if got, want := resp.Errors[0].Message, "Unauthorized"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	if gotCredential != "lku_badbadbadbadbadbadbadbadbadbadbAAAAAA" {
		t.Errorf("Authenticate credential = %q", gotCredential)
	}
	if got, want := resp.Body, `{"errors":[{"message":"Unauthorized","extensions":{"code":"UNAUTHENTICATED"}}],"data":null}`+"\n"; got != want {
		t.Errorf("body = %s, want %s", got, want)
	}

	// Nothing is executed, not even hello.
	resp = e.QueryAs(t, "lku_bad", nil, "query { hello }", nil)
	resp.MustError(t, "UNAUTHENTICATED", true)
}

func TestHandler_RateLimitedIsUnauthenticated(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.Auth.AuthenticateFn = func(ctx context.Context, credential, tenantID string) (*latchkey.Auth, error) {
		return nil, latchkey.Errorf(latchkey.ERATELIMIT, "Too many failed attempts; try again later.")
	}
	resp := e.Query(t, "query { auth_info { tenant_id } }", nil)
	resp.MustError(t, "UNAUTHENTICATED", true)
	if got, want := resp.Errors[0].Message, "Too many failed attempts; try again later."; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}

func TestHandler_AuthenticateInternalError(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.Auth.AuthenticateFn = func(ctx context.Context, credential, tenantID string) (*latchkey.Auth, error) {
		return nil, errors.New("database is locked")
	}
	resp := e.Query(t, "query { auth_info { tenant_id } }", nil)
	resp.MustError(t, "INTERNAL_SERVER_ERROR", true)
	if got, want := resp.Errors[0].Message, "Internal error."; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	if strings.Contains(resp.Body, "database") {
		t.Errorf("body leaks the internal error: %s", resp.Body)
	}
	if !strings.Contains(e.Logs.String(), "database is locked") {
		t.Errorf("internal error not logged: %s", e.Logs.String())
	}
}

func TestHandler_MalformedAuthorizationHeader(t *testing.T) {
	t.Parallel()
	for _, header := range []string{"Token abc", "Bearer", "Bearer ", "Bearer a b", "Basic dXNlcjpwYXNz", goodKey} {
		e := MustNewEnv(t)
		e.Auth.AuthenticateFn = func(context.Context, string, string) (*latchkey.Auth, error) {
			mustNotCall(t, "Authenticate")()
			return nil, errors.New("no")
		}
		resp := e.Post(t, `{"query": "query { auth_info { tenant_id } }", "variables": "null"}`, map[string]string{"Authorization": header})
		resp.MustError(t, "UNAUTHENTICATED", true)
		if !strings.Contains(resp.Errors[0].Message, "Malformed Authorization header") {
			t.Errorf("%q: message = %q", header, resp.Errors[0].Message)
		}
		if strings.Contains(resp.Body, "dXNlcjpwYXNz") || strings.Contains(resp.Body, goodKey) {
			t.Errorf("%q: body echoes the credential: %s", header, resp.Body)
		}
	}
}

func TestHandler_BearerSchemeCaseInsensitive(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var data struct {
		AuthInfo struct {
			UserID string `json:"user_id"`
		} `json:"auth_info"`
	}
	e.Post(t, `{"query": "{ auth_info { user_id } }"}`, map[string]string{"Authorization": "bearer " + goodKey}).MustData(t, &data)
	if data.AuthInfo.UserID != userID {
		t.Errorf("user_id = %q", data.AuthInfo.UserID)
	}
}

func TestHandler_TenantHeader(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var got string
	authenticate := e.Auth.AuthenticateFn
	e.Auth.AuthenticateFn = func(ctx context.Context, credential, tenantID string) (*latchkey.Auth, error) {
		got = tenantID
		return authenticate(ctx, credential, tenantID)
	}
	var data struct {
		AuthInfo struct {
			TenantID string `json:"tenant_id"`
		} `json:"auth_info"`
	}
	e.QueryAs(t, goodKey, map[string]string{"X-PREFECT-TENANT-ID": strings.ToUpper(tenantTwoID)}, "{ auth_info { tenant_id } }", nil).MustData(t, &data)
	if got != tenantTwoID {
		t.Errorf("Authenticate tenant = %q, want %q", got, tenantTwoID)
	}
	if data.AuthInfo.TenantID != tenantTwoID {
		t.Errorf("tenant_id = %q", data.AuthInfo.TenantID)
	}

	got = "not called"
	resp := e.QueryAs(t, goodKey, map[string]string{"X-PREFECT-TENANT-ID": "not-a-uuid"}, "{ auth_info { tenant_id } }", nil)
	resp.MustError(t, "UNAUTHENTICATED", true)
	if got != "not called" {
		t.Errorf("Authenticate called with a malformed tenant header")
	}
}

func TestHandler_PrefectHeadersTolerated(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var data struct {
		AuthInfo map[string]any `json:"auth_info"`
	}
	e.QueryAs(t, goodKey, map[string]string{
		"X-PREFECT-CORE-VERSION": "1.0.0",
		"X-PREFECT-AGENT-ID":     "d5a1bc3a-0000-4000-8000-000000000000",
		"X-PREFECT-HEARTBEAT-ID": "flow-run-id",
		"User-Agent":             "python-requests/2.27.1",
		"X-PREFECT-TENANT-ID":    tenantOneID,
	}, "{ auth_info { tenant_id user_id role api_token_scope } }", nil).MustData(t, &data)
	want := map[string]any{"tenant_id": tenantOneID, "user_id": userID, "role": "TENANT_ADMIN", "api_token_scope": nil}
	mustFields(t, "", data.AuthInfo, want)
}

func TestHandler_RefreshTokenPath(t *testing.T) {
	t.Parallel()
	const mutation = `mutation($input: refresh_token_input!) { refresh_token(input: $input) { access_token } }`
	vars := map[string]any{"input": map[string]any{"access_token": "eyJold.e30.sig"}}

	t.Run("no bearer", func(t *testing.T) {
		e := MustNewEnv(t)
		e.Auth.RefreshAccessTokenFn = func(context.Context, string, string) (*latchkey.AccessToken, error) {
			mustNotCall(t, "RefreshAccessToken")()
			return nil, errors.New("no")
		}
		resp := e.QueryAs(t, "", nil, mutation, vars)
		resp.MustError(t, "UNAUTHENTICATED", false)
	})

	t.Run("rejected", func(t *testing.T) {
		e := MustNewEnv(t)
		e.Auth.AuthenticateFn = func(context.Context, string, string) (*latchkey.Auth, error) {
			mustNotCall(t, "Authenticate")()
			return nil, errors.New("no")
		}
		e.Auth.RefreshAccessTokenFn = func(ctx context.Context, refresh, access string) (*latchkey.AccessToken, error) {
			return nil, latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Invalid refresh token.")
		}
		resp := e.QueryAs(t, refreshTok, nil, mutation, vars)
		resp.MustError(t, "UNAUTHENTICATED", false)
		if strings.Contains(resp.Body, refreshTok) {
			t.Errorf("body echoes the refresh token: %s", resp.Body)
		}
	})

	// What a bearer credential is, is decided by its prefix, never by
	// parsing the query: a refresh token authenticates no caller, so it
	// reaches only what an anonymous request reaches, plus refresh_token.
	t.Run("a refresh token is no caller for other fields", func(t *testing.T) {
		e := MustNewEnv(t)
		e.Auth.AuthenticateFn = func(ctx context.Context, credential, tenantID string) (*latchkey.Auth, error) {
			mustNotCall(t, "Authenticate")()
			return nil, errors.New("no")
		}
		e.Auth.RefreshAccessTokenFn = func(ctx context.Context, refresh, access string) (*latchkey.AccessToken, error) {
			if refresh != refreshTok {
				t.Errorf("refresh token %q", refresh)
			}
			return &latchkey.AccessToken{AccessToken: "new"}, nil
		}
		resp := e.QueryAs(t, refreshTok, nil, `mutation($input: refresh_token_input!) {
			refresh_token(input: $input) { access_token }
			create_tenant(input: {name: "x"}) { id }
		}`, vars)
		resp.MustError(t, "UNAUTHENTICATED", false)
		if !strings.Contains(resp.Body, `"access_token":"new"`) || !strings.Contains(resp.Body, `"create_tenant":null`) {
			t.Errorf("body %s", resp.Body)
		}
		var data struct {
			RefreshToken string `json:"refresh_token"`
		}
		e.QueryAs(t, refreshTok, nil, `query { refresh_token: hello }`, nil).MustData(t, &data)
		e.QueryAs(t, refreshTok, nil, `query { auth_info { user_id } }`, nil).MustError(t, "UNAUTHENTICATED", false)
	})

	t.Run("a key sent to refresh_token is no refresh token", func(t *testing.T) {
		e := MustNewEnv(t)
		e.Auth.RefreshAccessTokenFn = func(context.Context, string, string) (*latchkey.AccessToken, error) {
			mustNotCall(t, "RefreshAccessToken")()
			return nil, errors.New("no")
		}
		e.QueryAs(t, goodKey, nil, mutation, vars).MustError(t, "UNAUTHENTICATED", false)
	})
}

func TestHandler_ErrorCodes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		code latchkey.Code
		want string
		msg  string
	}{
		{latchkey.EUNAUTHENTICATED, "UNAUTHENTICATED", "Unauthenticated"},
		{latchkey.ERATELIMIT, "UNAUTHENTICATED", "Slow down."},
		{latchkey.EFORBIDDEN, "FORBIDDEN", "Only tenant admins may do that."},
		{latchkey.EINVALID, "BAD_USER_INPUT", "Bad input."},
		{latchkey.ENOTFOUND, "NOT_FOUND", "Tenant not found."},
		{latchkey.ECONFLICT, "CONFLICT", "Slug taken."},
		{latchkey.ETOOLARGE, "REQUEST_TOO_LARGE", "Too large."},
		{latchkey.EINTERNAL, "INTERNAL_SERVER_ERROR", "Internal error."},
		{"something_new", "INTERNAL_SERVER_ERROR", "Internal error."},
	} {
		t.Run(string(tt.code), func(t *testing.T) {
			e := MustNewEnv(t)
			e.Tenants.FindTenantsFn = func(ctx context.Context, f latchkey.TenantFilter) ([]*latchkey.Tenant, int, error) {
				return nil, 0, latchkey.Errorf(tt.code, "%s", tt.msg)
			}
			resp := e.Query(t, "{ tenant { id } }", nil)
			resp.MustError(t, tt.want, true)
			if got := resp.Errors[0].Message; got != tt.msg {
				t.Errorf("message = %q, want %q", got, tt.msg)
			}
		})
	}
}

func TestHandler_Forbidden(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.ServiceAccounts.CreateServiceAccountFn = func(ctx context.Context, sa *latchkey.ServiceAccount) error {
		return latchkey.Errorf(latchkey.EFORBIDDEN, "Only tenant admins may create service accounts.")
	}
	resp := e.Query(t, `mutation { create_service_account(input: {name: "agent"}) { id } }`, nil)
	resp.MustError(t, "FORBIDDEN", false)
	if got, want := resp.Errors[0].Message, "Only tenant admins may create service accounts."; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	if got, want := string(resp.Data), `{"create_service_account":null}`; got != want {
		t.Errorf("data = %s, want %s", got, want)
	}
}

func TestHandler_InternalErrorHidesDetails(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.Tenants.FindTenantsFn = func(ctx context.Context, f latchkey.TenantFilter) ([]*latchkey.Tenant, int, error) {
		return nil, 0, errors.New("find tenants: SELECT failed near lku_leakedleakedleakedleakedleakedAAAAAA: API_ERROR")
	}
	resp := e.Query(t, "{ tenant { id } }", nil)
	resp.MustError(t, "INTERNAL_SERVER_ERROR", true)
	if got, want := resp.Errors[0].Message, "Internal error."; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	for _, leak := range []string{"SELECT", "lku_leaked", "find tenants"} {
		if strings.Contains(resp.Body, leak) {
			t.Errorf("body contains %q: %s", leak, resp.Body)
		}
	}
	logs := e.Logs.String()
	if !strings.Contains(logs, "SELECT failed") {
		t.Errorf("internal error not logged: %s", logs)
	}
	if strings.Contains(logs, "lku_leaked") {
		t.Errorf("log contains a secret: %s", logs)
	}
}

func TestHandler_PanicIsInternalError(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.Tenants.FindTenantsFn = func(ctx context.Context, f latchkey.TenantFilter) ([]*latchkey.Tenant, int, error) {
		panic("boom with lku_panickypanickypanickypanickypaAAAAAA")
	}
	resp := e.Query(t, "{ tenant { id } }", nil)
	resp.MustError(t, "INTERNAL_SERVER_ERROR", true)
	if strings.Contains(resp.Body, "boom") {
		t.Errorf("body leaks the panic: %s", resp.Body)
	}
	logs := e.Logs.String()
	if !strings.Contains(logs, "boom") || strings.Contains(logs, "lku_panicky") {
		t.Errorf("panic not logged, or logged with its secret: %s", logs)
	}
}

func TestHandler_NeverAPIError(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.Tenants.FindTenantsFn = func(ctx context.Context, f latchkey.TenantFilter) ([]*latchkey.Tenant, int, error) {
		return nil, 0, latchkey.Errorf(latchkey.EINVALID, "upstream said API_ERROR and api_error")
	}
	// Post fails the test if the body contains API_ERROR.
	resp := e.Query(t, "{ tenant { id } }", nil)
	resp.MustError(t, "BAD_USER_INPUT", true)
	if strings.Contains(strings.ToUpper(resp.Body), "API_ERROR") {
		t.Errorf("body = %s", resp.Body)
	}
	// Nor in a validation error echoing the query, nor in a path.
	resp = e.Query(t, "{ API_ERROR }", nil)
	resp.MustError(t, "GRAPHQL_VALIDATION_FAILED", true)
	resp = e.QueryAs(t, "", nil, "{ API_ERROR: tenant { id } }", nil)
	resp.MustError(t, "UNAUTHENTICATED", true)
	if len(resp.Errors[0].Path) != 1 {
		t.Errorf("path = %v", resp.Errors[0].Path)
	}
}

func TestHandler_TooDeep(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.Memberships.FindMembershipsFn = func(ctx context.Context, f latchkey.MembershipFilter) ([]*latchkey.Membership, int, error) {
		mustNotCall(t, "FindMemberships")()
		return nil, 0, nil
	}
	// 12 levels: membership > user > memberships > user > ... > id.
	q := "{ membership { user { memberships { user { memberships { user { memberships { user { memberships { user { memberships { id } } } } } } } } } } } }"
	resp := e.Query(t, q, nil)
	resp.MustError(t, "REQUEST_TOO_LARGE", true)
	if !strings.Contains(resp.Errors[0].Message, "too deep") {
		t.Errorf("message = %q", resp.Errors[0].Message)
	}

	// The same through fragments.
	q = `{ membership { ...M } }
fragment M on membership { user { memberships { user { memberships { user { memberships { user { memberships { user { id } } } } } } } } } }`
	e.Query(t, q, nil).MustError(t, "REQUEST_TOO_LARGE", true)
}

func TestHandler_DepthWithinLimit(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.Memberships.FindMembershipsFn = func(ctx context.Context, f latchkey.MembershipFilter) ([]*latchkey.Membership, int, error) {
		return nil, 0, nil
	}
	// 10 levels (with limits: nested lists multiply the cost).
	q := "{ membership(limit: 1) { user { memberships(limit: 1) { user { memberships(limit: 1) { user { memberships(limit: 1) { user { memberships(limit: 1) { id } } } } } } } } } }"
	var data struct{ Membership []any }
	e.Query(t, q, nil).MustData(t, &data)
}

func TestHandler_TooComplex(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var b strings.Builder
	b.WriteString("{")
	for i := range 600 {
		b.WriteString(" h")
		b.WriteString(strings.Repeat("x", i%7+1))
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString(strings.Repeat("y", i/26))
		b.WriteString(": hello")
	}
	b.WriteString(" }")
	resp := e.QueryAs(t, "", nil, b.String(), nil)
	resp.MustError(t, "REQUEST_TOO_LARGE", true)
	if !strings.Contains(resp.Errors[0].Message, "too complex") {
		t.Errorf("message = %q", resp.Errors[0].Message)
	}
}

func TestHandler_BadUUID(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.APIKeys.DeleteAPIKeyFn = func(context.Context, string) error {
		mustNotCall(t, "DeleteAPIKey")()
		return nil
	}
	resp := e.Query(t, `mutation($input: delete_api_key_input!) { delete_api_key(input: $input) { success } }`,
		map[string]any{"input": map[string]any{"key_id": "lku_notauuidnotauuidnotauuidnotauAAAAAA"}})
	resp.MustError(t, "BAD_USER_INPUT", false)
	if strings.Contains(resp.Body, "lku_notauuid") {
		t.Errorf("body echoes the value: %s", resp.Body)
	}
	resp = e.Query(t, `{ tenant(where: {id: {_eq: "1234"}}) { id } }`, nil)
	resp.MustError(t, "BAD_USER_INPUT", true)
}

func TestHandler_BadTimestamp(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	e.APIKeys.CreateAPIKeyFn = func(context.Context, *latchkey.APIKey) (string, error) {
		mustNotCall(t, "CreateAPIKey")()
		return "", nil
	}
	for _, ts := range []string{"2030-01-01", "2030-01-01T00:00:00", "tomorrow"} {
		resp := e.Query(t, `mutation($input: create_api_key_input!) { create_api_key(input: $input) { key } }`,
			map[string]any{"input": map[string]any{"name": "k", "expires_at": ts}})
		resp.MustError(t, "BAD_USER_INPUT", false)
	}
}

// A body that names a member twice is refused, not run with the last one.
// (The credential is checked first, by the middleware, before the body is
// read at all.)
func TestHandler_DuplicateMembers(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	for _, body := range []string{
		`{"query": "{ hello }", "query": "{ auth_info { role } }"}`,
		`{"query": "{ hello }", "quer\u0079": "{ auth_info { role } }"}`,
		`{"query": "{ hello }", "variables": null, "variables": {"a": 1}}`,
		`{"query": "{ hello }", "operationName": null, "operationName": "A"}`,
		`{"query": "{ hello }", "variables": {"a": 1, "a": 2}}`,
		`{"query": "{ hello }", "variables": "{\"a\": 1, \"a\": 2}"}`,
	} {
		resp := e.Post(t, body, map[string]string{"Authorization": "Bearer " + goodKey})
		if resp.Status != http.StatusBadRequest || resp.Code() != "BAD_USER_INPUT" || !strings.Contains(resp.Errors[0].Message, "duplicate") {
			t.Errorf("%s: %d %s", body, resp.Status, resp.Body)
		}
	}
}
