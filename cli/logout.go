package cli

// runLogout is `latchkey auth logout [-t] [-y]`: forget the API key (after a
// confirmation), or with a deprecated token, first the tenant and then,
// run again, the token.
func runLogout(r *runner, o optionValues) error {
	r.assumeYes = o.flag("yes")
	s, err := r.newSession("", "")
	if err != nil {
		return err
	}
	switch {
	case s.apiKey != "" && !o.flag("token"):
		if err := r.abortOnConfigAPIKey("To log out, remove the config key `prefect.cloud.api_key`"); err != nil {
			return err
		}
		if err := r.confirm("Are you sure you want to log out of Prefect Cloud? This will remove your API key from this machine."); err != nil {
			return err
		}
		s.apiKey, s.tenantID = "", ""
		if err := s.saveAuth(); err != nil {
			return err
		}
		r.secho("Logged out of Prefect Cloud", green)
		return nil

	case s.apiToken != "":
		if err := r.checkOverrideAuthToken(); err != nil {
			return err
		}
		tenantID, err := s.tenant()
		if err != nil {
			return err
		}
		if tenantID == "" {
			if err := r.confirm("Are you sure you want to log out of Prefect Cloud? This will remove your API token from this machine."); err != nil {
				return err
			}
			st, err := s.settings()
			if err != nil {
				return err
			}
			st.clear()
			if err := st.save(); err != nil {
				return err
			}
			r.secho("Logged out of Prefect Cloud", green)
			return nil
		}
		if err := r.confirm("Are you sure you want to log out of your current Prefect Cloud tenant?"); err != nil {
			return err
		}
		if err := s.logoutFromTenant(); err != nil {
			return err
		}
		r.secho("Logged out from tenant "+tenantID+". Run `latchkey auth logout` again to delete your API token.", green)
		return nil
	}
	return terminalf("You are not logged in to Prefect Cloud. Use `latchkey auth login` to log in first.")
}
