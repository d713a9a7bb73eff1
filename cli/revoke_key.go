package cli

import (
	"errors"

	"github.com/latchkey/latchkey/client"
)

// runRevokeKey is `latchkey auth revoke-key -i ID`.
func runRevokeKey(r *runner, o optionValues) error {
	id := deref(o.str("id"))
	s, err := r.newSession("", "")
	if err != nil {
		return err
	}
	c, err := s.client()
	if err != nil {
		return err
	}
	ok, err := c.DeleteAPIKey(r.ctx, id)
	if err != nil && !errors.Is(err, client.ErrNoData) {
		return err
	}
	if !ok {
		return terminalf("Unable to revoke key %s", pyRepr(id))
	}
	r.secho("Key successfully revoked!", green)
	return nil
}
