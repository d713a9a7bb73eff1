package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/latchkey/latchkey/client"
)

// request is what a test server saw.
type request struct {
	Path   string
	Header http.Header
	Body   string
}

// recorder is a test server that answers every request with respond and
// records it.
type recorder struct {
	mu      sync.Mutex
	reqs    []request
	respond func(n int, r request) (int, string)
	srv     *httptest.Server
}

func MustRecorder(tb testing.TB, respond func(n int, r request) (int, string)) *recorder {
	tb.Helper()
	rec := &recorder{respond: respond}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		req := request{Path: r.URL.Path, Header: r.Header.Clone(), Body: string(b)}
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, req)
		n := len(rec.reqs)
		rec.mu.Unlock()
		status, body := rec.respond(n, req)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	tb.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) requests() []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]request(nil), rec.reqs...)
}

func fixed(status int, body string) func(int, request) (int, string) {
	return func(int, request) (int, string) { return status, body }
}

func TestDoWire(t *testing.T) {
	t.Parallel()
	rec := MustRecorder(t, fixed(200, `{"data": {"delete_api_key": {"success": true}}}`))
	c := &client.Client{URL: rec.srv.URL + "/graphql/", APIKey: "lku_key", TenantID: "t1", Header: http.Header{"X-Prefect-Agent-Id": {"agent-1"}}}

	vars := struct {
		Input struct {
			KeyID string `json:"key_id"`
			Note  string `json:"note"`
		} `json:"input"`
	}{}
	vars.Input.KeyID = "k-1"
	vars.Input.Note = "café <&> \"q\""
	var out struct {
		DeleteAPIKey struct{ Success bool } `json:"delete_api_key"`
	}
	if err := c.Do(context.Background(), client.MutationDeleteAPIKey, vars, &out); err != nil {
		t.Fatal(err)
	}
	if !out.DeleteAPIKey.Success {
		t.Error("success not decoded")
	}
	r := rec.requests()[0]
	if got, want := r.Path, "/graphql"; got != want {
		t.Errorf("path=%q, want %q (trailing slash dropped)", got, want)
	}
	wantBody := `{"query": "mutation($input: delete_api_key_input!) {\n    delete_api_key(input: $input) {\n        success\n    }\n}", ` +
		`"variables": "{\"input\": {\"key_id\": \"k-1\", \"note\": \"caf\\u00e9 <&> \\\"q\\\"\"}}"}`
	if r.Body != wantBody {
		t.Errorf("body=\n%s\nwant\n%s", r.Body, wantBody)
	}
	for k, want := range map[string]string{
		"Authorization":          "Bearer lku_key",
		"X-Prefect-Tenant-Id":    "t1",
		"X-Prefect-Core-Version": "1.0.0",
		"Content-Type":           "application/json",
		"X-Prefect-Agent-Id":     "agent-1",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
}

func TestDoHeaders(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name           string
		c              client.Client
		auth, tenant   string
		tenantExpected bool
	}{
		{"key and tenant", client.Client{APIKey: "k", TenantID: "t"}, "Bearer k", "t", true},
		{"key only", client.Client{APIKey: "k"}, "Bearer k", "", false},
		{"token never with tenant", client.Client{Token: "tok", TenantID: "t"}, "Bearer tok", "", false},
		{"key wins over token", client.Client{APIKey: "k", Token: "tok"}, "Bearer k", "", false},
		{"nothing", client.Client{TenantID: "t"}, "", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := MustRecorder(t, fixed(200, `{"data": {"hello": "hi"}}`))
			c := tt.c
			c.URL = rec.srv.URL
			c.CoreVersion = "9.9.9"
			if _, err := c.Hello(context.Background()); err != nil {
				t.Fatal(err)
			}
			r := rec.requests()[0]
			if got := r.Header.Get("Authorization"); got != tt.auth {
				t.Errorf("Authorization=%q, want %q", got, tt.auth)
			}
			_, has := r.Header["X-Prefect-Tenant-Id"]
			if has != tt.tenantExpected || r.Header.Get("X-Prefect-Tenant-Id") != tt.tenant {
				t.Errorf("tenant header present=%v value=%q, want %v %q", has, r.Header.Get("X-Prefect-Tenant-Id"), tt.tenantExpected, tt.tenant)
			}
			if got, want := r.Header.Get("X-Prefect-Core-Version"), "9.9.9"; got != want {
				t.Errorf("core version=%q, want %q", got, want)
			}
			if got, want := r.Body, `{"query": "query { hello }", "variables": "null"}`; got != want {
				t.Errorf("body=%s, want %s", got, want)
			}
		})
	}
}

func TestErrorClassification(t *testing.T) {
	t.Parallel()
	const secret = "lku_s3cretKEYvalue0123456789"
	for _, tt := range []struct {
		name   string
		status int
		body   string
		noAuth bool
		check  func(t *testing.T, err error, msg string) // msg: err.Error() with the server URL as "URL"
	}{
		{"unauthenticated code", 200, `{"data": null, "errors": [{"message": "Unauthorized", "extensions": {"code": "UNAUTHENTICATED"}}]}`, false, isAuth(`[{'message': 'Unauthorized', 'extensions': {'code': 'UNAUTHENTICATED'}}]`)},
		{"unauthenticated in message", 200, `{"errors": [{"message": "UNAUTHENTICATED: nope"}]}`, false, isAuth(`[{'message': 'UNAUTHENTICATED: nope'}]`)},
		{"malformed header", 200, `{"errors": [{"message": "Malformed Authorization header"}]}`, false, isAuth(`[{'message': 'Malformed Authorization header'}]`)},
		{"forbidden", 200, `{"data": null, "errors": [{"message": "Forbidden", "extensions": {"code": "FORBIDDEN"}}]}`, false, isClient("FORBIDDEN", `[{'message': 'Forbidden', 'extensions': {'code': 'FORBIDDEN'}}]`)},
		{"bad input", 200, `{"errors": [{"message": "bad", "extensions": {"code": "BAD_USER_INPUT"}}]}`, false, isClient("BAD_USER_INPUT", `[{'message': 'bad', 'extensions': {'code': 'BAD_USER_INPUT'}}]`)},
		{"empty errors", 200, `{"data": {"hello": "x"}, "errors": []}`, false, isClient("", "Unexpected response from the API: empty errors list")},
		{"http 400 even if unauthenticated", 400, `{"errors": [{"message": "Unauthorized", "extensions": {"code": "UNAUTHENTICATED"}}]}`, false,
			isClient("UNAUTHENTICATED", "400 Client Error: Bad Request for url: URL\n\nThe following error messages were provided by the GraphQL server:\n\n    UNAUTHENTICATED: Unauthorized")},
		{"http 401", 401, `{}`, false, isHTTP(401, "401 Client Error: Unauthorized for url: URL")},
		{"http 503", 503, `oops`, false, isHTTP(503, "503 Server Error: Service Unavailable for url: URL")},
		{"not json", 200, `<html>`, false, isClient("", "Malformed response received from API.")},
		{"not json without credentials", 200, `<html>`, true, isAuth("Malformed response received from Cloud - please ensure that you are authenticated. See `latchkey auth login --help`.")},
		{"json array", 200, `[1]`, false, isClient("", "Malformed response received from API.")},
		{"missing data", 200, `{}`, false, isNoData},
		{"null data", 200, `{"data": null}`, false, isNoData},
		{"missing field", 200, `{"data": {"other": 1}}`, false, isClient("", "Unexpected response from the API: hello is missing or null")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := MustRecorder(t, fixed(tt.status, tt.body))
			c := &client.Client{URL: rec.srv.URL, APIKey: secret}
			if tt.noAuth {
				c.APIKey = ""
			}
			_, err := c.Hello(context.Background())
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error contains the key: %v", err)
			}
			tt.check(t, err, strings.ReplaceAll(err.Error(), rec.srv.URL, "URL"))
		})
	}
}

func isAuth(want string) func(*testing.T, error, string) {
	return func(t *testing.T, err error, msg string) {
		t.Helper()
		var e *client.AuthorizationError
		if !errors.As(err, &e) {
			t.Fatalf("err=%T %v, want *AuthorizationError", err, err)
		}
		if msg != want {
			t.Errorf("message=%q, want %q", msg, want)
		}
	}
}

func isClient(code, want string) func(*testing.T, error, string) {
	return func(t *testing.T, err error, msg string) {
		t.Helper()
		var e *client.ClientError
		var a *client.AuthorizationError
		if !errors.As(err, &e) || errors.As(err, &a) {
			t.Fatalf("err=%T %v, want only *ClientError", err, err)
		}
		if code != "" && (len(e.Codes()) == 0 || e.Codes()[0] != code) {
			t.Errorf("codes=%v, want %s", e.Codes(), code)
		}
		if msg != want {
			t.Errorf("message=%q, want %q", msg, want)
		}
	}
}

func isHTTP(status int, want string) func(*testing.T, error, string) {
	return func(t *testing.T, err error, msg string) {
		t.Helper()
		var e *client.HTTPError
		if !errors.As(err, &e) {
			t.Fatalf("err=%T %v, want *HTTPError", err, err)
		}
		if e.StatusCode != status {
			t.Errorf("status=%d, want %d", e.StatusCode, status)
		}
		if msg != want {
			t.Errorf("message=%q, want %q", msg, want)
		}
	}
}

func isNoData(t *testing.T, err error, _ string) {
	t.Helper()
	var e *client.ClientError
	if !errors.As(err, &e) || !errors.Is(err, client.ErrNoData) {
		t.Fatalf("err=%T %v, want *ClientError wrapping ErrNoData", err, err)
	}
	if e.Response == nil {
		t.Error("Response not kept")
	}
}

func TestTransportErrorIsPlain(t *testing.T) {
	t.Parallel()
	rec := MustRecorder(t, fixed(200, `{}`))
	url := rec.srv.URL
	rec.srv.Close()
	c := &client.Client{URL: url, APIKey: "lku_s3cretKEYvalue0123456789"}
	_, err := c.Hello(context.Background())
	if err == nil {
		t.Fatal("no error")
	}
	var a *client.AuthorizationError
	var ce *client.ClientError
	var he *client.HTTPError
	if errors.As(err, &a) || errors.As(err, &ce) || errors.As(err, &he) {
		t.Errorf("transport failure classified as %T", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error contains the key: %v", err)
	}
}

func TestAPIErrorRetried(t *testing.T) {
	t.Parallel()
	rec := MustRecorder(t, func(n int, _ request) (int, string) {
		if n == 1 {
			return 200, `{"errors": [{"message": "boom", "extensions": {"code": "API_ERROR"}}]}`
		}
		return 200, `{"data": {"hello": "again"}}`
	})
	c := &client.Client{URL: rec.srv.URL, APIKey: "k"}
	got, err := c.Hello(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got != "again" {
		t.Errorf("hello=%q", got)
	}
	if got, want := len(rec.requests()), 2; got != want {
		t.Errorf("requests=%d, want %d", got, want)
	}
}

func TestDefaultTenant(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		body string
		want string
		kind string
	}{
		{`{"data": {"auth_info": {"tenant_id": "t-1"}}}`, "t-1", ""},
		{`{"data": {"auth_info": {"tenant_id": null}}}`, "", "auth"},
		{`{"data": {"auth_info": {}}}`, "", "client"},
		{`{"data": null}`, "", "client"},
	} {
		rec := MustRecorder(t, fixed(200, tt.body))
		c := &client.Client{URL: rec.srv.URL, APIKey: "k", TenantID: "ignored"}
		got, err := c.DefaultTenant(context.Background())
		var a *client.AuthorizationError
		var ce *client.ClientError
		switch tt.kind {
		case "":
			if err != nil || got != tt.want {
				t.Errorf("%s: got %q, %v", tt.body, got, err)
			}
		case "auth":
			if !errors.As(err, &a) {
				t.Errorf("%s: err=%v, want AuthorizationError", tt.body, err)
			}
		case "client":
			if !errors.As(err, &ce) || errors.As(err, &a) {
				t.Errorf("%s: err=%v, want ClientError", tt.body, err)
			}
		}
		if got, want := rec.requests()[0].Header.Get("X-Prefect-Tenant-Id"), "ignored"; got != want {
			t.Errorf("tenant header=%q, want %q", got, want)
		}
	}
}

func TestTypedHelpers(t *testing.T) {
	t.Parallel()
	type call struct {
		name  string
		run   func(c *client.Client) (any, error)
		reply string
		query string
		vars  string
		want  string
	}
	ctx := context.Background()
	expires := "2030-01-01T00:00:00+00:00"
	user := "u-1"
	for _, tt := range []call{
		{"AuthInfo", func(c *client.Client) (any, error) { return c.AuthInfo(ctx, "user_id") },
			`{"data": {"auth_info": {"user_id": "u-1"}}}`, "query {\n    auth_info {\n        user_id\n    }\n}", "null", `{"tenant_id":null,"user_id":"u-1","api_token_scope":null,"role":null}`},
		{"Tenants", func(c *client.Client) (any, error) { return c.Tenants(ctx) },
			`{"data": {"tenant": [{"id": "t", "slug": "s", "name": "n"}]}}`, client.QueryTenants, "null", `[{"id":"t","slug":"s","name":"n"}]`},
		{"TenantByID", func(c *client.Client) (any, error) { return c.TenantByID(ctx, "t-\"1") },
			`{"data": {"tenant": []}}`, "query {\n    tenant(where: { id: { _eq: \"t-\\\"1\" } }) {\n        id\n        slug\n        name\n    }\n}", "null", `[]`},
		{"TenantIDsBySlug", func(c *client.Client) (any, error) { return c.TenantIDsBySlug(ctx, "two") },
			`{"data": {"tenant": [{"id": "t2"}]}}`, client.QueryTenantBySlug, `{"slug": "two"}`, `["t2"]`},
		{"LoginTenantIDs", func(c *client.Client) (any, error) { id := "t2"; return c.LoginTenantIDs(ctx, nil, &id) },
			`{"data": {"tenant": [{"id": "t2"}]}}`, client.QueryLoginTenant, `{"slug": null, "id": "t2"}`, `["t2"]`},
		{"UserDefaultTenant", func(c *client.Client) (any, error) { return c.UserDefaultTenant(ctx) },
			`{"data": {"user": [{"default_membership": {"tenant_id": "t1"}}]}}`, client.QueryUserDefaultTenant, "null", `"t1"`},
		{"CreateAPIKey", func(c *client.Client) (any, error) {
			return c.CreateAPIKey(ctx, client.CreateAPIKeyInput{Name: "k", UserID: &user, ExpiresAt: &expires})
		}, `{"data": {"create_api_key": {"key": "lku_new"}}}`, client.MutationCreateAPIKey,
			`{"input": {"name": "k", "user_id": "u-1", "expires_at": "2030-01-01T00:00:00+00:00"}}`, `"lku_new"`},
		{"CreateAPIKey defaults", func(c *client.Client) (any, error) {
			return c.CreateAPIKey(ctx, client.CreateAPIKeyInput{Name: "k", DefaultTenantID: "t2"})
		}, `{"data": {"create_api_key": {"key": "lku_new"}}}`, client.MutationCreateAPIKey,
			`{"input": {"name": "k", "user_id": null, "expires_at": null, "default_tenant_id": "t2"}}`, `"lku_new"`},
		{"APIKeys", func(c *client.Client) (any, error) { return c.APIKeys(ctx) },
			`{"data": {"auth_api_key": [{"id": "1", "name": "a", "identifier": "lku_…x9Qz", "expires_at": null}]}}`, client.QueryAPIKeys, "null", `[{"id":"1","name":"a","identifier":"lku_…x9Qz","expires_at":null}]`},
		{"DeleteAPIKey", func(c *client.Client) (any, error) { return c.DeleteAPIKey(ctx, "1") },
			`{"data": {"delete_api_key": {"success": false}}}`, client.MutationDeleteAPIKey, `{"input": {"key_id": "1"}}`, `false`},
		{"CreateAPIToken", func(c *client.Client) (any, error) { return c.CreateAPIToken(ctx, "n", "RUNNER") },
			`{"data": {"create_api_token": {"token": "lkt_x"}}}`, client.MutationCreateAPIToken, `{"input": {"name": "n", "scope": "RUNNER"}}`, `"lkt_x"`},
		{"APITokens", func(c *client.Client) (any, error) { return c.APITokens(ctx) },
			`{"data": {"api_token": [{"id": "1", "name": "a"}]}}`, client.QueryAPITokens, "null", `[{"id":"1","name":"a"}]`},
		{"DeleteAPIToken", func(c *client.Client) (any, error) { return c.DeleteAPIToken(ctx, "1") },
			`{"data": {"delete_api_token": {"success": true}}}`, client.MutationDeleteAPIToken, `{"input": {"token_id": "1"}}`, `true`},
		{"SwitchTenant default", func(c *client.Client) (any, error) {
			tok, err := c.SwitchTenant(ctx, "")
			if err != nil {
				return nil, err
			}
			return []string{tok.AccessToken, tok.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z"), tok.RefreshToken}, nil
		}, `{"data": {"switch_tenant": {"access_token": "a", "expires_at": "2030-01-01T01:00:00+01:00", "refresh_token": "r"}}}`,
			client.MutationSwitchTenant, `{"input": {"tenant_id": null}}`, `["a","2030-01-01T00:00:00Z","r"]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := MustRecorder(t, fixed(200, tt.reply))
			c := &client.Client{URL: rec.srv.URL, APIKey: "k"}
			got, err := tt.run(c)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(got)
			if string(b) != tt.want {
				t.Errorf("result=%s, want %s", b, tt.want)
			}
			var body struct{ Query, Variables string }
			if err := json.Unmarshal([]byte(rec.requests()[0].Body), &body); err != nil {
				t.Fatal(err)
			}
			if body.Query != tt.query {
				t.Errorf("query=%q, want %q", body.Query, tt.query)
			}
			if body.Variables != tt.vars {
				t.Errorf("variables=%s, want %s", body.Variables, tt.vars)
			}
		})
	}
}

func TestPythonRendering(t *testing.T) {
	t.Parallel()
	raw := json.RawMessage(`{"z": [1, 2.5, 1e21, -0.0001, true, null], "a": "it's", "b": "say \"hi\"", "c": "\u00e9\n\u2028", "d": {}, "e": []}`)
	if got, want := client.PythonRepr(raw), `{'z': [1, 2.5, 1e+21, -0.0001, True, None], 'a': "it's", 'b': 'say "hi"', 'c': 'é\n\u2028', 'd': {}, 'e': []}`; got != want {
		t.Errorf("repr=\n%s\nwant\n%s", got, want)
	}
	if got, want := client.PythonJSON(raw, -1), `{"z": [1, 2.5, 1e+21, -0.0001, true, null], "a": "it's", "b": "say \"hi\"", "c": "\u00e9\n\u2028", "d": {}, "e": []}`; got != want {
		t.Errorf("json=\n%s\nwant\n%s", got, want)
	}
	if got, want := client.PythonJSON(json.RawMessage(`{"data":{"k":null,"l":[1]}}`), 4), "{\n    \"data\": {\n        \"k\": null,\n        \"l\": [\n            1\n        ]\n    }\n}"; got != want {
		t.Errorf("indented=\n%s\nwant\n%s", got, want)
	}
}
