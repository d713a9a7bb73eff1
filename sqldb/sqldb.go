// Package sqldb implements Latchkey's services on database/sql, for SQLite
// (modernc.org/sqlite, the default) and PostgreSQL (pgx). One set of store
// code serves both engines; dialect.go holds the few differences.
package sqldb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/latchkey/latchkey"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFS embed.FS

// DB is a handle on a Latchkey database. Set its fields, then call Open.
type DB struct {
	// DSN is a PostgreSQL URL (postgres://... or postgresql://...), or an
	// SQLite file path, optionally prefixed with "sqlite:" or "file:".
	DSN string

	// Now returns the current time; time.Now by default. Each transaction
	// reads it once, so tests can move time without sleeping.
	Now func() time.Time

	// Rand is the source of randomness for ids and secrets; crypto/rand by default.
	Rand io.Reader

	// Logger receives operational messages; discarded by default.
	Logger *slog.Logger

	// MaxReadConns caps the read pool (SQLite) or the whole pool (PostgreSQL); 0 picks a default.
	MaxReadConns int

	// Secrets encrypts the private parts of the signing keys at rest (see
	// SystemSecrets). PostgreSQL needs it: Open refuses to start without,
	// since every replica must share one. On SQLite, nil means the file
	// beside the database named after it plus ".secret" (latchkey.db.secret),
	// which Open creates, mode 0600, with a new random secret on first start.
	// Open checks that the secrets decrypt every stored signing key, and
	// (re-)encrypts under the first secret those that are not yet: keys
	// stored in plaintext before encryption, or under an older secret
	// listed after it (rotation).
	Secrets *SystemSecrets

	// Events, if set, is told of every committed change that can revoke a
	// credential (see latchkey.Event), synchronously, before the method
	// that made the change returns; credential caches subscribe to it. On
	// PostgreSQL the store also sends each event with pg_notify inside the
	// changing transaction, so other replicas hear of it when, and only
	// if, it commits; make Events an *EventService on this DB to hear
	// theirs. Set it before use.
	Events latchkey.EventService

	// MustExist makes Open refuse to create a database: an SQLite file that
	// does not exist, or a database (or PostgreSQL schema) without
	// Latchkey's tables, is an ENOTFOUND error "No Latchkey database at
	// …", and nothing is created or migrated. Operator commands set it, so
	// that a mistyped --db is reported rather than made.
	MustExist bool

	dialect dialect
	path    string  // SQLite: the database file
	channel string  // PostgreSQL: the NOTIFY channel of this database and schema
	origin  string  // random; marks the notifications this handle sends
	rdb     *sql.DB // reads
	wdb     *sql.DB // writes: one connection on SQLite, the same pool on PostgreSQL
	pool    *pgxpool.Pool

	stmts stmtCache     // SQLite: prepared statements, by pool and query text
	ckpt  *checkpointer // SQLite: checkpoints the WAL in the background
}

// NewDB returns a DB for dsn with default clock, randomness and logger.
func NewDB(dsn string) *DB {
	return &DB{DSN: dsn, Now: time.Now, Rand: rand.Reader, Logger: slog.New(slog.DiscardHandler)}
}

// Postgres reports whether the DB is on PostgreSQL.
func (db *DB) Postgres() bool { return db.dialect == postgres }

// Pool returns the pgx pool on PostgreSQL, nil on SQLite.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Open connects and applies pending migrations. Replicas may call it at the
// same time: on PostgreSQL migrations run under a session advisory lock.
func (db *DB) Open(ctx context.Context) (err error) {
	if db.DSN == "" {
		return fmt.Errorf("open db: dsn required")
	}
	if db.Now == nil {
		db.Now = time.Now
	}
	if db.Rand == nil {
		db.Rand = rand.Reader
	}
	if db.Logger == nil {
		db.Logger = slog.New(slog.DiscardHandler)
	}
	if strings.HasPrefix(db.DSN, "postgres://") || strings.HasPrefix(db.DSN, "postgresql://") {
		if db.Secrets == nil {
			return fmt.Errorf("open db: PostgreSQL needs a system secret to encrypt the signing keys, the same on every replica")
		}
		err = db.openPostgres(ctx)
	} else {
		err = db.openSQLite(ctx)
	}
	if err == nil && db.MustExist {
		err = db.checkExists(ctx)
	}
	if err != nil {
		db.Close()
		return err
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return err
	}
	if err := db.openSecrets(ctx, true); err != nil {
		db.Close()
		return err
	}
	var b [8]byte
	if _, err := io.ReadFull(db.Rand, b[:]); err != nil {
		db.Close()
		return fmt.Errorf("open db: %w", err)
	}
	db.origin = hex.EncodeToString(b[:])
	return nil
}

func (db *DB) openSQLite(ctx context.Context) error {
	db.dialect = sqlite
	path := strings.TrimPrefix(strings.TrimPrefix(db.DSN, "sqlite:"), "file:")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if path == "" || path == ":memory:" {
		return fmt.Errorf("open db: sqlite needs a file path (in-memory databases cannot be shared by the read and write pools)")
	}
	db.path = path
	if db.MustExist {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return db.notFound()
		} else if err != nil {
			return fmt.Errorf("open db: %w", err)
		}
	}
	if err := createPrivateFile(path); err != nil {
		return err
	}
	// busy_timeout first (PocketBase's note); immediate transactions so a
	// read-then-write transaction never fails its lock upgrade.
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	// Readers use deferred transactions and cannot write; only the
	// one-connection write pool takes the write lock.
	rq := url.Values{"_pragma": append(append([]string{}, q["_pragma"]...), "query_only(1)")}
	rdsn := "file:" + path + "?" + rq.Encode()
	// The checkpointer's connection (checkpoint.go) writes only the
	// database file, from the WAL.
	cdsn := "file:" + path + "?" + q.Encode()
	q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", writerAutoCheckpoint))
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	var err error
	if db.wdb, err = sql.Open("sqlite", dsn); err != nil {
		return fmt.Errorf("open db: %w", err)
	}
	db.wdb.SetMaxOpenConns(1)
	db.wdb.SetConnMaxIdleTime(0)
	var mode string
	if err := db.wdb.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return fmt.Errorf("open db %s: %w", path, err)
	} else if mode != "wal" {
		return fmt.Errorf("open db %s: journal_mode is %q, want wal", path, mode)
	}
	if db.rdb, err = sql.Open("sqlite", rdsn); err != nil {
		return fmt.Errorf("open db: %w", err)
	}
	n := db.MaxReadConns
	if n <= 0 {
		n = 8
	}
	db.rdb.SetMaxOpenConns(n)
	db.rdb.SetMaxIdleConns(n)
	cdb, err := sql.Open("sqlite", cdsn)
	if err != nil {
		return fmt.Errorf("open db: %w", err)
	}
	cdb.SetMaxOpenConns(1)
	cdb.SetConnMaxIdleTime(0)
	db.ckpt = newCheckpointer(cdb, db.Logger)
	return nil
}

func (db *DB) openPostgres(ctx context.Context) error {
	db.dialect = postgres
	cfg, err := pgxpool.ParseConfig(db.DSN)
	if err != nil {
		return fmt.Errorf("open db: parse postgres dsn: %w", errors.New(redactDSN(err.Error())))
	}
	if db.MaxReadConns > 0 {
		cfg.MaxConns = int32(db.MaxReadConns)
	}
	if db.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return fmt.Errorf("open db: %w", err)
	}
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("open db: ping postgres: %w", err)
	}
	var schema string
	if err := db.pool.QueryRow(ctx, `SELECT COALESCE(current_schema(), '')`).Scan(&schema); err != nil {
		return fmt.Errorf("open db: %w", err)
	}
	db.channel = notifyChannel(schema)
	db.rdb = stdlib.OpenDBFromPool(db.pool)
	db.wdb = db.rdb
	return nil
}

// notFound is MustExist's error.
func (db *DB) notFound() error {
	where := db.path
	if db.dialect == postgres {
		where = redactDSN(db.DSN)
	}
	return latchkey.Errorf(latchkey.ENOTFOUND, "No Latchkey database at %s.", where)
}

// checkExists reports MustExist's error unless the database holds
// Latchkey's tables (in the current schema on PostgreSQL).
func (db *DB) checkExists(ctx context.Context) error {
	q := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'tenants'`
	if db.dialect == postgres {
		q = `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'tenants'`
	}
	var n int
	if err := db.rdb.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return fmt.Errorf("open db: %w", err)
	}
	if n == 0 {
		return db.notFound()
	}
	return nil
}

// redactDSN hides a password in a connection-string error.
func redactDSN(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if j := strings.Index(s[i:], "@"); j >= 0 {
			return s[:i+3] + "…" + s[i+j:]
		}
	}
	return s
}

func (db *DB) migrate(ctx context.Context) error {
	var (
		gd   goose.Dialect
		opts []goose.ProviderOption
	)
	sub, err := fs.Sub(migrationFS, "migrations/"+string(db.dialect))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	switch db.dialect {
	case sqlite:
		gd = goose.DialectSQLite3
	case postgres:
		gd = goose.DialectPostgres
		// Replicas on one schema migrate one at a time; those of other
		// schemas in the database (other deployments, tests) need not wait.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID(db.channel)))
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(gd, db.wdb, sub, opts...)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, r := range results {
		db.Logger.Info("applied migration", "version", r.Source.Version, "path", r.Source.Path, "duration", r.Duration)
	}
	return nil
}

// migrationLockID is the advisory lock replicas take to migrate the schema
// whose NOTIFY channel is channel. The public schema keeps goose's own id,
// the one every earlier version took, so that during a rolling upgrade old
// and new replicas still migrate one at a time.
func migrationLockID(channel string) int64 {
	if channel == notifyChannel("public") {
		return lock.DefaultLockID
	}
	h := fnv.New64a()
	h.Write([]byte(channel))
	return int64(h.Sum64())
}

// Close closes the database.
func (db *DB) Close() error {
	var errs []error
	if db.ckpt != nil {
		errs = append(errs, db.ckpt.close())
		db.ckpt = nil
	}
	errs = append(errs, db.stmts.close())
	if db.rdb != nil && db.rdb != db.wdb {
		errs = append(errs, db.rdb.Close())
	}
	if db.wdb != nil {
		errs = append(errs, db.wdb.Close())
	}
	if db.pool != nil {
		db.pool.Close()
	}
	db.rdb, db.wdb, db.pool = nil, nil, nil
	// Statements still being prepared fail now that the pools are closed;
	// wait for them, so that nothing touches the database files after Close.
	db.stmts.wait()
	return errors.Join(errs...)
}

// Tx wraps a database transaction and the time it started. Store methods
// open one, call unexported helpers that take it, and commit.
type Tx struct {
	*sql.Tx
	db     *DB
	h      *sql.DB          // the pool the transaction came from
	now    time.Time        // read once per transaction, UTC, truncated to microseconds
	events []latchkey.Event // published by the transaction; delivered locally on commit
}

// Commit commits the transaction and then, before returning, delivers the
// events it published to DB.Events, so that this process's caches have
// dropped what the transaction revoked by the time the caller learns of
// it. (Not before the commit: a lookup running meanwhile could read, and
// cache again, the rows being deleted.)
func (tx *Tx) Commit() error {
	if err := tx.Tx.Commit(); err != nil {
		return err
	}
	if tx.db.ckpt != nil && tx.h == tx.db.wdb {
		tx.db.ckpt.committed()
	}
	events := tx.events
	tx.events = nil
	for _, ev := range events {
		tx.db.deliver(ev)
	}
	return nil
}

// BeginTx starts a transaction; writable ones go through the write pool.
func (db *DB) BeginTx(ctx context.Context, writable bool) (*Tx, error) {
	h := db.rdb
	var opts *sql.TxOptions
	if writable {
		h = db.wdb
	} else if db.dialect == postgres {
		opts = &sql.TxOptions{ReadOnly: true}
	}
	tx, err := h.BeginTx(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("begin tx: %w", err)
	}
	return &Tx{Tx: tx, db: db, h: h, now: db.Now().UTC().Truncate(time.Microsecond)}, nil
}

// beginAs checks the caller in ctx with require and, if it may go on,
// begins a transaction as BeginTx does. The caller must Rollback it.
func (db *DB) beginAs(ctx context.Context, require func(context.Context) (*latchkey.Auth, error), writable bool) (*latchkey.Auth, *Tx, error) {
	a, err := require(ctx)
	if err != nil {
		return nil, nil, err
	}
	tx, err := db.BeginTx(ctx, writable)
	if err != nil {
		return nil, nil, err
	}
	return a, tx, nil
}

// Now returns the transaction's time.
func (tx *Tx) Now() time.Time { return tx.now }

// ExecContext runs a statement written with ? placeholders. On SQLite it
// runs as a statement prepared once per connection (see stmtCache).
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := tx.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.Tx.ExecContext(ctx, tx.db.dialect.rebind(query), args...)
}

// QueryContext runs a query written with ? placeholders.
func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.Tx.QueryContext(ctx, tx.db.dialect.rebind(query), args...)
}

// QueryRowContext runs a query written with ? placeholders. On SQLite it
// runs as a statement prepared once per connection (see stmtCache).
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := tx.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.Tx.QueryRowContext(ctx, tx.db.dialect.rebind(query), args...)
}

// stmt returns query prepared for the transaction, or nil to run it
// unprepared. Only SQLite uses prepared statements: pgx already keeps a
// cache of prepared statements on each PostgreSQL connection.
func (tx *Tx) stmt(ctx context.Context, query string) *sql.Stmt {
	if tx.db.dialect != sqlite {
		return nil
	}
	st := tx.db.stmts.get(tx.h, query)
	if st == nil {
		return nil
	}
	// Prepared on the transaction's connection the first time it is used
	// there, and kept by st for the next transactions on that connection.
	return tx.Tx.StmtContext(ctx, st)
}

// maxPreparedStatements bounds the statements a stmtCache keeps: queries
// built at run time (IN lists of varying length) must not grow it forever.
const maxPreparedStatements = 512

// stmtCache holds a prepared *sql.Stmt per pool and query text, so that
// SQLite parses and plans each statement once per connection instead of on
// every use. Transactions use them through Tx.StmtContext, on their own
// connection. A statement is prepared on the pool in the background the
// first time it is asked for (that run goes unprepared): preparing on a
// pool waits for a free connection, and the caller may hold the only one
// (SQLite's write pool). Only statements that finish with their result
// (Exec, QueryRow) use it: a statement prepared on a connection is one
// SQLite statement, which a second use would reset under open rows.
// Without it, an authentication the credential cache does not answer
// costs 64-99 % more instructions (BENCHMARKS.md, update 5).
type stmtCache struct {
	mu     sync.RWMutex
	m      map[stmtKey]*sql.Stmt // nil value: being prepared, or failed
	closed bool
	wg     sync.WaitGroup // the goroutines preparing statements
}

type stmtKey struct {
	h     *sql.DB
	query string
}

// get returns the statement for query on h, or nil if it is not prepared
// (yet), in which case it starts preparing it.
func (c *stmtCache) get(h *sql.DB, query string) *sql.Stmt {
	k := stmtKey{h, query}
	c.mu.RLock()
	st, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return st
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok || c.closed || len(c.m) >= maxPreparedStatements {
		return c.m[k]
	}
	if c.m == nil {
		c.m = make(map[stmtKey]*sql.Stmt)
	}
	c.m[k] = nil
	c.wg.Go(func() { c.prepare(k) })
	return nil
}

func (c *stmtCache) prepare(k stmtKey) {
	st, err := k.h.PrepareContext(context.Background(), k.query)
	if err != nil {
		return // stays nil: the query runs unprepared (and reports its error)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		st.Close()
		return
	}
	c.m[k] = st
}

// wait waits for the statements being prepared.
func (c *stmtCache) wait() { c.wg.Wait() }

// close closes every statement; later gets prepare nothing, and statements
// still being prepared are closed when ready.
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for _, st := range c.m {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	c.m = nil
	return errors.Join(errs...)
}

// newID returns a version-7 UUID (RFC 9562): the DB clock's Unix time in
// milliseconds, then 74 bits from the DB's randomness. Ids made at about
// the same time sort together, so inserts land on the last pages of the
// primary-key and family-id indexes instead of anywhere in them: fewer
// pages written per commit. Ids reveal when their row was made, which
// every row's created_at shows its readers anyway.
func (db *DB) newID() (string, error) { return newIDFrom(db.Rand, db.Now()) }

// newIDFrom is newID with the randomness r at the time now.
func newIDFrom(r io.Reader, now time.Time) (string, error) {
	var u uuid.UUID
	if _, err := io.ReadFull(r, u[6:]); err != nil {
		return "", fmt.Errorf("new id: %w", err)
	}
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		u[i] = byte(ms)
		ms >>= 8
	}
	u[6] = u[6]&0x0f | 0x70 // version 7
	u[8] = u[8]&0x3f | 0x80 // variant 10 (RFC 9562)
	return u.String(), nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	return db.rdb.PingContext(ctx)
}
