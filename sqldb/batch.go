package sqldb

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// maxWriteBatch bounds the writes one transaction of a writeBatcher holds.
const maxWriteBatch = 128

// writeBatcher runs independent small writes of concurrent requests in
// shared write transactions (group commit): on SQLite, where one
// connection writes at a time, and on PostgreSQL, where every commit waits
// for its flush, a transaction's BEGIN and COMMIT cost far more than one
// INSERT. Each write still returns only after the transaction holding it
// committed. If a write of a batch fails, the batch is rolled back and
// each of its writes runs again in a transaction of its own, so that it
// fails only its own request. The zero value is ready to use.
//
// There is no background goroutine: the first caller to find the batcher
// idle leads, running the batches queued meanwhile one after another; after
// its own batch it hands the lead to the oldest waiting caller, so that no
// request waits for more than its own batch and the one before it.
type writeBatcher struct {
	mu      sync.Mutex
	pending []*batchedWrite
	leading bool
}

// batchedWrite is one queued write. done receives its result, or errLead
// to make its caller the leader.
type batchedWrite struct {
	fn   func(ctx context.Context, tx *Tx) error
	done chan error
}

var errLead = errors.New("lead")

// do runs fn in a write transaction of db, shared with other writes queued
// at the same time, and returns fn's error or the commit's.
func (b *writeBatcher) do(ctx context.Context, db *DB, fn func(ctx context.Context, tx *Tx) error) error {
	w := &batchedWrite{fn: fn, done: make(chan error, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, w)
	lead := !b.leading
	b.leading = true
	b.mu.Unlock()
	if !lead {
		if err := <-w.done; err != errLead {
			return err
		}
	}
	// Leading: run the batch holding w (w is first in the queue now), then
	// hand over.
	b.mu.Lock()
	n := min(len(b.pending), maxWriteBatch)
	batch := b.pending[:n:n]
	b.pending = b.pending[n:]
	b.mu.Unlock()
	// The batch must not fail because this caller's request ended.
	runWriteBatch(context.WithoutCancel(ctx), db, batch)
	b.mu.Lock()
	if len(b.pending) > 0 {
		b.pending[0].done <- errLead
	} else {
		b.leading = false
		b.pending = nil
	}
	b.mu.Unlock()
	return <-w.done
}

// runWriteBatch runs batch in one transaction, or each write alone if that
// fails, and sends every write its result.
func runWriteBatch(ctx context.Context, db *DB, batch []*batchedWrite) {
	err := func() error {
		tx, err := db.BeginTx(ctx, true)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for _, w := range batch {
			if err := w.fn(ctx, tx); err != nil {
				return err
			}
		}
		return tx.Commit()
	}()
	if err == nil {
		for _, w := range batch {
			w.done <- nil
		}
		return
	}
	if len(batch) == 1 {
		batch[0].done <- err
		return
	}
	for _, w := range batch {
		w.done <- func() error {
			tx, err := db.BeginTx(ctx, true)
			if err != nil {
				return fmt.Errorf("begin tx: %w", err)
			}
			defer tx.Rollback()
			if err := w.fn(ctx, tx); err != nil {
				return err
			}
			return tx.Commit()
		}()
	}
}
