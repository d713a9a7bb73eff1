package main

// `latchkey bench`: throughput and latency of the server on loopback, as
// ratios to a bare net/http handler. The load generator and the baseline
// live in package bench; this file starts the server, seeds its database
// and builds the scenarios. BENCHMARKS.md has the figures.

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/bench"
	"github.com/latchkey/latchkey/internal/cmdline"
	"github.com/latchkey/latchkey/sqldb"
)

// Scenario names of `latchkey bench`, in the order they run.
const (
	benchBaseline     = "(e) baseline net/http"
	benchAuthInfoKey  = "(a) auth_info, API key"
	benchAuthInfoJWT  = "(b) auth_info, JWT"
	benchSwitchTenant = "(c) switch_tenant"
	benchCreateKey    = "(d) create_api_key"
	benchVerify       = "(f) /auth/verify, API key"
	benchVerifyToken  = "(g) /auth/verify?token=1"
)

// Queries the scenarios send, as the Prefect 1.x client writes them.
const (
	authInfoQuery     = `query { auth_info { tenant_id } }`
	switchTenantQuery = `mutation($input: switch_tenant_input!) { switch_tenant(input: $input) { access_token expires_at refresh_token } }`
	createAPIKeyQuery = `mutation($input: create_api_key_input!) { create_api_key(input: $input) { key } }`
	benchUniqueName   = "UUUUUUUUUUUUUUUU" // replaced per request (bench.Scenario.Unique)
)

// benchConfig is what `latchkey bench` was asked to do.
type benchConfig struct {
	DSN           string
	Keys          int
	Users         int
	Sample        int
	JWTs          int
	Conns         int
	Rate          float64 // open loop: requests per second; 0: closed loop
	Warmup        time.Duration
	Duration      time.Duration
	Rounds        int
	Scenarios     string // letters a-g
	VerifyScaling bool
	ScaleKeys     [2]int
	CPUProfile    string
	ServerLog     string
	KeepDB        bool
	AuthCacheTTL  time.Duration
	SplitCores    bool
	GCMinHeapMiB  int    // the servers' --gc-min-heap; 0 when GOGC is set
	Client        string // "direct" or "net/http"
}

// benchCommand is `latchkey bench`: its flags make a benchConfig.
func benchCommand(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput and latency on loopback against a net/http baseline",
		Long: "Start a Latchkey server on 127.0.0.1 with a seeded database (the server of\n" +
			"`latchkey server`) and a bare net/http handler on another loopback port as the\n" +
			"baseline, drive both with a closed-loop load generator in this process, and\n" +
			"print per scenario req/s, p50, p90, p99, errors and the process's CPU time per\n" +
			"request, with req/s and CPU per request as ratios to the baseline's.\n" +
			"Exits 1 if any request failed or the server logged a lock or busy error.\n\n" +
			"With --verify-scaling, measure (a) on two databases holding --scale-keys keys\n" +
			"instead, alternating between them, and print how the cost per request changes.",
	}
	cfg := &benchConfig{}
	fs := cmd.Flags()
	fs.StringVar(&cfg.DSN, "db", "", "SQLite `file` (must not exist yet; default: a temporary file), or a postgres:// URL in which a temporary schema is created")
	fs.IntVar(&cfg.Keys, "keys", 1000, "API keys to store before measuring")
	fs.IntVar(&cfg.Users, "users", 100, "users the keys are spread over, each a USER member of the tenant")
	fs.IntVar(&cfg.Sample, "sample", 1000, "stored keys, spread evenly over all of them, that requests authenticate with")
	fs.IntVar(&cfg.JWTs, "jwts", 256, "access tokens minted from sample keys for scenario (b)")
	fs.IntVar(&cfg.Conns, "conns", bench.DefaultConcurrency, "connections, each with one request in flight (closed loop)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "if positive, run open-loop: send `N` requests per second per scenario over the --conns connections on a fixed schedule, measuring latency from when each request was due (0: closed loop)")
	fs.DurationVar(&cfg.Warmup, "warmup", 500*time.Millisecond, "unmeasured warm-up before each scenario and round")
	fs.DurationVar(&cfg.Duration, "duration", 2*time.Second, "measured time per scenario and round")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "rounds; each runs every scenario once, the baseline first, so that the scenarios share out whatever else the machine is doing")
	fs.StringVar(&cfg.Scenarios, "scenarios", "abcde", "scenarios to run, by letter: (a) auth_info by API key, (b) auth_info by JWT, (c) switch_tenant, (d) create_api_key, (e) the net/http baseline, (f) forward auth: /auth/verify by API key, (g) /auth/verify?token=1 by API key")
	fs.BoolVar(&cfg.VerifyScaling, "verify-scaling", false, "measure only (a), alternately on two databases holding --scale-keys keys, and print the ratio")
	scale := fs.String("scale-keys", "1000,1000000", "the two key counts of --verify-scaling")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of the measured runs (server and load generator) to `file`")
	fs.StringVar(&cfg.ServerLog, "server-log", "", "also write the server's log (info level: one access-log line per request) to `file`")
	fs.BoolVar(&cfg.KeepDB, "keep-db", false, "keep the database (file or postgres schema) afterwards")
	fs.DurationVar(&cfg.AuthCacheTTL, "auth-cache-ttl", sqldb.DefaultAuthCacheTTL, "the server's --auth-cache-ttl; 0 turns its credential cache off, so that every request reads the database")
	fs.StringVar(&cfg.Client, "client", "direct", "the load generator's HTTP client: direct (each connection written and read by its own goroutine from request bytes prepared once, with a minimal HTTP/1.1 parser and no allocation per request) or net/http (the standard client, which costs the shared CPUs more)")
	fs.IntVar(&cfg.GCMinHeapMiB, "gc-min-heap", DefaultGCMinHeapMiB, "the server's --gc-min-heap in `MiB`, for the whole process (0: Go's default; ignored if GOGC is set)")
	fs.BoolVar(&cfg.SplitCores, "split-cores", false, "run the load generator in a child process pinned to CPU 0 and the servers in this process pinned to CPU 1, each with GOMAXPROCS 1 (Linux, 2 or more CPUs; CPU time is then the load generator's)")
	child := fs.Bool(strings.TrimPrefix(loadGenChildArg, "--"), false, "")
	_ = fs.MarkHidden(strings.TrimPrefix(loadGenChildArg, "--"))
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *child {
			return cmdline.Code(runLoadGenChild(cmd.Context(), env))
		}
		if err := checkBenchFlags(cfg, *scale); err != nil {
			return cmdline.Usage(err)
		}
		return cmdline.Code(runBench(cmd.Context(), cfg, env))
	}
	return cmd
}

// checkBenchFlags checks cfg and sets cfg.ScaleKeys from scale.
func checkBenchFlags(cfg *benchConfig, scale string) error {
	a, b, ok := strings.Cut(scale, ",")
	var err1, err2 error
	cfg.ScaleKeys[0], err1 = strconv.Atoi(strings.TrimSpace(a))
	cfg.ScaleKeys[1], err2 = strconv.Atoi(strings.TrimSpace(b))
	switch {
	case !ok || err1 != nil || err2 != nil || cfg.ScaleKeys[0] < 1 || cfg.ScaleKeys[1] < 1:
		return fmt.Errorf("invalid --scale-keys %q: want two counts, e.g. 1000,1000000", scale)
	case cfg.Keys < 1 || cfg.Users < 1 || cfg.Sample < 1 || cfg.JWTs < 1:
		return errors.New("--keys, --users, --sample and --jwts must be at least 1")
	case cfg.Conns < 1 || cfg.Conns > 4096:
		return errors.New("--conns must be 1 to 4096")
	case cfg.Rate < 0 || cfg.Rate > 1e7:
		return errors.New("--rate must be 0 (closed loop) to 10000000")
	case cfg.AuthCacheTTL < 0:
		return errors.New("--auth-cache-ttl must not be negative")
	case cfg.Client != "direct" && cfg.Client != "net/http":
		return fmt.Errorf("invalid --client %q: use direct or net/http", cfg.Client)
	case cfg.GCMinHeapMiB < 0 || cfg.GCMinHeapMiB > 1<<20:
		return errors.New("--gc-min-heap must be 0 (off) to 1048576")
	case cfg.SplitCores && cfg.VerifyScaling:
		return errors.New("--split-cores does not apply to --verify-scaling")
	case cfg.Duration <= 0 || cfg.Warmup < 0 || cfg.Rounds < 1:
		return errors.New("--duration must be positive, --warmup not negative, --rounds at least 1")
	case strings.Trim(cfg.Scenarios, "abcdefg") != "" || cfg.Scenarios == "":
		return fmt.Errorf("invalid --scenarios %q: use letters a to g", cfg.Scenarios)
	}
	return nil
}

func runBench(ctx context.Context, cfg *benchConfig, env *Env) int {
	if env.Getenv("GOGC") != "" {
		cfg.GCMinHeapMiB = 0
	}
	b := &benchRun{cfg: cfg, env: env, out: env.Stdout}
	defer b.cleanup()
	ok, err := b.run(ctx)
	if err != nil {
		fmt.Fprintf(env.Stderr, "Error: %s\n", latchkey.RedactSecrets(err.Error()))
		return 1
	} else if !ok {
		return 1
	}
	return 0
}

// benchClient returns the load generator's client for --client: nil for
// direct connections (see bench.Run).
func benchClient(kind string, conns int) *http.Client {
	if kind == "net/http" {
		return bench.NewClient(conns)
	}
	return nil
}

// benchRun is one invocation of `latchkey bench`.
type benchRun struct {
	cfg      *benchConfig
	env      *Env
	out      io.Writer
	cleanups []func()
	logs     *bench.LockErrorCounter
}

func (b *benchRun) cleanup() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
}

func (b *benchRun) logf(format string, args ...any) {
	fmt.Fprintf(b.env.Stderr, "bench: "+format+"\n", args...)
}

func (b *benchRun) run(ctx context.Context) (bool, error) {
	b.logs = &bench.LockErrorCounter{}
	if b.cfg.ServerLog != "" {
		f, err := os.Create(b.cfg.ServerLog)
		if err != nil {
			return false, err
		}
		bw := bufio.NewWriterSize(f, 1<<16)
		b.logs.Next = &lockedWriter{w: bw}
		b.cleanups = append(b.cleanups, func() { bw.Flush(); f.Close() })
	}
	if b.cfg.GCMinHeapMiB > 0 {
		// Process-wide, like the server's: it covers the load generator
		// and the baseline as well (not the --split-cores child).
		b.cleanups = append(b.cleanups, startGCTuner(uint64(b.cfg.GCMinHeapMiB)<<20))
	}
	b.printMachine()
	if b.cfg.VerifyScaling {
		return b.verifyScaling(ctx)
	}
	return b.throughput(ctx)
}

// benchServer is a Latchkey server under test and what was seeded in it.
type benchServer struct {
	m        *Main
	url      string
	tenantID string
	sample   []string // secrets of stored keys, spread over all of them
	jwts     []string
	keys     int
}

// throughput runs the scenarios of cfg.Scenarios and prints the table.
func (b *benchRun) throughput(ctx context.Context) (bool, error) {
	cfg := b.cfg
	srv, err := b.startServer(ctx, cfg.DSN, 0)
	if err != nil {
		return false, err
	}
	if err := b.seed(ctx, srv, cfg.Keys); err != nil {
		return false, err
	}
	base, err := bench.StartBaseline()
	if err != nil {
		return false, err
	}
	b.cleanups = append(b.cleanups, func() { base.Close() })

	specs := b.scenarioSpecs(srv, base.URL)
	var scenarios []bench.Scenario
	for _, s := range specs {
		scenarios = append(scenarios, s.scenario())
	}
	client := benchClient(cfg.Client, cfg.Conns)
	opt := bench.Options{Concurrency: cfg.Conns, Warmup: cfg.Warmup, Duration: cfg.Duration, Rate: cfg.Rate}
	fmt.Fprintf(b.out, "keys stored: %d (%d users), sample: %d keys, %d JWTs; credential cache %s; %d connections, %s; %s warm-up + %s measured per scenario x %d rounds\n",
		srv.keys, cfg.Users, len(srv.sample), len(srv.jwts), b.cacheDesc(), cfg.Conns, b.loopDesc(), cfg.Warmup, cfg.Duration, cfg.Rounds)
	if cfg.SplitCores {
		fmt.Fprintf(b.out, "split cores: load generator in a child process on CPU %d, servers on CPU %d, GOMAXPROCS 1 each; CPU time below is the load generator's\n", splitLoadGenCPU, splitServerCPU)
	}

	stopProfile, err := b.startProfile()
	if err != nil {
		return false, err
	}
	load0 := loadAvg()
	rounds := map[string][]*bench.Result{}
	if cfg.SplitCores {
		req := &loadGenRequest{CPU: splitLoadGenCPU, Concurrency: cfg.Conns, Rate: cfg.Rate, Client: cfg.Client, Warmup: cfg.Warmup, Duration: cfg.Duration, Rounds: cfg.Rounds, Scenarios: specs}
		got, err := runSplit(ctx, req, b.env.Stderr)
		if err != nil {
			stopProfile()
			return false, err
		}
		for _, rs := range got {
			for i, r := range rs {
				rounds[specs[i].Name] = append(rounds[specs[i].Name], r)
			}
		}
	}
	for round := 1; round <= cfg.Rounds && !cfg.SplitCores; round++ {
		for _, sc := range scenarios {
			r, err := bench.Run(ctx, client, sc, opt)
			if err != nil {
				stopProfile()
				return false, err
			}
			rounds[sc.Name] = append(rounds[sc.Name], r)
			b.logf("round %d: %-24s %8.0f req/s  p50 %s  p99 %s  errors %d", round, sc.Name, r.RPS(), bench.FormatDuration(r.P50), bench.FormatDuration(r.P99), r.Errors)
		}
	}
	stopProfile()

	var results []*bench.Result
	var baseline *bench.Result
	for _, sc := range scenarios {
		r := bench.Merge(rounds[sc.Name]...)
		results = append(results, r)
		if sc.Name == benchBaseline {
			baseline = r
		}
	}
	fmt.Fprintf(b.out, "load average before: %s, after: %s\n\n", load0, loadAvg())
	if err := bench.WriteTable(b.out, results, baseline); err != nil {
		return false, err
	}
	return b.summary(results), nil
}

// loopDesc says how the load generator paces requests.
func (b *benchRun) loopDesc() string {
	if b.cfg.Rate > 0 {
		return fmt.Sprintf("open loop at %.0f req/s (latency from each request's scheduled time), %s client", b.cfg.Rate, b.cfg.Client)
	}
	return "closed loop, " + b.cfg.Client + " client"
}

// summary prints lock errors and returns whether everything succeeded.
func (b *benchRun) summary(results []*bench.Result) bool {
	ok := true
	var errs int64
	for _, r := range results {
		errs += r.Errors
	}
	fmt.Fprintf(b.out, "\nfailed requests: %d\nlock/busy errors in the server log: %d (of %d log lines)\n", errs, b.logs.LockErrors(), b.logs.Lines())
	for _, s := range b.logs.Samples() {
		fmt.Fprintf(b.out, "  %s\n", latchkey.RedactSecrets(s))
	}
	if errs > 0 || b.logs.LockErrors() > 0 {
		ok = false
	}
	return ok
}

// verifyScaling measures (a) on two servers, one holding ScaleKeys[0] keys
// and one ScaleKeys[1], alternating between them each round.
func (b *benchRun) verifyScaling(ctx context.Context) (bool, error) {
	cfg := b.cfg
	var srvs [2]*benchServer
	for i, n := range cfg.ScaleKeys {
		dsn := ""
		if strings.HasPrefix(cfg.DSN, "postgres://") || strings.HasPrefix(cfg.DSN, "postgresql://") {
			dsn = cfg.DSN
		} else if cfg.DSN != "" {
			return false, errors.New("--verify-scaling makes its own SQLite files; give --db only for PostgreSQL")
		}
		srv, err := b.startServer(ctx, dsn, i)
		if err != nil {
			return false, err
		}
		if err := b.seed(ctx, srv, n); err != nil {
			return false, err
		}
		srvs[i] = srv
	}
	client := benchClient(cfg.Client, cfg.Conns)
	opt := bench.Options{Concurrency: cfg.Conns, Warmup: cfg.Warmup, Duration: cfg.Duration, Rate: cfg.Rate}
	rounds := max(cfg.Rounds, 3)
	fmt.Fprintf(b.out, "verify scaling: (a) auth_info by API key, %d vs %d stored keys, sample %d keys each; credential cache %s; %d connections, %s; %s + %s x %d rounds, alternating\n",
		srvs[0].keys, srvs[1].keys, cfg.Sample, b.cacheDesc(), cfg.Conns, b.loopDesc(), cfg.Warmup, cfg.Duration, rounds)
	var scs [2]bench.Scenario
	for i, srv := range srvs {
		scs[i] = bench.Scenario{
			Name:       fmt.Sprintf("(a) auth_info, API key, %d keys", srv.keys),
			URL:        srv.url + "/graphql",
			Body:       mustGraphQLBody(authInfoQuery, nil),
			Credential: pick(srv.sample),
			Check:      bench.CheckGraphQL("auth_info"),
		}
	}
	stopProfile, err := b.startProfile()
	if err != nil {
		return false, err
	}
	load0 := loadAvg()
	var got [2][]*bench.Result
	for round := 1; round <= rounds; round++ {
		order := []int{0, 1}
		if round%2 == 0 {
			order = []int{1, 0}
		}
		for _, i := range order {
			r, err := bench.Run(ctx, client, scs[i], opt)
			if err != nil {
				stopProfile()
				return false, err
			}
			got[i] = append(got[i], r)
			b.logf("round %d: %-36s %8.0f req/s  p50 %s  p99 %s  errors %d", round, scs[i].Name, r.RPS(), bench.FormatDuration(r.P50), bench.FormatDuration(r.P99), r.Errors)
		}
	}
	stopProfile()
	small, large := bench.Merge(got[0]...), bench.Merge(got[1]...)
	fmt.Fprintf(b.out, "load average before: %s, after: %s\n\n", load0, loadAvg())
	if err := bench.WriteTable(b.out, []*bench.Result{small, large}, small); err != nil {
		return false, err
	}
	// At a fixed concurrency, a request's cost is 1/throughput; its CPU
	// time is the same cost measured without the other load on the machine.
	rpsCost := small.RPS()/large.RPS() - 1
	var cpuCost float64
	if small.CPUPerRequest() > 0 {
		cpuCost = float64(large.CPUPerRequest())/float64(small.CPUPerRequest()) - 1
	}
	fmt.Fprintf(b.out, "\nscaling, %d vs %d stored keys:\n", srvs[1].keys, srvs[0].keys)
	fmt.Fprintf(b.out, "  req/s ratio %.3f: cost per request %+.1f%% (%s)\n", large.RPS()/small.RPS(), rpsCost*100, within10(rpsCost))
	fmt.Fprintf(b.out, "  CPU per request %s vs %s: %+.1f%% (%s)\n", bench.FormatDuration(large.CPUPerRequest()), bench.FormatDuration(small.CPUPerRequest()), cpuCost*100, within10(cpuCost))
	fmt.Fprintf(b.out, "  p50 %s vs %s, p99 %s vs %s\n", bench.FormatDuration(large.P50), bench.FormatDuration(small.P50), bench.FormatDuration(large.P99), bench.FormatDuration(small.P99))
	return b.summary([]*bench.Result{small, large}), nil
}

func (b *benchRun) cacheDesc() string {
	if b.cfg.AuthCacheTTL == 0 {
		return "off"
	}
	return "TTL " + b.cfg.AuthCacheTTL.String()
}

func within10(x float64) string {
	if x > 0.10 || x < -0.10 {
		return "NOT within 10%"
	}
	return "within 10%"
}

// startServer starts a Latchkey server on 127.0.0.1:0 on a fresh
// database: dsn if it is a postgres:// URL (in a new schema), an SQLite
// file if set, else a temporary SQLite file.
func (b *benchRun) startServer(ctx context.Context, dsn string, n int) (*benchServer, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://"):
		var err error
		if dsn, err = b.postgresSchema(ctx, dsn); err != nil {
			return nil, err
		}
	case dsn != "":
		if _, err := os.Stat(dsn); err == nil {
			return nil, fmt.Errorf("--db %s exists: bench needs a new database", dsn)
		}
	default:
		dir, err := os.MkdirTemp("", "latchkey-bench-")
		if err != nil {
			return nil, err
		}
		if !b.cfg.KeepDB {
			b.cleanups = append(b.cleanups, func() { os.RemoveAll(dir) })
		}
		dsn = filepath.Join(dir, fmt.Sprintf("bench%d.db", n))
	}
	m := NewMain(&Env{Stdout: io.Discard, Stderr: b.logs, Now: time.Now})
	m.Addr, m.DSN, m.LogLevel = "127.0.0.1:0", dsn, slog.LevelInfo
	m.AuthCacheTTL = b.cfg.AuthCacheTTL
	if strings.HasPrefix(dsn, "postgres") {
		// A throwaway schema: a throwaway system secret encrypts its
		// signing keys (SQLite makes its own file beside the database).
		secret, err := sqldb.NewSystemSecret(rand.Reader)
		if err != nil {
			return nil, err
		}
		m.SystemSecrets = []string{secret}
	}
	// Tokens minted before the run must outlive long runs.
	m.AccessTokenTTL = time.Hour
	if err := m.Run(ctx); err != nil {
		m.Close()
		return nil, fmt.Errorf("start server: %w", err)
	}
	b.cleanups = append(b.cleanups, func() { m.Close() })
	if m.BootstrapKey == "" {
		return nil, errors.New("start server: the database was not empty")
	}
	a, err := m.Auth.Authenticate(ctx, m.BootstrapKey, "")
	if err != nil {
		return nil, fmt.Errorf("start server: admin key: %w", err)
	}
	if strings.HasPrefix(dsn, "postgres") {
		b.logf("server %s on PostgreSQL", m.HTTPServer.URL())
	} else {
		b.logf("server %s on SQLite %s", m.HTTPServer.URL(), dsn)
	}
	return &benchServer{m: m, url: m.HTTPServer.URL(), tenantID: a.TenantID, keys: 1}, nil
}

// postgresSchema creates a schema for one bench server in the database of
// base, and returns base with its search_path set to it.
func (b *benchRun) postgresSchema(ctx context.Context, base string) (string, error) {
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	schema := "lkbench_" + hex.EncodeToString(r[:])
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", fmt.Errorf("create schema: %w", err)
	}
	if !b.cfg.KeepDB {
		b.cleanups = append(b.cleanups, func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if conn, err := pgx.Connect(ctx, base); err == nil {
				conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
				conn.Close(ctx)
			}
		})
	} else {
		b.logf("postgres schema %s", schema)
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parse --db: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// seed stores cfg.Users users (USER members of the server's tenant) and n
// API keys spread over them, keeping cfg.Sample of the keys' secrets, and
// mints cfg.JWTs access tokens from sample keys.
func (b *benchRun) seed(ctx context.Context, srv *benchServer, n int) error {
	start := time.Now()
	s := &seeder{db: srv.m.DB, tenantID: srv.tenantID, now: time.Now().UTC()}
	if err := s.seedUsers(ctx, b.cfg.Users); err != nil {
		return err
	}
	sample, err := s.seedKeys(ctx, n, b.cfg.Sample)
	if err != nil {
		return err
	}
	d := time.Since(start)
	srv.sample, srv.keys = sample, n+1 // and the admin's
	b.logf("seeded %d users and %d keys in %s (%.0f keys/s)", b.cfg.Users, n, d.Round(time.Millisecond), float64(n)/d.Seconds())
	fmt.Fprintf(b.out, "seeded %d keys in %s (%.0f keys/s)\n", n, d.Round(time.Millisecond), float64(n)/d.Seconds())

	for i := 0; i < b.cfg.JWTs && i < len(sample); i++ {
		a, err := srv.m.Auth.Authenticate(ctx, sample[i], "")
		if err != nil {
			return fmt.Errorf("seed: sample key: %w", err)
		}
		tok, err := srv.m.Auth.SwitchTenant(latchkey.NewContextWithAuth(ctx, a), "")
		if err != nil {
			return fmt.Errorf("seed: switch tenant: %w", err)
		}
		srv.jwts = append(srv.jwts, tok.AccessToken)
	}
	return nil
}

// scenarioSpecs returns the scenarios to run, the baseline first.
func (b *benchRun) scenarioSpecs(srv *benchServer, baseURL string) []loadGenScenario {
	gql := srv.url + "/graphql"
	authInfo := mustGraphQLBody(authInfoQuery, nil)
	all := map[byte]loadGenScenario{
		'e': {Name: benchBaseline, URL: baseURL + "/graphql", Body: authInfo, Credentials: srv.sample, CheckBody: bench.BaselineBody},
		'a': {Name: benchAuthInfoKey, URL: gql, Body: authInfo, Credentials: srv.sample, CheckGraphQL: "auth_info"},
		'b': {Name: benchAuthInfoJWT, URL: gql, Body: authInfo, Credentials: srv.jwts, CheckGraphQL: "auth_info"},
		'c': {Name: benchSwitchTenant, URL: gql, Body: mustGraphQLBody(switchTenantQuery, map[string]any{"input": map[string]any{"tenant_id": srv.tenantID}}),
			Credentials: srv.sample, CheckGraphQL: "switch_tenant"},
		// Every key gets a name of its own: an owner's key names are unique.
		'd': {Name: benchCreateKey, URL: gql, Body: mustGraphQLBody(createAPIKeyQuery, map[string]any{"input": map[string]any{"name": "bench-" + benchUniqueName, "user_id": nil, "expires_at": nil}}),
			Unique: benchUniqueName, Credentials: srv.sample, CheckGraphQL: "create_api_key"},
		// Forward auth, as a proxy asks: no body (the load generator POSTs).
		'f': {Name: benchVerify, URL: srv.url + "/auth/verify", Credentials: srv.sample, CheckBody: "OK\n"},
		'g': {Name: benchVerifyToken, URL: srv.url + "/auth/verify?token=1", Credentials: srv.sample, CheckBody: "OK\n"},
	}
	var out []loadGenScenario
	for _, c := range []byte("eabcdfg") {
		if strings.IndexByte(b.cfg.Scenarios, c) >= 0 {
			out = append(out, all[c])
		}
	}
	return out
}

// pick returns a credential chooser that spreads workers and their
// successive requests over creds.
func pick(creds []string) func(w, i int) string {
	return func(w, i int) string {
		return creds[(w*7919+i)%len(creds)]
	}
}

func mustGraphQLBody(query string, vars any) []byte {
	b, err := bench.GraphQLBody(query, vars)
	if err != nil {
		panic(err)
	}
	return b
}

// startProfile starts the CPU profile if asked and returns its stop.
func (b *benchRun) startProfile() (func(), error) {
	if b.cfg.CPUProfile == "" {
		return func() {}, nil
	}
	f, err := os.Create(b.cfg.CPUProfile)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// printMachine prints what the figures depend on.
func (b *benchRun) printMachine() {
	gogc := ""
	if b.env.Getenv != nil {
		gogc = b.env.Getenv("GOGC")
	}
	gc := "GOGC=" + cmp.Or(gogc, "100")
	if b.cfg.GCMinHeapMiB > 0 {
		gc = fmt.Sprintf("--gc-min-heap %d MiB", b.cfg.GCMinHeapMiB)
	}
	fmt.Fprintf(b.out, "latchkey bench %s, %s %s/%s, %d CPUs (GOMAXPROCS %d), %s; GC: %s\n",
		latchkey.Version(), runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), cpuModel(), gc)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// seeder bulk-inserts users and keys straight into the tables, in big
// transactions: the services' one-at-a-time paths would take hours for a
// million keys. Rows are what the services would write.
type seeder struct {
	db       *sqldb.DB
	tenantID string
	now      time.Time
	users    []string
}

// Seeding: rows per INSERT statement, rows per transaction, columns set per
// api_keys row, and SQLite's page cache while seeding. The keys' id and
// key_hash indexes take random inserts; with the whole index in the page
// cache and one commit, each page is written once rather than once per
// transaction.
const (
	seedBatchRows  = 100
	seedTxRows     = 2_000_000
	seedKeyColumns = 7
	seedCacheKiB   = 1 << 20
)

func (s *seeder) seedUsers(ctx context.Context, n int) error {
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return fmt.Errorf("seed users: %w", err)
	}
	defer tx.Rollback()
	run := strconv.FormatInt(s.now.UnixNano(), 36)
	for i := range n {
		id := uuid.NewString()
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, kind, email, name, default_tenant_id, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			id, string(latchkey.UserKindHuman), fmt.Sprintf("bench-%s-%d@bench.invalid", run, i), fmt.Sprintf("Bench User %d", i), s.tenantID, sqldb.Time(s.now)); err != nil {
			return fmt.Errorf("seed users: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO memberships (id, tenant_id, user_id, role, created_at) VALUES (?, ?, ?, ?, ?)`,
			uuid.NewString(), s.tenantID, id, string(latchkey.RoleUser), sqldb.Time(s.now)); err != nil {
			return fmt.Errorf("seed users: %w", err)
		}
		s.users = append(s.users, id)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("seed users: %w", err)
	}
	return nil
}

// keyRow is an api_keys row to insert.
type keyRow struct {
	id, userID string
	hash       []byte
	secret     string // kept for sample rows only
}

// seedKeys stores n keys spread over s.users and returns the secrets of
// about sampleSize of them, spread evenly over all n. One goroutine makes
// the secrets and their SHA-256 while another inserts.
func (s *seeder) seedKeys(ctx context.Context, n, sampleSize int) ([]string, error) {
	step := max(1, n/sampleSize)
	batches := make(chan []keyRow, 4)
	genErr := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(batches)
		r := bufio.NewReaderSize(rand.Reader, 1<<16)
		batch := make([]keyRow, 0, seedBatchRows)
		for i := range n {
			secret, err := latchkey.NewSecret(r, latchkey.PrefixUserKey)
			if err != nil {
				genErr <- err
				return
			}
			id, err := uuid.NewRandomFromReader(r)
			if err != nil {
				genErr <- err
				return
			}
			row := keyRow{id: id.String(), userID: s.users[i%len(s.users)], hash: latchkey.HashSecret(secret)}
			if i%step == 0 {
				row.secret = secret
			}
			batch = append(batch, row)
			if len(batch) == seedBatchRows || i == n-1 {
				select {
				case batches <- batch:
				case <-ctx.Done():
					return
				}
				batch = make([]keyRow, 0, seedBatchRows)
			}
		}
		genErr <- nil
	}()

	if !s.db.Postgres() {
		// The write pool is one connection: this sets its page cache, and
		// keeps the statement journals of multi-row INSERTs in memory (not
		// in a temporary file, a write syscall per page). The deferred
		// statements put back SQLite's defaults.
		for _, p := range []string{fmt.Sprintf(`PRAGMA cache_size = -%d`, seedCacheKiB), `PRAGMA temp_store = MEMORY`} {
			if err := s.exec(ctx, p); err != nil {
				return nil, fmt.Errorf("seed keys: %w", err)
			}
		}
		defer s.exec(context.Background(), `PRAGMA cache_size = -2000`)
		defer s.exec(context.Background(), `PRAGMA temp_store = DEFAULT`)
	}
	var sample []string
	var tx *sqldb.Tx
	defer func() {
		if tx != nil {
			tx.Rollback()
		}
	}()
	inTx := 0
	full := insertKeysSQL(seedBatchRows)
	args := make([]any, 0, seedBatchRows*seedKeyColumns)
	created := sqldb.Time(s.now)
	for batch := range batches {
		if tx == nil {
			var err error
			if tx, err = s.db.BeginTx(ctx, true); err != nil {
				return nil, fmt.Errorf("seed keys: %w", err)
			}
		}
		args = args[:0]
		for _, k := range batch {
			args = append(args, k.id, k.userID, "bench", k.hash, k.userID, s.tenantID, created)
			if k.secret != "" {
				sample = append(sample, k.secret)
			}
		}
		q := full
		if len(batch) != seedBatchRows {
			q = insertKeysSQL(len(batch))
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return nil, fmt.Errorf("seed keys: %w", err)
		}
		if inTx += len(batch); inTx >= seedTxRows {
			if err := tx.Commit(); err != nil {
				return nil, fmt.Errorf("seed keys: %w", err)
			}
			tx, inTx = nil, 0
		}
	}
	if err := <-genErr; err != nil {
		return nil, fmt.Errorf("seed keys: %w", err)
	}
	if tx != nil {
		if err := tx.Commit(); err != nil {
			return nil, fmt.Errorf("seed keys: %w", err)
		}
		tx = nil
	}
	return sample, nil
}

// exec runs one statement in its own write transaction.
func (s *seeder) exec(ctx context.Context, stmt string) error {
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, stmt); err != nil {
		return err
	}
	return tx.Commit()
}

func insertKeysSQL(rows int) string {
	var q strings.Builder
	q.WriteString(`INSERT INTO api_keys (id, user_id, name, key_hash, created_by_user_id, default_tenant_id, created_at) VALUES `)
	for i := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?)")
	}
	return q.String()
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
