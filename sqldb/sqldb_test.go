package sqldb_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

func TestDB_Open(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, _ *latchkeytest.Clock) {
		tx, err := db.BeginTx(context.Background(), false)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		var n int
		if err := tx.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM tenants WHERE slug = ?`, "x").Scan(&n); err != nil {
			t.Fatal(err)
		} else if n != 0 {
			t.Fatalf("n=%d, want 0", n)
		}
	})
}

// Replicas starting at once on one PostgreSQL database must apply
// migrations once and all come up. (SQLite is single-node: see
// TestDB_ReadersDoNotBlock and TestDB_Reopen.)
func TestDB_ConcurrentOpen(t *testing.T) {
	t.Parallel()
	for _, engine := range latchkeytest.Engines() {
		if engine != "postgres" {
			continue
		}
		t.Run(engine, func(t *testing.T) {
			dsn := latchkeytest.MustDSN(t, engine)
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					db := latchkeytest.NewDB(dsn)
					if errs[i] = db.Open(context.Background()); errs[i] == nil {
						errs[i] = db.Close()
					}
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("replica %d: %v", i, err)
				}
			}
		})
	}
}

func TestDB_OpenMemoryRefused(t *testing.T) {
	t.Parallel()
	if err := sqldb.NewDB(":memory:").Open(context.Background()); err == nil {
		t.Fatal("expected error for :memory:")
	}
}

// Two read transactions run side by side, and beside a writer: readers
// must not take SQLite's write lock.
func TestDB_ReadersDoNotBlock(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, _ *latchkeytest.Clock) {
		ctx := context.Background()
		w, err := db.BeginTx(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Rollback()
		if _, err := w.ExecContext(ctx, `INSERT INTO tenants (id, slug, name, created_at) VALUES (?, ?, ?, ?)`,
			"00000000-0000-4000-8000-000000000001", "t1", "T1", sqldb.Time(w.Now())); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			r1, err := db.BeginTx(ctx, false)
			if err != nil {
				done <- err
				return
			}
			defer r1.Rollback()
			r2, err := db.BeginTx(ctx, false)
			if err != nil {
				done <- err
				return
			}
			defer r2.Rollback()
			var n int
			done <- r2.QueryRowContext(ctx, `SELECT COUNT(*) FROM tenants`).Scan(&n)
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("readers blocked behind a writer")
		}
	})
}

// Readers cannot write, even by mistake.
func TestDB_ReadTxIsReadOnly(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, _ *latchkeytest.Clock) {
		ctx := context.Background()
		r, err := db.BeginTx(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Rollback()
		if _, err := r.ExecContext(ctx, `INSERT INTO tenants (id, slug, name, created_at) VALUES (?, ?, ?, ?)`,
			"00000000-0000-4000-8000-000000000002", "t2", "T2", sqldb.Time(r.Now())); err == nil {
			t.Fatal("write in a read transaction succeeded")
		}
	})
}

func TestDB_Reopen(t *testing.T) {
	t.Parallel()
	dsn := latchkeytest.MustDSN(t, "sqlite")
	for i := 0; i < 2; i++ {
		db := sqldb.NewDB(dsn)
		if err := db.Open(context.Background()); err != nil {
			t.Fatalf("open #%d: %v", i, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
