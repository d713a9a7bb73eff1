package main

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/graphql"
	"github.com/latchkey/latchkey/html"
	lkhttp "github.com/latchkey/latchkey/http"
	"github.com/latchkey/latchkey/internal/cmdline"
	"github.com/latchkey/latchkey/jwt"
	"github.com/latchkey/latchkey/ratelimit"
	"github.com/latchkey/latchkey/sqldb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Default settings of `latchkey server`.
const (
	DefaultAddr            = "127.0.0.1:4200"
	DefaultDSN             = "latchkey.db"
	DefaultBootstrapEmail  = "admin@localhost"
	DefaultBootstrapTenant = "Default"

	// DefaultFailedAuthPerAddr and DefaultFailedAuthPerKey are the default
	// failed-authentication limits (in a row, then per minute).
	DefaultFailedAuthPerAddr = 20
	DefaultFailedAuthPerKey  = 10

	// DefaultAuthFailureRetention is how long the counts of failed
	// authentications are kept (--auth-failure-retention).
	DefaultAuthFailureRetention = 30 * 24 * time.Hour
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

	// FlowRunHeartbeatTimeout is how long a Submitted or Running flow run
	// may go without a heartbeat before the server marks it Failed (lost
	// contact); zero means latchkey.DefaultFlowRunHeartbeatTimeout.
	// FlowRunSweepInterval is how often that is checked; zero picks one.
	FlowRunHeartbeatTimeout time.Duration
	FlowRunSweepInterval    time.Duration
	stopSweeper             func()

	// PublicURL is the server's URL as browsers see it (behind a proxy:
	// the proxy's), for links the UI shows. An https URL also makes the
	// UI's cookies Secure, as does SecureCookies; both matter when TLS ends
	// at a proxy, since the server itself then only sees plain HTTP.
	PublicURL     string
	SecureCookies bool

	// AuthCacheTTL is how long a verified credential is trusted without a
	// database read (revocations still end it at once); 0 turns the
	// cache off.
	AuthCacheTTL time.Duration

	// SigningKeyFile, if set, is an Ed25519 private key (PKCS #8 PEM) to
	// sign access tokens with. Run refuses to start if group or others may
	// access the file.
	SigningKeyFile string

	// SystemSecretFile, if set, holds the system secrets that encrypt the
	// signing keys in the database (sqldb.ReadSystemSecretFile); Run
	// refuses it if group or others may access it. Otherwise
	// SystemSecrets, if set (LATCHKEY_SYSTEM_SECRETS), are used; otherwise,
	// on SQLite only, the file beside the database, created on first
	// start (see sqldb.DB.Secrets). PostgreSQL needs one of the first two.
	SystemSecretFile string
	SystemSecrets    []string

	// FailedAuthPerAddr is how many failed authentications (bearer
	// credentials, refresh tokens, UI sign-ins) a client address may have
	// in a row and then per minute before its uncached credential checks
	// share a slow lane (ratelimit.Guard.Gate): never refused unchecked, so
	// a valid credential still works. FailedAuthPerKey is the same budget
	// for password sign-ins to one email. 0 turns a limit off.
	FailedAuthPerAddr int
	FailedAuthPerKey  int

	// FailedSignInsPerDevice is how many wrong passwords a browser that
	// signed in before (it holds a device cookie for the email) may send
	// in a row, then one every ratelimit.DefaultDeviceRefill; 0: no
	// limit. Such a browser is never refused for failures elsewhere; the
	// limits above apply to the other UI sign-ins (see ratelimit.SignIn).
	// SignInChecks bounds the concurrent password checks of those other
	// sign-ins (0: no bound).
	FailedSignInsPerDevice int
	SignInChecks           int

	// AuthFailureRetention is how long the per-minute counts of failed
	// authentications are kept; older ones are deleted once a minute. 0
	// keeps them forever. Anonymous callers create them: at most 10,000
	// records a minute per replica.
	AuthFailureRetention time.Duration

	// TrustedProxies are the addresses of the reverse proxies in front of
	// the server (--trusted-proxies): only a connection from one of them
	// may name the client in X-Forwarded-For, and the client is the
	// right-most hop that is not a trusted proxy (latchkey.ClientAddr).
	TrustedProxies []netip.Prefix

	// GCMinHeap, if positive, keeps the garbage collector's heap goal at
	// no less than this many bytes (gc.go): far fewer collections, since
	// the live heap is small. It sets process-wide state, so NewMain
	// leaves it 0; ParseFlags sets it from --gc-min-heap unless GOGC is
	// set.
	GCMinHeap   uint64
	stopGCTuner func()

	Stdout io.Writer // the first admin key is printed here, once
	Stderr io.Writer // logs
	Now    func() time.Time

	// Set by Run; exposed for end-to-end tests.
	Logger     *slog.Logger
	DB         *sqldb.DB
	Tokens     *jwt.TokenService
	Auth       *sqldb.AuthService
	Events     latchkey.EventService // revocation events: LISTEN/NOTIFY on PostgreSQL
	AuthCache  *sqldb.AuthCache      // nil when AuthCacheTTL is 0
	Limiter    *ratelimit.Guard      // failed-authentication limits
	failures   *failureAggregator    // failed-authentication counts for the audit log
	SignIns    *ratelimit.SignIn     // failed UI sign-in limits
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
		Stdout: env.Stdout, Stderr: env.Stderr, Now: env.Now, AuthCacheTTL: sqldb.DefaultAuthCacheTTL,
		FailedAuthPerAddr: DefaultFailedAuthPerAddr, FailedAuthPerKey: DefaultFailedAuthPerKey,
		FailedSignInsPerDevice: ratelimit.DefaultFailedSignInsPerDevice, SignInChecks: DefaultSignInChecks(),
		AuthFailureRetention: DefaultAuthFailureRetention,
	}
}

// flags registers the server's flags on fs. The environment variables
// LATCHKEY_ADDR, LATCHKEY_DB, LATCHKEY_URL, LATCHKEY_TRUSTED_PROXIES and
// the system secret's give defaults, which the flags override. apply
// checks the values once parsed and sets the rest of m.
func (m *Main) flags(fs *pflag.FlagSet, getenv func(string) string) (apply func() error) {
	if v := getenv("LATCHKEY_ADDR"); v != "" {
		m.Addr = v
	}
	if v := getenv("LATCHKEY_DB"); v != "" {
		m.DSN = v
	}
	if v := getenv("LATCHKEY_URL"); v != "" {
		m.PublicURL = v
	}
	if v := getenv(envSystemSecretFile); v != "" {
		m.SystemSecretFile = v
	}
	if v := getenv(envSystemSecrets); v != "" {
		m.SystemSecrets = splitSystemSecrets(v)
	}
	fs.StringVar(&m.Addr, "addr", m.Addr, "listen `address` (env LATCHKEY_ADDR)")
	fs.StringVar(&m.DSN, "db", m.DSN, "SQLite `file`, or a postgres:// URL for several replicas (env LATCHKEY_DB)")
	fs.StringVar(&m.LogFormat, "log-format", m.LogFormat, "log format: json or text")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&m.AccessTokenTTL, "access-token-ttl", m.AccessTokenTTL, "lifetime of access tokens")
	fs.StringVar(&m.BootstrapEmail, "bootstrap-email", m.BootstrapEmail, "email of the admin created on first start")
	fs.StringVar(&m.BootstrapTenant, "bootstrap-tenant", m.BootstrapTenant, "name of the tenant created on first start")
	fs.BoolVar(&m.NoBootstrap, "no-bootstrap", false, "do not create a tenant and admin on first start")
	m.flowRunFlags(fs)
	fs.StringVar(&m.PublicURL, "public-url", m.PublicURL, "the `URL` browsers use, e.g. https://auth.example.com behind a TLS proxy; https makes UI cookies Secure (env LATCHKEY_URL)")
	fs.BoolVar(&m.SecureCookies, "secure-cookies", m.SecureCookies, "mark UI cookies Secure even if --public-url is not https")
	fs.DurationVar(&m.AuthCacheTTL, "auth-cache-ttl", m.AuthCacheTTL, "trust a verified credential this long without a database read (revocation still ends it at once); 0 turns the cache off")
	fs.StringVar(&m.SigningKeyFile, "signing-key-file", m.SigningKeyFile, "sign access tokens with this Ed25519 private key (PKCS #8 PEM `file`, mode 0600)")
	fs.StringVar(&m.SystemSecretFile, "system-secret-file", m.SystemSecretFile, systemSecretFileUsage)
	fs.IntVar(&m.FailedAuthPerAddr, "failed-auth-per-addr", m.FailedAuthPerAddr, "failed authentications a client address may have in a row, then per minute, before its uncached checks share a slow lane (valid credentials still work); for UI sign-ins from new browsers, before they are refused; 0: no limit")
	fs.IntVar(&m.FailedAuthPerKey, "failed-auth-per-key", m.FailedAuthPerKey, "failed password sign-ins for one email from browsers it has not signed in from, in a row, then per minute; 0: no limit")
	fs.IntVar(&m.FailedSignInsPerDevice, "failed-signin-per-device", m.FailedSignInsPerDevice, "wrong UI passwords a browser the user signed in from before may send in a row, then one every 12 minutes; it is never locked out by failures elsewhere; 0: no limit")
	fs.DurationVar(&m.AuthFailureRetention, "auth-failure-retention", m.AuthFailureRetention, "keep the per-minute counts of failed authentications (Audit log → Failed sign-ins) this long, then delete them; 0: forever")
	fs.IntVar(&m.SignInChecks, "signin-checks", m.SignInChecks, "password checks of UI sign-ins from other browsers that may run at once (each holds a core and an Argon2id hash's memory); 0: no bound")
	gcMinHeap := fs.Int("gc-min-heap", DefaultGCMinHeapMiB, "keep the garbage collector's heap goal at least this many `MiB`: fewer collections (0: Go's default; ignored if GOGC is set)")
	trustedProxies := fs.String("trusted-proxies", getenv("LATCHKEY_TRUSTED_PROXIES"), "comma-separated `CIDRs` and addresses of your reverse proxies, e.g. 10.0.0.0/8,127.0.0.1: only they may name the client in X-Forwarded-For (env LATCHKEY_TRUSTED_PROXIES)")
	fs.Func("trust-proxy-headers", "removed: use --trusted-proxies", func(string) error {
		return errors.New("--trust-proxy-headers was removed, since it believed the left-most X-Forwarded-For hop, which any client can write: list your proxies with --trusted-proxies instead")
	})
	_ = fs.MarkHidden("trust-proxy-headers")
	return func() error {
		if *trustedProxies != "" {
			p, err := latchkey.ParseTrustedProxies(*trustedProxies)
			if err != nil {
				return fmt.Errorf("--trusted-proxies: %s", latchkey.ErrorMessage(err))
			}
			m.TrustedProxies = p
		}
		if err := m.LogLevel.UnmarshalText([]byte(*level)); err != nil {
			return fmt.Errorf("invalid --log-level %q", *level)
		}
		if m.LogFormat != "json" && m.LogFormat != "text" {
			return fmt.Errorf("invalid --log-format %q: use json or text", m.LogFormat)
		}
		if m.PublicURL != "" && !strings.HasPrefix(m.PublicURL, "https://") && !strings.HasPrefix(m.PublicURL, "http://") {
			return fmt.Errorf("invalid --public-url %q: use http:// or https://", m.PublicURL)
		}
		if m.AuthCacheTTL < 0 {
			return fmt.Errorf("invalid --auth-cache-ttl %s: use 0 (off) or more", m.AuthCacheTTL)
		}
		if m.FailedAuthPerAddr < 0 || m.FailedAuthPerKey < 0 {
			return fmt.Errorf("invalid --failed-auth-per-addr or --failed-auth-per-key: use 0 (no limit) or more")
		}
		if m.AuthFailureRetention < 0 || (m.AuthFailureRetention > 0 && m.AuthFailureRetention < time.Hour) {
			return fmt.Errorf("invalid --auth-failure-retention %s: use 0 (keep forever) or 1h or more", m.AuthFailureRetention)
		}
		if m.FailedSignInsPerDevice < 0 || m.SignInChecks < 0 {
			return fmt.Errorf("invalid --failed-signin-per-device or --signin-checks: use 0 (no limit) or more")
		}
		if m.AccessTokenTTL < time.Minute || m.AccessTokenTTL > 24*time.Hour {
			return fmt.Errorf("invalid --access-token-ttl %s: use 1m to 24h", m.AccessTokenTTL)
		}
		if *gcMinHeap < 0 || *gcMinHeap > 1<<20 {
			return fmt.Errorf("invalid --gc-min-heap %d: use 0 (off) to 1048576 MiB", *gcMinHeap)
		}
		if getenv("GOGC") == "" {
			m.GCMinHeap = uint64(*gcMinHeap) << 20
		}
		return nil
	}
}

// ParseFlags sets m from args, the flags of `latchkey server`, and the
// environment (see flags).
func (m *Main) ParseFlags(args []string, getenv func(string) string) error {
	fs := pflag.NewFlagSet("latchkey server", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	apply := m.flags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return apply()
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

	// Bind the address before anything is created: a busy port ends the
	// start here, with no database, secret file or first admin made.
	ln, err := listen(m.Addr)
	if err != nil {
		return err
	}
	served := false
	defer func() {
		if !served {
			ln.Close()
		}
	}()

	if m.GCMinHeap > 0 && m.stopGCTuner == nil {
		m.stopGCTuner = startGCTuner(m.GCMinHeap)
	}

	var signingKey ed25519.PrivateKey
	if m.SigningKeyFile != "" {
		var err error
		if signingKey, err = ReadSigningKeyFile(m.SigningKeyFile); err != nil {
			return err
		}
	}

	secrets, secretSource, err := systemSecrets(m.DSN, m.SystemSecretFile, m.SystemSecrets)
	if err != nil {
		return err
	}

	m.DB = sqldb.NewDB(m.DSN)
	m.DB.Now, m.DB.Logger, m.DB.Secrets = m.Now, m.Logger, secrets
	if err := m.DB.Open(ctx); err != nil {
		return secretMismatchHint(err, secretSource)
	}
	m.Logger.Info("signing keys are encrypted with the system secret", "from", secretSource)
	if err := m.openEvents(ctx); err != nil {
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
	if signingKey != nil {
		kid, err := m.Tokens.ImportKey(ctx, signingKey)
		if err != nil {
			return fmt.Errorf("--signing-key-file: %w", err)
		}
		m.Logger.Info("signing access tokens with the key from --signing-key-file", "kid", kid, "fingerprint", jwt.Fingerprint(signingKey.Public().(ed25519.PublicKey)))
	}
	if err := m.Tokens.Open(ctx); err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	m.Auth = sqldb.NewAuthService(m.DB, m.Tokens)
	m.Auth.AccessTTL = m.AccessTokenTTL
	m.openAuthCache()

	m.Registry = prometheus.NewRegistry()
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := m.registerEventMetrics(); err != nil {
		return err
	}

	m.Limiter = &ratelimit.Guard{
		ByAddr: ratelimit.NewLimiter(m.FailedAuthPerAddr, m.FailedAuthPerAddr, 0, m.Now),
		Logger: m.Logger,
	}
	m.SignIns = ratelimit.NewSignIn(ratelimit.SignInLimits{
		PerAddr: m.FailedAuthPerAddr, PerEmail: m.FailedAuthPerKey,
		PerDevice: m.FailedSignInsPerDevice, MaxUntrustedChecks: m.SignInChecks,
	}, m.Now, m.Logger)
	deviceKey, err := m.deviceKey(ctx)
	if err != nil {
		return err
	}
	audit := sqldb.NewAuditService(m.DB)
	authFailures := sqldb.NewAuthFailureService(m.DB)
	m.failures = newFailureAggregator(authFailures, m.Now, m.Logger)
	m.failures.Retention = m.AuthFailureRetention
	m.failures.Start()
	failures := failureFanout{m.Limiter, m.failures}
	invitations := sqldb.NewInvitationService(m.DB)
	apiKeys := sqldb.NewAPIKeyService(m.DB)

	gql := &graphql.Server{
		Auth:            m.Auth,
		Tenants:         sqldb.NewTenantService(m.DB),
		Users:           sqldb.NewUserService(m.DB),
		Memberships:     sqldb.NewMembershipService(m.DB),
		Invitations:     invitations,
		ServiceAccounts: sqldb.NewServiceAccountService(m.DB),
		APIKeys:         sqldb.NewAPIKeyService(m.DB),
		APITokens:       sqldb.NewAPITokenService(m.DB),
		FlowRuns:        sqldb.NewFlowRunService(m.DB),
		Agents:          sqldb.NewAgentService(m.DB),
		Audit:           audit,
		Logger:          m.Logger,
		Failures:        failures,
	}
	m.Auth.Gate = m.Limiter.Gate
	m.Tokens.Gate = m.Limiter.Gate
	m.HTTPServer = &lkhttp.Server{
		Addr: m.Addr, GraphQL: gql.Handler(), Tokens: m.Tokens,
		Ping: m.DB.Ping, Logger: m.Logger, Registry: m.Registry,
		Authn:   &lkhttp.Authenticator{Auth: m.Auth, TrustedProxies: m.TrustedProxies, Failures: failures, Logger: m.Logger},
		HSTS:    strings.HasPrefix(m.PublicURL, "https://"),
		Tenants: sqldb.NewTenantService(m.DB), Events: m.Events, Now: m.Now, AccessTokenTTL: m.AccessTokenTTL,
	}
	m.HTTPServer.UI = (&html.Server{
		Auth:            m.Auth,
		Users:           sqldb.NewUserService(m.DB),
		Tenants:         sqldb.NewTenantService(m.DB),
		Memberships:     sqldb.NewMembershipService(m.DB),
		Invitations:     invitations,
		ServiceAccounts: sqldb.NewServiceAccountService(m.DB),
		APIKeys:         apiKeys,
		RevokedAPIKeys:  apiKeys,
		Audit:           audit,
		AuthFailures:    authFailures,
		SignInFailures:  m.failures,
		Logger:          m.Logger,
		Now:             m.Now,
		BaseURL:         m.PublicURL,
		SecureCookies:   m.SecureCookies || strings.HasPrefix(m.PublicURL, "https://"),
		DeviceKey:       deviceKey,
		Limiter:         m.SignIns,
	}).Handler()
	// The HTTP server serves the listener bound first.
	m.HTTPServer.Listener = ln
	if err := m.HTTPServer.Open(); err != nil {
		return err
	}
	served = true
	m.startFlowRunSweeper(sqldb.NewFlowRunService(m.DB))
	uiBase := strings.TrimRight(m.PublicURL, "/")
	if uiBase == "" {
		uiBase = m.HTTPServer.URL()
	}
	if m.bootstrapReset != "" {
		fmt.Fprintf(m.Stdout, "Set the admin's web UI password with this link (works once, until %s; shown only this once):\n%s/ui/reset?token=%s\n",
			m.bootstrapResetExpires.UTC().Format(time.RFC3339), uiBase, m.bootstrapReset)
		m.bootstrapReset = ""
	}
	fmt.Fprintf(m.Stdout, "Latchkey is listening on %s. Web UI: %s/ui/\n", m.HTTPServer.URL(), uiBase)
	m.Logger.Info("latchkey listening", "url", m.HTTPServer.URL(), "db", dbKind(m.DSN), "version", latchkey.Version())
	return nil
}

// listen binds addr, saying what to do when it cannot.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("cannot listen on %s: the address is in use. Is another server running there? Stop it, or choose another address with --addr (or LATCHKEY_ADDR)", addr)
	} else if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w; check --addr (or LATCHKEY_ADDR)", addr, err)
	}
	return ln, nil
}

// DefaultSignInChecks is the default of --signin-checks: half the cores,
// so that a flood of sign-ins from unknown browsers leaves the rest free.
func DefaultSignInChecks() int {
	return max(1, runtime.GOMAXPROCS(0)/2)
}

// deviceKey derives the key of the UI's device cookies from the oldest
// signing key in the database: every replica has it, it is never deleted,
// and the derivation is one-way, so the cookies reveal nothing about it.
func (m *Main) deviceKey(ctx context.Context) ([]byte, error) {
	// Since the epoch: retired keys too (the zero time would be NULL).
	keys, err := sqldb.NewSigningKeyService(m.DB).FindSigningKeys(ctx, time.Unix(0, 0))
	if err != nil {
		return nil, fmt.Errorf("device cookie key: %w", err)
	} else if len(keys) == 0 {
		return nil, errors.New("device cookie key: no signing key")
	}
	mac := hmac.New(sha256.New, keys[len(keys)-1].PrivateKey)
	mac.Write([]byte("latchkey ui device cookies v1"))
	return mac.Sum(nil), nil
}

// bootstrap creates the first tenant, admin and key when no user exists,
// and prints the key once. A replica that loses the race to another one
// bootstrapping the same database does nothing.
func (m *Main) bootstrap(ctx context.Context) error {
	// The audit log shows what the first start made as an operator's doing.
	ctx = latchkey.NewContextWithClientInfo(ctx, latchkey.ClientInfo{Addr: "local", UserAgent: "latchkey server (first start)"})
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
	m.stopFlowRunSweeper()
	if m.stopGCTuner != nil {
		m.stopGCTuner()
		m.stopGCTuner = nil
	}
	var errs []error
	if m.HTTPServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, m.HTTPServer.Close(ctx))
		cancel()
	}
	if m.failures != nil {
		// After the server: no request reports failures any more.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = m.failures.Close(ctx) // logged; losing counts does not fail Close
		cancel()
		m.failures = nil
	}
	errs = append(errs, m.closeEvents())
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

// serverCommand is `latchkey server`.
func serverCommand(env *Env) *cobra.Command {
	m := NewMain(env)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the API server (SQLite by default, PostgreSQL for replicas)",
		Long: "Serve the GraphQL API at / and /graphql, JWKS at /.well-known/jwks.json,\n" +
			"/healthz and /metrics. On first start with an empty database, create a tenant\n" +
			"and an admin and print the admin's API key once.\n\n" + systemSecretsHelp,
	}
	apply := m.flags(cmd.Flags(), env.Getenv)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := apply(); err != nil {
			return cmdline.Usage(err)
		}
		if err := m.Run(cmd.Context()); err != nil {
			m.Close()
			return err
		}
		<-cmd.Context().Done()
		m.Logger.Info("shutting down")
		return m.Close()
	}
	return cmd
}

// ReadSigningKeyFile reads an Ed25519 private key in PKCS #8 PEM ("BEGIN
// PRIVATE KEY", as `openssl genpkey -algorithm ed25519` writes it). It
// refuses a file that group or others may access (mode & 0o077 != 0). Errors
// never contain key material.
func ReadSigningKeyFile(path string) (ed25519.PrivateKey, error) {
	data, err := sqldb.ReadPrivateFile(path, "--signing-key-file", "a signing key")
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("--signing-key-file: %s holds no PEM \"PRIVATE KEY\" block; "+
			"create one with: openssl genpkey -algorithm ed25519 -out %s", path, path)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("--signing-key-file: %s is not a PKCS #8 private key", path)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("--signing-key-file: %s holds a %T, not an Ed25519 key", path, key)
	}
	return priv, nil
}
