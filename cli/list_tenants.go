package cli

import (
	"errors"

	"github.com/latchkey/latchkey/client"
)

// tenantJSON is a tenant in `list-tenants --json`.
type tenantJSON struct {
	ID     string `json:"id"`
	Slug   string `json:"slug"`
	Name   string `json:"name"`
	Active bool   `json:"active"` // the tenant this machine acts in
}

// runListTenants is `latchkey auth list-tenants`: the caller's tenants,
// the active one starred.
func runListTenants(r *runner, o optionValues) error {
	s, err := r.newSession("", "")
	if err != nil {
		return err
	}
	tenants, err := s.rawClient().Tenants(r.ctx)
	var authErr *client.AuthorizationError
	if errors.As(err, &authErr) {
		return terminalf("You are not authenticated. Use `latchkey auth login` first.")
	} else if err != nil {
		return err
	}
	rows := make([][]string, 0, len(tenants))
	docs := make([]tenantJSON, 0, len(tenants))
	for _, t := range tenants {
		active := ""
		current, err := s.tenant()
		if err != nil {
			return err
		}
		if t.ID == current {
			active = "*"
		}
		rows = append(rows, []string{t.Name, t.Slug, t.ID, active})
		docs = append(docs, tenantJSON{ID: t.ID, Slug: t.Slug, Name: t.Name, Active: active != ""})
	}
	if o.flag("json") {
		return r.writeJSON(docs)
	}
	r.echo(tabulate([]string{"NAME", "SLUG", "ID", ""}, rows))
	return nil
}
