// Package cmdline is the command-line style of latchkey's own commands
// (server, admin, bench, agent, execute, …): one cobra root, GNU long
// options (--addr, -q), one help layout, a suggestion for a mistyped
// command, and exit codes 0 (success), 1 (errors) and 2 (usage errors).
// `latchkey auth` keeps Prefect's Click style (package cli); it is mounted
// under the same root.
package cmdline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/cli"
)

// usageError is a mistake in the command line: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

func (e usageError) Unwrap() error { return e.err }

// Usage marks err as a mistake in the command line: Run reports it with a
// pointer to --help and exits 2. Usage(nil) is nil.
func Usage(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

// Exit ends a command with this exit code, the command having said why.
type Exit int

func (e Exit) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// Code is Exit(code) for a command that returns an exit code, or nil for 0.
func Code(code int) error {
	if code == 0 {
		return nil
	}
	return Exit(code)
}

// template is the help of every command: usage line, description,
// subcommands, options.
const template = `Usage: {{if .HasAvailableSubCommands}}{{.CommandPath}} COMMAND [flags]{{else}}{{.UseLine}}{{end}}
{{with (or .Long .Short)}}
{{. | trimTrailingWhitespaces}}
{{end}}{{if .HasAvailableSubCommands}}
Commands:{{range .Commands}}{{if .IsAvailableCommand}}
  {{rpad .Name .NamePadding}}  {{.Short}}{{end}}{{end}}
{{end}}{{if .HasAvailableLocalFlags}}
Flags:
{{.LocalFlags.FlagUsagesWrapped 100 | trimTrailingWhitespaces}}
{{end}}{{if .HasAvailableSubCommands}}
Run '{{.CommandPath}} COMMAND --help' for a command's flags.
{{end}}`

// Run runs root with args and returns the exit code. It prints errors on
// root's error output: a usage error (a flag, argument or command cobra
// rejects, or one marked with Usage) as "NAME: message" and a pointer to
// --help, exit 2; Exit's code as is; any other error as "Error: message"
// with secrets redacted, exit 1. A command with subcommands and no Run of
// its own prints its usage when called alone (exit 2) and suggests a name
// for an unknown one; a command without subcommands and Args takes no
// arguments.
func Run(ctx context.Context, root *cobra.Command, args []string) int {
	root.SilenceErrors, root.SilenceUsage = true, true
	root.SetHelpTemplate(template)
	root.SetUsageTemplate(template)
	root.SetFlagErrorFunc(flagError)
	prepare(root)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	var exit Exit
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return int(exit)
	case errors.As(err, new(usageError)):
		fmt.Fprintf(root.ErrOrStderr(), "%s: %s\nRun '%s --help' for usage.\n", root.Name(), latchkey.RedactSecrets(err.Error()), cmd.CommandPath())
		return 2
	}
	fmt.Fprintln(root.ErrOrStderr(), "Error: "+latchkey.RedactSecrets(err.Error()))
	return 1
}

// prepare gives c and its subcommands Run's rules for arguments.
func prepare(c *cobra.Command) {
	switch {
	case c.HasSubCommands() && c.Run == nil && c.RunE == nil:
		c.Args, c.RunE = cobra.ArbitraryArgs, unknownCommand
	case c.Args == nil:
		c.Args = cobra.NoArgs
	}
	args := c.Args
	c.Args = func(cmd *cobra.Command, a []string) error { return Usage(args(cmd, a)) }
	for _, sub := range c.Commands() {
		prepare(sub)
	}
}

// unknownCommand is the Run of a command with subcommands: the usage
// without a subcommand, else a usage error naming the closest one.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(cmd.ErrOrStderr(), cmd.UsageString())
		return Exit(2)
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if cmd.HasParent() {
		msg += fmt.Sprintf(" for %q", cmd.CommandPath())
	}
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return Usage(errors.New(msg + "." + DidYouMean(args[0], names)))
}

// DidYouMean is ` Did you mean "NAME"?` for the name s most likely is a
// typo of (cli.Closest), or "".
func DidYouMean(s string, names []string) string {
	if m := cli.Closest(s, names); m != "" {
		return fmt.Sprintf(" Did you mean %q?", m)
	}
	return ""
}

// flagError makes pflag's errors usage errors, and says what to type for a
// long option given with one dash (-addr), which Go's flag package took.
func flagError(cmd *cobra.Command, err error) error {
	var ne *pflag.NotExistError
	if errors.As(err, &ne) {
		name, _, _ := strings.Cut(ne.GetSpecifiedShortnames(), "=")
		if len(name) > 1 && cmd.Flags().Lookup(name) != nil {
			err = fmt.Errorf("unknown flag -%s: long flags take two dashes: --%s", name, name)
		}
	}
	return Usage(err)
}
