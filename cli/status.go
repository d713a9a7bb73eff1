package cli

import (
	"github.com/latchkey/latchkey"
)

// statusJSON is `latchkey auth status --json` (documented in docs/cli.md).
type statusJSON struct {
	APIURL string `json:"api_url"`
	// Credential is "api_key", "api_token" or "" (not logged in).
	Credential string `json:"credential"`
	// OK says the server accepted the credential just now.
	OK bool `json:"ok"`
	// Error says why not ("" when OK or not logged in).
	Error  string        `json:"error"`
	Tenant *statusTenant `json:"tenant"`
	User   *statusUser   `json:"user"`
	APIKey *statusKey    `json:"api_key"`
}

type statusTenant struct {
	ID   string `json:"id"`
	Slug string `json:"slug"`
	Name string `json:"name"`
}

type statusUser struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
	Role  string `json:"role"`
}

type statusKey struct {
	ID         string  `json:"id"` // "" when the server does not say which key
	Name       string  `json:"name"`
	Identifier string  `json:"identifier"`
	ExpiresAt  *string `json:"expires_at"`
}

// runStatus is `latchkey auth status [--json]`: where the CLI connects,
// with what, and whether the server accepts it: the stored key is checked
// with the server, which says in which tenant, as whom and with which
// key. It exits 0 even when the credential does not work.
func runStatus(r *runner, o optionValues) error {
	s, err := r.newSession("", "")
	if err != nil {
		return err
	}
	st := statusJSON{APIURL: r.cfg.api}
	asJSON := o.flag("json")
	// Prefect 1.x prints client.api_server: the configured API URL (the
	// PREFECT__CLOUD__API setting), the same whether or not anyone is
	// logged in. (Without a key the session talks to its /graphql form,
	// where 0.15 kept tokens; that is not what is printed.)
	r.echoUnlessJSON(asJSON, "You are connecting to "+r.cfg.api)
	if s.apiKey != "" {
		st.Credential = "api_key"
		r.echoUnlessJSON(asJSON, "You are authenticating with an API key")
		r.checkKey(s, &st)
		if !asJSON {
			r.printKeyStatus(&st)
		}
	}
	if s.apiToken != "" {
		if st.Credential == "" {
			st.Credential = "api_token"
		}
		msg := "You are logged in with an API token. These have been deprecated in favor of API keys."
		if s.apiKey != "" {
			msg += " Since you have set an API key as well, this will be ignored."
		}
		if !asJSON {
			r.secho(msg, yellow)
		}
	}
	if s.apiKey == "" && s.apiToken == "" && !asJSON {
		r.secho("You are not logged in! Use `latchkey auth login` to login with an API key.", yellow)
	}
	if asJSON {
		return r.writeJSON(st)
	}
	return nil
}

func (r *runner) echoUnlessJSON(asJSON bool, s string) {
	if !asJSON {
		r.echo(s)
	}
}

// checkKey asks the server about the session's key and fills st in.
func (r *runner) checkKey(s *session, st *statusJSON) {
	if id := latchkey.SecretIdentifier(s.apiKey); looksLikeIdentifier(id) {
		st.APIKey = &statusKey{Identifier: id}
	}
	tenantID, err := s.tenant()
	if err != nil {
		st.Error = r.describe(err)
		return
	}
	c, err := s.client()
	if err != nil {
		st.Error = r.describe(err)
		return
	}
	who, err := c.WhoAmI(r.ctx, tenantID)
	if err != nil {
		st.Error = r.describe(err)
		return
	}
	st.OK = true
	st.Tenant = &statusTenant{ID: tenantID}
	if who.Tenant != nil {
		st.Tenant.Slug, st.Tenant.Name = who.Tenant.Slug, who.Tenant.Name
	}
	st.User = &statusUser{ID: who.UserID, Email: who.User.Email, Name: who.User.Name, Role: who.Role}
	if st.APIKey == nil {
		return
	}
	// Which key: by its identifier, where the server lists identifiers.
	// (A server without identifiers, or a failed listing, leaves the key
	// unnamed: the credential itself was just accepted.)
	keys, err := c.APIKeysWithIdentifiers(r.ctx)
	if err != nil {
		return
	}
	for _, k := range keys {
		if k.Identifier != nil && *k.Identifier == st.APIKey.Identifier {
			st.APIKey.ID, st.APIKey.Name, st.APIKey.ExpiresAt = k.ID, k.Name, k.ExpiresAt
		}
	}
}

// printKeyStatus prints what checkKey found: Prefect's tenant line, then
// the tenant's name, the user and the key, or why the key does not work.
func (r *runner) printKeyStatus(st *statusJSON) {
	if !st.OK {
		r.echo("Your authentication is not working: " + st.Error)
		return
	}
	r.echo("You are logged in to tenant " + st.Tenant.ID)
	if st.Tenant.Name != "" {
		r.echo("Tenant: " + st.Tenant.Name + " (" + st.Tenant.Slug + ")")
	}
	user := first(st.User.Email, st.User.Name, st.User.ID)
	if st.User.Role != "" {
		user += ", role " + st.User.Role
	}
	r.echo("User: " + user)
	if k := st.APIKey; k != nil {
		line := "API key: " + k.Identifier
		if k.Name != "" {
			line = "API key: " + k.Name + " (" + k.Identifier + ")"
		}
		if k.ExpiresAt != nil && *k.ExpiresAt != "" {
			line += ", expires " + *k.ExpiresAt
		}
		r.echo(line)
	}
}
