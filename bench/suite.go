package bench

// RunSuite: `latchkey bench`. It makes the databases, seeds them, builds
// the scenarios, runs them in rounds and prints the report; cmd/latchkey
// parses the flags and starts the servers (StartFunc). BENCHMARKS.md has
// the figures.

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/sqldb"
)

// Scenario names of RunSuite, in the order they run.
const (
	nameBaseline     = "(e) baseline net/http"
	nameAuthInfoKey  = "(a) auth_info, API key"
	nameAuthInfoJWT  = "(b) auth_info, JWT"
	nameSwitchTenant = "(c) switch_tenant"
	nameCreateKey    = "(d) create_api_key"
	nameVerify       = "(f) /auth/verify, API key"
	nameVerifyToken  = "(g) /auth/verify?token=1"
)

// Queries the scenarios send, as the Prefect 1.x client writes them.
const (
	authInfoQuery     = `query { auth_info { tenant_id } }`
	switchTenantQuery = `mutation($input: switch_tenant_input!) { switch_tenant(input: $input) { access_token expires_at refresh_token } }`
	createAPIKeyQuery = `mutation($input: create_api_key_input!) { create_api_key(input: $input) { key } }`
	uniqueName        = "UUUUUUUUUUUUUUUU" // replaced per request (Scenario.Unique)
)

// Config is what RunSuite is asked to do: `latchkey bench`'s flags, which
// its --help and the errors of Validate name.
type Config struct {
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
	GCMinHeapMiB  int    // the servers' --gc-min-heap; 0 when GOGC is set
	GOGC          string // the environment's GOGC, for the report
	Client        string // "direct" or "net/http"
}

// Validate reports the first value of c that RunSuite cannot run with.
func (c *Config) Validate() error {
	switch {
	case c.Keys < 1 || c.Users < 1 || c.Sample < 1 || c.JWTs < 1:
		return errors.New("--keys, --users, --sample and --jwts must be at least 1")
	case c.ScaleKeys[0] < 1 || c.ScaleKeys[1] < 1:
		return errors.New("--scale-keys must be two counts of at least 1")
	case c.Conns < 1 || c.Conns > 4096:
		return errors.New("--conns must be 1 to 4096")
	case c.Rate < 0 || c.Rate > 1e7:
		return errors.New("--rate must be 0 (closed loop) to 10000000")
	case c.AuthCacheTTL < 0:
		return errors.New("--auth-cache-ttl must not be negative")
	case c.Client != "direct" && c.Client != "net/http":
		return fmt.Errorf("invalid --client %q: use direct or net/http", c.Client)
	case c.GCMinHeapMiB < 0 || c.GCMinHeapMiB > 1<<20:
		return errors.New("--gc-min-heap must be 0 (off) to 1048576")
	case c.Duration <= 0 || c.Warmup < 0 || c.Rounds < 1:
		return errors.New("--duration must be positive, --warmup not negative, --rounds at least 1")
	case strings.Trim(c.Scenarios, "abcdefg") != "" || c.Scenarios == "":
		return fmt.Errorf("invalid --scenarios %q: use letters a to g", c.Scenarios)
	}
	return nil
}

// Target is a Latchkey server under test, as a StartFunc started it.
type Target struct {
	URL          string    // base URL, http://127.0.0.1:PORT
	DB           *sqldb.DB // its database, which RunSuite seeds
	Auth         latchkey.AuthService
	BootstrapKey string // the admin key of the first start ("" if the database was not new)
	Close        func()
}

// StartFunc starts a Latchkey server, `latchkey server`'s, on 127.0.0.1
// at a free port, on the new database dsn (created and migrated on first
// start), with the credential cache TTL ttl, logging at info level (one
// access-log line per request) to log. Its access tokens must live an
// hour: they are minted before the measured rounds.
type StartFunc func(ctx context.Context, dsn string, ttl time.Duration, log io.Writer) (*Target, error)

// RunSuite runs cfg, printing the report on stdout and progress on
// stderr: the scenarios of cfg.Scenarios in rounds against a server
// start starts and the baseline, or, with cfg.VerifyScaling, (a) against
// two servers. It reports whether every request succeeded and the
// servers logged no lock or busy error.
func RunSuite(ctx context.Context, cfg *Config, start StartFunc, stdout, stderr io.Writer) (ok bool, err error) {
	s := &suite{cfg: cfg, start: start, out: stdout, stderr: stderr, logs: &LockErrorCounter{}}
	defer s.cleanup()
	if cfg.ServerLog != "" {
		f, err := os.Create(cfg.ServerLog)
		if err != nil {
			return false, err
		}
		bw := bufio.NewWriterSize(f, 1<<16)
		s.logs.Next = &lockedWriter{w: bw}
		s.cleanups = append(s.cleanups, func() { bw.Flush(); f.Close() })
	}
	s.printMachine()
	if cfg.VerifyScaling {
		return s.verifyScaling(ctx)
	}
	return s.throughput(ctx)
}

// suite is one run of RunSuite.
type suite struct {
	cfg      *Config
	start    StartFunc
	out      io.Writer
	stderr   io.Writer
	cleanups []func()
	logs     *LockErrorCounter
}

func (s *suite) cleanup() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
}

func (s *suite) logf(format string, args ...any) {
	fmt.Fprintf(s.stderr, "bench: "+format+"\n", args...)
}

// server is a Latchkey server under test and what was seeded in it.
type server struct {
	*Target
	tenantID string
	sample   []string // secrets of stored keys, spread over all of them
	jwts     []string
	keys     int
}

// throughput runs the scenarios of cfg.Scenarios and prints the table.
func (s *suite) throughput(ctx context.Context) (bool, error) {
	cfg := s.cfg
	srv, err := s.startServer(ctx, cfg.DSN, 0)
	if err != nil {
		return false, err
	}
	if err := s.seed(ctx, srv, cfg.Keys); err != nil {
		return false, err
	}
	base, err := StartBaseline()
	if err != nil {
		return false, err
	}
	s.cleanups = append(s.cleanups, func() { base.Close() })

	scenarios := s.scenarios(srv, base.URL)
	fmt.Fprintf(s.out, "keys stored: %d (%d users), sample: %d keys, %d JWTs; credential cache %s; %d connections, %s; %s warm-up + %s measured per scenario x %d rounds\n",
		srv.keys, cfg.Users, len(srv.sample), len(srv.jwts), s.cacheDesc(), cfg.Conns, s.loopDesc(), cfg.Warmup, cfg.Duration, cfg.Rounds)
	results, err := s.runRounds(ctx, scenarios, cfg.Rounds, false)
	if err != nil {
		return false, err
	}
	var baseline *Result
	for _, r := range results {
		if r.Scenario == nameBaseline {
			baseline = r
		}
	}
	if err := WriteTable(s.out, results, baseline); err != nil {
		return false, err
	}
	return s.summary(results), nil
}

// clientFor returns the load generator's client for --client: nil for
// direct connections (see Run).
func clientFor(kind string, conns int) *http.Client {
	if kind == "net/http" {
		return NewClient(conns)
	}
	return nil
}

// runRounds runs each of scs once per round, in turn (in reverse order
// every other round if alternate), under the CPU profile if asked, prints
// the load average before and after, and returns each one's results
// merged.
func (s *suite) runRounds(ctx context.Context, scs []Scenario, rounds int, alternate bool) ([]*Result, error) {
	client := clientFor(s.cfg.Client, s.cfg.Conns)
	opt := Options{Concurrency: s.cfg.Conns, Warmup: s.cfg.Warmup, Duration: s.cfg.Duration, Rate: s.cfg.Rate}
	width := 24
	for _, sc := range scs {
		width = max(width, len(sc.Name))
	}
	stopProfile, err := s.startProfile()
	if err != nil {
		return nil, err
	}
	defer stopProfile()
	load0 := loadAvg()
	got := make([][]*Result, len(scs))
	for round := 1; round <= rounds; round++ {
		for j := range scs {
			i := j
			if alternate && round%2 == 0 {
				i = len(scs) - 1 - j
			}
			r, err := Run(ctx, client, scs[i], opt)
			if err != nil {
				return nil, err
			}
			got[i] = append(got[i], r)
			s.logf("round %d: %-*s %8.0f req/s  p50 %s  p99 %s  errors %d", round, width, scs[i].Name, r.RPS(), FormatDuration(r.P50), FormatDuration(r.P99), r.Errors)
		}
	}
	fmt.Fprintf(s.out, "load average before: %s, after: %s\n\n", load0, loadAvg())
	results := make([]*Result, len(scs))
	for i, rs := range got {
		results[i] = Merge(rs...)
	}
	return results, nil
}

// loopDesc says how the load generator paces requests.
func (s *suite) loopDesc() string {
	if s.cfg.Rate > 0 {
		return fmt.Sprintf("open loop at %.0f req/s (latency from each request's scheduled time), %s client", s.cfg.Rate, s.cfg.Client)
	}
	return "closed loop, " + s.cfg.Client + " client"
}

// summary prints lock errors and returns whether everything succeeded.
func (s *suite) summary(results []*Result) bool {
	var errs int64
	for _, r := range results {
		errs += r.Errors
	}
	fmt.Fprintf(s.out, "\nfailed requests: %d\nlock/busy errors in the server log: %d (of %d log lines)\n", errs, s.logs.LockErrors(), s.logs.Lines())
	for _, l := range s.logs.Samples() {
		fmt.Fprintf(s.out, "  %s\n", latchkey.RedactSecrets(l))
	}
	return errs == 0 && s.logs.LockErrors() == 0
}

// verifyScaling measures (a) on two servers, one holding ScaleKeys[0] keys
// and one ScaleKeys[1], alternating between them each round.
func (s *suite) verifyScaling(ctx context.Context) (bool, error) {
	cfg := s.cfg
	var srvs [2]*server
	for i, n := range cfg.ScaleKeys {
		dsn := ""
		if isPostgres(cfg.DSN) {
			dsn = cfg.DSN
		} else if cfg.DSN != "" {
			return false, errors.New("--verify-scaling makes its own SQLite files; give --db only for PostgreSQL")
		}
		srv, err := s.startServer(ctx, dsn, i)
		if err != nil {
			return false, err
		}
		if err := s.seed(ctx, srv, n); err != nil {
			return false, err
		}
		srvs[i] = srv
	}
	rounds := max(cfg.Rounds, 3)
	fmt.Fprintf(s.out, "verify scaling: (a) auth_info by API key, %d vs %d stored keys, sample %d keys each; credential cache %s; %d connections, %s; %s + %s x %d rounds, alternating\n",
		srvs[0].keys, srvs[1].keys, cfg.Sample, s.cacheDesc(), cfg.Conns, s.loopDesc(), cfg.Warmup, cfg.Duration, rounds)
	var scs []Scenario
	for _, srv := range srvs {
		scs = append(scs, Scenario{
			Name:       fmt.Sprintf("(a) auth_info, API key, %d keys", srv.keys),
			URL:        srv.URL + "/graphql",
			Body:       mustGraphQLBody(authInfoQuery, nil),
			Credential: pick(srv.sample),
			Check:      CheckGraphQL("auth_info"),
		})
	}
	results, err := s.runRounds(ctx, scs, rounds, true)
	if err != nil {
		return false, err
	}
	small, large := results[0], results[1]
	if err := WriteTable(s.out, results, small); err != nil {
		return false, err
	}
	// At a fixed concurrency, a request's cost is 1/throughput; its CPU
	// time is the same cost measured without the other load on the machine.
	rpsCost := small.RPS()/large.RPS() - 1
	var cpuCost float64
	if small.CPUPerRequest() > 0 {
		cpuCost = float64(large.CPUPerRequest())/float64(small.CPUPerRequest()) - 1
	}
	fmt.Fprintf(s.out, "\nscaling, %d vs %d stored keys:\n", srvs[1].keys, srvs[0].keys)
	fmt.Fprintf(s.out, "  req/s ratio %.3f: cost per request %+.1f%% (%s)\n", large.RPS()/small.RPS(), rpsCost*100, within10(rpsCost))
	fmt.Fprintf(s.out, "  CPU per request %s vs %s: %+.1f%% (%s)\n", FormatDuration(large.CPUPerRequest()), FormatDuration(small.CPUPerRequest()), cpuCost*100, within10(cpuCost))
	fmt.Fprintf(s.out, "  p50 %s vs %s, p99 %s vs %s\n", FormatDuration(large.P50), FormatDuration(small.P50), FormatDuration(large.P99), FormatDuration(small.P99))
	return s.summary(results), nil
}

func (s *suite) cacheDesc() string {
	if s.cfg.AuthCacheTTL == 0 {
		return "off"
	}
	return "TTL " + s.cfg.AuthCacheTTL.String()
}

func within10(x float64) string {
	if x > 0.10 || x < -0.10 {
		return "NOT within 10%"
	}
	return "within 10%"
}

// isPostgres reports whether dsn is a PostgreSQL URL.
func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// startServer starts a Latchkey server on a fresh database: dsn if it is
// a postgres:// URL (in a new schema), an SQLite file if set, else a
// temporary SQLite file (the n-th).
func (s *suite) startServer(ctx context.Context, dsn string, n int) (*server, error) {
	switch {
	case isPostgres(dsn):
		schema, err := sqldb.CreateSchema(ctx, dsn, "lkbench_", rand.Reader)
		if err != nil {
			return nil, err
		}
		if s.cfg.KeepDB {
			s.logf("postgres schema %s", schema.Name)
		} else {
			s.cleanups = append(s.cleanups, func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := schema.Drop(ctx); err != nil {
					s.logf("%s", latchkey.RedactSecrets(err.Error()))
				}
			})
		}
		dsn = schema.DSN
	case dsn != "":
		if _, err := os.Stat(dsn); err == nil {
			return nil, fmt.Errorf("--db %s exists: bench needs a new database", dsn)
		}
	default:
		dir, err := os.MkdirTemp("", "latchkey-bench-")
		if err != nil {
			return nil, err
		}
		if !s.cfg.KeepDB {
			s.cleanups = append(s.cleanups, func() { os.RemoveAll(dir) })
		}
		dsn = filepath.Join(dir, fmt.Sprintf("bench%d.db", n))
	}
	t, err := s.start(ctx, dsn, s.cfg.AuthCacheTTL, s.logs)
	if err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	s.cleanups = append(s.cleanups, t.Close)
	if t.BootstrapKey == "" {
		return nil, errors.New("start server: the database was not empty")
	}
	a, err := t.Auth.Authenticate(ctx, t.BootstrapKey, "")
	if err != nil {
		return nil, fmt.Errorf("start server: admin key: %w", err)
	}
	if t.DB.Postgres() {
		s.logf("server %s on PostgreSQL", t.URL)
	} else {
		s.logf("server %s on SQLite %s", t.URL, dsn)
	}
	return &server{Target: t, tenantID: a.TenantID, keys: 1}, nil
}

// seed stores cfg.Users users (USER members of the server's tenant) and n
// API keys spread over them, keeping cfg.Sample of the keys' secrets, and
// mints cfg.JWTs access tokens from sample keys.
func (s *suite) seed(ctx context.Context, srv *server, n int) error {
	start := time.Now()
	sample, err := srv.DB.Seed(ctx, sqldb.Population{TenantID: srv.tenantID, Users: s.cfg.Users, Keys: n, Sample: s.cfg.Sample})
	if err != nil {
		return err
	}
	d := time.Since(start)
	srv.sample, srv.keys = sample, n+1 // and the admin's
	s.logf("seeded %d users and %d keys in %s (%.0f keys/s)", s.cfg.Users, n, d.Round(time.Millisecond), float64(n)/d.Seconds())
	fmt.Fprintf(s.out, "seeded %d keys in %s (%.0f keys/s)\n", n, d.Round(time.Millisecond), float64(n)/d.Seconds())

	for i := 0; i < s.cfg.JWTs && i < len(sample); i++ {
		a, err := srv.Auth.Authenticate(ctx, sample[i], "")
		if err != nil {
			return fmt.Errorf("seed: sample key: %w", err)
		}
		tok, err := srv.Auth.SwitchTenant(latchkey.NewContextWithAuth(ctx, a), "")
		if err != nil {
			return fmt.Errorf("seed: switch tenant: %w", err)
		}
		srv.jwts = append(srv.jwts, tok.AccessToken)
	}
	return nil
}

// scenarios returns the scenarios of cfg.Scenarios, the baseline first.
func (s *suite) scenarios(srv *server, baseURL string) []Scenario {
	gql := srv.URL + "/graphql"
	authInfo := mustGraphQLBody(authInfoQuery, nil)
	all := map[byte]Scenario{
		'e': {Name: nameBaseline, URL: baseURL + "/graphql", Body: authInfo, Credential: pick(srv.sample), Check: CheckBody(BaselineBody)},
		'a': {Name: nameAuthInfoKey, URL: gql, Body: authInfo, Credential: pick(srv.sample), Check: CheckGraphQL("auth_info")},
		'b': {Name: nameAuthInfoJWT, URL: gql, Body: authInfo, Credential: pick(srv.jwts), Check: CheckGraphQL("auth_info")},
		'c': {Name: nameSwitchTenant, URL: gql, Body: mustGraphQLBody(switchTenantQuery, map[string]any{"input": map[string]any{"tenant_id": srv.tenantID}}),
			Credential: pick(srv.sample), Check: CheckGraphQL("switch_tenant")},
		// Every key gets a name of its own: an owner's key names are unique.
		'd': {Name: nameCreateKey, URL: gql, Body: mustGraphQLBody(createAPIKeyQuery, map[string]any{"input": map[string]any{"name": "bench-" + uniqueName, "user_id": nil, "expires_at": nil}}),
			Unique: uniqueName, Credential: pick(srv.sample), Check: CheckGraphQL("create_api_key")},
		// Forward auth, as a proxy asks: no body (the load generator POSTs).
		'f': {Name: nameVerify, URL: srv.URL + "/auth/verify", Credential: pick(srv.sample), Check: CheckBody("")},
		'g': {Name: nameVerifyToken, URL: srv.URL + "/auth/verify?token=1", Credential: pick(srv.sample), Check: CheckBody("")},
	}
	var out []Scenario
	for _, c := range []byte("eabcdfg") {
		if strings.IndexByte(s.cfg.Scenarios, c) >= 0 {
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
	b, err := GraphQLBody(query, vars)
	if err != nil {
		panic(err)
	}
	return b
}

// startProfile starts the CPU profile if asked and returns its stop.
func (s *suite) startProfile() (func(), error) {
	if s.cfg.CPUProfile == "" {
		return func() {}, nil
	}
	f, err := os.Create(s.cfg.CPUProfile)
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
func (s *suite) printMachine() {
	gc := "GOGC=" + cmp.Or(s.cfg.GOGC, "100")
	if s.cfg.GCMinHeapMiB > 0 {
		gc = fmt.Sprintf("--gc-min-heap %d MiB", s.cfg.GCMinHeapMiB)
	}
	fmt.Fprintf(s.out, "latchkey bench %s, %s %s/%s, %d CPUs (GOMAXPROCS %d), %s; GC: %s\n",
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
