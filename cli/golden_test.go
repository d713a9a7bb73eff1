package cli_test

import (
	"strings"
	"testing"

	"github.com/latchkey/latchkey/client"
)

const authHeader = "# This file is auto-generated and should not be manually edited\n# Update the Prefect config or use the CLI to login instead\n\n"

// Files a scenario can start from.
var (
	loggedIn = map[string]string{
		".prefect/auth.toml": authHeader + "[\"127.0.0.1-{{PORT}}\"]\napi_key = \"lku_goodkey\"\ntenant_id = \"" + tenantOne + "\"\n",
	}
	loggedInNoTenant = map[string]string{
		".prefect/auth.toml": authHeader + "[\"127.0.0.1-{{PORT}}\"]\napi_key = \"lku_goodkey\"\n",
	}
	// loggedOut10 is what Prefect 1.0's logout wrote.
	loggedOut10 = map[string]string{
		".prefect/auth.toml": authHeader + "[\"127.0.0.1-{{PORT}}\"]\napi_key = \"\"\ntenant_id = \"\"\n",
	}
	otherServers = map[string]string{
		".prefect/auth.toml": authHeader + "[\"api.prefect.io\"]\napi_key = \"pcu_cloudkey\"\ntenant_id = \"" + tenantTwo + "\"\n\n[\"127.0.0.1-{{PORT}}\"]\napi_key = \"lku_oldkey\"\n\n[zzz-server]\napi_key = \"lku_zzz\"\n",
	}
	settingsPath  = ".prefect/client/http-127.0.0.1-{{PORT}}-graphql/settings.toml"
	tokenInTenant = map[string]string{
		settingsPath: "api_token = \"" + userToken + "\"\nactive_tenant_id = \"" + tenantTwo + "\"\n",
	}
	tokenNoTenant = map[string]string{
		settingsPath: "api_token = \"" + userToken + "\"\n",
	}
)

func with(base map[string]string, extra map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// answer makes an override that answers one query with a fixed response.
func answer(match func(q string) bool, status int, body string) func(*fakeServer) {
	return func(f *fakeServer) {
		f.override = func(r recorded) (int, string) {
			if match(r.Query) {
				return status, body
			}
			return 0, ""
		}
	}
}

func isQuery(q string) func(string) bool { return func(s string) bool { return s == q } }

func hasPrefix(p string) func(string) bool {
	return func(s string) bool { return strings.HasPrefix(s, p) }
}

func TestHelp(t *testing.T) {
	t.Parallel()
	var scs []scenario
	scs = append(scs,
		scenario{name: "help-auth", args: []string{"--help"}},
		scenario{name: "help-auth-short", args: []string{"-h"}},
		scenario{name: "help-auth-no-args", args: nil},
		scenario{name: "help-auth-narrow", args: []string{"create-key", "-h"}, env: map[string]string{"COLUMNS": "50"}},
	)
	for _, c := range []string{"login", "logout", "list-tenants", "switch-tenants", "create-key", "list-keys", "revoke-key", "rotate-key", "status", "create-token", "list-tokens", "revoke-token"} {
		scs = append(scs, scenario{name: "help-" + c, args: []string{c, "--help"}})
	}
	runGolden(t, scs)
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	runGolden(t, []scenario{
		{name: "usage-missing-name", args: []string{"create-key"}},
		{name: "usage-missing-name-before-extra", args: []string{"create-key", "extra"}},
		{name: "usage-missing-id", args: []string{"revoke-key"}},
		{name: "usage-rotate-missing-id", args: []string{"rotate-key", "--grace", "1h"}},
		{name: "usage-missing-scope", args: []string{"create-token", "-n", "x"}},
		{name: "usage-missing-token-id", args: []string{"revoke-token"}},
		{name: "usage-no-such-option", args: []string{"create-key", "-x"}},
		{name: "usage-no-such-long-option", args: []string{"create-key", "--bogus=1"}},
		{name: "usage-no-such-short-in-group", args: []string{"switch-tenants", "-qd"}},
		{name: "usage-needs-argument", args: []string{"create-key", "-n"}},
		{name: "usage-needs-argument-long", args: []string{"login", "--key"}},
		{name: "usage-flag-value", args: []string{"logout", "--token=yes"}},
		{name: "usage-extra-argument", args: []string{"list-keys", "extra"}},
		{name: "usage-extra-arguments", args: []string{"create-key", "-n", "a", "b", "c"}},
		{name: "usage-no-such-command", args: []string{"nosuch"}},
		{name: "usage-group-option", args: []string{"--bogus"}},
		{name: "usage-backend-server", args: []string{"login", "-k", goodKey}, env: map[string]string{"PREFECT__BACKEND": "server"}},
		{name: "usage-backend-server-file", args: []string{"status"}, files: map[string]string{".prefect/backend.toml": "backend = \"server\"\n"}},
		{name: "usage-backend-server-config", args: []string{"list-keys"}, files: map[string]string{".prefect/config.toml": "backend = \"server\"\n"}},
		{name: "usage-help-flag-wins", args: []string{"create-key", "extra", "-h"}},
	})
}

func TestLoginGolden(t *testing.T) {
	t.Parallel()
	runGolden(t, []scenario{
		{name: "login-key", args: []string{"login", "-k", goodKey}},
		{name: "login-key-long", args: []string{"login", "--key=" + goodKey}, tty: true},
		{name: "login-key-keeps-other-servers", args: []string{"login", "--key", goodKey}, files: otherServers},
		{name: "login-key-replaces-stale-tenant", args: []string{"login", "-k", goodKey}, files: with(loggedIn, map[string]string{".prefect/auth.toml": authHeader + "[\"127.0.0.1-{{PORT}}\"]\napi_key = \"lku_other\"\ntenant_id = \"" + tenantTwo + "\"\n"})},
		{name: "login-key-env-tenant", args: []string{"login", "-k", goodKey}, env: map[string]string{"PREFECT__CLOUD__TENANT_ID": tenantTwo}},
		{name: "login-after-10-logout", args: []string{"login", "-k", goodKey}, files: loggedOut10},
		{name: "login-nothing", args: []string{"login"}},
		{name: "login-empty-key", args: []string{"login", "-k", ""}},
		{name: "login-both", args: []string{"login", "-k", goodKey, "-t", userToken}},
		{name: "login-config-key-env", args: []string{"login", "-k", goodKey}, env: map[string]string{"PREFECT__CLOUD__API_KEY": goodKey}},
		{name: "login-config-key-file", args: []string{"login", "-k", goodKey}, files: map[string]string{".prefect/config.toml": "[cloud]\napi_key = \"lku_fromconfig\"\n"}},
		{name: "login-invalid-key", args: []string{"login", "-k", "lku_wrong"}},
		{name: "login-token-as-key", args: []string{"login", "-k", userToken}},
		{name: "login-http-400", args: []string{"login", "-k", goodKey}, setup: answer(isQuery(client.QueryAuthInfoTenant), 400, gqlError("Unauthorized", "UNAUTHENTICATED"))},
		{name: "login-http-401", args: []string{"login", "-k", goodKey}, setup: answer(isQuery(client.QueryAuthInfoTenant), 401, `{}`)},
		{name: "login-missing-tenant-field", args: []string{"login", "-k", goodKey}, setup: answer(isQuery(client.QueryAuthInfoTenant), 200, `{"data": {"auth_info": {}}}`)},
		{name: "login-not-json", args: []string{"login", "-k", goodKey}, setup: answer(isQuery(client.QueryAuthInfoTenant), 200, `<html>`)},
		{name: "login-tenant-not-found", args: []string{"login", "-k", goodKey}, setup: answer(hasPrefix("query {\n    tenant(where: { id:"), 200, `{"data": {"tenant": []}}`)},
		{name: "login-server-down", args: []string{"login", "-k", goodKey}, env: map[string]string{"PREFECT__CLOUD__API": "http://127.0.0.1:1"}},
		{name: "login-token-flag-with-key", args: []string{"login", "-t", goodKey}},
		{name: "login-token", args: []string{"login", "-t", userToken}},
		{name: "login-token-invalid", args: []string{"login", "-t", "lkt_wrong"}},
		{name: "login-token-already-key", args: []string{"login", "-t", userToken}, files: loggedIn},
		{name: "login-token-config-auth-token", args: []string{"login", "-t", userToken}, env: map[string]string{"PREFECT__CLOUD__AUTH_TOKEN": userToken}},
		{name: "login-invalid-stored-tenant", args: []string{"login", "-k", goodKey}, env: map[string]string{"PREFECT__CLOUD__TENANT_ID": "not-a-uuid"}},
	})
}

func TestLogoutGolden(t *testing.T) {
	t.Parallel()
	runGolden(t, []scenario{
		{name: "logout-yes", args: []string{"logout"}, stdin: "y\n", files: loggedIn},
		{name: "logout-no", args: []string{"logout"}, stdin: "n\n", files: loggedIn},
		{name: "logout-default-no", args: []string{"logout"}, stdin: "\n", files: loggedIn},
		{name: "logout-eof", args: []string{"logout"}, files: loggedIn},
		{name: "logout-invalid-then-yes", args: []string{"logout"}, stdin: "maybe\nYES\n", files: loggedIn},
		{name: "logout-not-logged-in", args: []string{"logout"}},
		{name: "logout-after-10-logout", args: []string{"logout"}, files: loggedOut10},
		{name: "logout-config-key", args: []string{"logout"}, env: map[string]string{"PREFECT__CLOUD__API_KEY": goodKey}},
		{name: "logout-token-flag-with-key", args: []string{"logout", "-t"}, files: loggedIn},
		{name: "logout-token-tenant", args: []string{"logout"}, stdin: "y\n", files: tokenInTenant},
		{name: "logout-token-forget", args: []string{"logout"}, stdin: "y\n", files: tokenNoTenant},
	})
}

func TestTenantsGolden(t *testing.T) {
	t.Parallel()
	runGolden(t, []scenario{
		{name: "list-tenants", args: []string{"list-tenants"}, files: loggedIn},
		{name: "list-tenants-default-tenant", args: []string{"list-tenants"}, files: loggedInNoTenant},
		{name: "list-tenants-unauthenticated", args: []string{"list-tenants"}},
		{name: "list-tenants-empty", args: []string{"list-tenants"}, files: loggedIn, setup: answer(isQuery(client.QueryTenants), 200, `{"data": {"tenant": []}}`)},
		{name: "list-tenants-token", args: []string{"list-tenants"}, files: tokenInTenant},
		{name: "switch-tenants-slug", args: []string{"switch-tenants", "--slug", "tenant-two"}, files: loggedIn},
		{name: "switch-tenants-id", args: []string{"switch-tenants", "-i", strings.ToUpper(tenantTwo)}, files: loggedIn},
		{name: "switch-tenants-default", args: []string{"switch-tenants", "-d"}, files: with(loggedIn, map[string]string{".prefect/auth.toml": authHeader + "[\"127.0.0.1-{{PORT}}\"]\napi_key = \"lku_goodkey\"\ntenant_id = \"" + tenantTwo + "\"\n"})},
		{name: "switch-tenants-both", args: []string{"switch-tenants", "-i", tenantTwo, "-s", "tenant-two"}, files: loggedIn},
		{name: "switch-tenants-neither", args: []string{"switch-tenants"}, files: loggedIn},
		{name: "switch-tenants-not-member", args: []string{"switch-tenants", "-i", tenantOther}, files: loggedIn},
		{name: "switch-tenants-unknown-slug", args: []string{"switch-tenants", "-s", "nope"}, files: loggedIn},
		{name: "switch-tenants-bad-uuid", args: []string{"switch-tenants", "-i", "x"}, files: loggedIn},
		{name: "switch-tenants-config-tenant", args: []string{"switch-tenants", "-s", "tenant-two"}, files: loggedIn, env: map[string]string{"PREFECT__CLOUD__TENANT_ID": tenantOne}},
		{name: "switch-tenants-not-logged-in", args: []string{"switch-tenants", "-s", "tenant-two"}},
		{name: "switch-tenants-token", args: []string{"switch-tenants", "-s", "tenant-one"}, files: tokenInTenant},
		{name: "switch-tenants-token-default", args: []string{"switch-tenants", "-d"}, files: tokenInTenant},
	})
}

func TestKeysGolden(t *testing.T) {
	t.Parallel()
	runGolden(t, []scenario{
		{name: "create-key", args: []string{"create-key", "-n", "mykey"}, files: loggedIn},
		{name: "create-key-quiet", args: []string{"create-key", "-qn", "mykey"}, files: loggedIn},
		{name: "create-key-expire", args: []string{"create-key", "-n", "mykey", "-e", "2030-1-1"}, files: loggedIn},
		{name: "create-key-expire-aware", args: []string{"create-key", "-n", "mykey", "--expire", "2027-03-01T10:00:00+02:00"}, files: loggedIn},
		{name: "create-key-expire-garbage", args: []string{"create-key", "-n", "mykey", "-e", "foo"}, files: loggedIn},
		{name: "create-key-expire-past", args: []string{"create-key", "-n", "mykey", "-e", "1900-1-1"}, files: loggedIn},
		{name: "create-key-no-user", args: []string{"create-key", "-n", "mykey"}, files: loggedIn, setup: answer(hasPrefix("query {\n    auth_info"), 200, `{"data": {"auth_info": {"user_id": null}}}`)},
		{name: "create-key-no-key-returned", args: []string{"create-key", "-n", "mykey"}, files: loggedIn, setup: answer(isQuery(client.MutationCreateAPIKey), 200, `{"data": {"create_api_key": {"key": null}}}`)},
		{name: "create-key-unauthenticated", args: []string{"create-key", "-n", "mykey"}},
		{name: "create-key-forbidden", args: []string{"create-key", "-n", "mykey"}, files: loggedIn, setup: answer(isQuery(client.MutationCreateAPIKey), 200, gqlError("Read-only users cannot create keys.", "FORBIDDEN"))},
		{name: "list-keys", args: []string{"list-keys"}, files: loggedIn},
		{name: "list-keys-empty", args: []string{"list-keys"}, files: loggedIn, setup: answer(isQuery(client.QueryAPIKeys), 200, `{"data": {"auth_api_key": []}}`)},
		{name: "list-keys-unexpected", args: []string{"list-keys"}, files: loggedIn, setup: answer(isQuery(client.QueryAPIKeys), 200, `{"data": {}}`)},
		{name: "revoke-key", args: []string{"revoke-key", "-i", "44444444-4444-4444-4444-444444444444"}, files: loggedIn},
		{name: "revoke-key-unknown", args: []string{"revoke-key", "--id", "77777777-7777-7777-7777-777777777777"}, files: loggedIn},
		{name: "rotate-key", args: []string{"rotate-key", "-i", "44444444-4444-4444-4444-444444444444", "--grace", "1h"}, files: loggedIn},
		{name: "rotate-key-now", args: []string{"rotate-key", "-i", "44444444-4444-4444-4444-444444444444"}, files: loggedIn},
		{name: "rotate-key-quiet", args: []string{"rotate-key", "-qi", "44444444-4444-4444-4444-444444444444", "-g", "90m"}, files: loggedIn},
		{name: "rotate-key-unknown", args: []string{"rotate-key", "-i", "77777777-7777-7777-7777-777777777777", "--grace", "1h"}, files: loggedIn},
		{name: "rotate-key-bad-grace", args: []string{"rotate-key", "-i", "44444444-4444-4444-4444-444444444444", "--grace", "1 hour"}, files: loggedIn},
		{name: "rotate-key-negative-grace", args: []string{"rotate-key", "-i", "44444444-4444-4444-4444-444444444444", "--grace=-1h"}, files: loggedIn},
		{name: "rotate-key-long-grace", args: []string{"rotate-key", "-i", "44444444-4444-4444-4444-444444444444", "--grace", "721h"}, files: loggedIn},
		{name: "rotate-key-expired", args: []string{"rotate-key", "-i", "55555555-5555-5555-5555-555555555555", "--grace", "1h"}, files: loggedIn, setup: answer(isQuery(client.MutationRotateAPIKey), 200, gqlError("That API key has already expired; create a new key instead.", "BAD_USER_INPUT"))},
		{name: "rotate-key-no-key-returned", args: []string{"rotate-key", "-i", "44444444-4444-4444-4444-444444444444"}, files: loggedIn, setup: answer(isQuery(client.MutationRotateAPIKey), 200, `{"data": {"rotate_api_key": null}}`)},
		{name: "revoke-key-bad-input", args: []string{"revoke-key", "--id", "x"}, files: loggedIn, setup: answer(isQuery(client.MutationDeleteAPIKey), 200, gqlError("Invalid UUID.", "BAD_USER_INPUT"))},
	})
}

func TestStatusGolden(t *testing.T) {
	t.Parallel()
	runGolden(t, []scenario{
		{name: "status-key", args: []string{"status"}, files: loggedIn},
		{name: "status-key-default-tenant", args: []string{"status"}, files: loggedInNoTenant},
		{name: "status-bad-key", args: []string{"status"}, env: map[string]string{"PREFECT__CLOUD__API_KEY": "lku_wrong"}},
		{name: "status-not-logged-in", args: []string{"status"}},
		{name: "status-after-10-logout", args: []string{"status"}, files: loggedOut10},
		{name: "status-token", args: []string{"status"}, files: tokenInTenant},
		{name: "status-invalid-tenant", args: []string{"status"}, files: loggedIn, env: map[string]string{"PREFECT__CLOUD__TENANT_ID": "nope"}},
	})
}

func TestTokensGolden(t *testing.T) {
	t.Parallel()
	runGolden(t, []scenario{
		{name: "create-token", args: []string{"create-token", "-n", "runner", "-s", "RUNNER"}, files: loggedIn},
		{name: "create-token-no-data", args: []string{"create-token", "-n", "runner", "-s", "RUNNER"}, files: loggedIn, setup: answer(isQuery(client.MutationCreateAPIToken), 200, `{"data": null}`)},
		{name: "create-token-with-token", args: []string{"create-token", "-n", "runner", "-s", "RUNNER"}, files: tokenInTenant},
		{name: "list-tokens", args: []string{"list-tokens"}, files: loggedIn},
		{name: "list-tokens-empty", args: []string{"list-tokens"}, files: loggedIn, setup: answer(isQuery(client.QueryAPITokens), 200, `{"data": {"api_token": []}}`)},
		{name: "list-tokens-no-data", args: []string{"list-tokens"}, files: loggedIn, setup: answer(isQuery(client.QueryAPITokens), 200, `{"data": {}}`)},
		{name: "revoke-token", args: []string{"revoke-token", "-i", "66666666-6666-6666-6666-666666666666"}, files: loggedIn},
		{name: "revoke-token-unknown", args: []string{"revoke-token", "-i", "77777777-7777-7777-7777-777777777777"}, files: loggedIn},
		{name: "revoke-token-config-auth-token", args: []string{"revoke-token", "-i", "x"}, files: map[string]string{".prefect/config.toml": "[cloud]\nauth_token = \"" + userToken + "\"\n"}},
	})
}

func TestPrecedenceGolden(t *testing.T) {
	t.Parallel()
	const diskKey = ".prefect/auth.toml"
	disk := map[string]string{diskKey: authHeader + "[\"127.0.0.1-{{PORT}}\"]\napi_key = \"lku_diskkey\"\ntenant_id = \"" + tenantTwo + "\"\n"}
	conf := map[string]string{".prefect/config.toml": "[cloud]\napi_key = \"lku_configkey\"\ntenant_id = \"" + tenantOne + "\"\n"}
	runGolden(t, []scenario{
		{name: "precedence-env", args: []string{"list-keys"}, files: with(disk, conf), env: map[string]string{"PREFECT__CLOUD__API_KEY": goodKey, "PREFECT__CLOUD__TENANT_ID": tenantTwo}},
		{name: "precedence-config", args: []string{"list-keys"}, files: with(disk, conf)},
		{name: "precedence-disk", args: []string{"list-keys"}, files: disk},
		{name: "precedence-user-config-path", args: []string{"list-keys"}, files: with(disk, map[string]string{"elsewhere.toml": "[cloud]\napi_key = \"lku_elsewhere\"\n"}), env: map[string]string{"PREFECT__USER_CONFIG_PATH": "{{HOME}}/elsewhere.toml"}},
		{name: "precedence-api-from-config", args: []string{"status"}, files: with(loggedIn, map[string]string{".prefect/config.toml": "[cloud]\napi = \"{{URL}}/graphql\"\n"}), env: map[string]string{"PREFECT__CLOUD__API": ""}},
		{name: "precedence-home-dir", args: []string{"login", "-k", goodKey}, env: map[string]string{"PREFECT__HOME_DIR": "{{HOME}}/custom-home"}},
	})
}
