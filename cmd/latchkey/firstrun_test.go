package main_test

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	main "github.com/latchkey/latchkey/cmd/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
)

// On a busy port the server exits non-zero before it creates anything: no
// database, no secret file, no admin.
func TestServer_BusyPortCreatesNothing(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	dsn := filepath.Join(dir, "latchkey.db")
	var out, errb syncBuffer
	env := &main.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, Now: time.Now}
	code := main.Run(t.Context(), []string{"server", "--addr", busy.Addr().String(), "--db", dsn, "--log-format", "text"}, env)
	if code == 0 {
		t.Fatalf("exit 0 on a busy port; stderr:\n%s", errb.String())
	}
	if want := "Error: cannot listen on " + busy.Addr().String(); !strings.Contains(errb.String(), want) || !strings.Contains(errb.String(), "--addr") {
		t.Errorf("stderr %q lacks %q and the setting to change", errb.String(), want)
	}
	if out.String() != "" {
		t.Errorf("stdout %q, want nothing (no admin key)", out.String())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind %s", e.Name())
	}
}

// Every start prints where the server listens and where the web UI is; with
// a public URL, the UI (and the first admin's link) use it.
func TestServer_PrintsUIAddress(t *testing.T) {
	t.Parallel()
	s := MustRunMain(t, "sqlite", func(m *main.Main) { m.PublicURL = "https://auth.example.com/" })
	out := s.Stdout.String()
	if want := "Latchkey is listening on " + s.URL + ". Web UI: https://auth.example.com/ui/\n"; !strings.HasSuffix(out, want) {
		t.Errorf("stdout %q does not end with %q", out, want)
	}
	if !regexp.MustCompile(`\nhttps://auth\.example\.com/ui/reset\?token=lkp_`).MatchString(out) {
		t.Errorf("the first admin's link does not use the public URL:\n%s", out)
	}
}

// Admin commands other than init refuse a database that does not exist:
// they say so and create nothing (neither the database nor its secret).
func TestAdmin_RefusesToCreateDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "typo.db")
	for _, args := range [][]string{
		{"admin", "password-link", "--db", missing, "--email", "admin@localhost"},
		{"admin", "rotate-signing-key", "--db", "sqlite:" + missing},
	} {
		var out, errb syncBuffer
		env := &main.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, Now: time.Now}
		if code := main.Run(t.Context(), args, env); code != 1 {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
		if want := "Error: No Latchkey database at " + missing + ": check --db (or LATCHKEY_DB)"; !strings.Contains(errb.String(), want) {
			t.Errorf("%v: stderr %q lacks %q", args, errb.String(), want)
		}
	}
	// An existing file that is not a Latchkey database is refused as well.
	other := filepath.Join(dir, "other.db")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb syncBuffer
	env := &main.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, Now: time.Now}
	if code := main.Run(t.Context(), []string{"admin", "rotate-signing-key", "--db", other}, env); code != 1 || !strings.Contains(errb.String(), "No Latchkey database at "+other) {
		t.Errorf("empty file: exit %d: %s", code, errb.String())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != "other.db" {
		t.Errorf("files left in the directory: %v, want only other.db", names)
	}
}

// On PostgreSQL, a schema without Latchkey's tables is no database.
func TestAdmin_RefusesEmptyPostgresSchema(t *testing.T) {
	t.Parallel()
	dsn := latchkeytest.MustDSN(t, "postgres")
	var out, errb syncBuffer
	env := &main.Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return secretEnv(dsn)[k] }, Now: time.Now}
	if code := main.Run(t.Context(), []string{"admin", "rotate-signing-key", "--db", dsn}, env); code != 1 || !strings.Contains(errb.String(), "Error: No Latchkey database at ") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	// Nothing was migrated: admin init still creates the database there.
	if code := main.Run(t.Context(), []string{"admin", "init", "--db", dsn, "--email", "ops@example.com", "--tenant", "Ops", "-q"}, env); code != 0 {
		t.Fatalf("init: exit %d: %s", code, errb.String())
	}
	errb = syncBuffer{}
	if code := main.Run(t.Context(), []string{"admin", "rotate-signing-key", "--db", dsn}, env); code != 0 {
		t.Fatalf("after init: exit %d: %s", code, errb.String())
	}
}

// password-link builds its link from the public URL setting: --public-url,
// else LATCHKEY_URL, else the listen address LATCHKEY_ADDR.
func TestAdminPasswordLink_PublicURL(t *testing.T) {
	t.Parallel()
	s := MustRunMain(t, "sqlite")
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"flag", []string{"--public-url", "https://auth.example.com/"}, nil, "https://auth.example.com/ui/reset?token=lkp_"},
		{"env", nil, map[string]string{"LATCHKEY_URL": "https://env.example.com"}, "https://env.example.com/ui/reset?token=lkp_"},
		{"addr", nil, map[string]string{"LATCHKEY_ADDR": "0.0.0.0:8080"}, "http://127.0.0.1:8080/ui/reset?token=lkp_"},
	} {
		var out, errb syncBuffer
		env := &main.Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return tt.env[k] }, Now: time.Now}
		args := append([]string{"admin", "password-link", "--db", s.DSN, "--email", "admin@localhost"}, tt.args...)
		if code := main.Run(t.Context(), args, env); code != 0 {
			t.Fatalf("%s: exit %d: %s", tt.name, code, errb.String())
		}
		if !strings.Contains(out.String(), "\n"+tt.want) {
			t.Errorf("%s: output %q lacks %q", tt.name, out.String(), tt.want)
		}
	}
}
