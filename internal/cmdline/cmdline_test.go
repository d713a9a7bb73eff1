package cmdline_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/internal/cmdline"
)

// run runs `prog args...` with a group `admin` holding `init --email`,
// and returns the exit code, stdout and stderr.
func run(t *testing.T, result error, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := &cobra.Command{Use: "prog"}
	root.SetOut(&out)
	root.SetErr(&errOut)
	initCmd := &cobra.Command{Use: "init", Short: "Initialise", RunE: func(*cobra.Command, []string) error { return result }}
	initCmd.Flags().String("email", "", "the `email`")
	initCmd.Flags().BoolP("quiet", "q", false, "print less")
	admin := &cobra.Command{Use: "admin", Short: "Administer"}
	admin.AddCommand(initCmd)
	root.AddCommand(admin)
	code := cmdline.Run(t.Context(), root, args)
	return code, out.String(), errOut.String()
}

func TestRun(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		result error
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"ok", nil, []string{"admin", "init", "--email", "a@example.com", "-q"}, 0, "", ""},
		{"--flag=value", nil, []string{"admin", "init", "--email=a@example.com"}, 0, "", ""},
		{"help", nil, []string{"admin", "init", "--help"}, 0, "Usage: prog admin init [flags]\n\nInitialise\n\nFlags:\n      --email email", ""},
		{"group help", nil, []string{"admin", "--help"}, 0, "Commands:\n  init         Initialise\n", ""},
		{"group alone", nil, []string{"admin"}, 2, "", "Usage: prog admin COMMAND [flags]\n"},
		{"error", errors.New("no database"), []string{"admin", "init"}, 1, "", "Error: no database\n"},
		{"secret redacted", errors.New("bad key lks_secretsecretsecretsecretsecretAAAAAA"), []string{"admin", "init"}, 1, "", "Error: bad key lks_"},
		{"exit code", cmdline.Code(3), []string{"admin", "init"}, 3, "", ""},
		{"usage error", cmdline.Usage(errors.New("--email is required")), []string{"admin", "init"}, 2, "", "prog: --email is required\nRun 'prog admin init --help' for usage.\n"},
		{"unknown flag", nil, []string{"admin", "init", "--nope"}, 2, "", "prog: unknown flag: --nope\n"},
		{"one dash", nil, []string{"admin", "init", "-email", "a@example.com"}, 2, "", "prog: unknown flag -email: long flags take two dashes: --email\n"},
		{"argument", nil, []string{"admin", "init", "x"}, 2, "", `prog: unknown command "x" for "prog admin init"`},
		{"unknown command", nil, []string{"amdin"}, 2, "", "prog: unknown command \"amdin\". Did you mean \"admin\"?\nRun 'prog --help' for usage.\n"},
		{"unknown subcommand", nil, []string{"admin", "int"}, 2, "", `prog: unknown command "int" for "prog admin". Did you mean "init"?`},
	} {
		code, stdout, stderr := run(t, tt.result, tt.args...)
		if code != tt.code || !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) || (tt.stderr == "" && stderr != "") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %d, %q, %q", tt.name, code, stdout, stderr, tt.code, tt.stdout, tt.stderr)
		}
		if strings.Contains(stderr, "secretsecret") {
			t.Errorf("%s: a secret was printed: %q", tt.name, stderr)
		}
	}
}
