package cli

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/latchkey/latchkey/client"
)

// runLogin is `latchkey auth login -k KEY` (1.0.0), with 0.15.13's
// deprecated `-t TOKEN`: a token is first tried as a key, then logged in
// to its default tenant as a USER token.
func runLogin(r *runner, o optionValues) error {
	key, token := deref(o.str("key")), deref(o.str("token"))
	if key == "" && token == "" {
		return terminalf("You must supply an API key or token!")
	}
	if key != "" && token != "" {
		return terminalf("You cannot supply both an API key and token")
	}
	if err := r.abortOnConfigAPIKey("To log in with the CLI, remove the config key `prefect.cloud.api_key`"); err != nil {
		return err
	}

	// Treat the input as an API key even if it came as a token, and
	// ignore any tenant set before.
	s, err := r.newSession(first(key, token), "")
	if err != nil {
		return err
	}
	s.tenantID = ""
	tenantID, err := s.defaultTenant()
	var authErr *client.AuthorizationError
	var clientErr *client.ClientError
	switch {
	case errors.As(err, &authErr):
		if key != "" {
			return terminalf("Unauthorized. Invalid Prefect Cloud API key.")
		}
		// A real token: fall through to the token login below.
	case errors.As(err, &clientErr):
		return terminalf("Error attempting to communicate with Prefect Cloud.")
	case err != nil:
		return err
	default:
		if token != "" {
			r.secho("WARNING: You logged in with an API key using the `--token` flag which is deprecated. Please use `--key` instead.", yellow)
		}
		if s.tenantID, err = validTenant(tenantID); err != nil {
			return err
		}
		if err := s.saveAuth(); err != nil {
			return err
		}
		tenant, err := r.tenantView(tenantID)
		if err != nil {
			return err
		}
		r.secho(fmt.Sprintf("Logged in to Prefect Cloud tenant %s (%s)", pyRepr(tenant.Name), tenant.Slug), green)
		return nil
	}

	// Backwards compatibility for tokens.
	if err := r.checkOverrideAuthToken(); err != nil {
		return err
	}
	s, err = r.newSession("", token)
	if err != nil {
		return err
	}
	if s.apiKey != "" {
		return terminalf("You have already logged in with an API key and cannot use a token.")
	}
	r.secho("WARNING: API tokens are deprecated. Please create an API key and use `latchkey auth login --key <KEY>` to login instead.", yellow)
	c, err := s.client()
	if err == nil {
		var tid string
		if tid, err = c.UserDefaultTenant(r.ctx); err == nil {
			err = s.loginToTenant(nil, &tid)
		}
	}
	switch {
	case errors.As(err, &authErr):
		r.secho("Error attempting to use the given API token. Please check that you are providing a USER scoped Personal Access Token and consider switching API key.", red)
		return nil
	case errors.As(err, &clientErr):
		r.secho("Error attempting to communicate with Prefect Cloud. Please check that you are providing a USER scoped Personal Access Token and consider switching API key.", red)
		return nil
	case err != nil:
		return err
	}
	if err := s.saveAPIToken(); err != nil {
		return err
	}
	r.secho("Login successful!", green)
	return nil
}

// tenantView is TenantView.from_tenant_id: a fresh client (credentials as
// just saved) looks the tenant up by id and expects exactly one row.
func (r *runner) tenantView(tenantID string) (*client.Tenant, error) {
	s, err := r.newSession("", "")
	if err != nil {
		return nil, err
	}
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	tenants, err := c.TenantByID(r.ctx, tenantID)
	if err != nil {
		return nil, err
	}
	where, _ := json.Marshal(map[string]map[string]string{"id": {"_eq": tenantID}})
	switch len(tenants) {
	case 0:
		return nil, failf("No results found while querying for tenants where %s", client.PythonRepr(where))
	case 1:
		return &tenants[0], nil
	}
	return nil, failf("Found multiple (%d) tenants while querying for tenants where %s", len(tenants), client.PythonRepr(where))
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
