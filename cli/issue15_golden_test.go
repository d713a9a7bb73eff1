package cli_test

import (
	"testing"
)

func withIdentifiers(f *fakeServer) { f.identifiers = true }

// Errors say what happened and what to do (issue 15, point 8).
func TestErrorsGolden(t *testing.T) {
	t.Parallel()
	runGolden(t, []scenario{
		{name: "error-no-scheme", args: []string{"login", "-k", goodKey}, env: map[string]string{"PREFECT__CLOUD__API": "127.0.0.1:4200"}},
		{name: "error-server-down-config", args: []string{"list-keys"}, files: map[string]string{".prefect/config.toml": "[cloud]\napi = \"http://127.0.0.1:1/graphql\"\napi_key = \"lku_configkey\"\n"}, env: map[string]string{"PREFECT__CLOUD__API": ""}},
		{name: "error-server-down-default", args: []string{"list-tenants"}, env: map[string]string{"PREFECT__CLOUD__API": "", "PREFECT__CLOUD__API_KEY": goodKey, "PREFECT__HOME_DIR": "{{HOME}}/h", "PREFECT__CLOUD__ENDPOINT": "http://127.0.0.1:1"}},
		{name: "error-expired-key", args: []string{"list-keys"}, env: map[string]string{"PREFECT__CLOUD__API_KEY": expiredKey}},
		{name: "error-revoked-key", args: []string{"create-key", "-n", "x"}, env: map[string]string{"PREFECT__CLOUD__API_KEY": revokedKey}},
	})
}

// Scripting: --json, revoke-key by name or identifier, logout --yes,
// "did you mean" (point 9).
func TestScriptingGolden(t *testing.T) {
	t.Parallel()
	runGolden(t, []scenario{
		{name: "json-list-tenants", args: []string{"list-tenants", "--json"}, files: loggedIn},
		{name: "json-list-keys", args: []string{"list-keys", "--json"}, files: loggedIn},
		{name: "json-list-keys-empty", args: []string{"list-keys", "--json"}, files: loggedIn, setup: answer(isQuery("query {\n    auth_api_key {\n        id\n        name\n        expires_at\n    }\n}"), 200, `{"data": {"auth_api_key": []}}`)},
		{name: "json-list-keys-unexpected", args: []string{"list-keys", "--json"}, files: loggedIn, setup: answer(isQuery("query {\n    auth_api_key {\n        id\n        name\n        expires_at\n    }\n}"), 200, `{"data": {}}`)},
		{name: "json-list-tokens", args: []string{"list-tokens", "--json"}, files: loggedIn},
		{name: "json-create-key", args: []string{"create-key", "-n", "mykey", "-e", "2030-1-1", "--json"}, files: loggedIn},
		{name: "json-create-key-past", args: []string{"create-key", "-n", "mykey", "-e", "1900-1-1", "--json"}, files: loggedIn},
		{name: "revoke-key-by-name", args: []string{"revoke-key", "-i", "ci key"}, files: loggedIn},
		{name: "revoke-key-by-name-ambiguous", args: []string{"revoke-key", "-i", "twin"}, files: loggedIn},
		{name: "revoke-key-by-identifier", args: []string{"revoke-key", "--id", longKeyIdent}, files: loggedIn, setup: withIdentifiers},
		{name: "revoke-key-by-identifier-ascii", args: []string{"revoke-key", "--id", "lku_...WXYZ"}, files: loggedIn, setup: withIdentifiers},
		{name: "revoke-key-by-identifier-unknown", args: []string{"revoke-key", "--id", "lku_…nope"}, files: loggedIn, setup: withIdentifiers},
		{name: "revoke-key-by-identifier-unsupported", args: []string{"revoke-key", "--id", longKeyIdent}, files: loggedIn},
		{name: "logout-yes-flag", args: []string{"logout", "--yes"}, files: loggedIn},
		{name: "logout-y-token", args: []string{"logout", "-y"}, files: tokenNoTenant},
		{name: "usage-did-you-mean-command", args: []string{"lst-keys"}},
		{name: "usage-did-you-mean-option", args: []string{"list-keys", "--jsn"}},
		{name: "usage-no-suggestion", args: []string{"frobnicate"}},
	})
}

// status asks the server whether the key works, and who it is (point 10).
func TestStatusServerGolden(t *testing.T) {
	t.Parallel()
	longKeyEnv := map[string]string{"PREFECT__CLOUD__API_KEY": longKey}
	runGolden(t, []scenario{
		{name: "status-key-identified", args: []string{"status"}, env: longKeyEnv, setup: withIdentifiers},
		{name: "status-key-no-identifiers", args: []string{"status"}, env: longKeyEnv},
		{name: "status-expired-key", args: []string{"status"}, env: map[string]string{"PREFECT__CLOUD__API_KEY": expiredKey}},
		{name: "status-revoked-key", args: []string{"status"}, env: map[string]string{"PREFECT__CLOUD__API_KEY": revokedKey}},
		{name: "status-server-down", args: []string{"status"}, env: map[string]string{"PREFECT__CLOUD__API": "http://127.0.0.1:1", "PREFECT__CLOUD__API_KEY": goodKey}},
		{name: "status-json", args: []string{"status", "--json"}, env: longKeyEnv, setup: withIdentifiers},
		{name: "status-json-revoked", args: []string{"status", "--json"}, env: map[string]string{"PREFECT__CLOUD__API_KEY": revokedKey}},
		{name: "status-json-not-logged-in", args: []string{"status", "--json"}},
	})
}
