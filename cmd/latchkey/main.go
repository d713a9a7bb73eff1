// Command latchkey is Latchkey's single binary: the server, the admin
// commands, and the `auth` CLI of Prefect 1.x.
package main

import (
	"context"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/agent"
	"github.com/latchkey/latchkey/cli"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/cmdline"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, os.Args[1:], StdEnv())
	stop()
	os.Exit(code)
}

// Env is what a command may touch of the outside world; tests substitute
// it. It is client.Env, which `auth` and `agent` take as it is.
type Env = client.Env

// StdEnv returns the process's real environment.
func StdEnv() *Env {
	home, _ := os.UserHomeDir()
	fi, err := os.Stdout.Stat()
	efi, eerr := os.Stderr.Stat()
	return &Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Getenv: os.Getenv, HomeDir: home, Now: time.Now,
		HTTPClient:       &http.Client{Timeout: 15 * time.Second},
		IsTerminal:       err == nil && fi.Mode()&os.ModeCharDevice != 0,
		StderrIsTerminal: eerr == nil && efi.Mode()&os.ModeCharDevice != 0,
	}
}

// Run runs the command line args and returns the process exit code: 0 on
// success, 1 on errors, 2 on usage errors (see cmdline.Run; `latchkey auth`
// has Click's).
func Run(ctx context.Context, args []string, env *Env) int {
	env = env.WithDefaults()
	root := &cobra.Command{
		Use:     "latchkey",
		Short:   "Latchkey: self-hosted multi-tenant authentication, wire-compatible with Prefect Cloud 1.x.",
		Version: latchkey.Version(),
	}
	root.SetVersionTemplate(versionText())
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.AddCommand(serverCommand(env), adminCommand(env), authCommand(env), benchCommand(env), versionCommand(), completionCommand())
	root.AddCommand(agent.Commands(env)...)
	return cmdline.Run(ctx, root, args)
}

// authCommand is `latchkey auth`: package cli parses and runs it as
// Prefect's Click does. Its subcommands (from cli.CompletionCommand) serve
// shell completion and hand their arguments to cli.RunAuth unparsed.
func authCommand(env *Env) *cobra.Command {
	auth := cli.CompletionCommand()
	auth.Short = "Log in, manage tenants, API keys and tokens (Prefect's `prefect auth`)"
	run := func(cmd *cobra.Command, args []string) error {
		if cmd != auth {
			args = append([]string{cmd.Name()}, args...)
		}
		return cmdline.Code(cli.RunAuth(cmd.Context(), env, args))
	}
	for _, c := range append([]*cobra.Command{auth}, auth.Commands()...) {
		c.DisableFlagParsing, c.Args, c.Run, c.RunE = true, cobra.ArbitraryArgs, nil, run
	}
	// `latchkey help auth [COMMAND]`.
	auth.SetHelpFunc(func(cmd *cobra.Command, _ []string) { _ = run(cmd, []string{"--help"}) })
	return auth
}
