package main_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	main "github.com/latchkey/latchkey/cmd/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
)

const (
	secretA = "system-secret-A-0123456789abcdefghijklmnop"
	secretB = "system-secret-B-0123456789abcdefghijklmnop"
)

func mustSecretFile(t *testing.T, mode os.FileMode, secrets ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(strings.Join(secrets, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %04o, want %04o", path, got, want)
	}
}

// First start on SQLite: the database and its WAL files are 0600, and so
// is the secret file made beside it, which the log names; a restart uses
// it and signs with the same key.
func TestServer_SQLiteSecretFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "latchkey.db")
	s := MustRunMainDSN(t, path)
	s.MustDo(t, s.AdminKey, "", qAuthInfoTenant, nil, "auth_info", nil)
	for _, p := range []string{path, path + "-wal", path + "-shm", path + ".secret"} {
		wantMode(t, p, 0o600)
	}
	if logs := s.Logs.String(); !strings.Contains(logs, "created a new system secret") || !strings.Contains(logs, path+".secret") {
		t.Errorf("the log does not name the new secret file:\n%s", logs)
	}
	jwks := func(s *TestServer) string {
		t.Helper()
		b, err := s.Tokens.JWKS(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	before := jwks(s)
	s2 := MustRunMainDSN(t, path) // a second server on the file reads the secret file
	if got := jwks(s2); got != before {
		t.Errorf("JWKS of a second server: %s, want %s", got, before)
	}
	if strings.Contains(s2.Logs.String(), "created a new system secret") {
		t.Error("a second start made a new secret")
	}
}

// A copy of an SQLite database alone does not start, and gets no secret.
func TestServer_SQLiteCopyWithoutSecret(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "latchkey.db")
	if code, stderr := runServerArgs(t, "--db", path); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	cp := filepath.Join(t.TempDir(), "copy.db")
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + suffix)
		if suffix != "" && os.IsNotExist(err) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cp+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, stderr := runServerArgs(t, "--db", cp)
	if code != 1 || !strings.Contains(stderr, "signing keys cannot be decrypted: the system secret does not match") ||
		!strings.Contains(stderr, cp+".secret") {
		t.Fatalf("copy without the secret: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(cp + ".secret"); !os.IsNotExist(err) {
		t.Fatalf("a secret file was made for the copy (%v)", err)
	}
}

func TestServer_RefusesSharedDatabase(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "latchkey.db")
	if code, stderr := runServerArgs(t, "--db", path); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr := runServerArgs(t, "--db", path)
	if code != 1 || !strings.Contains(stderr, path+" (mode 0644)") || !strings.Contains(stderr, "chmod 600 "+path) {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

func TestServer_SystemSecretFileRefused(t *testing.T) {
	t.Parallel()
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		t.Run(fmt.Sprintf("%04o", mode), func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "latchkey.db")
			secret := mustSecretFile(t, mode, secretA)
			code, stderr := runServerArgs(t, "--db", db, "--system-secret-file", secret)
			if code != 1 {
				t.Fatalf("exit %d, want 1: %s", code, stderr)
			}
			for _, want := range []string{"--system-secret-file", secret, fmt.Sprintf("mode %04o", mode), "chmod 600 " + secret} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q: %s", want, stderr)
				}
			}
			if strings.Contains(stderr, secretA) {
				t.Errorf("stderr shows the secret: %s", stderr)
			}
			if _, err := os.Stat(db); err == nil {
				t.Error("the database was created: the server started before checking the file")
			}
		})
	}
	t.Run("short", func(t *testing.T) {
		code, stderr := runServerArgs(t, "--db", filepath.Join(t.TempDir(), "x.db"), "--system-secret-file", mustSecretFile(t, 0o600, "short"))
		if code != 1 || !strings.Contains(stderr, "at least 32") || strings.Contains(stderr, "short\n") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	})
}

func TestServer_PostgresNeedsSecret(t *testing.T) {
	t.Parallel()
	dsn := latchkeytest.MustDSN(t, "postgres")
	code, stderr := runServerArgs(t, "--db", dsn)
	if code != 1 || !strings.Contains(stderr, "PostgreSQL needs a system secret") ||
		!strings.Contains(stderr, "--system-secret-file") || !strings.Contains(stderr, "LATCHKEY_SYSTEM_SECRETS") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

// Where the secret comes from: --system-secret-file before
// LATCHKEY_SYSTEM_SECRETS; rotation with [new, old] then [new].
func TestServer_SystemSecretSources(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine string) {
		dsn := latchkeytest.MustDSN(t, engine)
		fileA := mustSecretFile(t, 0o600, secretA)
		start := func(env map[string]string, args ...string) (int, string) {
			t.Helper()
			return runServerEnv(t, env, append([]string{"--db", dsn}, args...)...)
		}
		if code, stderr := start(nil, "--system-secret-file", fileA); code != 0 {
			t.Fatalf("first start: exit %d: %s", code, stderr)
		}
		if engine == "sqlite" {
			if _, err := os.Stat(strings.TrimPrefix(dsn, "sqlite:") + ".secret"); err == nil {
				t.Error("a secret file was made though one was given")
			}
		}
		// The file wins over the environment.
		if code, stderr := start(map[string]string{"LATCHKEY_SYSTEM_SECRETS": secretB}, "--system-secret-file", fileA); code != 0 {
			t.Fatalf("file and env: exit %d: %s", code, stderr)
		}
		code, stderr := start(map[string]string{"LATCHKEY_SYSTEM_SECRETS": secretB})
		if code != 1 || !strings.Contains(stderr, "the system secret does not match") || !strings.Contains(stderr, "came from LATCHKEY_SYSTEM_SECRETS") {
			t.Fatalf("wrong env secret: exit %d: %s", code, stderr)
		}
		if strings.Contains(stderr, secretB) {
			t.Fatalf("stderr shows the secret: %s", stderr)
		}
		// Rotation: [B, A] re-encrypts under B; then B alone works, A no longer.
		if code, stderr := start(map[string]string{"LATCHKEY_SYSTEM_SECRETS": secretB + "," + secretA}); code != 0 {
			t.Fatalf("rotation: exit %d: %s", code, stderr)
		}
		if code, stderr := start(map[string]string{"LATCHKEY_SYSTEM_SECRET_FILE": mustSecretFile(t, 0o600, secretB)}); code != 0 {
			t.Fatalf("after rotation: exit %d: %s", code, stderr)
		}
		if code, stderr := start(nil, "--system-secret-file", fileA); code != 1 || !strings.Contains(stderr, "does not match") {
			t.Fatalf("old secret after rotation: exit %d: %s", code, stderr)
		}
	})
}

func TestServer_SystemSecretHelp(t *testing.T) {
	t.Parallel()
	var stdout, stderr syncBuffer
	_ = main.Run(t.Context(), []string{"server", "--help"}, &main.Env{Stdout: &stdout, Stderr: &stderr})
	for _, want := range []string{"--system-secret-file", "LATCHKEY_SYSTEM_SECRETS", "LATCHKEY_SYSTEM_SECRET_FILE", "DB.secret beside the database"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	m := main.NewMain(&main.Env{Stderr: &stderr})
	env := map[string]string{"LATCHKEY_SYSTEM_SECRETS": " " + secretA + " , " + secretB + ",", "LATCHKEY_SYSTEM_SECRET_FILE": "/x"}
	if err := m.ParseFlags(nil, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if len(m.SystemSecrets) != 2 || m.SystemSecrets[0] != secretA || m.SystemSecrets[1] != secretB || m.SystemSecretFile != "/x" {
		t.Fatalf("secrets from env: %d, file %q", len(m.SystemSecrets), m.SystemSecretFile)
	}
}

// `latchkey admin` opens the database with the same secret, and reports a
// secret file it makes (only `admin init` creates a database).
func TestAdmin_SystemSecret(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "latchkey.db")
	var out, errb syncBuffer
	env := &main.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	if code := main.Run(t.Context(), []string{"admin", "init", "--db", path, "--email", "ops@example.com", "--tenant", "Ops", "-q"}, env); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	wantMode(t, path+".secret", 0o600)
	if !strings.Contains(errb.String(), "created a new system secret") {
		t.Errorf("stderr does not report the new secret file: %s", errb.String())
	}
	// A signing key, encrypted with that secret.
	if code := main.Run(t.Context(), []string{"admin", "rotate-signing-key", "--db", path}, env); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	other := mustSecretFile(t, 0o600, secretA)
	errb = syncBuffer{}
	if code := main.Run(t.Context(), []string{"admin", "rotate-signing-key", "--db", path, "--system-secret-file", other}, env); code != 1 ||
		!strings.Contains(errb.String(), "does not match") || !strings.Contains(errb.String(), "came from file "+other) {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}
