package main

// `latchkey bench`: throughput and latency of the server on loopback, as
// ratios to a bare net/http handler. Package bench runs it (bench.RunSuite);
// this file parses its flags and starts its servers. BENCHMARKS.md has the
// figures.

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/bench"
	"github.com/latchkey/latchkey/internal/cmdline"
	"github.com/latchkey/latchkey/sqldb"
)

// benchCommand is `latchkey bench`: its flags make a bench.Config.
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
	cfg := &bench.Config{}
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
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		a, b, ok := strings.Cut(*scale, ",")
		var err1, err2 error
		cfg.ScaleKeys[0], err1 = strconv.Atoi(strings.TrimSpace(a))
		cfg.ScaleKeys[1], err2 = strconv.Atoi(strings.TrimSpace(b))
		if !ok || err1 != nil || err2 != nil {
			return cmdline.Usage(fmt.Errorf("invalid --scale-keys %q: want two counts, e.g. 1000,1000000", *scale))
		}
		if err := cfg.Validate(); err != nil {
			return cmdline.Usage(err)
		}
		return cmdline.Code(runBench(cmd.Context(), cfg, env))
	}
	return cmd
}

func runBench(ctx context.Context, cfg *bench.Config, env *Env) int {
	cfg.GOGC = env.Getenv("GOGC")
	if cfg.GOGC != "" {
		cfg.GCMinHeapMiB = 0
	}
	if cfg.GCMinHeapMiB > 0 {
		// Process-wide, like the server's: it covers the load generator
		// and the baseline as well.
		defer startGCTuner(uint64(cfg.GCMinHeapMiB) << 20)()
	}
	ok, err := bench.RunSuite(ctx, cfg, startBenchServer, env.Stdout, env.Stderr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "Error: %s\n", latchkey.RedactSecrets(err.Error()))
		return 1
	} else if !ok {
		return 1
	}
	return 0
}

// startBenchServer is bench.RunSuite's bench.StartFunc: the server of
// `latchkey server`, on 127.0.0.1:0.
func startBenchServer(ctx context.Context, dsn string, ttl time.Duration, log io.Writer) (*bench.Target, error) {
	m := NewMain(&Env{Stdout: io.Discard, Stderr: log, Now: time.Now})
	m.Addr, m.DSN, m.LogLevel, m.AuthCacheTTL = "127.0.0.1:0", dsn, slog.LevelInfo, ttl
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
		return nil, err
	}
	return &bench.Target{URL: m.HTTPServer.URL(), DB: m.DB, Auth: m.Auth, BootstrapKey: m.BootstrapKey, Close: func() { m.Close() }}, nil
}
