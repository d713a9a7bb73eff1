package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/latchkey/latchkey/client"
)

// config is the part of Prefect's configuration `auth` reads. Each value
// comes from the environment (PREFECT__SECTION__KEY) if set there, else
// from ~/.prefect/config.toml, else the default.
type config struct {
	homeDir string // Prefect's home_dir (auth.toml lives here)
	backend string // "cloud" or "server"

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

// loadConfig reads the environment and the user config files the way
// prefect.configuration layers them: the defaults, then
// PREFECT__USER_CONFIG_PATH (~/.prefect/config.toml), then
// PREFECT__BACKEND_CONFIG_PATH (~/.prefect/backend.toml), then env.
func loadConfig(env *Env) (*config, error) {
	userPath := env.getenv("PREFECT__USER_CONFIG_PATH")
	if userPath == "" {
		userPath = "~/.prefect/config.toml"
	}
	user, err := readTOMLFile(env.homePath(userPath))
	if err != nil {
		return nil, err
	}
	backendPath := env.getenv("PREFECT__BACKEND_CONFIG_PATH")
	if backendPath == "" {
		backendPath = "~/.prefect/backend.toml"
	}
	backendFile, err := readTOMLFile(env.homePath(backendPath))
	if err != nil {
		return nil, err
	}

	// get returns the env value, else the file value(s), else "".
	get := func(envKey string, path ...string) (string, bool) {
		if v := env.getenv(envKey); v != "" {
			return v, true
		}
		for _, m := range []map[string]any{backendFile, user} {
			if v := lookupString(m, path...); v != "" {
				return v, false
			}
		}
		return "", false
	}

	c := &config{}
	home, _ := get("PREFECT__HOME_DIR", "home_dir")
	if home == "" {
		home = "~/.prefect"
	}
	c.homeDir = env.homePath(home)

	var fromEnv bool
	c.backend, fromEnv = get("PREFECT__BACKEND", "backend")
	switch {
	case c.backend == "":
		c.backend = "cloud"
	case fromEnv:
		c.backendFrom = "PREFECT__BACKEND"
	case lookupString(backendFile, "backend") != "":
		c.backendFrom = backendPath
	default:
		c.backendFrom = userPath
	}

	// cloud.api defaults to ${${backend}.endpoint}; Latchkey's default
	// endpoint is the local server.
	// from names where get found a value.
	from := func(envKey string, fromEnv bool, path ...string) string {
		switch {
		case fromEnv:
			return envKey
		case lookupString(backendFile, path...) != "":
			return fmt.Sprintf("%s under [%s] in %s", path[1], path[0], backendPath)
		}
		return fmt.Sprintf("%s under [%s] in %s", path[1], path[0], userPath)
	}
	c.api, fromEnv = get("PREFECT__CLOUD__API", "cloud", "api")
	if c.api != "" {
		c.apiFrom = from("PREFECT__CLOUD__API", fromEnv, "cloud", "api")
	} else if c.api, fromEnv = get("PREFECT__CLOUD__ENDPOINT", "cloud", "endpoint"); c.api != "" {
		c.apiFrom = from("PREFECT__CLOUD__ENDPOINT", fromEnv, "cloud", "endpoint")
	} else {
		c.api = client.DefaultURL
	}

	c.apiKey, _ = get("PREFECT__CLOUD__API_KEY", "cloud", "api_key")
	c.tenantID, _ = get("PREFECT__CLOUD__TENANT_ID", "cloud", "tenant_id")
	c.authToken, c.authTokenFromEnv = get("PREFECT__CLOUD__AUTH_TOKEN", "cloud", "auth_token")
	return c, nil
}

// readTOMLFile decodes a TOML file; a missing file is empty.
func readTOMLFile(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]any{}, nil
	} else if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	m := map[string]any{}
	if _, err := toml.Decode(string(data), &m); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return m, nil
}

// lookupString returns the string at a dotted path in a decoded TOML
// document, or "".
func lookupString(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[p]
	}
	s, _ := cur.(string)
	return s
}

// authFilePath is Prefect's Client._auth_file.
func (c *config) authFilePath() string {
	p, err := filepath.Abs(filepath.Join(c.homeDir, "auth.toml"))
	if err != nil {
		return filepath.Join(c.homeDir, "auth.toml")
	}
	return p
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
