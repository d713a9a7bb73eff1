package client

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Config is Prefect 1.x's configuration as `latchkey auth` and `latchkey
// agent` read it, layered as prefect.configuration layers it: the user
// config file, the backend config file over it, and PREFECT__SECTION__KEY
// environment variables over both. A value still holding Prefect's ${...}
// interpolation counts as unset.
type Config struct {
	// UserFile and BackendFile name the config files as the user does,
	// for messages that say where a value was set:
	// PREFECT__USER_CONFIG_PATH (default ~/.prefect/config.toml) and
	// PREFECT__BACKEND_CONFIG_PATH (default ~/.prefect/backend.toml).
	UserFile, BackendFile string

	// HomeDir is Prefect's home_dir (default ~/.prefect) with "~"
	// expanded; auth.toml lives there.
	HomeDir string

	getenv        func(string) string
	user, backend map[string]any
}

// A Setting is a configuration value and where it was set; the zero
// Setting is unset.
type Setting struct {
	Value string

	// EnvVar is the environment variable that set it, or "".
	EnvVar string

	// File is the config file that set it, as Config names it, or "".
	File string
}

// LoadConfig reads the config files env names. A missing file is empty; one
// that cannot be read or parsed is an error that names it.
func LoadConfig(env *Env) (*Config, error) {
	env = env.WithDefaults()
	c := &Config{getenv: env.Getenv}
	c.UserFile = cmp.Or(env.Getenv("PREFECT__USER_CONFIG_PATH"), "~/.prefect/config.toml")
	c.BackendFile = cmp.Or(env.Getenv("PREFECT__BACKEND_CONFIG_PATH"), "~/.prefect/backend.toml")
	var err error
	if c.user, err = readTOML(homePath(env, c.UserFile)); err != nil {
		return nil, err
	}
	if c.backend, err = readTOML(homePath(env, c.BackendFile)); err != nil {
		return nil, err
	}
	c.HomeDir = homePath(env, cmp.Or(c.Get("home_dir").Value, "~/.prefect"))
	return c, nil
}

// EnvVar is the environment variable that sets the value at path, as
// Prefect names it: PREFECT__CLOUD__API_KEY for cloud.api_key.
func EnvVar(path ...string) string {
	return "PREFECT__" + strings.ToUpper(strings.Join(path, "__"))
}

// Get returns the value at path (e.g. "cloud", "api"): its environment
// variable (EnvVar) if set, else the value in the config files (File).
func (c *Config) Get(path ...string) Setting {
	name := EnvVar(path...)
	if v := c.getenv(name); v != "" {
		return Setting{Value: v, EnvVar: name}
	}
	return c.File(path...)
}

// File returns the value at path in the config files alone: the backend
// file's, else the user file's.
func (c *Config) File(path ...string) Setting {
	if v := lookup(c.backend, path); v != "" {
		return Setting{Value: v, File: c.BackendFile}
	}
	if v := lookup(c.user, path); v != "" {
		return Setting{Value: v, File: c.UserFile}
	}
	return Setting{}
}

// AuthFile is the path of auth.toml in home_dir (Prefect's
// Client._auth_file).
func (c *Config) AuthFile() string {
	p := filepath.Join(c.HomeDir, "auth.toml")
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// homePath expands a leading "~" in p to env's home directory.
func homePath(env *Env, p string) string {
	if p == "~" {
		return env.HomeDir
	}
	if strings.HasPrefix(p, "~/") {
		return strings.TrimRight(env.HomeDir, "/") + p[1:]
	}
	return p
}

// readTOML decodes the TOML file at path; a missing file is empty.
func readTOML(path string) (map[string]any, error) {
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

// lookup returns the value at path in a decoded TOML document as a string,
// "" if it is absent, a table or still holds ${...} interpolation.
func lookup(m map[string]any, path []string) string {
	var cur any = m
	for _, p := range path {
		t, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = t[p]
	}
	var s string
	switch v := cur.(type) {
	case string:
		s = v
	case int64:
		s = strconv.FormatInt(v, 10)
	case float64:
		s = strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		s = strconv.FormatBool(v)
	}
	if strings.Contains(s, "${") {
		return ""
	}
	return s
}
