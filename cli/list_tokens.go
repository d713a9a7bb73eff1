package cli

import (
	"errors"

	"github.com/latchkey/latchkey/client"
)

// tokenJSON is a token in `list-tokens --json`.
type tokenJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// runListTokens is 0.15.13's deprecated `list-tokens`.
func runListTokens(r *runner, o optionValues) error {
	r.json = o.flag("json")
	r.sechoErr("WARNING: API tokens are deprecated. Please consider removing your remaining tokens and using API keys instead.", yellow)
	s, err := r.newSession("", "")
	if err != nil {
		return err
	}
	c, err := s.client()
	if err != nil {
		return err
	}
	tokens, err := c.APITokens(r.ctx)
	if errors.Is(err, client.ErrNoData) {
		if r.json {
			return terminalf("Unable to list API tokens")
		}
		r.secho("Unable to list API tokens", red)
		return nil
	} else if err != nil {
		return err
	}
	if r.json {
		docs := make([]tokenJSON, len(tokens))
		for i, t := range tokens {
			docs[i] = tokenJSON(t)
		}
		return r.writeJSON(docs)
	}
	rows := make([][]string, len(tokens))
	for i, t := range tokens {
		rows[i] = []string{t.Name, t.ID}
	}
	r.echo(tabulate([]string{"NAME", "ID"}, rows))
	return nil
}
