package agent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/agent"
	"github.com/latchkey/latchkey/client"
)

// mustHome returns a home directory with config as ~/.prefect/config.toml
// (none if config is empty).
func mustHome(t *testing.T, config string) string {
	t.Helper()
	home := t.TempDir()
	if config != "" {
		dir := filepath.Join(home, ".prefect")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

func getenvMap(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestResolveSettings_KeyPrecedence(t *testing.T) {
	const fullConfig = "[cloud]\napi_key = \"from-cloud-api-key\"\n\n[cloud.agent]\nauth_token = \"from-agent-auth-token\"\n"
	fullEnv := map[string]string{agent.EnvAgentAuthToken: "from-env-agent-token", agent.EnvAPIKey: "from-env-api-key"}
	for _, tt := range []struct {
		name   string
		flags  agent.Flags
		env    map[string]string
		config string
		want   string
		source string
	}{
		{"--token beats everything", agent.Flags{Token: "from-token-flag"}, fullEnv, fullConfig, "from-token-flag", "the --token flag"},
		{"--key beats everything", agent.Flags{Key: "from-key-flag"}, fullEnv, fullConfig, "from-key-flag", "the --key flag"},
		{"same key twice", agent.Flags{Token: "k", Key: "k"}, nil, "", "k", "the --token flag"},
		{"agent env beats api key env", agent.Flags{}, fullEnv, fullConfig, "from-env-agent-token", agent.EnvAgentAuthToken},
		{"api key env beats the file", agent.Flags{}, map[string]string{agent.EnvAPIKey: "from-env-api-key"}, fullConfig, "from-env-api-key", agent.EnvAPIKey},
		{"[cloud.agent] auth_token beats [cloud] api_key", agent.Flags{}, nil, fullConfig, "from-agent-auth-token", "[cloud.agent] auth_token in the config file"},
		{"[cloud] api_key last", agent.Flags{}, nil, "[cloud]\napi_key = \"from-cloud-api-key\"\n", "from-cloud-api-key", "[cloud] api_key in the config file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := agent.ResolveSettings(tt.flags, getenvMap(tt.env), mustHome(t, tt.config))
			if err != nil {
				t.Fatal(err)
			}
			if s.Key != tt.want || s.KeySource != tt.source {
				t.Errorf("key = %q from %q, want %q from %q", s.Key, s.KeySource, tt.want, tt.source)
			}
		})
	}
}

func TestResolveSettings_Errors(t *testing.T) {
	for _, tt := range []struct {
		name   string
		flags  agent.Flags
		env    map[string]string
		config string
		want   string
	}{
		{"no key anywhere", agent.Flags{}, nil, "", "no API key"},
		{"two different keys", agent.Flags{Token: "a", Key: "b"}, nil, "", "give the key once"},
		{"bad tenant", agent.Flags{Key: "k", TenantID: "tenant-one"}, nil, "", "invalid tenant id"},
		{"bad heartbeat", agent.Flags{Key: "k"}, map[string]string{agent.EnvHeartbeatInterval: "soon"}, "", "heartbeat"},
		{"bad require flag", agent.Flags{Key: "k"}, map[string]string{agent.EnvRequireSA: "maybe"}, "", "require_service_account"},
		{"bad config file", agent.Flags{Key: "k"}, nil, "[cloud\n", "parse"},
	} {
		_, err := agent.ResolveSettings(tt.flags, getenvMap(tt.env), mustHome(t, tt.config))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	_, err := agent.ResolveSettings(agent.Flags{}, nil, t.TempDir())
	if !errors.Is(err, agent.ErrNoKey) {
		t.Errorf("err = %v, want ErrNoKey", err)
	}
}

func TestResolveSettings_OtherSettings(t *testing.T) {
	home := mustHome(t, `[cloud]
api = "http://from-file/graphql"
tenant_id = "22222222-2222-2222-2222-222222222222"
heartbeat_interval = 2.5

[cloud.agent]
auth_token = "k"
name = "file-agent"
require_service_account = true
`)
	s, err := agent.ResolveSettings(agent.Flags{}, nil, home)
	if err != nil {
		t.Fatal(err)
	}
	if s.API != "http://from-file/graphql" || s.TenantID != "22222222-2222-2222-2222-222222222222" || s.Name != "file-agent" ||
		!s.RequireServiceAccount || s.HeartbeatInterval != 2500*time.Millisecond || s.LogLevel != "INFO" {
		t.Errorf("from the file: %+v", s)
	}
	env := map[string]string{agent.EnvAPI: "http://from-env", agent.EnvTenantID: "33333333-3333-3333-3333-333333333333", agent.EnvAgentName: "env-agent", agent.EnvHeartbeatInterval: "1"}
	s, err = agent.ResolveSettings(agent.Flags{}, getenvMap(env), home)
	if err != nil {
		t.Fatal(err)
	}
	if s.API != "http://from-env" || s.TenantID != "33333333-3333-3333-3333-333333333333" || s.Name != "env-agent" || s.HeartbeatInterval != time.Second {
		t.Errorf("from the environment: %+v", s)
	}
	s, err = agent.ResolveSettings(agent.Flags{API: "http://from-flag", TenantID: "44444444-4444-4444-4444-44444444444A", Name: "flag-agent", Labels: []string{"a"}, MaxPolls: 3}, getenvMap(env), home)
	if err != nil {
		t.Fatal(err)
	}
	if s.API != "http://from-flag" || s.TenantID != "44444444-4444-4444-4444-44444444444a" || s.Name != "flag-agent" || s.MaxPolls != 3 || len(s.Labels) != 1 {
		t.Errorf("from the flags: %+v", s)
	}
	s, err = agent.ResolveSettings(agent.Flags{Key: "k"}, nil, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if s.API != client.DefaultURL || s.TenantID != "" || s.Name != "agent" || s.RequireServiceAccount || s.HeartbeatInterval != agent.DefaultHeartbeatInterval {
		t.Errorf("defaults: %+v", s)
	}
	// PREFECT__USER_CONFIG_PATH moves the file.
	other := filepath.Join(t.TempDir(), "elsewhere.toml")
	if err := os.WriteFile(other, []byte("[cloud]\napi_key = \"moved\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = agent.ResolveSettings(agent.Flags{}, getenvMap(map[string]string{agent.EnvUserConfigPath: other}), home)
	if err != nil || s.Key != "moved" {
		t.Errorf("config path: %+v, %v", s, err)
	}
}

func TestRunAgentCommand_Errors(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown flag", []string{"local", "start", "--nope"}, 2, "unknown flag: --nope"},
		{"extra argument", []string{"local", "start", "x"}, 2, "unknown command"},
		{"other agent types", []string{"docker", "start"}, 2, `unknown command "docker" for "latchkey agent"`},
		{"no key", []string{"local", "start"}, 1, "Error: no API key: pass -t/--token or -k/--key"},
		{"bad log level", []string{"local", "start", "-k", "k", "--log-level", "LOUD"}, 2, "invalid log level"},
		{"revoked key", []string{"local", "start", "-t", "lks_revokedrevokedrevokedrevokedrevoAAAAAA", "--api", "URL"}, 1, agent.RevokedMessage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t)
			f.Handle["auth_info"] = func(call) string { return unauthenticated }
			for i, a := range tt.args {
				if a == "URL" {
					tt.args[i] = f.URL()
				}
			}
			stderr := &lockedBuffer{}
			env := &agent.Env{Stderr: stderr, Getenv: func(string) string { return "" }, HomeDir: t.TempDir()}
			if code := agent.RunAgentCommand(context.Background(), env, tt.args); code != tt.code {
				t.Errorf("exit = %d, want %d; stderr:\n%s", code, tt.code, stderr)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr = %q, want %q", stderr, tt.want)
			}
			if strings.Contains(stderr.String(), "revokedrevoked") {
				t.Error("the key was printed")
			}
		})
	}
}
