package sqldb_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// runBatched runs n writes through b concurrently, the first holding its
// transaction for a while so that the others queue behind it. Write i
// inserts i into batch_marker, or fails if bad(i). It returns each write's
// error and how many writes each transaction ran.
func runBatched(t *testing.T, db *sqldb.DB, b *sqldb.WriteBatcher, n int, bad func(i int) bool) ([]error, map[*sqldb.Tx]int) {
	t.Helper()
	var (
		mu  sync.Mutex
		txs = map[*sqldb.Tx]int{}
		wg  sync.WaitGroup
	)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			if i > 0 {
				time.Sleep(5 * time.Millisecond) // queue behind the first
			}
			errs[i] = b.Do(context.Background(), db, func(ctx context.Context, tx *sqldb.Tx) error {
				mu.Lock()
				txs[tx]++
				mu.Unlock()
				if i == 0 {
					time.Sleep(100 * time.Millisecond) // the others queue meanwhile
				}
				if bad(i) {
					_, err := tx.ExecContext(ctx, `INSERT INTO no_such_table (x) VALUES (?)`, i)
					return err
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO batch_marker (n) VALUES (?)`, i)
				return err
			})
		})
	}
	wg.Wait()
	return errs, txs
}

// Concurrent writes share transactions, every one of them is committed,
// and each returns only its own result: a failing write fails only its
// caller.
func TestWriteBatcher(t *testing.T) {
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		mustExecSQL(t, db, `CREATE TABLE batch_marker (n INTEGER NOT NULL)`)
		var b sqldb.WriteBatcher

		errs, txs := runBatched(t, db, &b, 40, func(int) bool { return false })
		for i, err := range errs {
			if err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		}
		if got, want := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM batch_marker`), 40; got != want {
			t.Errorf("%d rows committed, want %d", got, want)
		}
		if len(txs) >= 40 {
			t.Errorf("no transaction held more than one write: %d transactions for 40 writes", len(txs))
		}

		mustExecSQL(t, db, `DELETE FROM batch_marker`)
		bad := func(i int) bool { return i%5 == 4 }
		errs, _ = runBatched(t, db, &b, 20, bad)
		for i, err := range errs {
			if bad(i) != (err != nil) {
				t.Errorf("write %d: err=%v, want failure %v", i, err, bad(i))
			}
		}
		if got, want := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM batch_marker`), 16; got != want {
			t.Errorf("%d rows committed, want %d", got, want)
		}
	})
}
