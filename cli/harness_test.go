package cli_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/cli"
	"github.com/latchkey/latchkey/client"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// testNow is the fixed clock of every scenario.
var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// scenario is one `latchkey auth …` run against a fake server.
type scenario struct {
	name  string
	args  []string
	env   map[string]string // "" values unset the default
	stdin string
	files map[string]string // path under $HOME -> content; "{{PORT}}" and "{{URL}}" are replaced
	setup func(f *fakeServer)
	tty   bool
}

// result is what a run did.
type result struct {
	code   int
	stdout string
	stderr string
	home   string
	srv    *fakeServer
}

func (sc scenario) run(t *testing.T) result {
	t.Helper()
	f := newFakeServer(t)
	if sc.setup != nil {
		sc.setup(f)
	}
	home := t.TempDir()
	for p, content := range sc.files {
		full := filepath.Join(home, f.expand(p))
		MustWriteFile(t, full, f.expand(content), 0o600)
	}
	env := map[string]string{"PREFECT__CLOUD__API": f.srv.URL}
	for k, v := range sc.env {
		env[k] = f.expand(strings.ReplaceAll(v, "{{HOME}}", home))
	}
	var stdout, stderr bytes.Buffer
	code := cli.RunAuth(context.Background(), &client.Env{
		Stdin:            strings.NewReader(sc.stdin),
		Stdout:           &stdout,
		Stderr:           &stderr,
		Getenv:           func(k string) string { return env[k] },
		HomeDir:          home,
		Now:              func() time.Time { return testNow },
		HTTPClient:       f.srv.Client(),
		IsTerminal:       sc.tty,
		StderrIsTerminal: sc.tty,
	}, sc.args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String(), home: home, srv: f}
}

func (f *fakeServer) port() string {
	u, _ := url.Parse(f.srv.URL)
	return u.Port()
}

func (f *fakeServer) expand(s string) string {
	s = strings.ReplaceAll(s, "{{URL}}", f.srv.URL)
	return strings.ReplaceAll(s, "{{PORT}}", f.port())
}

// transcript renders a run for its golden file: exit code, output, every
// request with its headers and exact body, and every file under $HOME.
func (res result) transcript(t *testing.T, sc scenario) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "$ latchkey auth %s\n", strings.Join(sc.args, " "))
	if sc.stdin != "" {
		fmt.Fprintf(&b, "stdin: %q\n", sc.stdin)
	}
	fmt.Fprintf(&b, "exit: %d\n--- stdout\n%s--- stderr\n%s", res.code, res.stdout, res.stderr)
	for i, r := range res.srv.requests() {
		tenant := "(absent)"
		if r.HasTenant {
			tenant = r.Tenant
		}
		fmt.Fprintf(&b, "--- request %d: POST %s\nAuthorization: %s\nX-PREFECT-TENANT-ID: %s\nX-PREFECT-CORE-VERSION: %s\n%s\n", i+1, r.Path, r.Auth, tenant, r.Version, r.Body)
	}
	var files []string
	filepath.WalkDir(res.home, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	for _, p := range files {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		content, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(res.home, p)
		fmt.Fprintf(&b, "--- file ~/%s (mode %04o)\n%s", filepath.ToSlash(rel), info.Mode().Perm(), content)
	}
	out := strings.ReplaceAll(b.String(), res.home, "$HOME")
	return strings.ReplaceAll(out, res.srv.port(), "PORT")
}

// checkGolden compares got with testdata/name.golden, or rewrites it with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		MustWriteFile(t, path, got, 0o644)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from golden file.\n--- got:\n%s\n--- want:\n%s", name, got, want)
	}
}

// MustWriteFile writes a file, creating its directory.
func MustWriteFile(tb testing.TB, path, content string, perm os.FileMode) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		tb.Fatal(err)
	}
}

// MustReadFile reads a file.
func MustReadFile(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// runGolden runs each scenario and checks its transcript.
func runGolden(t *testing.T, scenarios []scenario) {
	t.Helper()
	seen := map[string]bool{}
	for _, sc := range scenarios {
		if seen[sc.name] {
			t.Fatalf("duplicate scenario %q", sc.name)
		}
		seen[sc.name] = true
		t.Run(sc.name, func(t *testing.T) {
			res := sc.run(t)
			checkGolden(t, sc.name, res.transcript(t, sc))
		})
	}
}
