package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// Closest returns the candidate s most likely is a typo of: the nearest
// within two edits (one for words of up to four letters), else the only
// candidate s is a prefix of; "" if none.
func Closest(s string, candidates []string) string {
	best, bestD := "", 3
	if len([]rune(s)) <= 4 {
		bestD = 2
	}
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" || s == "" {
		return best
	}
	var prefixed []string
	for _, c := range candidates {
		if strings.HasPrefix(c, s) {
			prefixed = append(prefixed, c)
		}
	}
	if len(prefixed) == 1 {
		return prefixed[0]
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, counting an
// exchange of two neighbours as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// commandNames lists the auth commands.
func commandNames() []string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return names
}

// suggestion is " Did you mean 'X'?" (Click's wording) for a mistyped
// name among candidates, or "".
func suggestion(s string, candidates []string) string {
	if m := Closest(s, candidates); m != "" {
		return fmt.Sprintf(" Did you mean %s?", pyRepr(m))
	}
	return ""
}

// CompletionCommand returns `auth` as a command tree for shell
// completion: its commands and their visible options. It runs nothing:
// latchkey's root command mounts it with a Run that hands the arguments,
// unparsed, to RunAuth.
func CompletionCommand() *cobra.Command {
	group := &cobra.Command{Use: "auth", Short: "Log in, manage tenants, API keys and tokens"}
	for _, spec := range commands() {
		c := &cobra.Command{Use: spec.name, Short: strings.TrimSpace(shortHelp(docstring(spec.help), 60)), Run: func(*cobra.Command, []string) {}}
		for _, o := range spec.options {
			if o.flag {
				c.Flags().BoolP(o.long, o.short, false, o.help)
			} else {
				c.Flags().StringP(o.long, o.short, "", o.help)
			}
			if o.hidden {
				_ = c.Flags().MarkHidden(o.long)
			}
		}
		group.AddCommand(c)
	}
	return group
}
