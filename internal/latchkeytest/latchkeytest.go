// Package latchkeytest holds test helpers shared by Latchkey's packages:
// databases on every engine, a settable clock, and fixtures.
package latchkeytest

import (
	"context"
	"crypto/rand"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/sqldb"
)

// PostgresDSNEnv names the environment variable that enables the PostgreSQL
// half of the conformance suite.
const PostgresDSNEnv = "LATCHKEY_TEST_POSTGRES_DSN"

// Engines returns the engines to test: "sqlite" always, "postgres" when
// LATCHKEY_TEST_POSTGRES_DSN is set.
func Engines() []string {
	if os.Getenv(PostgresDSNEnv) != "" {
		return []string{"sqlite", "postgres"}
	}
	return []string{"sqlite"}
}

// RunWithDB runs fn as a subtest once per engine, each with a fresh,
// migrated database whose clock is clock (a new Clock if nil).
func RunWithDB(t *testing.T, fn func(t *testing.T, db *sqldb.DB, clock *Clock)) {
	t.Helper()
	for _, engine := range Engines() {
		t.Run(engine, func(t *testing.T) {
			clock := NewClock()
			db := MustOpenDB(t, engine, clock)
			fn(t, db, clock)
		})
	}
}

// MustOpenDB opens a fresh, migrated database on engine ("sqlite" or
// "postgres") and closes it when the test ends. On PostgreSQL each call
// gets its own schema, dropped afterwards.
func MustOpenDB(tb testing.TB, engine string, clock *Clock) *sqldb.DB {
	tb.Helper()
	dsn := MustDSN(tb, engine)
	db := NewDB(dsn)
	if clock != nil {
		db.Now = clock.Now
	}
	if err := db.Open(context.Background()); err != nil {
		tb.Fatalf("open %s db: %v", engine, err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("close db: %v", err)
		}
	})
	return db
}

// SystemSecret is the system secret (sqldb.DB.Secrets) of the test
// databases on PostgreSQL. On SQLite each database gets its own, in the file
// Open creates beside it.
const SystemSecret = "latchkey-test-system-secret-not-for-production"

// SystemSecrets returns SystemSecret as sqldb.SystemSecrets.
func SystemSecrets() *sqldb.SystemSecrets {
	s, err := sqldb.NewSystemSecrets(SystemSecret)
	if err != nil {
		panic(err)
	}
	return s
}

// NewDB returns sqldb.NewDB(dsn), with SystemSecret on PostgreSQL.
func NewDB(dsn string) *sqldb.DB {
	db := sqldb.NewDB(dsn)
	if IsPostgres(dsn) {
		db.Secrets = SystemSecrets()
	}
	return db
}

// IsPostgres reports whether dsn is a PostgreSQL URL.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// MustDSN returns the DSN of a fresh, empty database on engine. Several
// sqldb.DBs opened on it share the data, as replicas do.
func MustDSN(tb testing.TB, engine string) string {
	tb.Helper()
	switch engine {
	case "sqlite":
		return "sqlite:" + tb.TempDir() + "/latchkey.db"
	case "postgres":
		base := os.Getenv(PostgresDSNEnv)
		if base == "" {
			tb.Skipf("%s not set", PostgresDSNEnv)
		}
		return mustPostgresSchema(tb, base)
	}
	tb.Fatalf("unknown engine %q", engine)
	return ""
}

func mustPostgresSchema(tb testing.TB, base string) string {
	tb.Helper()
	s, err := sqldb.CreateSchema(context.Background(), base, "lkt_", rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Drop(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	return s.DSN
}

// Clock is a settable clock for tests. The zero value is not usable; use NewClock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set to a fixed instant in 2030.
func NewClock() *Clock {
	return &Clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// NewClockAt returns a clock set to t.
func NewClockAt(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set sets the clock.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
