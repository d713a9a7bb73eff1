package main

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/cmdline"
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

// versionCommand is `latchkey version`, the same as `latchkey --version`.
func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version (also --version)",
		Run:   func(cmd *cobra.Command, _ []string) { cmd.Print(versionText()) },
	}
}

// completionCommand is `latchkey completion SHELL`: a script with which
// the shell completes latchkey's commands and flags by asking the binary
// (`latchkey __complete …`, which cobra answers from the root).
func completionCommand() *cobra.Command {
	shells := []string{"bash", "zsh", "fish"}
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script: 'latchkey completion bash|zsh|fish'",
		Long: `Print a script that completes latchkey's commands and flags in that shell:
  bash: source <(latchkey completion bash)   (needs the bash-completion package)
  zsh:  latchkey completion zsh > "${fpath[1]}/_latchkey"
  fish: latchkey completion fish > ~/.config/fish/completions/latchkey.fish`,
		ValidArgs: shells,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return errors.New("name one shell: bash, zsh or fish")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			root, out := cmd.Root(), cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			}
			return cmdline.Usage(fmt.Errorf("no completion for the shell %q: use bash, zsh or fish.%s", args[0], cmdline.DidYouMean(args[0], shells)))
		},
	}
}
