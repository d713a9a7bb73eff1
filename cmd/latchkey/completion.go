package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/cli"
	"github.com/spf13/cobra"
)

// versionText is `latchkey --version`: the version, the commit it was
// built from (and whether the tree had changes), and the Go version.
func versionText() string {
	commit, modified := "unknown", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("latchkey %s\ncommit: %s\ngo: %s\n", latchkey.Version(), commit, runtime.Version())
}

// topCommands are latchkey's commands, in the order usage lists them.
var topCommands = []string{"server", "admin", "auth", "bench", "agent", "execute", "version", "completion", "help"}

// completionRoot is the command tree shell completion walks: every
// command and subcommand, and the options of `auth`'s commands. It runs
// nothing: the shells' scripts call `latchkey __complete …`, which the
// dispatcher hands to it.
func completionRoot(out, errOut io.Writer) *cobra.Command {
	root := &cobra.Command{Use: "latchkey", SilenceErrors: true, SilenceUsage: true}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(out)
	root.SetErr(errOut)
	leaf := func(name, short string, subs ...*cobra.Command) *cobra.Command {
		c := &cobra.Command{Use: name, Short: short, Run: func(*cobra.Command, []string) {}}
		c.AddCommand(subs...)
		return c
	}
	root.AddCommand(
		leaf("server", "Run the API server"),
		leaf("admin", "Administer a database in-process",
			leaf("init", "Create a tenant, its admin user and the admin's API key"),
			leaf("rotate-signing-key", "Sign new access tokens with a fresh Ed25519 key"),
			leaf("password-link", "Print a one-time link with which a user sets a web UI password")),
		cli.CompletionCommand(),
		leaf("bench", "Measure throughput and latency on loopback"),
		leaf("agent", "Run a Prefect 1.x-compatible agent",
			leaf("local", "Manage local agents", leaf("start", "Start a local agent"))),
		leaf("execute", "The run process an agent starts", leaf("flow-run", "Run one flow run")),
		leaf("version", "Print the version, commit and Go version"),
		leaf("completion", "Print a shell completion script",
			leaf("bash", "Bash completion"), leaf("zsh", "Zsh completion"), leaf("fish", "Fish completion")),
	)
	return root
}

const completionUsage = `Usage: latchkey completion bash|zsh|fish

Print a script that completes latchkey's commands and options in that shell:
  bash: source <(latchkey completion bash)   (needs the bash-completion package)
  zsh:  latchkey completion zsh > "${fpath[1]}/_latchkey"
  fish: latchkey completion fish > ~/.config/fish/completions/latchkey.fish
`

// runCompletion is `latchkey completion SHELL`.
func runCompletion(args []string, env *Env) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(env.Stdout, completionUsage)
		return 0
	}
	if len(args) != 1 {
		fmt.Fprint(env.Stderr, "Error: name one shell: bash, zsh or fish.\n\n"+completionUsage)
		return 2
	}
	root := completionRoot(env.Stdout, env.Stderr)
	var err error
	switch args[0] {
	case "bash":
		err = root.GenBashCompletionV2(env.Stdout, true)
	case "zsh":
		err = root.GenZshCompletion(env.Stdout)
	case "fish":
		err = root.GenFishCompletion(env.Stdout, true)
	default:
		fmt.Fprintf(env.Stderr, "Error: no completion for the shell %q: use bash, zsh or fish.%s\n\n%s", args[0], didYouMean(args[0], []string{"bash", "zsh", "fish"}), completionUsage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "Error: %s\n", err)
		return 1
	}
	return 0
}

// didYouMean returns " Did you mean 'X'?" for the candidate closest to s
// (a typo: at most two edits, or a prefix), or "".
func didYouMean(s string, candidates []string) string {
	if m := cli.Closest(s, candidates); m != "" {
		return fmt.Sprintf(" Did you mean %q?", m)
	}
	return ""
}
