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

// Exit codes of `latchkey agent`.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError marks errors of the command line (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

// RunAgentCommand runs `latchkey agent` with args (everything after
// "agent") and returns the exit code: 0 when the agent stops on a signal or
// after --max-polls, 1 on errors (a revoked key included), 2 for usage
// errors.
func RunAgentCommand(ctx context.Context, env *client.Env, args []string) int {
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
			return runAgent(cmd.Context(), env, f)
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
	group := &cobra.Command{Use: "agent", Short: "Run a Prefect 1.x-compatible agent"}
	group.AddCommand(local)
	return execute(ctx, env, group, args)
}

// execute runs group (a top-level command of latchkey) with args and
// turns its error into an exit code.
func execute(ctx context.Context, env *client.Env, group *cobra.Command, args []string) int {
	root := &cobra.Command{Use: "latchkey", SilenceErrors: true, SilenceUsage: true}
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(group)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetArgs(append([]string{group.Name()}, args...))
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	var wrap func(c *cobra.Command)
	wrap = func(c *cobra.Command) {
		c.Args = wrapArgs(c.Args)
		if c.HasSubCommands() {
			// A group: help, or an unknown subcommand (a usage error).
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 {
					return usageError{fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
				}
				return cmd.Help()
			}
		}
		for _, sub := range c.Commands() {
			wrap(sub)
		}
	}
	wrap(group)
	cmd, err := root.ExecuteContextC(ctx)
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command"):
		fmt.Fprintf(env.Stderr, "Error: %s\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		return exitUsage
	case errors.Is(err, ErrKeyRevoked):
		fmt.Fprintln(env.Stderr, RevokedMessage)
		return exitError
	}
	fmt.Fprintln(env.Stderr, "Error: "+latchkey.RedactSecrets(err.Error()))
	return exitError
}

// wrapArgs marks argument-count errors as usage errors.
func wrapArgs(fn cobra.PositionalArgs) cobra.PositionalArgs {
	if fn == nil {
		return nil
	}
	return func(cmd *cobra.Command, args []string) error {
		if err := fn(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func runAgent(ctx context.Context, env *client.Env, f Flags) error {
	s, err := ResolveSettings(f, env)
	if err != nil {
		if errors.Is(err, ErrNoKey) {
			return err
		}
		return usageError{err}
	}
	logger, err := newLogger(env.Stderr, s.LogLevel)
	if err != nil {
		return usageError{err}
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

// RunExecuteCommand runs `latchkey execute` with args (everything after
// "execute"); `latchkey execute flow-run` is the run process an agent
// starts, configured by its environment. It returns the exit code: see
// ExitSuccess, ExitFailed, ExitUsage and ExitKeyRevoked.
func RunExecuteCommand(ctx context.Context, env *client.Env, args []string) int {
	env = env.WithDefaults()
	code := exitOK
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
			code = runExecute(cmd.Context(), env)
			return nil
		},
	}
	group := &cobra.Command{Use: "execute", Short: "Run work handed out by an agent"}
	group.AddCommand(flowRun)
	if c := execute(ctx, env, group, args); c != exitOK {
		return c
	}
	return code
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
