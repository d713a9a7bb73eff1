package client_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/client"
)

// TestLoadConfig: the environment beats backend.toml, which beats
// config.toml; ${...} values and missing files are unset; settings say
// where they were set, files named as the user names them.
func TestLoadConfig(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	dir := filepath.Join(home, ".prefect")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("config.toml", "backend = \"server\"\nhome_dir = \"~/elsewhere\"\n[cloud]\napi = \"${cloud.endpoint}\"\nendpoint = \"http://user\"\n"+
		"tenant_id = \"t\"\nheartbeat_interval = 2.5\n[cloud.agent]\nname = \"a\"\n")
	write("backend.toml", "backend = \"cloud\"\n")
	env := map[string]string{"PREFECT__CLOUD__AGENT__NAME": "from-env"}
	cfg, err := client.LoadConfig(&client.Env{HomeDir: home, Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path []string
		want client.Setting
	}{
		{[]string{"backend"}, client.Setting{Value: "cloud", File: "~/.prefect/backend.toml"}},
		{[]string{"cloud", "api"}, client.Setting{}},
		{[]string{"cloud", "endpoint"}, client.Setting{Value: "http://user", File: "~/.prefect/config.toml"}},
		{[]string{"cloud", "heartbeat_interval"}, client.Setting{Value: "2.5", File: "~/.prefect/config.toml"}},
		{[]string{"cloud", "agent", "name"}, client.Setting{Value: "from-env", EnvVar: "PREFECT__CLOUD__AGENT__NAME"}},
		{[]string{"cloud", "api_key"}, client.Setting{}},
	} {
		if got := cfg.Get(tt.path...); got != tt.want {
			t.Errorf("Get(%v) = %+v, want %+v", tt.path, got, tt.want)
		}
	}
	if want := filepath.Join(home, "elsewhere", "auth.toml"); cfg.AuthFile() != want {
		t.Errorf("AuthFile = %q, want %q", cfg.AuthFile(), want)
	}

	// No files at all: everything unset, home_dir the default.
	cfg, err = client.LoadConfig(&client.Env{HomeDir: t.TempDir()})
	if err != nil || cfg.Get("backend") != (client.Setting{}) || filepath.Base(filepath.Dir(cfg.AuthFile())) != ".prefect" {
		t.Errorf("no files: %+v, %v", cfg, err)
	}

	// A malformed file is an error that names it.
	write("backend.toml", "backend = \n")
	if _, err := client.LoadConfig(&client.Env{HomeDir: home}); err == nil || !strings.Contains(err.Error(), "backend.toml") {
		t.Errorf("malformed file: err = %v", err)
	}
}
