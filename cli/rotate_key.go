package cli

import (
	"errors"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
)

// runRotateKey is `latchkey auth rotate-key -i ID [--grace DURATION] [-q]`.
func runRotateKey(r *runner, o optionValues) error {
	id, quiet := deref(o.str("id")), o.flag("quiet")
	grace, graceText := time.Duration(0), "0"
	if g := o.str("grace"); g != nil {
		d, err := time.ParseDuration(*g)
		if err != nil {
			return terminalf("Failed to parse grace period %s. Pass a duration like 1h, 30m or 0 (the old key stops now).", pyRepr(*g))
		}
		switch {
		case d < 0:
			return terminalf("Grace period %s is negative. Pass 0 to make the old key stop now.", pyRepr(*g))
		case d > latchkey.MaxAPIKeyGracePeriod:
			return terminalf("Grace period %s is longer than the maximum of 720h (30 days).", pyRepr(*g))
		case d%time.Second != 0:
			return terminalf("Grace period %s is not a whole number of seconds.", pyRepr(*g))
		}
		grace, graceText = d, *g
	}

	s, err := r.newSession("", "")
	if err != nil {
		return err
	}
	c, err := s.client()
	if err != nil {
		return err
	}
	if !quiet {
		if grace == 0 {
			r.echo("Rolling key; the old key will stop working now...")
		} else {
			r.echo("Rolling key; the old key will keep working for " + graceText + "...")
		}
	}
	rotated, err := c.RotateAPIKey(r.ctx, id, int(grace/time.Second))
	var clientErr *client.ClientError
	if errors.As(err, &clientErr) && clientErr.Response != nil {
		return unexpectedResponse(clientErr)
	} else if err != nil {
		return err
	}
	if quiet {
		r.echo(rotated.Key)
		return nil
	}
	r.echo("This is the only time this key will be displayed! Store it somewhere safe.")
	r.secho("Successfully rolled key: "+rotated.Key, green)
	r.echo("New key id: " + rotated.ID)
	r.echo("The old key " + id + " stops working at " + rotated.OldKeyExpiresAt + ".")
	return nil
}
