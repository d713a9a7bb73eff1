package sqldb_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// Under a steady stream of write transactions the WAL is checkpointed in
// the background and stays bounded, and once writes stop the background
// checkpoint catches up with all of it.
func TestDB_BackgroundCheckpoint(t *testing.T) {
	ctx := context.Background()
	dsn := latchkeytest.MustDSN(t, "sqlite")
	db := sqldb.NewDB(dsn)
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	walPath := strings.TrimPrefix(dsn, "sqlite:") + "-wal"

	mustWrite := func(query string, args ...any) {
		t.Helper()
		tx, err := db.BeginTx(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, query, args...); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(`CREATE TABLE ckpt_test (id INTEGER PRIMARY KEY, v BLOB NOT NULL)`)

	// About 60 MiB through the WAL, close to four times the size at which
	// the writer checkpoints too. That bound is soft (the writer's
	// checkpoint is skipped while the background one runs, and the WAL
	// restarts only once both are done), hence twice it.
	const (
		txs, rowsPerTx, rowSize = 750, 40, 2048
		bound                   = 2 * sqldb.WriterAutoCheckpoint * (4096 + 24) // frames and their headers
	)
	blob := make([]byte, rowSize)
	var maxWAL int64
	for i := range txs {
		rand.Read(blob)
		tx, err := db.BeginTx(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		for range rowsPerTx {
			if _, err := tx.ExecContext(ctx, `INSERT INTO ckpt_test (v) VALUES (?)`, blob); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			// Let the background checkpoint run now and then, as it
			// would between requests.
			time.Sleep(2 * time.Millisecond)
		}
		if fi, err := os.Stat(walPath); err == nil && fi.Size() > maxWAL {
			maxWAL = fi.Size()
		}
	}
	if maxWAL == 0 || maxWAL > bound {
		t.Errorf("largest WAL file seen: %d bytes, want 0 < size <= %d", maxWAL, bound)
	}
	// Some of them may find the writer checkpointing (Busy) when the
	// machine is loaded; the WAL bound above is what matters.
	if st := db.CheckpointStats(); st.Runs < 2 || st.Errors != 0 {
		t.Errorf("background checkpoints while writing: %+v, want at least 2 and no errors", st)
	}

	// Once writes stop, the background checkpoint copies every frame.
	deadline := time.After(10 * time.Second)
	for {
		st := db.CheckpointStats()
		if st.Errors != 0 {
			t.Fatalf("checkpoint errors: %+v", st)
		}
		if st.Runs > 0 && st.WALFrames > 0 && st.Backfilled == st.WALFrames {
			t.Logf("checkpoints: %+v, largest WAL %d bytes", st, maxWAL)
			break
		}
		ran := db.CheckpointRan()
		mustWrite(`INSERT INTO ckpt_test (v) VALUES (x'00')`) // a write kicks it
		select {
		case <-ran:
		case <-deadline:
			t.Fatalf("background checkpoint did not catch up: %+v", db.CheckpointStats())
		}
	}

	tx, err := db.BeginTx(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM ckpt_test WHERE length(v) = ?`, rowSize).Scan(&n); err != nil {
		t.Fatal(err)
	} else if n != txs*rowsPerTx {
		t.Fatalf("rows: %d, want %d", n, txs*rowsPerTx)
	}
}

// PostgreSQL has no background checkpointer of ours.
func TestDB_CheckpointStatsPostgres(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, _ *latchkeytest.Clock) {
		if !db.Postgres() {
			t.Skip("SQLite: see TestDB_BackgroundCheckpoint")
		}
		if st := db.CheckpointStats(); st != (sqldb.CheckpointStats{}) {
			t.Fatalf("stats: %+v", st)
		}
	})
}

// Ids are version-7 UUIDs carrying the DB clock's milliseconds.
func TestDB_NewID(t *testing.T) {
	t.Parallel()
	clock := latchkeytest.NewClock()
	db := latchkeytest.MustOpenDB(t, "sqlite", clock)
	seen := map[string]bool{}
	for i := range 1000 {
		if i%100 == 0 {
			clock.Add(1500 * time.Microsecond)
		}
		id, err := db.NewID()
		if err != nil {
			t.Fatal(err)
		}
		u, err := uuid.Parse(id)
		if err != nil {
			t.Fatal(err)
		}
		if u.Version() != 7 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("%s: version %d, variant %v", id, u.Version(), u.Variant())
		}
		var ms [8]byte
		copy(ms[2:], u[:6])
		if got, want := int64(binary.BigEndian.Uint64(ms[:])), clock.Now().UnixMilli(); got != want {
			t.Fatalf("%s: time %d ms, want %d", id, got, want)
		}
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
	}
}
