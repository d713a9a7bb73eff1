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
	lkhttp "github.com/latchkey/latchkey/http"
	"github.com/latchkey/latchkey/mock"
)

// Fixture ids.
const (
	tenantOneID = "11111111-1111-1111-1111-111111111111"
	tenantTwoID = "22222222-2222-2222-2222-222222222222"
	userID      = "33333333-3333-3333-3333-333333333333"
	keyID       = "44444444-4444-4444-4444-444444444444"
	saID        = "55555555-5555-5555-5555-555555555555"
	memberID    = "66666666-6666-6666-6666-666666666666"
	tokenID     = "77777777-7777-7777-7777-777777777777"
)

// Credentials the fixture's Authenticate knows.
const (
	goodKey     = "lku_goodkeygoodkeygoodkeygoodkeyAAAAAA"
	runnerToken = "lkt_runnertokenrunnertokenrunnertokenAA"
	refreshTok  = "lkr_refreshrefreshrefreshrefreshrefAAAA"
)

var created = time.Date(2022, 2, 23, 12, 0, 0, 0, time.UTC)

// Env is a graphql.Server on mock services, with a log buffer.
type Env struct {
	Auth            *mock.AuthService
	Tenants         *mock.TenantService
	Users           *mock.UserService
	Memberships     *mock.MembershipService
	Invitations     *mock.InvitationService
	ServiceAccounts *mock.ServiceAccountService
	APIKeys         *mock.APIKeyService
	APITokens       *mock.APITokenService
	Server          *graphql.Server
	Logs            *bytes.Buffer

	// Authn is the authentication middleware in front of the handler, as
	// the server wires it.
	Authn *lkhttp.Authenticator

	handler http.Handler
}

// MustNewEnv returns an Env whose Authenticate accepts goodKey (a tenant
// admin of tenant one, or of tenant two when asked) and runnerToken (a raw
// RUNNER token), and whose other service methods are unset: a test sets the
// ones it expects to be called.
func MustNewEnv(tb testing.TB) *Env {
	tb.Helper()
	e := &Env{
		Auth:            &mock.AuthService{},
		Tenants:         &mock.TenantService{},
		Users:           &mock.UserService{},
		Memberships:     &mock.MembershipService{},
		Invitations:     &mock.InvitationService{},
		ServiceAccounts: &mock.ServiceAccountService{},
		APIKeys:         &mock.APIKeyService{},
		APITokens:       &mock.APITokenService{},
		Logs:            &bytes.Buffer{},
	}
	e.Auth.AuthenticateFn = func(ctx context.Context, credential, tenantID string) (*latchkey.Auth, error) {
		switch credential {
		case goodKey:
			switch tenantID {
			case "", tenantOneID:
				return &latchkey.Auth{User: humanUser(), TenantID: tenantOneID, Role: latchkey.RoleTenantAdmin, Kind: latchkey.CredentialAPIKey, APIKeyID: keyID}, nil
			case tenantTwoID:
				return &latchkey.Auth{User: humanUser(), TenantID: tenantTwoID, Role: latchkey.RoleUser, Kind: latchkey.CredentialAPIKey, APIKeyID: keyID}, nil
			}
			return nil, latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Unauthorized")
		case runnerToken:
			return &latchkey.Auth{User: humanUser(), TenantID: tenantOneID, Role: latchkey.RoleUser, Kind: latchkey.CredentialAPIToken, APITokenID: tokenID, TokenScope: latchkey.TokenScopeRunner}, nil
		}
		return nil, latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Unauthorized")
	}
	e.Server = &graphql.Server{
		Auth:            e.Auth,
		Tenants:         e.Tenants,
		Users:           e.Users,
		Memberships:     e.Memberships,
		Invitations:     e.Invitations,
		ServiceAccounts: e.ServiceAccounts,
		APIKeys:         e.APIKeys,
		APITokens:       e.APITokens,
		Logger:          slog.New(slog.NewTextHandler(e.Logs, nil)),
	}
	e.Authn = &lkhttp.Authenticator{Auth: e.Auth}
	e.SetHandler(e.Server.Handler())
	return e
}

func humanUser() *latchkey.User {
	return &latchkey.User{ID: userID, Kind: latchkey.UserKindHuman, Email: "ada@example.com", Name: "Ada", DefaultTenantID: tenantOneID, CreatedAt: created}
}

// Response is a decoded GraphQL response plus the raw HTTP answer.
type Response struct {
	Status int
	Body   string
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// Code returns the extensions.code of the first error, or "".
func (r *Response) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	s, _ := r.Errors[0].Extensions["code"].(string)
	return s
}

// Post sends body as it is, with headers, and decodes the answer.
func (e *Env) Post(tb testing.TB, body string, headers map[string]string) *Response {
	tb.Helper()
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-PREFECT-CORE-VERSION", "1.0.0")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	resp := &Response{Status: rec.Code, Body: rec.Body.String()}
	if err := json.Unmarshal(rec.Body.Bytes(), resp); err != nil {
		tb.Fatalf("response is not JSON: %v\n%s", err, rec.Body.String())
	}
	if strings.Contains(resp.Body, "API_ERROR") {
		tb.Fatalf("response contains API_ERROR: %s", resp.Body)
	}
	if strings.Contains(resp.Body, `"errors":[]`) {
		tb.Fatalf("response has an empty errors list: %s", resp.Body)
	}
	return resp
}

// Query sends query as the Prefect client does: variables JSON-encoded
// into a string ("null" when vars is nil), with goodKey as the bearer.
func (e *Env) Query(tb testing.TB, query string, vars map[string]any) *Response {
	tb.Helper()
	return e.QueryAs(tb, goodKey, nil, query, vars)
}

// QueryAs is Query with another credential ("" for none) and extra headers.
func (e *Env) QueryAs(tb testing.TB, credential string, headers map[string]string, query string, vars map[string]any) *Response {
	tb.Helper()
	varText, err := json.Marshal(vars)
	if err != nil {
		tb.Fatal(err)
	}
	body, err := json.Marshal(map[string]any{"query": query, "variables": string(varText)})
	if err != nil {
		tb.Fatal(err)
	}
	h := map[string]string{}
	for k, v := range headers {
		h[k] = v
	}
	if credential != "" {
		h["Authorization"] = "Bearer " + credential
	}
	return e.Post(tb, string(body), h)
}

// MustData fails unless the response has HTTP 200, no errors, and data
// that decodes into v.
func (r *Response) MustData(tb testing.TB, v any) {
	tb.Helper()
	if r.Status != http.StatusOK {
		tb.Fatalf("status = %d, want 200: %s", r.Status, r.Body)
	}
	if len(r.Errors) != 0 {
		tb.Fatalf("unexpected errors: %s", r.Body)
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		tb.Fatalf("decode data: %v: %s", err, r.Body)
	}
}

// MustError fails unless the response has HTTP 200, a non-empty errors list
// whose first code is code, and (when nullData) "data": null.
func (r *Response) MustError(tb testing.TB, code string, nullData bool) {
	tb.Helper()
	if r.Status != http.StatusOK {
		tb.Fatalf("status = %d, want 200: %s", r.Status, r.Body)
	}
	if len(r.Errors) == 0 {
		tb.Fatalf("no errors: %s", r.Body)
	}
	if got := r.Code(); got != code {
		tb.Fatalf("code = %q, want %q: %s", got, code, r.Body)
	}
	if nullData && string(r.Data) != "null" {
		tb.Fatalf("data = %s, want null", r.Data)
	}
}

// mustNotCall returns a function that fails the test when called.
func mustNotCall(tb testing.TB, name string) func() {
	return func() {
		tb.Helper()
		tb.Errorf("%s must not be called", name)
	}
}

// SetHandler replaces the handler requests go to; they pass Authn first.
func (e *Env) SetHandler(h http.Handler) { e.handler = e.Authn.API(h) }

// mustFields checks that got holds every field of want, with want's value;
// prefix names the object in the failure message.
func mustFields[V comparable](tb testing.TB, prefix string, got, want map[string]V) {
	tb.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			tb.Errorf("%s%s = %#v (present %v), want %#v", prefix, k, g, ok, v)
		}
	}
}
