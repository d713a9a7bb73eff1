package agent_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/agent"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/cmdline"
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
	t.Parallel()
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
			s, err := agent.ResolveSettings(tt.flags, &client.Env{Getenv: getenvMap(tt.env), HomeDir: mustHome(t, tt.config)})
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
	t.Parallel()
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
		_, err := agent.ResolveSettings(tt.flags, &client.Env{Getenv: getenvMap(tt.env), HomeDir: mustHome(t, tt.config)})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	_, err := agent.ResolveSettings(agent.Flags{}, &client.Env{HomeDir: t.TempDir()})
	if !errors.Is(err, agent.ErrNoKey) {
		t.Errorf("err = %v, want ErrNoKey", err)
	}
}

func TestResolveSettings_OtherSettings(t *testing.T) {
	t.Parallel()
	home := mustHome(t, `[cloud]
api = "http://from-file/graphql"
tenant_id = "22222222-2222-2222-2222-222222222222"
heartbeat_interval = 2.5

[cloud.agent]
auth_token = "k"
name = "file-agent"
require_service_account = true
`)
	s, err := agent.ResolveSettings(agent.Flags{}, &client.Env{HomeDir: home})
	if err != nil {
		t.Fatal(err)
	}
	if s.API != "http://from-file/graphql" || s.TenantID != "22222222-2222-2222-2222-222222222222" || s.Name != "file-agent" ||
		!s.RequireServiceAccount || s.HeartbeatInterval != 2500*time.Millisecond || s.LogLevel != "INFO" {
		t.Errorf("from the file: %+v", s)
	}
	env := map[string]string{agent.EnvAPI: "http://from-env", agent.EnvTenantID: "33333333-3333-3333-3333-333333333333", agent.EnvAgentName: "env-agent", agent.EnvHeartbeatInterval: "1"}
	s, err = agent.ResolveSettings(agent.Flags{}, &client.Env{Getenv: getenvMap(env), HomeDir: home})
	if err != nil {
		t.Fatal(err)
	}
	if s.API != "http://from-env" || s.TenantID != "33333333-3333-3333-3333-333333333333" || s.Name != "env-agent" || s.HeartbeatInterval != time.Second {
		t.Errorf("from the environment: %+v", s)
	}
	s, err = agent.ResolveSettings(agent.Flags{API: "http://from-flag", TenantID: "44444444-4444-4444-4444-44444444444A", Name: "flag-agent", Labels: []string{"a"}, MaxPolls: 3}, &client.Env{Getenv: getenvMap(env), HomeDir: home})
	if err != nil {
		t.Fatal(err)
	}
	if s.API != "http://from-flag" || s.TenantID != "44444444-4444-4444-4444-44444444444a" || s.Name != "flag-agent" || s.MaxPolls != 3 || len(s.Labels) != 1 {
		t.Errorf("from the flags: %+v", s)
	}
	s, err = agent.ResolveSettings(agent.Flags{Key: "k"}, &client.Env{HomeDir: t.TempDir()})
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
	s, err = agent.ResolveSettings(agent.Flags{}, &client.Env{Getenv: getenvMap(map[string]string{agent.EnvUserConfigPath: other}), HomeDir: home})
	if err != nil || s.Key != "moved" {
		t.Errorf("config path: %+v, %v", s, err)
	}
}

// runCommand runs `latchkey args...` with the agent's commands under
// latchkey's root, as the latchkey binary does, and returns the exit code.
func runCommand(env *client.Env, args ...string) int {
	root := &cobra.Command{Use: "latchkey"}
	root.SetErr(env.Stderr)
	root.AddCommand(agent.Commands(env)...)
	return cmdline.Run(context.Background(), root, args)
}

func TestRunAgentCommand_Errors(t *testing.T) {
	t.Parallel()
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
			env := &client.Env{Stderr: stderr, Getenv: func(string) string { return "" }, HomeDir: t.TempDir()}
			if code := runCommand(env, append([]string{"agent"}, tt.args...)...); code != tt.code {
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

// writeAuthFile writes home's ~/.prefect/auth.toml as `latchkey auth login`
// (or Prefect's) leaves it.
func writeAuthFile(t *testing.T, home, body string) {
	t.Helper()
	dir := filepath.Join(home, ".prefect")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	const header = "# This file is auto-generated and should not be manually edited\n# Update the Prefect config or use the CLI to login instead\n\n"
	if err := os.WriteFile(filepath.Join(dir, "auth.toml"), []byte(header+body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestResolveSettings_AuthFile: with no key from a flag, the environment
// or config.toml, the agent uses the key `latchkey auth login` saved for
// its API server in ~/.prefect/auth.toml, with the tenant saved beside it,
// as Prefect 1.x's Client does (issue 17).
func TestResolveSettings_AuthFile(t *testing.T) {
	t.Parallel()
	const tenant = "22222222-2222-2222-2222-222222222222"
	const saved = "[\"api.prefect.io\"]\napi_key = \"pcu_cloudkey\"\n\n" +
		"[\"127.0.0.1-4200\"]\napi_key = \"lks_savedkey\"\ntenant_id = \"" + tenant + "\"\n\n" +
		"[\"127.0.0.1-9999\"]\napi_key = \"\"\ntenant_id = \"\"\n"
	home := mustHome(t, "")
	writeAuthFile(t, home, saved)
	authFile := filepath.Join(home, ".prefect", "auth.toml")

	// The default API's section (the path of the URL does not matter).
	for _, env := range []map[string]string{nil, {agent.EnvAPI: "http://127.0.0.1:4200/graphql"}} {
		s, err := agent.ResolveSettings(agent.Flags{}, &client.Env{Getenv: getenvMap(env), HomeDir: home})
		if err != nil {
			t.Fatal(err)
		}
		if s.Key != "lks_savedkey" || s.KeySource != authFile || s.TenantID != tenant {
			t.Errorf("env %v: key %q from %q, tenant %q", env, s.Key, s.KeySource, s.TenantID)
		}
	}
	// A tenant set otherwise wins over the saved one.
	s, err := agent.ResolveSettings(agent.Flags{TenantID: "33333333-3333-3333-3333-333333333333"}, &client.Env{HomeDir: home})
	if err != nil || s.Key != "lks_savedkey" || s.TenantID != "33333333-3333-3333-3333-333333333333" {
		t.Errorf("--tenant-id: %+v, %v", s, err)
	}
	// Every other source beats the file, and its tenant stays with its key.
	for _, tt := range []struct {
		flags  agent.Flags
		env    map[string]string
		config string
		want   string
	}{
		{agent.Flags{Key: "from-flag"}, nil, "", "from-flag"},
		{agent.Flags{}, map[string]string{agent.EnvAPIKey: "from-env"}, "", "from-env"},
		{agent.Flags{}, nil, "[cloud]\napi_key = \"from-config\"\n", "from-config"},
	} {
		h := mustHome(t, tt.config)
		writeAuthFile(t, h, saved)
		s, err := agent.ResolveSettings(tt.flags, &client.Env{Getenv: getenvMap(tt.env), HomeDir: h})
		if err != nil || s.Key != tt.want || s.TenantID != "" {
			t.Errorf("want %q: %+v, %v", tt.want, s, err)
		}
	}
	// Another server's section, a logged-out section (Prefect 1.0 leaves
	// empty strings) and no file at all: no key.
	for _, env := range []map[string]string{
		{agent.EnvAPI: "http://127.0.0.1:4300"},
		{agent.EnvAPI: "http://127.0.0.1:9999"},
		{agent.EnvHomeDir: filepath.Join(home, "nowhere")},
	} {
		if _, err := agent.ResolveSettings(agent.Flags{}, &client.Env{Getenv: getenvMap(env), HomeDir: home}); !errors.Is(err, agent.ErrNoKey) {
			t.Errorf("env %v: err = %v, want ErrNoKey", env, err)
		}
	}
	// PREFECT__HOME_DIR moves the file.
	moved := t.TempDir()
	writeAuthFile(t, moved, saved)
	s, err = agent.ResolveSettings(agent.Flags{}, &client.Env{Getenv: getenvMap(map[string]string{agent.EnvHomeDir: filepath.Join(moved, ".prefect")}), HomeDir: home})
	if err != nil || s.Key != "lks_savedkey" {
		t.Errorf("PREFECT__HOME_DIR: %+v, %v", s, err)
	}
	// A broken file is an error that names it, never the key.
	writeAuthFile(t, home, "[\"127.0.0.1-4200\"\napi_key = \"lks_savedkey\"\n")
	if _, err := agent.ResolveSettings(agent.Flags{}, &client.Env{HomeDir: home}); err == nil || !strings.Contains(err.Error(), "auth.toml") || strings.Contains(err.Error(), "savedkey") {
		t.Errorf("broken file: %v", err)
	}
}

func TestHostnameLabel(t *testing.T) {
	t.Parallel()
	host := func(name string, err error) func() (string, error) {
		return func() (string, error) { return name, err }
	}
	labels := []string{"b", "a"}
	if got, err := agent.HostnameLabel(labels, host("vm-1", nil)); err != nil || !slices.Equal(got, []string{"b", "a", "vm-1"}) || len(labels) != 2 {
		t.Errorf("got %v, %v (labels %v)", got, err, labels)
	}
	if got, err := agent.HostnameLabel([]string{"vm-1"}, host("vm-1", nil)); err != nil || !slices.Equal(got, []string{"vm-1"}) {
		t.Errorf("already a label: %v, %v", got, err)
	}
	if got, err := agent.HostnameLabel(nil, host("", nil)); err != nil || len(got) != 0 {
		t.Errorf("no name: %v, %v", got, err)
	}
	if _, err := agent.HostnameLabel(nil, host("", errors.New("uname failed"))); err == nil || !strings.Contains(err.Error(), "--no-hostname-label") {
		t.Errorf("error: %v", err)
	}
	if got, err := agent.HostnameLabel(nil, nil); err != nil || len(got) > 1 {
		t.Errorf("os.Hostname: %v, %v", got, err)
	}
}

// TestRunAgentCommand_Labels: `latchkey agent local start` registers and
// polls with the host's name among its labels, as Prefect 1.x's local agent
// does, unless --no-hostname-label is given; with no key given it uses the
// one in ~/.prefect/auth.toml.
func TestRunAgentCommand_Labels(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-l", "foo"}, "[foo test-host]"},
		{[]string{"-l", "foo", "--no-hostname-label"}, "[foo]"},
		{nil, "[test-host]"},
	} {
		f := newFakeAPI(t)
		scriptStartup(f)
		f.Handle["get_runs_in_queue"] = func(call) string { return data(`{"get_runs_in_queue":{"flow_run_ids":[]}}`) }
		home := t.TempDir()
		writeAuthFile(t, home, "[\""+client.ServerSlug(f.URL())+"\"]\napi_key = \""+testKey+"\"\n")
		stderr := &lockedBuffer{}
		env := &client.Env{Stderr: stderr, Getenv: func(string) string { return "" }, HomeDir: home,
			Hostname: func() (string, error) { return "test-host", nil }}
		args := append([]string{"local", "start", "--api", f.URL(), "--max-polls", "1"}, tt.args...)
		if code := runCommand(env, append([]string{"agent"}, args...)...); code != 0 {
			t.Fatalf("%v: exit %d\n%s", tt.args, code, stderr)
		}
		reg := f.Calls("register_agent")
		polls := f.Calls("get_runs_in_queue")
		if len(reg) != 1 || len(polls) != 1 || fmt.Sprint(reg[0].input()["labels"]) != tt.want || fmt.Sprint(polls[0].input()["labels"]) != tt.want {
			t.Errorf("%v: registered %v, polled %v, want %s", tt.args, reg, polls, tt.want)
		}
		if reg[0].Header.Get("Authorization") != "Bearer "+testKey {
			t.Errorf("the key from auth.toml was not used: %v", reg[0].Header)
		}
		if strings.Contains(stderr.String(), testKey[4:]) {
			t.Error("the key was logged")
		}
	}
}
