package cli

import (
	"errors"

	"github.com/latchkey/latchkey/client"
)

// runCreateToken is 0.15.13's deprecated `create-token -n NAME -s SCOPE`.
func runCreateToken(r *runner, o optionValues) error {
	r.sechoErr("WARNING: API tokens are deprecated. Please use `latchkey auth create-key` to create an API key instead.", yellow)
	s, err := r.newSession("", "")
	if err != nil {
		return err
	}
	c, err := s.client()
	if err != nil {
		return err
	}
	token, err := c.CreateAPIToken(r.ctx, deref(o.str("name")), deref(o.str("scope")))
	if errors.Is(err, client.ErrNoData) {
		r.secho("Issue creating API token", red)
		return nil
	} else if err != nil {
		return err
	}
	r.echo(token)
	return nil
}
