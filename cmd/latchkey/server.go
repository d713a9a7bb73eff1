package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/graphql"
	"github.com/latchkey/latchkey/html"
	lkhttp "github.com/latchkey/latchkey/http"
	"github.com/latchkey/latchkey/jwt"
	"github.com/latchkey/latchkey/sqldb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Default settings of `latchkey server`.
const (
	DefaultAddr            = "127.0.0.1:4200"
	DefaultDSN             = "latchkey.db"
	DefaultBootstrapEmail  = "admin@localhost"
	DefaultBootstrapTenant = "Default"
)

// Main is the server program. End-to-end tests build one with NewMain, set
// Addr to ":0" and DSN to a temp file, and call Run.
type Main struct {
	Addr            string
	DSN             string
	LogFormat       string // "json" or "text"
	LogLevel        slog.Level
	AccessTokenTTL  time.Duration
	Issuer          string
	BootstrapEmail  string
	BootstrapTenant string
	NoBootstrap     bool

	Stdout io.Writer // the first admin key is printed here, once
	Stderr io.Writer // logs
	Now    func() time.Time

	// Set by Run; exposed for end-to-end tests.
	Logger     *slog.Logger
	DB         *sqldb.DB
	Tokens     *jwt.TokenService
	Auth       *sqldb.AuthService
	HTTPServer *lkhttp.Server
	Registry   *prometheus.Registry

	// BootstrapKey is the key printed on first start ("" otherwise).
	BootstrapKey string

	// bootstrapReset is the first admin's set-password secret, printed as
	// a link once the server listens.
	bootstrapReset        string
	bootstrapResetExpires time.Time
}

// NewMain returns a Main with default settings.
func NewMain(env *Env) *Main {
	return &Main{
		Addr: DefaultAddr, DSN: DefaultDSN, LogFormat: "json", LogLevel: slog.LevelInfo,
		AccessTokenTTL: latchkey.DefaultAccessTokenTTL, Issuer: "latchkey",
		BootstrapEmail: DefaultBootstrapEmail, BootstrapTenant: DefaultBootstrapTenant,
		Stdout: env.Stdout, Stderr: env.Stderr, Now: env.Now,
	}
}

// ParseFlags reads the server's flags; environment variables
// LATCHKEY_ADDR and LATCHKEY_DB give defaults.
func (m *Main) ParseFlags(args []string, getenv func(string) string) error {
	if v := getenv("LATCHKEY_ADDR"); v != "" {
		m.Addr = v
	}
	if v := getenv("LATCHKEY_DB"); v != "" {
		m.DSN = v
	}
	fs := flag.NewFlagSet("latchkey server", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.StringVar(&m.Addr, "addr", m.Addr, "listen `address` (env LATCHKEY_ADDR)")
	fs.StringVar(&m.DSN, "db", m.DSN, "SQLite `file`, or a postgres:// URL for several replicas (env LATCHKEY_DB)")
	fs.StringVar(&m.LogFormat, "log-format", m.LogFormat, "log format: json or text")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&m.AccessTokenTTL, "access-token-ttl", m.AccessTokenTTL, "lifetime of access tokens")
	fs.StringVar(&m.BootstrapEmail, "bootstrap-email", m.BootstrapEmail, "email of the admin created on first start")
	fs.StringVar(&m.BootstrapTenant, "bootstrap-tenant", m.BootstrapTenant, "name of the tenant created on first start")
	fs.BoolVar(&m.NoBootstrap, "no-bootstrap", false, "do not create a tenant and admin on first start")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: latchkey server [OPTIONS]\n\n"+
			"Serve the GraphQL API at / and /graphql, JWKS at /.well-known/jwks.json,\n"+
			"/healthz and /metrics. On first start with an empty database, create a tenant\n"+
			"and an admin and print the admin's API key once.\n\nOptions:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := m.LogLevel.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("invalid --log-level %q", *level)
	}
	if m.LogFormat != "json" && m.LogFormat != "text" {
		return fmt.Errorf("invalid --log-format %q: use json or text", m.LogFormat)
	}
	if m.AccessTokenTTL < time.Minute || m.AccessTokenTTL > 24*time.Hour {
		return fmt.Errorf("invalid --access-token-ttl %s: use 1m to 24h", m.AccessTokenTTL)
	}
	return nil
}

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if format == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(latchkey.NewRedactingHandler(h))
}

// Run opens the database, bootstraps it if empty, and starts serving.
// It returns once the server listens; Close stops it.
func (m *Main) Run(ctx context.Context) error {
	if m.Now == nil {
		m.Now = time.Now
	}
	m.Logger = newLogger(m.Stderr, m.LogFormat, m.LogLevel)

	m.DB = sqldb.NewDB(m.DSN)
	m.DB.Now, m.DB.Logger = m.Now, m.Logger
	if err := m.DB.Open(ctx); err != nil {
		return err
	}

	if !m.NoBootstrap {
		if err := m.bootstrap(ctx); err != nil {
			return err
		}
	}

	m.Tokens = jwt.NewTokenService(sqldb.NewSigningKeyService(m.DB), m.Issuer, m.Issuer)
	m.Tokens.Now, m.Tokens.Logger = m.Now, m.Logger
	m.Tokens.MaxTokenLifetime = m.AccessTokenTTL
	if err := m.Tokens.Open(ctx); err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	m.Auth = sqldb.NewAuthService(m.DB, m.Tokens)
	m.Auth.AccessTTL = m.AccessTokenTTL

	m.Registry = prometheus.NewRegistry()
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	gql := &graphql.Server{
		Auth:            m.Auth,
		Tenants:         sqldb.NewTenantService(m.DB),
		Users:           sqldb.NewUserService(m.DB),
		Memberships:     sqldb.NewMembershipService(m.DB),
		ServiceAccounts: sqldb.NewServiceAccountService(m.DB),
		APIKeys:         sqldb.NewAPIKeyService(m.DB),
		APITokens:       sqldb.NewAPITokenService(m.DB),
		Logger:          m.Logger,
	}
	m.HTTPServer = &lkhttp.Server{
		Addr: m.Addr, GraphQL: gql.Handler(), Tokens: m.Tokens,
		Ping: m.DB.Ping, Logger: m.Logger, Registry: m.Registry,
	}
	m.HTTPServer.UI = (&html.Server{
		Auth:            m.Auth,
		Users:           sqldb.NewUserService(m.DB),
		Tenants:         sqldb.NewTenantService(m.DB),
		Memberships:     sqldb.NewMembershipService(m.DB),
		ServiceAccounts: sqldb.NewServiceAccountService(m.DB),
		APIKeys:         sqldb.NewAPIKeyService(m.DB),
		Logger:          m.Logger,
		Now:             m.Now,
	}).Handler()
	if err := m.HTTPServer.Open(); err != nil {
		return err
	}
	if m.bootstrapReset != "" {
		fmt.Fprintf(m.Stdout, "Set the admin's web UI password with this link (works once, until %s; shown only this once):\n%s/ui/reset?token=%s\n",
			m.bootstrapResetExpires.UTC().Format(time.RFC3339), m.HTTPServer.URL(), m.bootstrapReset)
		m.bootstrapReset = ""
	}
	m.Logger.Info("latchkey listening", "url", m.HTTPServer.URL(), "db", dbKind(m.DSN), "version", latchkey.Version())
	return nil
}

// bootstrap creates the first tenant, admin and key when no user exists,
// and prints the key once. A replica that loses the race to another one
// bootstrapping the same database does nothing.
func (m *Main) bootstrap(ctx context.Context) error {
	bs := sqldb.NewBootstrapService(m.DB)
	need, err := bs.NeedsBootstrap(ctx)
	if err != nil || !need {
		return err
	}
	res, err := bs.Bootstrap(ctx, latchkey.BootstrapInput{Email: m.BootstrapEmail, TenantName: m.BootstrapTenant})
	if latchkey.ErrorCode(err) == latchkey.ECONFLICT {
		m.Logger.Info("another replica bootstrapped the database")
		return nil
	} else if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	m.BootstrapKey = res.Secret
	fmt.Fprintf(m.Stdout, "Created tenant %q (%s) and its admin %s.\n", res.Tenant.Name, res.Tenant.Slug, res.User.Email)
	fmt.Fprintf(m.Stdout, "Admin API key (shown only this once; store it somewhere safe):\n%s\n", res.Secret)
	// The admin has no password: a one-time link, printed once the
	// server listens, lets them set one for the web UI.
	if m.bootstrapReset, m.bootstrapResetExpires, err = sqldb.NewUserService(m.DB).CreatePasswordResetForEmail(ctx, res.User.Email); err != nil {
		return fmt.Errorf("bootstrap: password link: %w", err)
	}
	m.Logger.Info("bootstrapped empty database", "tenant_id", res.Tenant.ID, "user_id", res.User.ID, "api_key_id", res.APIKey.ID)
	return nil
}

// Close stops serving and closes the database.
func (m *Main) Close() error {
	var errs []error
	if m.HTTPServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, m.HTTPServer.Close(ctx))
		cancel()
	}
	if m.DB != nil {
		errs = append(errs, m.DB.Close())
	}
	return errors.Join(errs...)
}

func dbKind(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return "postgres"
	}
	return "sqlite:" + strings.TrimPrefix(dsn, "sqlite:")
}

func runServer(ctx context.Context, args []string, env *Env) int {
	m := NewMain(env)
	if err := m.ParseFlags(args, env.Getenv); errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		fmt.Fprintf(env.Stderr, "Error: %s\n", err)
		return 2
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintf(env.Stderr, "Error: %s\n", latchkey.RedactSecrets(err.Error()))
		m.Close()
		return 1
	}
	<-ctx.Done()
	m.Logger.Info("shutting down")
	if err := m.Close(); err != nil {
		fmt.Fprintf(env.Stderr, "Error: %s\n", err)
		return 1
	}
	return 0
}
