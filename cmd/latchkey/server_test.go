package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	main "github.com/latchkey/latchkey/cmd/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
)

// Query texts exactly as the Prefect 1.x client sends them (prefect1-wire.md §1).
const (
	qAuthInfoTenant = "query {\n    auth_info {\n        tenant_id\n    }\n}"
	qAuthInfoUser   = "query {\n    auth_info {\n        user_id\n    }\n}"
	qListTenants    = "query {\n    tenant(order_by: {slug: asc}) {\n        id\n        slug\n        name\n    }\n}"
	qTenantBySlug   = "query($slug: String) {\n    tenant(where: {slug: { _eq: $slug } }) {\n        id\n    }\n}"
	qCreateKey      = "mutation($input: create_api_key_input!) {\n    create_api_key(input: $input) {\n        key\n    }\n}"
	qListKeys       = "query {\n    auth_api_key {\n        id\n        name\n        identifier\n        expires_at\n    }\n}"
	qRevokeKey      = "mutation($input: delete_api_key_input!) {\n    delete_api_key(input: $input) {\n        success\n    }\n}"
	qSwitchTenant   = "mutation($input: switch_tenant_input!) {\n    switch_tenant(input: $input) {\n        access_token\n        expires_at\n        refresh_token\n    }\n}"
	qRefreshToken   = "mutation($input: refresh_token_input!) {\n    refresh_token(input: $input) {\n        access_token\n        expires_at\n        refresh_token\n    }\n}"
	qLoginToTenant  = "query($slug: String, $id: uuid) {\n    tenant(where: {slug: { _eq: $slug }, id: { _eq: $id } }) {\n        id\n    }\n}"
)

func qTenantByID(id string) string {
	return "query {\n    tenant(where: { id: { _eq: \"" + id + "\" } }) {\n        slug\n        id\n        name\n    }\n}"
}

type authInfo struct {
	TenantID      *string `json:"tenant_id"`
	UserID        *string `json:"user_id"`
	APITokenScope *string `json:"api_token_scope"`
}

type tenantRow struct{ ID, Slug, Name string }

type tokenPair struct {
	AccessToken  string `json:"access_token"`
	ExpiresAt    string `json:"expires_at"`
	RefreshToken string `json:"refresh_token"`
}

func eachEngine(t *testing.T, fn func(t *testing.T, engine string)) {
	for _, engine := range latchkeytest.Engines() {
		t.Run(engine, func(t *testing.T) { fn(t, engine) })
	}
}

func TestServer_BootstrapPrintsKeyOnce(t *testing.T) {
	t.Parallel()
	dsn := latchkeytest.MustDSN(t, "sqlite")
	s := MustRunMainDSN(t, dsn)
	if _, err := latchkey.ParseSecret(s.AdminKey); err != nil || !strings.HasPrefix(s.AdminKey, latchkey.PrefixUserKey) {
		t.Fatalf("bootstrap key %q: %v", s.AdminKey, err)
	}
	if got := strings.Count(s.Stdout.String(), s.AdminKey); got != 1 {
		t.Fatalf("key printed %d times on stdout:\n%s", got, s.Stdout.String())
	}
	if strings.Contains(s.Logs.String(), s.AdminKey[4:]) {
		t.Fatal("bootstrap key in the logs")
	}
	var info authInfo
	s.MustDo(t, s.AdminKey, "", qAuthInfoTenant, nil, "auth_info", &info)
	if info.TenantID == nil {
		t.Fatal("no tenant")
	}
	s.Close()

	// A restart on the same database creates nothing and prints no key:
	// only where it listens and where the web UI is.
	s2 := MustRunMainDSN(t, dsn)
	if want := "Latchkey is listening on " + s2.URL + ". Web UI: " + s2.URL + "/ui/\n"; s2.AdminKey != "" || s2.Stdout.String() != want {
		t.Fatalf("second start printed %q, want %q", s2.Stdout.String(), want)
	}
	s2.MustDo(t, s.AdminKey, "", qAuthInfoTenant, nil, "auth_info", &info)
}

func TestServer_HealthAndJWKS(t *testing.T) {
	t.Parallel()
	s := MustRunMain(t, "sqlite")
	resp, err := http.Get(s.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"ok"`) {
		t.Fatalf("healthz %d %s", resp.StatusCode, b)
	}
	resp, err = http.Get(s.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	var jwks struct {
		Keys []struct{ Kty, Crv, Kid, Alg, X string } `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&jwks); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(jwks.Keys) != 1 || jwks.Keys[0].Kty != "OKP" || jwks.Keys[0].Crv != "Ed25519" || jwks.Keys[0].Alg != "EdDSA" || jwks.Keys[0].Kid == "" {
		t.Fatalf("jwks=%+v", jwks)
	}
	if strings.Contains(s.Logs.String(), "\"d\"") {
		t.Fatal("private key material in logs")
	}
}

// The Prefect 1.x login, list-tenants and switch-tenants flows, with the
// exact query texts, string variables, and both API paths.
func TestServer_PrefectLoginFlow(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine string) {
		s := MustRunMain(t, engine)
		for _, path := range []string{"/", "/graphql"} {
			// login: auth_info without a tenant header, then the tenant by id with it.
			r := s.Do(t, path, s.AdminKey, "", qAuthInfoTenant, nil)
			var info authInfo
			if len(r.Errors) > 0 || json.Unmarshal(r.Data["auth_info"], &info) != nil || info.TenantID == nil {
				t.Fatalf("%s auth_info: %s", path, r.raw)
			}
			tid := *info.TenantID
			r = s.Do(t, path, s.AdminKey, tid, qTenantByID(tid), nil)
			var rows []tenantRow
			if len(r.Errors) > 0 || json.Unmarshal(r.Data["tenant"], &rows) != nil || len(rows) != 1 || rows[0].ID != tid || rows[0].Slug != "default" || rows[0].Name != "Default" {
				t.Fatalf("%s tenant by id: %s", path, r.raw)
			}
		}
	})
}

func TestServer_SwitchTenants(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine string) {
		s := MustRunMain(t, engine)
		var info authInfo
		s.MustDo(t, s.AdminKey, "", qAuthInfoTenant, nil, "auth_info", &info)
		home := *info.TenantID

		var created tenantRow
		s.MustDo(t, s.AdminKey, "", `mutation { create_tenant(input: {name: "Tenant Two", slug: "tenant-two"}) { id slug name } }`, nil, "create_tenant", &created)

		var rows []tenantRow
		s.MustDo(t, s.AdminKey, home, qListTenants, nil, "tenant", &rows)
		if len(rows) != 2 || rows[0].Slug != "default" || rows[1].Slug != "tenant-two" {
			t.Fatalf("tenants=%+v", rows)
		}
		s.MustDo(t, s.AdminKey, home, qTenantBySlug, map[string]any{"slug": "tenant-two"}, "tenant", &rows)
		if len(rows) != 1 || rows[0].ID != created.ID {
			t.Fatalf("by slug=%+v", rows)
		}
		s.MustDo(t, s.AdminKey, home, qTenantBySlug, map[string]any{"slug": "nope"}, "tenant", &rows)
		if len(rows) != 0 {
			t.Fatalf("unknown slug=%+v", rows)
		}
		// Membership check: auth_info with the new tenant header answers that tenant.
		s.MustDo(t, s.AdminKey, created.ID, qAuthInfoTenant, nil, "auth_info", &info)
		if *info.TenantID != created.ID {
			t.Fatalf("tenant=%s, want %s", *info.TenantID, created.ID)
		}
		// A tenant the caller is not in is UNAUTHENTICATED, not FORBIDDEN.
		s.Do(t, "/graphql", s.AdminKey, "99999999-9999-4999-8999-999999999999", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")
	})
}

func createKey(t *testing.T, s *TestServer, cred string, input map[string]any) string {
	t.Helper()
	var out struct{ Key string }
	s.MustDo(t, cred, "", qCreateKey, map[string]any{"input": input}, "create_api_key", &out)
	if _, err := latchkey.ParseSecret(out.Key); err != nil {
		t.Fatalf("created key %q: %v", out.Key, err)
	}
	return out.Key
}

func TestServer_KeyLifecycle(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine string) {
		s := MustRunMain(t, engine)
		var info authInfo
		s.MustDo(t, s.AdminKey, "", qAuthInfoUser, nil, "auth_info", &info)

		expires := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
		k1 := createKey(t, s, s.AdminKey, map[string]any{"name": "never", "user_id": *info.UserID, "expires_at": nil})
		k2 := createKey(t, s, s.AdminKey, map[string]any{"name": "soon", "user_id": *info.UserID, "expires_at": expires.Format("2006-01-02T15:04:05+00:00")})

		r := s.Do(t, "/graphql", s.AdminKey, "", "query { auth_api_key { id name expires_at created_at last_used_at user_id created_by_user_id default_tenant_id } }", nil)
		for _, k := range []string{k1, k2, s.AdminKey} {
			if strings.Contains(string(r.raw), k[4:]) {
				t.Fatal("a query returned key text")
			}
		}
		var keys []struct {
			ID        string
			Name      string
			ExpiresAt *string `json:"expires_at"`
		}
		if err := json.Unmarshal(r.Data["auth_api_key"], &keys); err != nil || len(keys) != 3 {
			t.Fatalf("keys: %v %s", err, r.raw)
		}
		byName := map[string]string{}
		for _, k := range keys {
			byName[k.Name] = k.ID
			switch k.Name {
			case "never":
				if k.ExpiresAt != nil {
					t.Fatalf("never expires_at=%v", *k.ExpiresAt)
				}
			case "soon":
				if at, err := time.Parse(time.RFC3339, *k.ExpiresAt); err != nil || !at.Equal(expires) {
					t.Fatalf("soon expires_at=%v", *k.ExpiresAt)
				}
			}
		}
		// The Prefect client's list-keys query.
		s.MustDo(t, k1, "", qListKeys, nil, "auth_api_key", nil)

		// Revoke: the key stops working at once; revoking again reports failure without an error.
		var ok struct{ Success bool }
		s.MustDo(t, s.AdminKey, "", qRevokeKey, map[string]any{"input": map[string]any{"key_id": byName["never"]}}, "delete_api_key", &ok)
		if !ok.Success {
			t.Fatal("revoke failed")
		}
		s.Do(t, "/graphql", k1, "", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")
		s.MustDo(t, s.AdminKey, "", qRevokeKey, map[string]any{"input": map[string]any{"key_id": byName["never"]}}, "delete_api_key", &ok)
		if ok.Success {
			t.Fatal("second revoke succeeded")
		}
		s.MustDo(t, k2, "", qAuthInfoTenant, nil, "auth_info", nil)

		for _, k := range []string{k1, k2, s.AdminKey} {
			if strings.Contains(s.Logs.String(), k[4:]) {
				t.Fatal("key text in the logs")
			}
		}
	})
}

func TestServer_MistypedAndBogusCredentials(t *testing.T) {
	t.Parallel()
	s := MustRunMain(t, "sqlite")
	typo := s.AdminKey[:10] + string(rune(s.AdminKey[10]^1)) + s.AdminKey[11:]
	for name, cred := range map[string]string{
		"typo":        typo,
		"truncated":   s.AdminKey[:len(s.AdminKey)-1],
		"garbage":     "not-a-key",
		"fake jwt":    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
		"refresh tok": "lkr_" + s.AdminKey[4:],
	} {
		t.Run(name, func(t *testing.T) {
			r := s.Do(t, "/", cred, "", qAuthInfoTenant, nil)
			r.mustFail(t, "UNAUTHENTICATED")
			if r.Data["auth_info"] != nil && string(r.Data["auth_info"]) != "null" {
				t.Fatalf("data leaked: %s", r.raw)
			}
			if strings.Contains(string(r.raw), cred) {
				t.Fatalf("credential echoed: %s", r.raw)
			}
		})
	}
	// No credential: hello works, everything else is UNAUTHENTICATED.
	s.MustDo(t, "", "", "query { hello }", nil, "hello", nil)
	s.Do(t, "/", "", "", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")
	// A malformed header.
	req, _ := http.NewRequest("POST", s.URL+"/", strings.NewReader(`{"query":"query { auth_info { tenant_id } }","variables":"null"}`))
	req.Header.Set("Authorization", "Token abc")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "UNAUTHENTICATED") {
		t.Fatalf("malformed header: %d %s", resp.StatusCode, b)
	}
}

// An access token minted from a key is rejected the moment the key is revoked.
func TestServer_RevokedKeyRejectsItsJWTs(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine string) {
		s := MustRunMain(t, engine)
		var info authInfo
		s.MustDo(t, s.AdminKey, "", qAuthInfoTenant, nil, "auth_info", &info)
		key := createKey(t, s, s.AdminKey, map[string]any{"name": "ci"})
		var pair tokenPair
		s.MustDo(t, key, "", qSwitchTenant, map[string]any{"input": map[string]any{"tenant_id": *info.TenantID}}, "switch_tenant", &pair)
		if strings.Count(pair.AccessToken, ".") != 2 || !strings.HasPrefix(pair.RefreshToken, latchkey.PrefixRefreshToken) {
			t.Fatalf("pair=%+v", pair)
		}
		exp, err := time.Parse(time.RFC3339, pair.ExpiresAt)
		if err != nil || time.Until(exp) > 10*time.Minute+5*time.Second || time.Until(exp) < 9*time.Minute {
			t.Fatalf("expires_at=%q, want ~10 minutes", pair.ExpiresAt)
		}
		var viaJWT authInfo
		s.MustDo(t, pair.AccessToken, "", qAuthInfoTenant, nil, "auth_info", &viaJWT)
		if *viaJWT.TenantID != *info.TenantID {
			t.Fatalf("jwt tenant=%s", *viaJWT.TenantID)
		}
		// JWT with another tenant header is rejected.
		s.Do(t, "/", pair.AccessToken, "99999999-9999-4999-8999-999999999999", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")

		// Refresh: the bearer is the refresh token; single use.
		var pair2 tokenPair
		s.MustDo(t, pair.RefreshToken, "", qRefreshToken, map[string]any{"input": map[string]any{"access_token": pair.AccessToken}}, "refresh_token", &pair2)
		s.MustDo(t, pair2.AccessToken, "", qAuthInfoTenant, nil, "auth_info", nil)
		s.Do(t, "/", pair.RefreshToken, "", qRefreshToken, map[string]any{"input": map[string]any{"access_token": pair.AccessToken}}).mustFail(t, "UNAUTHENTICATED")

		// Revoke the key: its JWTs die with it.
		var keys []struct{ ID, Name string }
		s.MustDo(t, s.AdminKey, "", qListKeys, nil, "auth_api_key", &keys)
		for _, k := range keys {
			if k.Name == "ci" {
				s.MustDo(t, s.AdminKey, "", qRevokeKey, map[string]any{"input": map[string]any{"key_id": k.ID}}, "delete_api_key", nil)
			}
		}
		s.Do(t, "/", pair.AccessToken, "", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")
		s.Do(t, "/", pair2.AccessToken, "", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")
		s.Do(t, "/", key, "", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")
	})
}

func TestServer_ExpiredKey(t *testing.T) {
	t.Parallel()
	clock := latchkeytest.NewClockAt(time.Now())
	s := MustRunMain(t, "sqlite", func(m *main.Main) { m.Now = clock.Now })
	key := createKey(t, s, s.AdminKey, map[string]any{"name": "short", "expires_at": clock.Now().Add(time.Hour).Format(time.RFC3339)})
	s.MustDo(t, key, "", qAuthInfoTenant, nil, "auth_info", nil)
	clock.Add(time.Hour + time.Second)
	r := s.Do(t, "/", key, "", qAuthInfoTenant, nil)
	r.mustFail(t, "UNAUTHENTICATED")
	if !strings.Contains(strings.ToLower(r.Errors[0].Message), "expired") {
		t.Fatalf("message=%q", r.Errors[0].Message)
	}
	// Creating a key that expires in the past is refused.
	s.Do(t, "/", s.AdminKey, "", qCreateKey, map[string]any{"input": map[string]any{"name": "past", "expires_at": "2001-01-01T00:00:00+00:00"}}).mustFail(t, "BAD_USER_INPUT")
}

// Deprecated tokens: a raw token's auth_info has a null tenant_id (the
// Prefect client's sign that it is a token) and its scope.
func TestServer_LegacyTokens(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine string) {
		s := MustRunMain(t, engine)
		var info authInfo
		s.MustDo(t, s.AdminKey, "", qAuthInfoTenant, nil, "auth_info", &info)
		for _, scope := range []string{"USER", "TENANT", "RUNNER"} {
			var tok struct{ ID, Token string }
			s.MustDo(t, s.AdminKey, "", "mutation($input: create_api_token_input!) { create_api_token(input: $input) { id token } }",
				map[string]any{"input": map[string]any{"name": "t-" + scope, "scope": scope}}, "create_api_token", &tok)
			var ti authInfo
			s.MustDo(t, tok.Token, "", "query { auth_info { tenant_id api_token_scope } }", nil, "auth_info", &ti)
			if ti.TenantID != nil || ti.APITokenScope == nil || *ti.APITokenScope != scope {
				t.Fatalf("%s: auth_info=%+v", scope, ti)
			}
			// 0.15 login_to_tenant: the tenant by id with slug null (Hasura: _eq null is no condition).
			var rows []tenantRow
			s.MustDo(t, tok.Token, "", qLoginToTenant, map[string]any{"slug": nil, "id": *info.TenantID}, "tenant", &rows)
			if len(rows) != 1 {
				t.Fatalf("%s: login_to_tenant rows=%v", scope, rows)
			}
			var pair tokenPair
			s.MustDo(t, tok.Token, "", qSwitchTenant, map[string]any{"input": map[string]any{"tenant_id": *info.TenantID}}, "switch_tenant", &pair)
			s.MustDo(t, pair.AccessToken, "", qAuthInfoTenant, nil, "auth_info", nil)
			if scope == "RUNNER" {
				s.Do(t, "/", tok.Token, "", qCreateKey, map[string]any{"input": map[string]any{"name": "x"}}).mustFail(t, "FORBIDDEN")
			}
			var ok struct{ Success bool }
			s.MustDo(t, s.AdminKey, "", "mutation($input: delete_api_token_input!) { delete_api_token(input: $input) { success } }",
				map[string]any{"input": map[string]any{"token_id": tok.ID}}, "delete_api_token", &ok)
			if !ok.Success {
				t.Fatal("delete token failed")
			}
			s.Do(t, "/", tok.Token, "", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")
			s.Do(t, "/", pair.AccessToken, "", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")
		}
	})
}

func TestAdminInit(t *testing.T) {
	t.Parallel()
	dsn := latchkeytest.MustDSN(t, "sqlite")
	var out, errb syncBuffer
	env := &main.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, Now: time.Now}
	if code := main.Run(t.Context(), []string{"admin", "init", "--db", dsn, "--email", "ops@example.com", "--tenant", "Ops Team", "-q"}, env); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	key := strings.TrimSpace(out.String())
	if _, err := latchkey.ParseSecret(key); err != nil {
		t.Fatalf("quiet output %q is not just a key", out.String())
	}
	// The server on that database does not bootstrap again, and the key works.
	s := MustRunMainDSN(t, dsn)
	if s.AdminKey != "" {
		t.Fatal("server bootstrapped a non-empty database")
	}
	var rows []tenantRow
	s.MustDo(t, key, "", qListTenants, nil, "tenant", &rows)
	if len(rows) != 1 || rows[0].Slug != "ops-team" || rows[0].Name != "Ops Team" {
		t.Fatalf("tenants=%+v", rows)
	}
	// Missing flags are a usage error.
	if code := main.Run(t.Context(), []string{"admin", "init", "--db", dsn}, env); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	// A taken slug is an error, not a crash.
	errb = syncBuffer{}
	if code := main.Run(t.Context(), []string{"admin", "init", "--db", dsn, "--email", "x@example.com", "--tenant", "Ops Team"}, env); code != 1 || !strings.Contains(errb.String(), "Error:") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}
