package cli

import (
	"cmp"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/latchkey/latchkey/client"
)

// config is the part of Prefect's configuration `auth` reads (see
// client.Config): each value from the environment (PREFECT__SECTION__KEY)
// if set there, else from the config files, else the default.
type config struct {
	homeDir  string // Prefect's home_dir
	authFile string // auth.toml in homeDir
	backend  string // "cloud" or "server"

	// backendFrom says where backend was set, for the message that asks
	// to change it: "PREFECT__BACKEND", the backend or user config file
	// (as the user names it, e.g. ~/.prefect/backend.toml), or "" for the
	// default.
	backendFrom string

	api string // cloud.api: the GraphQL endpoint

	// apiFrom says where api was set, for messages about it: e.g.
	// "PREFECT__CLOUD__API", "api under [cloud] in ~/.prefect/config.toml",
	// or "" for the default.
	apiFrom string

	// cloud.api_key and cloud.tenant_id set in the config (not by the CLI).
	apiKey   string
	tenantID string

	// cloud.auth_token: a deprecated API token set in the config.
	authToken        string
	authTokenFromEnv bool
}

// loadConfig reads the environment and the config files.
func loadConfig(env *client.Env) (*config, error) {
	file, err := client.LoadConfig(env)
	if err != nil {
		return nil, err
	}
	c := &config{homeDir: file.HomeDir, authFile: file.AuthFile()}
	backend := file.Get("backend")
	c.backend, c.backendFrom = cmp.Or(backend.Value, "cloud"), cmp.Or(backend.EnvVar, backend.File)

	// cloud.api defaults to ${${backend}.endpoint}; Latchkey's default
	// endpoint is the local server.
	key := "api"
	api := file.Get("cloud", key)
	if api.Value == "" {
		key = "endpoint"
		api = file.Get("cloud", key)
	}
	switch {
	case api.EnvVar != "":
		c.api, c.apiFrom = api.Value, api.EnvVar
	case api.File != "":
		c.api, c.apiFrom = api.Value, fmt.Sprintf("%s under [cloud] in %s", key, api.File)
	default:
		c.api = client.DefaultURL
	}

	c.apiKey = file.Get("cloud", "api_key").Value
	c.tenantID = file.Get("cloud", "tenant_id").Value
	token := file.Get("cloud", "auth_token")
	c.authToken, c.authTokenFromEnv = token.Value, token.EnvVar != ""
	return c, nil
}

// settingsPath is where 0.15 kept a deprecated API token for a server:
// {home_dir}/client/{slug of the full server URL}/settings.toml.
func (c *config) settingsPath(server string) string {
	return filepath.Join(c.homeDir, "client", slugify(server), "settings.toml")
}

// graphqlURL is 0.15's cloud.graphql ("${cloud.api}/graphql"), which the
// Prefect client used instead of cloud.api when it had no API key.
func graphqlURL(api string) string {
	api = strings.TrimRight(api, "/")
	if strings.HasSuffix(api, "/graphql") {
		return api
	}
	return api + "/graphql"
}
