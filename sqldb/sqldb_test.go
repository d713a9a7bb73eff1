package sqldb_test

import (
	"context"
	"sync"
	"testing"

	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

func TestDB_Open(t *testing.T) {
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

// Replicas starting at once on one database must apply migrations once and
// all come up.
func TestDB_ConcurrentOpen(t *testing.T) {
	for _, engine := range latchkeytest.Engines() {
		t.Run(engine, func(t *testing.T) {
			dsn := latchkeytest.MustDSN(t, engine)
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					db := sqldb.NewDB(dsn)
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
	if err := sqldb.NewDB(":memory:").Open(context.Background()); err == nil {
		t.Fatal("expected error for :memory:")
	}
}
