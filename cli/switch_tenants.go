package cli

import (
	"errors"

	"github.com/latchkey/latchkey/client"
)

// runSwitchTenants is `latchkey auth switch-tenants [-i ID | -s SLUG | -d]`:
// 1.0.0's behaviour for API keys, 0.15.13's for deprecated tokens.
func runSwitchTenants(r *runner, o optionValues) error {
	if r.cfg.tenantID != "" {
		return terminalf("Your tenant id has been set in the Prefect config instead of with the CLI. To switch tenants with the CLI, remove the config key  `prefect.cloud.tenant_id`")
	}
	s, err := r.newSession("", "")
	if err != nil {
		return err
	}
	id, slug, def := o.str("id"), o.str("slug"), o.flag("default")

	if s.apiKey == "" {
		if s.apiToken == "" {
			return terminalf("You are not logged in!")
		}
		if err := r.checkOverrideAuthToken(); err != nil {
			return err
		}
		if def {
			return terminalf("The default tenant flag can only be used with API keys.")
		}
		if err := s.loginToTenant(slug, id); err != nil {
			return err
		}
		r.secho("Tenant switched to "+s.tenantID, green)
		return nil
	}

	if def {
		s.tenantID = ""
		if err := s.saveAuth(); err != nil {
			return err
		}
		tenantID, err := s.defaultTenant()
		if err != nil {
			return err
		}
		r.secho("Tenant restored to the default tenant for your API key: "+tenantID, green)
		return nil
	}

	tenantID, err := s.switchTenant(deref(slug), deref(id))
	var authErr *client.AuthorizationError
	if errors.As(err, &authErr) {
		return terminalf("Unauthorized. Your API key is not valid for that tenant.")
	} else if err != nil {
		return err
	}
	if err := s.saveAuth(); err != nil {
		return err
	}
	r.secho("Tenant switched to "+tenantID, green)
	return nil
}
