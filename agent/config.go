package agent

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
)

// Environment variables the agent and its run processes read, as Prefect
// names them (PREFECT__SECTION__KEY).
const (
	EnvAgentAuthToken    = "PREFECT__CLOUD__AGENT__AUTH_TOKEN"
	EnvAPIKey            = "PREFECT__CLOUD__API_KEY"
	EnvAPI               = "PREFECT__CLOUD__API"
	EnvEndpoint          = "PREFECT__CLOUD__ENDPOINT"
	EnvTenantID          = "PREFECT__CLOUD__TENANT_ID"
	EnvAgentName         = "PREFECT__CLOUD__AGENT__NAME"
	EnvAgentLevel        = "PREFECT__CLOUD__AGENT__LEVEL"
	EnvAgentLabels       = "PREFECT__CLOUD__AGENT__LABELS"
	EnvRequireSA         = "PREFECT__CLOUD__AGENT__REQUIRE_SERVICE_ACCOUNT"
	EnvHeartbeatInterval = "PREFECT__CLOUD__HEARTBEAT_INTERVAL"
	EnvBackend           = "PREFECT__BACKEND"
	EnvFlowRunID         = "PREFECT__CONTEXT__FLOW_RUN_ID"
	EnvFlowID            = "PREFECT__CONTEXT__FLOW_ID"
	EnvUserConfigPath    = "PREFECT__USER_CONFIG_PATH"
	EnvAuthToken         = "PREFECT__CLOUD__AUTH_TOKEN"
	EnvHomeDir           = "PREFECT__HOME_DIR"
)

// DefaultHeartbeatInterval is how often a run process heartbeats unless
// PREFECT__CLOUD__HEARTBEAT_INTERVAL (seconds) says otherwise. It must stay
// well below the server's --flow-run-heartbeat-timeout.
const DefaultHeartbeatInterval = 5 * time.Second

// firstOf returns the first non-empty value and the name of its source.
func firstOf(pairs ...[2]string) (value, source string) {
	for _, p := range pairs {
		if p[0] != "" {
			return p[0], p[1]
		}
	}
	return "", ""
}

// Settings is the agent's resolved configuration. Key is a secret: it is
// never logged; KeySource says where it came from.
type Settings struct {
	API       string
	Key       string
	KeySource string
	TenantID  string
	Name      string
	Labels    []string

	RequireServiceAccount bool
	HeartbeatInterval     time.Duration
	LogLevel              string
	MaxPolls              int
}

// Flags are the agent's command-line options; empty means not given.
type Flags struct {
	Token, Key, TenantID, API, Name, LogLevel string
	Labels                                    []string
	MaxPolls                                  int
	RequireServiceAccount                     bool

	// NoHostnameLabel turns off the label the agent adds by default: the
	// host's name, as Prefect 1.x's local agent does (--no-hostname-label).
	NoHostnameLabel bool
}

// ErrNoKey is returned by ResolveSettings when no key is configured anywhere.
var ErrNoKey = errors.New("no API key: pass -t/--token or -k/--key, set " + EnvAgentAuthToken + " or " + EnvAPIKey +
	", set [cloud.agent] auth_token or [cloud] api_key in ~/.prefect/config.toml, or log in with `latchkey auth login -k KEY`")

// ResolveSettings combines flags, the environment, the config files (see
// client.Config) and ~/.prefect/auth.toml. The key comes from, in order:
// -t/--token or -k/--key, PREFECT__CLOUD__AGENT__AUTH_TOKEN,
// PREFECT__CLOUD__API_KEY, [cloud.agent] auth_token, [cloud] api_key, then
// the API server's section of auth.toml (in Prefect's home_dir), which
// `latchkey auth login` and `prefect auth login` write; a key found there
// brings its tenant_id along unless a tenant is set otherwise. Other
// settings: flag, then environment, then file, then default.
func ResolveSettings(f Flags, env *client.Env) (*Settings, error) {
	if f.Token != "" && f.Key != "" && f.Token != f.Key {
		return nil, fmt.Errorf("--token and --key both given, with different keys: give the key once")
	}
	env = env.WithDefaults()
	cfg, err := client.LoadConfig(env)
	if err != nil {
		return nil, err
	}
	s := &Settings{Labels: f.Labels, MaxPolls: f.MaxPolls}
	s.Key, s.KeySource = firstOf(
		[2]string{f.Token, "the --token flag"},
		[2]string{f.Key, "the --key flag"},
		[2]string{env.Getenv(EnvAgentAuthToken), EnvAgentAuthToken},
		[2]string{env.Getenv(EnvAPIKey), EnvAPIKey},
		[2]string{cfg.File("cloud", "agent", "auth_token").Value, "[cloud.agent] auth_token in the config file"},
		[2]string{cfg.File("cloud", "api_key").Value, "[cloud] api_key in the config file"},
	)
	s.API = cmp.Or(f.API, cfg.Get("cloud", "api").Value, cfg.Get("cloud", "endpoint").Value, client.DefaultURL)
	var savedTenant string
	if s.Key == "" {
		saved, err := client.ReadAuthFile(cfg.AuthFile(), s.API)
		if err != nil {
			return nil, err
		}
		if saved.APIKey != "" {
			s.Key, s.KeySource, savedTenant = saved.APIKey, cfg.AuthFile(), saved.TenantID
		}
	}
	if s.Key == "" {
		return nil, ErrNoKey
	}
	s.Key = strings.TrimSpace(s.Key)

	s.TenantID = cmp.Or(f.TenantID, cfg.Get("cloud", "tenant_id").Value, savedTenant)
	if s.TenantID != "" {
		id, ok := latchkey.ParseUUID(s.TenantID)
		if !ok {
			return nil, fmt.Errorf("invalid tenant id %q: expected a uuid", s.TenantID)
		}
		s.TenantID = id
	}
	s.Name = cmp.Or(f.Name, cfg.Get("cloud", "agent", "name").Value, "agent")
	s.LogLevel = cmp.Or(f.LogLevel, cfg.Get("cloud", "agent", "level").Value, "INFO")

	s.RequireServiceAccount = f.RequireServiceAccount
	if v := cfg.Get("cloud", "agent", "require_service_account").Value; !s.RequireServiceAccount && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("invalid require_service_account %q: use true or false", v)
		}
		s.RequireServiceAccount = b
	}

	if s.HeartbeatInterval, err = parseSeconds(cfg.Get("cloud", "heartbeat_interval").Value, DefaultHeartbeatInterval); err != nil {
		return nil, fmt.Errorf("invalid heartbeat interval: %w", err)
	}
	return s, nil
}

// HostnameLabel returns labels with the host's name added, as Prefect 1.x's
// local agent labels itself by default (--hostname-label). hostname is
// os.Hostname, or a stand-in in tests.
func HostnameLabel(labels []string, hostname func() (string, error)) ([]string, error) {
	if hostname == nil {
		hostname = os.Hostname
	}
	name, err := hostname()
	if err != nil {
		return nil, fmt.Errorf("the host name, for the agent's default label: %w (pass --no-hostname-label to go without)", err)
	} else if name == "" {
		return labels, nil
	}
	if slices.Contains(labels, name) {
		return labels, nil
	}
	return append(slices.Clone(labels), name), nil
}

// parseSeconds reads a duration in (possibly fractional) seconds, as
// Prefect's heartbeat_interval; "" means def.
func parseSeconds(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f <= 0 || f > 3600 {
		return 0, fmt.Errorf("%q: want a number of seconds between 0 and 3600", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}
