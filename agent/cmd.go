package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/cmdline"
)

// newLogger returns a text logger on w at level (DEBUG, INFO, WARNING or
// ERROR) that redacts secrets.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	switch strings.ToUpper(level) {
	case "DEBUG":
		l = slog.LevelDebug
	case "", "INFO":
		l = slog.LevelInfo
	case "WARNING", "WARN":
		l = slog.LevelWarn
	case "ERROR", "CRITICAL":
		l = slog.LevelError
	default:
		return nil, fmt.Errorf("invalid log level %q: use DEBUG, INFO, WARNING or ERROR", level)
	}
	return slog.New(latchkey.NewRedactingHandler(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))), nil
}

// Commands returns `latchkey agent` and `latchkey execute`, to be added to
// latchkey's root command and run with cmdline.Run. `agent local start`
// exits 0 when the agent stops on a signal or after --max-polls, 1 on
// errors (a revoked key included), 2 for usage errors; for `execute
// flow-run` see ExitSuccess, ExitFailed, ExitUsage and ExitKeyRevoked.
func Commands(env *client.Env) []*cobra.Command {
	env = env.WithDefaults()
	var f Flags
	start := &cobra.Command{
		Use:   "start",
		Short: "Start a local agent: it runs each flow run's command as a child process",
		Long: `Start a local agent. It registers with the API, polls for Scheduled flow runs whose
labels are all among its own, and runs each one's command as a child process through
'latchkey execute flow-run', which reports the run's state, heartbeats and logs.

The API key is taken from, in order: -t/--token or -k/--key, the environment variable
PREFECT__CLOUD__AGENT__AUTH_TOKEN, then PREFECT__CLOUD__API_KEY, then
~/.prefect/config.toml: [cloud.agent] auth_token, then [cloud] api_key, then
~/.prefect/auth.toml, where 'latchkey auth login' (or 'prefect auth login') saved the
API server's key and tenant. The key is handed down to the flow runs. If it is revoked,
the agent stops, says so, and exits 1: restart it with a new key.

On SIGHUP the agent reads its key again from the same sources (a key given by flag
cannot change) and, once the server accepts it, polls and starts new flow runs with it;
runs in flight keep the key they started with. To replace a key without downtime: roll
it with a grace period longer than your longest run ('latchkey auth rotate-key -i ID
--grace 1h'), put the new key in the config, send the agent SIGHUP.

Like Prefect 1.x's local agent, the agent adds the host's name to its labels; pass
--no-hostname-label to leave it out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := runAgent(cmd.Context(), env, f)
			if errors.Is(err, ErrKeyRevoked) {
				fmt.Fprintln(env.Stderr, RevokedMessage)
				return cmdline.Exit(1)
			}
			return err
		},
	}
	fl := start.Flags()
	fl.StringVarP(&f.Token, "token", "t", "", "the API key (a service-account key); same as --key")
	fl.StringVarP(&f.Key, "key", "k", "", "the API key. If not set, it is read from the environment, ~/.prefect/config.toml or ~/.prefect/auth.toml")
	fl.StringVar(&f.TenantID, "tenant-id", "", "the tenant to act in (default: the key's)")
	fl.StringVarP(&f.API, "api", "a", "", "the API URL (default: PREFECT__CLOUD__API, [cloud] api, or "+client.DefaultURL+")")
	fl.StringVarP(&f.Name, "name", "n", "", `the agent's name (default "agent")`)
	fl.StringArrayVarP(&f.Labels, "label", "l", nil, "a label of the agent; repeat for several")
	fl.BoolVar(&f.NoHostnameLabel, "no-hostname-label", false, "do not add the host's name to the agent's labels")
	fl.IntVar(&f.MaxPolls, "max-polls", 0, "stop after this many polls, once the runs started have finished (0: never)")
	fl.BoolVar(&f.RequireServiceAccount, "require-service-account", false, "refuse keys that belong to a user instead of a service account")
	fl.StringVar(&f.LogLevel, "log-level", "", "DEBUG, INFO, WARNING or ERROR (default INFO)")

	local := &cobra.Command{Use: "local", Short: "Manage local agents"}
	local.AddCommand(start)
	agent := &cobra.Command{Use: "agent", Short: "Run flow runs: 'latchkey agent local start -t KEY' (Prefect's agent)"}
	agent.AddCommand(local)

	flowRun := &cobra.Command{
		Use:   "flow-run",
		Short: "Run the flow run named by PREFECT__CONTEXT__FLOW_RUN_ID (started by an agent)",
		Long: `Run one flow run, as an agent does for each run it takes: mark it Running, run its
command, send the command's output as run logs, heartbeat, and report Success or Failed.
Configured by the environment the agent sets: PREFECT__CLOUD__API, PREFECT__CLOUD__API_KEY,
PREFECT__CLOUD__TENANT_ID, PREFECT__CONTEXT__FLOW_RUN_ID and PREFECT__CLOUD__HEARTBEAT_INTERVAL.

Exit codes: 0 the command succeeded; 1 it failed or was stopped; 2 the environment is
incomplete; 3 the server rejected the API key (revoked).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmdline.Code(runExecute(cmd.Context(), env))
		},
	}
	execute := &cobra.Command{Use: "execute", Short: "The run process an agent starts for each flow run ('execute flow-run')"}
	execute.AddCommand(flowRun)
	return []*cobra.Command{agent, execute}
}

func runAgent(ctx context.Context, env *client.Env, f Flags) error {
	s, err := ResolveSettings(f, env)
	if err != nil {
		if errors.Is(err, ErrNoKey) {
			return err
		}
		return cmdline.Usage(err)
	}
	logger, err := newLogger(env.Stderr, s.LogLevel)
	if err != nil {
		return cmdline.Usage(err)
	}
	if !f.NoHostnameLabel {
		if s.Labels, err = HostnameLabel(s.Labels, env.Hostname); err != nil {
			return err
		}
	}
	logger.Info("starting agent", "api", s.API, "key_from", s.KeySource, "name", s.Name)
	c := &client.Client{URL: s.API, APIKey: s.Key, TenantID: s.TenantID, HTTP: env.HTTPClient, Now: env.Now}
	reload, stop := env.Reload, func() {}
	if reload == nil {
		reload, stop = notifyReload()
	}
	defer stop()
	a := &Agent{
		Client: c,
		Reload: reload,
		LoadKey: func() (string, string, error) {
			again, err := ResolveSettings(f, env)
			if err != nil {
				return "", "", err
			}
			return again.Key, again.KeySource, nil
		},
		Name:                  s.Name,
		Labels:                s.Labels,
		MaxPolls:              s.MaxPolls,
		RequireServiceAccount: s.RequireServiceAccount,
		Environ:               env.Environ,
		HeartbeatInterval:     s.HeartbeatInterval,
		Logger:                logger,
		Now:                   env.Now,
	}
	return a.Run(ctx)
}

func runExecute(ctx context.Context, env *client.Env) int {
	logger, err := newLogger(env.Stderr, env.Getenv(EnvAgentLevel))
	if err != nil {
		logger, _ = newLogger(env.Stderr, "INFO")
	}
	key := env.Getenv(EnvAPIKey)
	if key == "" {
		key = env.Getenv(EnvAuthToken)
	}
	api := env.Getenv(EnvAPI)
	runID := env.Getenv(EnvFlowRunID)
	if key == "" || api == "" || runID == "" {
		fmt.Fprintf(env.Stderr, "Error: %s, %s and %s must be set; agents set them for the run processes they start.\n", EnvAPI, EnvAPIKey, EnvFlowRunID)
		return ExitUsage
	}
	interval, err := parseSeconds(env.Getenv(EnvHeartbeatInterval), DefaultHeartbeatInterval)
	if err != nil {
		fmt.Fprintf(env.Stderr, "Error: invalid %s: %v\n", EnvHeartbeatInterval, err)
		return ExitUsage
	}
	e := &Executor{
		Client:            &client.Client{URL: api, APIKey: key, TenantID: env.Getenv(EnvTenantID), HTTP: env.HTTPClient, Now: env.Now},
		FlowRunID:         strings.ToLower(runID),
		HeartbeatInterval: interval,
		Environ:           env.Environ,
		Logger:            logger,
		Stderr:            env.Stderr,
		Now:               env.Now,
	}
	return e.Run(ctx)
}
