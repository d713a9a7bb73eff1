package cli

// runStatus is `latchkey auth status`: where the CLI connects and with
// what. It exits 0 even when the credential does not work.
func runStatus(r *runner, _ optionValues) error {
	s, err := r.newSession("", "")
	if err != nil {
		return err
	}
	// Prefect 1.x prints client.api_server: the configured API URL (the
	// PREFECT__CLOUD__API setting), the same whether or not anyone is
	// logged in. (Without a key the session talks to its /graphql form,
	// where 0.15 kept tokens; that is not what is printed.)
	r.echo("You are connecting to " + r.cfg.api)
	if s.apiKey != "" {
		r.echo("You are authenticating with an API key")
		if tenantID, err := s.tenant(); err != nil {
			r.echo("Your authentication is not working: " + err.Error())
		} else {
			r.echo("You are logged in to tenant " + tenantID)
		}
	}
	if s.apiToken != "" {
		msg := "You are logged in with an API token. These have been deprecated in favor of API keys."
		if s.apiKey != "" {
			msg += " Since you have set an API key as well, this will be ignored."
		}
		r.secho(msg, yellow)
	}
	if s.apiKey == "" && s.apiToken == "" {
		r.secho("You are not logged in! Use `latchkey auth login` to login with an API key.", yellow)
	}
	return nil
}
