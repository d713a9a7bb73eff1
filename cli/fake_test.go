package cli_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/latchkey/latchkey/client"
)

// Test fixtures: one user with two tenants, an API key, a USER-scoped
// legacy token, and the access and refresh tokens the server mints.
const (
	tenantOne   = "11111111-1111-1111-1111-111111111111"
	tenantTwo   = "22222222-2222-2222-2222-222222222222"
	tenantOther = "33333333-3333-3333-3333-333333333333" // the user is not a member
	userID      = "99999999-9999-9999-9999-999999999999"
	goodKey     = "lku_goodkey"
	userToken   = "lkt_usertoken"
	createdKey  = "lku_NEWKEYshownonce"
	createdTok  = "lkt_NEWTOKENshownonce"

	// longKey is a key long enough to have an identifier (lku_…WXYZ);
	// the fake lists it as "laptop". expiredKey and revokedKey are
	// refused with the server's reasons.
	longKey       = "lku_0123456789abcdefghijWXYZ"
	longKeyID     = "88888888-8888-8888-8888-888888888888"
	expiredKey    = "lku_expiredexpiredexpired1"
	revokedKey    = "lku_revokedrevokedrevoked1"
	userEmail     = "admin@example.com"
	longKeyIdent  = "lku_…WXYZ"
	queryWhoAmI   = "query {\n    auth_info {\n        tenant_id\n        user_id\n        role\n    }\n    user {"
	noSuchIdField = `{"errors": [{"message": "Cannot query field \"identifier\" on type \"auth_api_key\".", "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}], "data": null}`
)

// recorded is one request the fake server received.
type recorded struct {
	Path      string
	Auth      string // Authorization header
	Tenant    string // X-PREFECT-TENANT-ID
	HasTenant bool
	Version   string // X-PREFECT-CORE-VERSION
	Body      string
	Query     string
	Variables string // the variables member, as sent (a JSON string's content)
}

type fakeTenant struct{ ID, Slug, Name string }

type fakeKey struct {
	ID, Name   string
	ExpiresAt  *string
	Identifier *string // nil: a key stored without one
}

// fakeServer is a small in-memory imitation of Latchkey's GraphQL API that
// records every request. override, if set, answers first; returning
// status 0 falls through to the default behaviour.
type fakeServer struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	reqs     []recorded
	override func(r recorded) (status int, body string)

	tenants []fakeTenant
	keys    []fakeKey

	// identifiers: auth_api_key has the identifier field (newer servers).
	identifiers bool
	tokens      []fakeKey
	access      map[string]string // access token -> tenant
	refresh     map[string]string // refresh token -> access token
	minted      int
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{
		t: t,
		tenants: []fakeTenant{
			{tenantTwo, "tenant-two", "Tenant Two"},
			{tenantOne, "tenant-one", "Tenant One"},
		},
		keys: []fakeKey{
			{ID: "44444444-4444-4444-4444-444444444444", Name: "k1", Identifier: ptr("lku_…x9Qz")},
			{ID: "55555555-5555-5555-5555-555555555555", Name: "ci key", ExpiresAt: ptr("2030-01-01T00:00:00+00:00"), Identifier: ptr("lku_…ci00")},
			{ID: longKeyID, Name: "laptop", Identifier: ptr(longKeyIdent)},
			{ID: "77777777-0000-0000-0000-000000000001", Name: "twin", Identifier: ptr("lku_…twn1")},
			{ID: "77777777-0000-0000-0000-000000000002", Name: "twin", Identifier: ptr("lku_…twn2")},
		},
		tokens:  []fakeKey{{ID: "66666666-6666-6666-6666-666666666666", Name: "old-runner"}},
		access:  map[string]string{},
		refresh: map[string]string{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func ptr(s string) *string { return &s }

func (f *fakeServer) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *fakeServer) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	rec := recorded{
		Path:    req.URL.Path,
		Auth:    req.Header.Get("Authorization"),
		Tenant:  req.Header.Get("X-Prefect-Tenant-Id"),
		Version: req.Header.Get("X-Prefect-Core-Version"),
		Body:    string(body),
	}
	_, rec.HasTenant = req.Header["X-Prefect-Tenant-Id"]
	var payload struct {
		Query     string `json:"query"`
		Variables string `json:"variables"`
	}
	if err := json.Unmarshal(body, &payload); err != nil {
		f.t.Errorf("fake server: body is not {query, variables-as-string}: %v: %s", err, body)
	}
	rec.Query, rec.Variables = payload.Query, payload.Variables

	f.mu.Lock()
	f.reqs = append(f.reqs, rec)
	override := f.override
	f.mu.Unlock()

	status, out := 0, ""
	if override != nil {
		status, out = override(rec)
	}
	if status == 0 {
		f.mu.Lock()
		status, out = f.answer(rec)
		f.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, out)
}

// gqlError is an error response with its keys in the order servers send them.
func gqlError(message, code string) string {
	m, _ := json.Marshal(message)
	return `{"data": null, "errors": [{"message": ` + string(m) + `, "extensions": {"code": "` + code + `"}}]}`
}

func data(v any) string {
	b, _ := json.Marshal(map[string]any{"data": v})
	return string(b)
}

var literalID = regexp.MustCompile(`_eq: "([^"]*)"`)

// principal is who the bearer is: "key", "token", "access" or "".
func (f *fakeServer) principal(r recorded) (kind, tenant string) {
	bearer := strings.TrimPrefix(r.Auth, "Bearer ")
	switch {
	case bearer == goodKey, bearer == longKey:
		tenant = tenantOne
		if r.HasTenant {
			tenant = r.Tenant
		}
		if tenant != tenantOne && tenant != tenantTwo {
			return "", ""
		}
		return "key", tenant
	case bearer == userToken:
		return "token", ""
	case f.access[bearer] != "":
		return "access", f.access[bearer]
	case f.refresh[bearer] != "":
		return "refresh", ""
	}
	return "", ""
}

func (f *fakeServer) mint(tenant string) map[string]string {
	f.minted++
	a, rt := fmt.Sprintf("eyJaccess.%d.x", f.minted), fmt.Sprintf("lkr_refresh%d", f.minted)
	f.access[a] = tenant
	f.refresh[rt] = a
	return map[string]string{"access_token": a, "expires_at": "2026-11-25T12:10:00+00:00", "refresh_token": rt}
}

func (f *fakeServer) answer(r recorded) (int, string) {
	kind, tenant := f.principal(r)
	var vars map[string]any
	_ = json.Unmarshal([]byte(r.Variables), &vars)
	input, _ := vars["input"].(map[string]any)
	unauth := gqlError("Unauthenticated", "UNAUTHENTICATED")
	q := r.Query

	if kind == "refresh" {
		if q != client.MutationRefreshToken {
			return 200, unauth
		}
		bearer := strings.TrimPrefix(r.Auth, "Bearer ")
		old := f.refresh[bearer]
		if input["access_token"] != old {
			return 200, unauth
		}
		delete(f.refresh, bearer)
		return 200, data(map[string]any{"refresh_token": f.mint(f.access[old])})
	}
	switch bearer := strings.TrimPrefix(r.Auth, "Bearer "); {
	case bearer == expiredKey:
		return 200, gqlError("API key expired.", "UNAUTHENTICATED")
	case bearer == revokedKey:
		return 200, gqlError("Invalid API key.", "UNAUTHENTICATED")
	case kind == "":
		return 200, unauth
	}

	switch {
	case strings.HasPrefix(q, queryWhoAmI):
		m := literalID.FindStringSubmatch(q)
		rows := []map[string]string{}
		for _, t := range f.tenants {
			if m != nil && t.ID == m[1] {
				rows = append(rows, map[string]string{"id": t.ID, "slug": t.Slug, "name": t.Name})
			}
		}
		return 200, data(map[string]any{
			"auth_info": map[string]any{"tenant_id": tenant, "user_id": userID, "role": "TENANT_ADMIN"},
			"user":      []any{map[string]any{"id": userID, "email": userEmail, "name": nil}},
			"tenant":    rows,
		})
	case q == client.QueryAPIKeyIdentifiers:
		if !f.identifiers {
			return 200, noSuchIdField
		}
		rows := []map[string]any{}
		for _, k := range f.keys {
			rows = append(rows, map[string]any{"id": k.ID, "name": k.Name, "expires_at": k.ExpiresAt, "identifier": k.Identifier})
		}
		return 200, data(map[string]any{"auth_api_key": rows})
	case strings.HasPrefix(q, "query {\n    auth_info {"):
		info := map[string]any{"tenant_id": tenant, "user_id": userID, "api_token_scope": nil, "role": "TENANT_ADMIN"}
		if kind == "token" {
			info["tenant_id"], info["api_token_scope"] = nil, "USER"
		}
		return 200, data(map[string]any{"auth_info": info})
	case q == client.QueryTenants, q == client.QueryAnyTenant:
		rows := []map[string]string{}
		sorted := append([]fakeTenant(nil), f.tenants...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i].Slug < sorted[j].Slug })
		for _, t := range sorted {
			if kind == "access" && t.ID != tenant {
				continue
			}
			rows = append(rows, map[string]string{"id": t.ID, "slug": t.Slug, "name": t.Name})
		}
		return 200, data(map[string]any{"tenant": rows})
	case strings.HasPrefix(q, "query {\n    tenant(where: { id:"):
		m := literalID.FindStringSubmatch(q)
		rows := []map[string]string{}
		for _, t := range f.tenants {
			if m != nil && t.ID == m[1] {
				rows = append(rows, map[string]string{"id": t.ID, "slug": t.Slug, "name": t.Name})
			}
		}
		return 200, data(map[string]any{"tenant": rows})
	case q == client.QueryTenantBySlug, q == client.QueryLoginTenant:
		rows := []map[string]string{}
		for _, t := range f.tenants {
			if (vars["slug"] == nil || vars["slug"] == t.Slug) && (vars["id"] == nil || vars["id"] == t.ID) {
				rows = append(rows, map[string]string{"id": t.ID})
			}
		}
		return 200, data(map[string]any{"tenant": rows})
	case q == client.QueryUserDefaultTenant:
		return 200, data(map[string]any{"user": []any{map[string]any{"default_membership": map[string]string{"tenant_id": tenantOne}}}})
	case q == client.MutationSwitchTenant:
		target, _ := input["tenant_id"].(string)
		if target == "" {
			target = tenantOne
		}
		if target != tenantOne && target != tenantTwo {
			return 200, unauth
		}
		return 200, data(map[string]any{"switch_tenant": f.mint(target)})
	case q == client.MutationCreateAPIKey:
		return 200, data(map[string]any{"create_api_key": map[string]string{"key": createdKey}})
	case q == client.QueryAPIKeys:
		rows := []map[string]any{}
		for _, k := range f.keys {
			rows = append(rows, map[string]any{"id": k.ID, "name": k.Name, "identifier": k.Identifier, "expires_at": k.ExpiresAt})
		}
		return 200, data(map[string]any{"auth_api_key": rows})
	case q == client.MutationDeleteAPIKey:
		for i, k := range f.keys {
			if k.ID == input["key_id"] {
				f.keys = append(f.keys[:i], f.keys[i+1:]...)
				return 200, data(map[string]any{"delete_api_key": map[string]bool{"success": true}})
			}
		}
		return 200, data(map[string]any{"delete_api_key": map[string]bool{"success": false}})
	case q == client.MutationRotateAPIKey:
		for _, k := range f.keys {
			if k.ID == input["key_id"] {
				return 200, data(map[string]any{"rotate_api_key": map[string]string{
					"id": "88888888-8888-8888-8888-888888888888", "key": createdKey, "old_key_expires_at": "2022-02-23T13:00:00+00:00",
				}})
			}
		}
		return 200, gqlError("API key not found.", "NOT_FOUND")
	case q == client.MutationCreateAPIToken:
		return 200, data(map[string]any{"create_api_token": map[string]string{"token": createdTok}})
	case q == client.QueryAPITokens:
		rows := []map[string]any{}
		for _, k := range f.tokens {
			rows = append(rows, map[string]any{"id": k.ID, "name": k.Name})
		}
		return 200, data(map[string]any{"api_token": rows})
	case q == client.MutationDeleteAPIToken:
		for i, k := range f.tokens {
			if k.ID == input["token_id"] {
				f.tokens = append(f.tokens[:i], f.tokens[i+1:]...)
				return 200, data(map[string]any{"delete_api_token": map[string]bool{"success": true}})
			}
		}
		return 200, data(map[string]any{"delete_api_token": map[string]bool{"success": false}})
	}
	return 400, gqlError("Cannot query this", "GRAPHQL_VALIDATION_FAILED")
}
