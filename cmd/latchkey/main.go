// Command latchkey is Latchkey's single binary: the server, the admin
// commands, and the `auth` CLI of Prefect 1.x.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/latchkey/latchkey/agent"
	"github.com/latchkey/latchkey/cli"
	"github.com/latchkey/latchkey/client"
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

const usage = `Latchkey: self-hosted multi-tenant authentication, wire-compatible with Prefect Cloud 1.x.

Usage: latchkey COMMAND [ARGS]...

Commands:
  server      Run the API server (SQLite by default, PostgreSQL for replicas)
  admin       Bootstrap tenants and admins, rotate signing keys (in-process, no server needed)
  auth        Log in, manage tenants, API keys and tokens (Prefect's ` + "`prefect auth`" + `)
  bench       Measure throughput and latency on loopback against a net/http baseline
  agent       Run flow runs: 'latchkey agent local start -t KEY' (Prefect's agent)
  execute     The run process an agent starts for each flow run ('execute flow-run')
  version     Print the version, commit and Go version (also --version)
  completion  Print a shell completion script: 'latchkey completion bash|zsh|fish'

Run 'latchkey COMMAND --help' for a command's options.
`

// Run runs the command line args and returns the process exit code: 0 on
// success, 1 on errors, 2 on usage errors.
func Run(ctx context.Context, args []string, env *Env) int {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "server":
		return runServer(ctx, args[1:], env)
	case "admin":
		return runAdmin(ctx, args[1:], env)
	case "bench":
		return runBench(ctx, args[1:], env)
	case "agent":
		return agent.RunAgentCommand(ctx, env, args[1:])
	case "execute":
		return agent.RunExecuteCommand(ctx, env, args[1:])
	case "auth":
		return cli.RunAuth(ctx, env, args[1:])
	case "version", "--version", "-V":
		fmt.Fprint(env.Stdout, versionText())
		return 0
	case "completion":
		return runCompletion(args[1:], env)
	case "__complete", "__completeNoDesc":
		// The shells' completion scripts ask here (see completion.go).
		root := completionRoot(env.Stdout, env.Stderr)
		root.SetArgs(args)
		if err := root.ExecuteContext(ctx); err != nil {
			return 1
		}
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
		return 0
	}
	fmt.Fprintf(env.Stderr, "latchkey: unknown command %q.%s\n\n%s", args[0], didYouMean(args[0], topCommands), usage)
	return 2
}
