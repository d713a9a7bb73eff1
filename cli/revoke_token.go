package cli

import (
	"errors"
	"fmt"

	"github.com/latchkey/latchkey/client"
)

// runRevokeToken is 0.15.13's deprecated `revoke-token -i ID`.
func runRevokeToken(r *runner, o optionValues) error {
	id := deref(o.str("id"))
	if err := r.checkOverrideAuthToken(); err != nil {
		return err
	}
	s, err := r.newSession("", "")
	if err != nil {
		return err
	}
	c, err := s.client()
	if err != nil {
		return err
	}
	ok, err := c.DeleteAPIToken(r.ctx, id)
	if err != nil && !errors.Is(err, client.ErrNoData) {
		return err
	}
	if !ok {
		r.secho(fmt.Sprintf("Unable to revoke token with ID %s", id), red)
		return nil
	}
	r.secho("Token successfully revoked", green)
	return nil
}
