// Package cli implements `latchkey auth`, a re-implementation of the Prefect
// 1.x `prefect auth` command group (1.0.0, plus the deprecated API-token
// commands and flags of 0.15.13) against a Latchkey server.
//
// Commands, options, help screens, messages, table layouts, exit codes and
// the files under ~/.prefect match Prefect's, with `latchkey` in place of
// `prefect` where a message names a command. Where Prefect would crash with
// a Python traceback, this package prints one clean "Error: …" line on
// stderr and exits 1 instead.
package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/spf13/cobra"
)

// Exit codes, as Click's.
const (
	exitOK    = 0
	exitError = 1 // a TerminalError, an abort or an uncaught failure
	exitUsage = 2 // a usage error
)

// usageError is a Click UsageError: usage line, hint, blank line, message
// on stderr; exit 2.
type usageError struct {
	path  string // "latchkey auth create-key"
	usage string // "[OPTIONS]"
	msg   string
}

func (e *usageError) Error() string { return e.msg }

// terminalError is Prefect's TerminalError: the message in red on stdout; exit 1.
type terminalError struct{ msg string }

func (e *terminalError) Error() string { return e.msg }

func terminalf(format string, args ...any) error {
	return &terminalError{msg: fmt.Sprintf(format, args...)}
}

// failure is an error whose message is shown to the user as is, after
// "Error: " (Prefect's uncaught exceptions, whose messages are written as
// sentences).
type failure struct{ msg string }

func (e *failure) Error() string { return e.msg }

// failf returns a *failure with a formatted message.
func failf(format string, args ...any) error { return &failure{msg: fmt.Sprintf(format, args...)} }

// abortError is click.Abort: "Aborted!" on stderr; exit 1.
type abortError struct{}

func (abortError) Error() string { return "aborted" }

var errAbort error = abortError{}

// ANSI colours as click.style writes them.
const (
	red    = "31"
	green  = "32"
	yellow = "33"
)

// runner is one invocation of `latchkey auth`.
type runner struct {
	ctx   context.Context
	env   *client.Env
	out   io.Writer
	err   io.Writer
	in    *bufio.Reader
	width int
	cfg   *config
	sess  *session // the last session made, for error messages
	json  bool     // --json: stdout is one JSON document, messages go to stderr

	assumeYes bool // --yes: confirm answers yes without asking
}

// writeJSON prints v as the command's one JSON document on stdout.
func (r *runner) writeJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(r.out, "%s\n", b)
	return err
}

func (r *runner) echo(s string) { fmt.Fprintln(r.out, s) }

func (r *runner) secho(s, color string) { r.styled(r.out, r.env.IsTerminal, s, color) }

func (r *runner) sechoErr(s, color string) { r.styled(r.err, r.env.StderrIsTerminal, s, color) }

func (r *runner) styled(w io.Writer, tty bool, s, color string) {
	if tty && color != "" {
		s = "\x1b[" + color + "m" + s + "\x1b[0m"
	}
	fmt.Fprintln(w, s)
}

// confirm is click.confirm(text, default=False, abort=True), or yes
// without asking with --yes.
func (r *runner) confirm(text string) error {
	if r.assumeYes {
		return nil
	}
	for {
		fmt.Fprint(r.out, text+" [y/N]: ")
		line, err := r.in.ReadString('\n')
		if err != nil && line == "" {
			return errAbort
		}
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "y", "yes":
			return nil
		case "n", "no", "":
			return errAbort
		}
		fmt.Fprintln(r.out, "Error: invalid input")
		if err != nil {
			return errAbort
		}
	}
}

// RunAuth runs `latchkey auth` with args (everything after "auth") and
// returns the process exit code: 0 on success, 1 for errors, 2 for usage
// errors.
func RunAuth(ctx context.Context, env *client.Env, args []string) int {
	env = env.WithDefaults()
	r := &runner{ctx: ctx, env: env, out: env.Stdout, err: env.Stderr, in: bufio.NewReader(env.Stdin)}
	cols, _ := strconv.Atoi(env.Getenv("COLUMNS"))
	r.width = helpWidth(cols)
	return r.exit(r.run(args))
}

func (r *runner) run(args []string) error {
	// The group: Click parses its options up to the command name.
	if len(args) == 0 {
		r.echo(r.groupHelp())
		return nil
	}
	name := args[0]
	switch {
	case name == "-h" || name == "--help":
		r.echo(r.groupHelp())
		return nil
	case name == "--":
		if len(args) == 1 {
			return &usageError{path: groupPath, usage: groupUsage, msg: "Missing command."}
		}
		name, args = args[1], args[1:]
	case strings.HasPrefix(name, "-") && name != "-":
		opt, _, _ := strings.Cut(name, "=")
		if !strings.HasPrefix(opt, "--") {
			opt = opt[:2]
		}
		return &usageError{path: groupPath, usage: groupUsage, msg: "No such option: " + opt}
	}
	spec := findCommand(name)
	if spec == nil {
		return &usageError{path: groupPath, usage: groupUsage, msg: fmt.Sprintf("No such command %s.", pyRepr(name)) + suggestion(name, commandNames())}
	}

	// The group callback runs before the command parses its options.
	cfg, err := loadConfig(r.env)
	if err != nil {
		return err
	}
	r.cfg = cfg
	if cfg.backend == "server" {
		return &usageError{path: groupPath, usage: groupUsage, msg: serverBackendMessage(cfg)}
	}

	root := &cobra.Command{Use: "auth", SilenceErrors: true, SilenceUsage: true}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(r.out)
	root.SetErr(r.err)
	root.AddCommand(r.cobraCommand(spec))
	root.SetArgs(append([]string{spec.name}, args[1:]...))
	return root.ExecuteContext(r.ctx)
}

// exit prints err as Click would and returns the exit code.
func (r *runner) exit(err error) int {
	var ue *usageError
	var te *terminalError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue) && ue.path == "":
		// Click's parser raises these without a context: no usage lines.
		fmt.Fprintf(r.err, "Error: %s\n", ue.msg)
		return exitUsage
	case errors.As(err, &ue):
		fmt.Fprintf(r.err, "Usage: %s %s\nTry '%s -h' for help.\n\nError: %s\n", ue.path, ue.usage, ue.path, ue.msg)
		return exitUsage
	case errors.As(err, &te) && r.json:
		// stdout is for the JSON document only.
		r.sechoErr("Error: "+latchkey.RedactSecrets(te.msg), red)
		return exitError
	case errors.As(err, &te):
		r.secho(latchkey.RedactSecrets(te.msg), red)
		return exitError
	case errors.Is(err, errAbort):
		fmt.Fprintln(r.err, "Aborted!")
		return exitError
	}
	msg := strings.TrimSpace(latchkey.RedactSecrets(r.describe(err)))
	fmt.Fprintln(r.err, "Error: "+msg)
	return exitError
}

// optionValues are a command's parsed options.
type optionValues struct {
	strs  map[string]*string
	flags map[string]*bool
	set   func(name string) bool
}

// str returns the option's value, or nil if it was not given.
func (v optionValues) str(long string) *string {
	if !v.set(long) {
		return nil
	}
	return v.strs[long]
}

func (v optionValues) flag(long string) bool { return *v.flags[long] }

func (r *runner) cobraCommand(spec *command) *cobra.Command {
	cmd := &cobra.Command{
		Use:           spec.name,
		Args:          cobra.ArbitraryArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	cmd.Flags().SortFlags = false
	vals := optionValues{strs: map[string]*string{}, flags: map[string]*bool{}, set: func(n string) bool { return cmd.Flags().Changed(n) }}
	for _, o := range spec.options {
		if o.flag {
			vals.flags[o.long] = cmd.Flags().BoolP(o.long, o.short, false, o.help)
		} else {
			vals.strs[o.long] = cmd.Flags().StringP(o.long, o.short, "", o.help)
		}
	}
	path := groupPath + " " + spec.name
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		msg, withUsage := clickFlagError(err)
		if opt, ok := strings.CutPrefix(msg, "No such option: --"); ok {
			var longs []string
			for _, o := range spec.options {
				if !o.hidden {
					longs = append(longs, o.long)
				}
			}
			if m := Closest(opt, longs); m != "" {
				msg += " Did you mean --" + m + "?"
			}
		}
		if !withUsage {
			return &usageError{msg: msg}
		}
		return &usageError{path: path, usage: "[OPTIONS]", msg: msg}
	})
	cmd.SetHelpFunc(func(*cobra.Command, []string) { r.echo(r.commandHelp(spec)) })
	cmd.RunE = func(c *cobra.Command, args []string) error {
		for _, o := range spec.options {
			if o.required && !c.Flags().Changed(o.long) {
				return &usageError{path: path, usage: "[OPTIONS]", msg: fmt.Sprintf("Missing option '--%s' / '-%s'.", o.long, o.short)}
			}
		}
		if len(args) > 0 {
			plural := ""
			if len(args) > 1 {
				plural = "s"
			}
			return &usageError{path: path, usage: "[OPTIONS]", msg: fmt.Sprintf("Got unexpected extra argument%s (%s)", plural, strings.Join(args, " "))}
		}
		if _, ok := vals.flags["json"]; ok {
			r.json = vals.flag("json")
		}
		return spec.run(r, vals)
	}
	return cmd
}

// clickFlagError turns a pflag parse error into Click's message, and says
// whether Click prints it under the usage lines (it does not for errors
// its parser raises about an option's value).
func clickFlagError(err error) (string, bool) {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "unknown flag: "):
		return "No such option: " + strings.TrimPrefix(msg, "unknown flag: "), true
	case strings.HasPrefix(msg, "unknown shorthand flag: "):
		// unknown shorthand flag: 'x' in -x
		rest := strings.TrimPrefix(msg, "unknown shorthand flag: ")
		if len(rest) >= 3 && rest[0] == '\'' {
			return "No such option: -" + rest[1:strings.IndexByte(rest[1:], '\'')+1], true
		}
	case strings.HasPrefix(msg, "flag needs an argument: "):
		rest := strings.TrimPrefix(msg, "flag needs an argument: ")
		if strings.HasPrefix(rest, "'") {
			// 'n' in -n
			return fmt.Sprintf("Option '-%s' requires an argument.", rest[1:strings.IndexByte(rest[1:], '\'')+1]), false
		}
		return fmt.Sprintf("Option '%s' requires an argument.", rest), false
	case strings.HasPrefix(msg, "invalid argument "):
		// A value given to a flag: --quiet=x.
		if i := strings.Index(msg, `" for "`); i >= 0 {
			rest := msg[i+len(`" for "`):]
			if j := strings.Index(rest, `" flag`); j >= 0 {
				names := strings.Split(rest[:j], ", ")
				return fmt.Sprintf("Option '%s' does not take a value.", names[len(names)-1]), false
			}
		}
	}
	return msg, true
}

// serverBackendMessage is Prefect's "Prefect Server does not have
// authentication" error. Prefect tells the user to run `prefect backend
// cloud`, which Latchkey lacks: this says what to change instead, where the
// backend was set.
func serverBackendMessage(cfg *config) string {
	const msg = "Prefect Server does not have authentication. "
	if cfg.backendFrom == "PREFECT__BACKEND" {
		return msg + "Latchkey serves the Prefect Cloud API: unset PREFECT__BACKEND (or set it to cloud) to log in."
	}
	return msg + fmt.Sprintf("Latchkey serves the Prefect Cloud API: set backend = \"cloud\" in %s (or remove that line) to log in.", cfg.backendFrom)
}
