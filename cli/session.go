package cli

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/latchkey/latchkey/client"
)

// session is what Prefect's Client object is to its CLI: the API server, the
// credential found by the precedence rules and the tenant, plus the 0.15
// machinery for deprecated API tokens (access tokens minted with
// switch_tenant and renewed with refresh_token).
type session struct {
	r         *runner
	apiServer string
	apiKey    string
	tenantID  string
	apiToken  string
	access    *client.AccessToken
}

// validTenant is the 1.x tenant_id setter: empty means unset (the 1.2 fix),
// anything else must be a UUID and is normalised.
func validTenant(id string) (string, error) {
	if id == "" {
		return "", nil
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return "", failf("The `tenant_id` must be a valid UUID. Got %s.", pyRepr(id))
	}
	return u.String(), nil
}

// newSession is Client(api_key=apiKey, api_token=apiToken): the key from
// the argument, the config (env or config.toml) or auth.toml; the tenant
// from the config or auth.toml; a deprecated token from the argument, the
// config or (for want of a key) the 0.15 settings file, in which case it
// logs in to the stored tenant at once as 0.15 did.
func (r *runner) newSession(apiKey, apiToken string) (*session, error) {
	s := &session{r: r, apiServer: r.cfg.api}
	r.sess = s
	cached, err := client.ReadAuthFile(r.cfg.authFile, s.apiServer)
	if err != nil {
		return nil, err
	}
	s.apiKey = first(apiKey, r.cfg.apiKey, cached.APIKey)
	if s.tenantID, err = validTenant(first(r.cfg.tenantID, cached.TenantID)); err != nil {
		return nil, err
	}
	s.apiToken = first(apiToken, r.cfg.authToken)
	if s.apiKey == "" {
		// Without a key, 0.15 talked to cloud.graphql, where its token
		// settings are keyed.
		s.apiServer = graphqlURL(s.apiServer)
	}
	if s.apiKey == "" && s.apiToken == "" {
		if err := s.initTenant(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

func (s *session) httpClient() *http.Client { return s.r.env.HTTPClient }

// bare is a client for this server with no credential.
func (s *session) bare() *client.Client {
	return &client.Client{URL: s.apiServer, HTTP: s.httpClient(), Now: s.r.env.Now}
}

// rawClient authenticates with the key, else the raw API token (never an
// access token): Prefect's `token=self.api_key or self._api_token`.
func (s *session) rawClient() *client.Client {
	c := s.bare()
	if s.apiKey != "" {
		c.APIKey, c.TenantID = s.apiKey, s.tenantID
	} else {
		c.Token = s.apiToken
	}
	return c
}

// client authenticates as Client.get_auth_token does: the key; else the raw
// token until an access token exists; else the access token, refreshed
// first if it expires within 30 seconds.
func (s *session) client() (*client.Client, error) {
	if s.apiKey != "" || s.access == nil {
		return s.rawClient(), nil
	}
	if s.access.RefreshToken != "" && s.r.env.Now().Add(30*time.Second).After(s.access.ExpiresAt) {
		tok, err := s.bare().Refresh(s.r.ctx, s.access.RefreshToken, s.access.AccessToken)
		if err != nil {
			return nil, err
		}
		s.access = tok
	}
	c := s.bare()
	c.Token = s.access.AccessToken
	return c, nil
}

// authFile and slug locate this server's auth.toml section.
func (s *session) saveAuth() error {
	return saveAuth(s.r.cfg.authFile, serverSlug(s.apiServer), client.SavedAuth{APIKey: s.apiKey, TenantID: s.tenantID})
}

func (s *session) settings() (*tokenSettings, error) {
	return loadTokenSettings(s.r.cfg.settingsPath(s.apiServer))
}

// defaultTenant is Client._get_auth_tenant.
func (s *session) defaultTenant() (string, error) {
	if s.apiKey == "" {
		return "", failf("You have not set an API key for authentication.")
	}
	return s.rawClient().DefaultTenant(s.r.ctx)
}

// tenant is the Client.tenant_id property: the known tenant, else (for a
// key) the key's default tenant, else (for a token) the stored one.
func (s *session) tenant() (string, error) {
	if s.apiToken != "" && s.apiKey == "" {
		if s.tenantID == "" {
			if err := s.initTenant(); err != nil {
				return "", err
			}
		}
		return s.tenantID, nil
	}
	if s.tenantID == "" {
		id, err := s.defaultTenant()
		if err != nil {
			return "", err
		}
		if s.tenantID, err = validTenant(id); err != nil {
			return "", err
		}
	}
	return s.tenantID, nil
}

// initTenant is 0.15's Client._init_tenant: load the token and its active
// tenant from settings.toml and log in to that tenant, falling back to the
// token's only tenant, or forgetting the tenant if the token is refused.
func (s *session) initTenant() error {
	st, err := s.settings()
	if err != nil {
		return err
	}
	if s.apiToken == "" {
		s.apiToken = st.get("api_token")
	}
	if s.apiToken != "" {
		s.tenantID = st.get("active_tenant_id")
	}
	if s.tenantID == "" {
		return nil
	}
	tid := s.tenantID
	err = s.loginToTenant(nil, &tid)
	var authErr *client.AuthorizationError
	if !errors.As(err, &authErr) {
		return err
	}
	// A TENANT or RUNNER token cannot switch: use its one tenant.
	ids, err := s.rawClient().AnyTenantIDs(s.r.ctx)
	if errors.As(err, &authErr) {
		return s.logoutFromTenant()
	} else if err != nil {
		return err
	}
	if len(ids) != 1 {
		rows := make([]map[string]string, len(ids))
		for i, id := range ids {
			rows[i] = map[string]string{"id": id}
		}
		b, _ := json.Marshal(rows)
		return failf("Failed to authorize with Prefect Cloud. Could not log in to tenant %s. Found available tenants: %s", pyRepr(tid), client.PythonRepr(b))
	}
	s.tenantID = ids[0]
	return nil
}

// loginToTenant is 0.15's Client.login_to_tenant: find the tenant, and with
// a token (no key) mint an access token for it and remember it.
func (s *session) loginToTenant(slug, id *string) error {
	if slug == nil && id == nil {
		return failf("At least one of `tenant_slug` or `tenant_id` must be provided.")
	}
	if id != nil && *id != "" {
		if _, err := uuid.Parse(*id); err != nil {
			return failf("The `tenant_id` must be a valid UUID.")
		}
	}
	ids, err := s.rawClient().LoginTenantIDs(s.r.ctx, slug, id)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return failf("No matching tenant found.")
	}
	s.tenantID = ids[0]
	if s.apiKey != "" {
		return nil
	}
	c := s.bare()
	c.Token = s.apiToken
	tok, err := c.SwitchTenant(s.r.ctx, s.tenantID)
	if err != nil {
		return err
	}
	s.access = tok
	st, err := s.settings()
	if err != nil {
		return err
	}
	st.set("active_tenant_id", s.tenantID)
	return st.save()
}

// logoutFromTenant is 0.15's Client.logout_from_tenant.
func (s *session) logoutFromTenant() error {
	s.access = nil
	s.tenantID = ""
	st, err := s.settings()
	if err != nil {
		return err
	}
	st.set("active_tenant_id", "")
	return st.save()
}

// saveAPIToken is 0.15's Client.save_api_token.
func (s *session) saveAPIToken() error {
	st, err := s.settings()
	if err != nil {
		return err
	}
	st.set("api_token", s.apiToken)
	return st.save()
}

// switchTenant is 1.0's Client.switch_tenant for API keys: resolve the
// slug, set the tenant and check the key may act there.
func (s *session) switchTenant(slug, id string) (string, error) {
	if slug != "" && id != "" {
		return "", failf("Received both `tenant_slug` and `tenant_id`; only one is allowed.")
	}
	if slug != "" {
		ids, err := s.rawClient().TenantIDsBySlug(s.r.ctx, slug)
		if err != nil {
			return "", err
		}
		if len(ids) == 0 {
			return "", failf("No matching tenant found for slug %s.", pyRepr(slug))
		}
		id = ids[0]
	}
	if id == "" {
		return "", failf("A `tenant_id` or `tenant_slug` must be provided.")
	}
	tid, err := validTenant(id)
	if err != nil {
		return "", err
	}
	s.tenantID = tid
	if _, err := s.defaultTenant(); err != nil {
		return "", err
	}
	return s.tenantID, nil
}

// checkOverrideAuthToken refuses to manage tokens when one is set in the
// config (check_override_auth_token): a red message, then Abort.
func (r *runner) checkOverrideAuthToken() error {
	if r.cfg.authToken == "" {
		return nil
	}
	if r.cfg.authTokenFromEnv {
		r.secho("Auth token has been set in the environment. The CLI cannot be used to manage your auth. Unset the key with `unset PREFECT__CLOUD__AUTH_TOKEN`", red)
	} else {
		r.secho("Auth token has been set in the config. The CLI cannot be used to manage your auth. Remove the key from your configuration file.", red)
	}
	return errAbort
}

// abortOnConfigAPIKey is abort_on_config_api_key.
func (r *runner) abortOnConfigAPIKey(message string) error {
	if r.cfg.apiKey == "" {
		return nil
	}
	return terminalf("Your API key is set in the Prefect config instead of with the CLI. %s", message)
}
