package cli

import (
	"errors"

	"github.com/latchkey/latchkey/client"
)

// keyJSON is a key in `list-keys --json`.
type keyJSON struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	ExpiresAt *string `json:"expires_at"` // null: never
}

// runListKeys is `latchkey auth list-keys`.
func runListKeys(r *runner, o optionValues) error {
	s, err := r.newSession("", "")
	if err != nil {
		return err
	}
	c, err := s.client()
	if err != nil {
		return err
	}
	keys, err := c.APIKeys(r.ctx)
	var clientErr *client.ClientError
	if errors.As(err, &clientErr) && clientErr.Response != nil {
		return unexpectedResponse(clientErr)
	} else if err != nil {
		return err
	}
	if o.flag("json") {
		docs := make([]keyJSON, len(keys))
		for i, k := range keys {
			docs[i] = keyJSON{ID: k.ID, Name: k.Name, ExpiresAt: k.ExpiresAt}
			if k.ExpiresAt != nil && *k.ExpiresAt == "" {
				docs[i].ExpiresAt = nil
			}
		}
		return r.writeJSON(docs)
	}
	if len(keys) == 0 {
		r.secho("You have not created any API keys", yellow)
		return nil
	}
	rows := make([][]string, len(keys))
	for i, k := range keys {
		expires := "NEVER"
		if k.ExpiresAt != nil && *k.ExpiresAt != "" {
			expires = *k.ExpiresAt
		}
		// Latchkey's column comes last, so Prefect's three keep their places.
		identifier := "—" // a key stored before identifiers were
		if k.Identifier != nil && *k.Identifier != "" {
			identifier = *k.Identifier
		}
		rows[i] = []string{k.Name, k.ID, expires, identifier}
	}
	r.echo(tabulate([]string{"NAME", "ID", "EXPIRES AT", "IDENTIFIER"}, rows))
	return nil
}
