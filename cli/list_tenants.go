package cli

import (
	"errors"

	"github.com/latchkey/latchkey/client"
)

// runListTenants is `latchkey auth list-tenants`: the caller's tenants,
// the active one starred.
func runListTenants(r *runner, _ optionValues) error {
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
	}
	r.echo(tabulate([]string{"NAME", "SLUG", "ID", ""}, rows))
	return nil
}
