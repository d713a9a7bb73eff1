package cli

import (
	"errors"

	"github.com/latchkey/latchkey/client"
)

// createdKeyJSON is `create-key --json`.
type createdKeyJSON struct {
	Key       string  `json:"key"` // the secret, shown only this once
	Name      string  `json:"name"`
	ExpiresAt *string `json:"expires_at"` // UTC ISO 8601; null: never
}

// runCreateKey is `latchkey auth create-key -n NAME [-e WHEN] [-q]`.
func runCreateKey(r *runner, o optionValues) error {
	name, quiet := deref(o.str("name")), o.flag("quiet") || o.flag("json")
	var expiresAt *string
	expireMsg := ""
	if expire := o.str("expire"); expire != nil {
		now := r.env.Now()
		t, err := parseExpire(*expire, now)
		if err != nil {
			return terminalf("Failed to parse expiration time. %s\nPlease pass a date in a dateutil parsable format.", err)
		}
		if !t.After(now) {
			return terminalf("Given expiration time %s is a time in the past: %s", pyRepr(*expire), isoformat(t))
		}
		expireMsg = " that will expire " + diffForHumans(t, r.env.Now())
		utc := isoformat(t.UTC())
		expiresAt = &utc
	}

	s, err := r.newSession("", "")
	if err != nil {
		return err
	}
	c, err := s.client()
	if err != nil {
		return err
	}
	// We must retrieve our own user id first since you could be creating a
	// key for a service account.
	if !quiet {
		r.echo("Retrieving user information...")
	}
	info, err := c.AuthInfo(r.ctx, "user_id")
	var clientErr *client.ClientError
	if err != nil && !(errors.As(err, &clientErr) && clientErr.Response != nil) {
		return err
	}
	if info == nil || info.UserID == nil || *info.UserID == "" {
		return terminalf("Failed to retrieve the current user id from Prefect Cloud")
	}

	if !quiet {
		r.echo("Creating key" + expireMsg + "...")
	}
	if c, err = s.client(); err != nil {
		return err
	}
	key, err := c.CreateAPIKey(r.ctx, client.CreateAPIKeyInput{Name: name, UserID: info.UserID, ExpiresAt: expiresAt})
	if errors.As(err, &clientErr) && clientErr.Response != nil {
		return unexpectedResponse(clientErr)
	} else if err != nil {
		return err
	}
	if o.flag("json") {
		return r.writeJSON(createdKeyJSON{Key: key, Name: name, ExpiresAt: expiresAt})
	}
	if quiet {
		r.echo(key)
		return nil
	}
	r.echo("This is the only time this key will be displayed! Store it somewhere safe.")
	r.secho("Successfully created key: "+key, green)
	return nil
}

// unexpectedResponse is Prefect's "Unexpected response from Prefect Cloud:
// {response}", the response printed as GraphQLResult prints itself.
func unexpectedResponse(e *client.ClientError) error {
	if e.Response == nil {
		return terminalf("Unexpected response from Prefect Cloud: %s", e.Message)
	}
	return terminalf("Unexpected response from Prefect Cloud: %s", client.PythonJSON(e.Response, 4))
}
