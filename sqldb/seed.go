package sqldb

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/latchkey/latchkey"
)

// Population is what Seed stores: load-test users and keys in one tenant.
type Population struct {
	// TenantID is the existing tenant the users join.
	TenantID string

	// Users is the number of human users to create, each a USER member of
	// TenantID, named "Bench User i" <bench-ID@bench.invalid> (ID: the
	// user's), so that a database can be seeded more than once.
	Users int

	// Keys is the number of personal API keys to create, named "bench",
	// with TenantID as their default tenant, spread in turn over the users.
	Keys int

	// Sample sets how many of the keys' secrets Seed returns: those of
	// every (Keys/Sample)-th key, spread evenly over all of them (Sample
	// of them when it divides Keys, up to twice as many otherwise).
	Sample int
}

// Seeding: rows per INSERT statement, columns set per api_keys row, and
// SQLite's page cache while seeding. The keys' id and key_hash indexes
// take random inserts; with the whole index in the page cache and one
// commit, each page is written once rather than once per spill.
const (
	seedBatchRows  = 100
	seedKeyColumns = 8
	seedCacheKiB   = 1 << 20
)

// Seed stores p in one write transaction, straight into the tables: the
// services' one-at-a-time paths (a transaction, checks and an audit event
// per key) would take hours for a million keys. The rows are what the
// services write, without audit events. It returns the secrets of the
// sample keys, the only copies. For load tests (`latchkey bench`) only.
//
// Returns EINVALID if p has no tenant, no user or no sample, or
// Keys < 0.
func (db *DB) Seed(ctx context.Context, p Population) ([]string, error) {
	if p.TenantID == "" || p.Users < 1 || p.Keys < 0 || p.Sample < 1 {
		return nil, latchkey.Errorf(latchkey.EINVALID, "Seeding needs a tenant, at least one user, a sample of at least one key, and no negative key count.")
	}
	if !db.Postgres() {
		restore, err := db.seedPragmas(ctx)
		if err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
		defer restore()
	}
	tx, err := db.BeginTx(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	defer tx.Rollback()
	r := bufio.NewReaderSize(db.Rand, 1<<16)
	users, err := seedUsers(ctx, tx, r, p)
	if err != nil {
		return nil, fmt.Errorf("seed users: %w", err)
	}
	sample, err := seedKeys(ctx, tx, r, users, p)
	if err != nil {
		return nil, fmt.Errorf("seed keys: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	return sample, nil
}

// seedPragmas gives SQLite's write connection (the write pool has one) a
// page cache for the whole seeding, and keeps the statement journals of
// multi-row INSERTs in memory (not in a temporary file, a write syscall
// per page). restore puts back the settings it found.
func (db *DB) seedPragmas(ctx context.Context) (restore func(), err error) {
	var cache, temp int
	if err := db.wdb.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&cache); err != nil {
		return nil, err
	} else if err := db.wdb.QueryRowContext(ctx, `PRAGMA temp_store`).Scan(&temp); err != nil {
		return nil, err
	}
	restore = func() {
		db.wdb.ExecContext(context.Background(), fmt.Sprintf(`PRAGMA cache_size = %d`, cache))
		db.wdb.ExecContext(context.Background(), fmt.Sprintf(`PRAGMA temp_store = %d`, temp))
	}
	for _, p := range []string{fmt.Sprintf(`PRAGMA cache_size = -%d`, seedCacheKiB), `PRAGMA temp_store = MEMORY`} {
		if _, err := db.wdb.ExecContext(ctx, p); err != nil {
			restore()
			return nil, err
		}
	}
	return restore, nil
}

// seedUsers stores p.Users users, USER members of p.TenantID, and returns
// their ids.
func seedUsers(ctx context.Context, tx *Tx, r io.Reader, p Population) ([]string, error) {
	now := tx.Now()
	users := make([]string, 0, p.Users)
	for i := range p.Users {
		id, err := newIDFrom(r, now)
		if err != nil {
			return nil, err
		}
		mid, err := newIDFrom(r, now)
		if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, kind, email, name, default_tenant_id, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			id, string(latchkey.UserKindHuman), "bench-"+id+"@bench.invalid", fmt.Sprintf("Bench User %d", i), p.TenantID, Time(now)); err != nil {
			return nil, formatError(err, "A seeded user already exists.")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO memberships (id, tenant_id, user_id, role, created_at) VALUES (?, ?, ?, ?, ?)`,
			mid, p.TenantID, id, string(latchkey.RoleUser), Time(now)); err != nil {
			return nil, formatError(err, "A seeded membership already exists.")
		}
		users = append(users, id)
	}
	return users, nil
}

// seedKey is an api_keys row to insert.
type seedKey struct {
	id, userID, identifier string
	hash                   []byte
	secret                 string // kept for sample keys only
}

// seedKeys stores p.Keys keys spread over users and returns the sample's
// secrets. One goroutine makes the ids, secrets and their SHA-256 while
// this one inserts, seedBatchRows rows per statement.
func seedKeys(ctx context.Context, tx *Tx, r io.Reader, users []string, p Population) ([]string, error) {
	now := tx.Now()
	step := max(1, p.Keys/p.Sample)
	batches := make(chan []seedKey, 4)
	genErr := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(batches)
		batch := make([]seedKey, 0, seedBatchRows)
		for i := range p.Keys {
			secret, err := latchkey.NewSecret(r, latchkey.PrefixUserKey)
			if err != nil {
				genErr <- err
				return
			}
			id, err := newIDFrom(r, now)
			if err != nil {
				genErr <- err
				return
			}
			k := seedKey{id: id, userID: users[i%len(users)], identifier: latchkey.SecretIdentifier(secret), hash: latchkey.HashSecret(secret)}
			if i%step == 0 {
				k.secret = secret
			}
			batch = append(batch, k)
			if len(batch) == seedBatchRows || i == p.Keys-1 {
				select {
				case batches <- batch:
				case <-ctx.Done():
					return
				}
				batch = make([]seedKey, 0, seedBatchRows)
			}
		}
		genErr <- nil
	}()

	var sample []string
	full := insertKeysSQL(seedBatchRows)
	args := make([]any, 0, seedBatchRows*seedKeyColumns)
	created := Time(now)
	for batch := range batches {
		args = args[:0]
		for _, k := range batch {
			args = append(args, k.id, k.userID, "bench", k.identifier, k.hash, k.userID, p.TenantID, created)
			if k.secret != "" {
				sample = append(sample, k.secret)
			}
		}
		q := full
		if len(batch) != seedBatchRows {
			q = insertKeysSQL(len(batch))
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return nil, formatError(err, "A seeded API key already exists.")
		}
	}
	if err := <-genErr; err != nil {
		return nil, err
	}
	return sample, nil
}

// insertKeysSQL is an INSERT of rows api_keys rows of seedKeyColumns.
func insertKeysSQL(rows int) string {
	var q strings.Builder
	q.WriteString(`INSERT INTO api_keys (id, user_id, name, identifier, key_hash, created_by_user_id, default_tenant_id, created_at) VALUES `)
	for i := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
	}
	return q.String()
}
