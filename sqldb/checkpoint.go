package sqldb

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"time"
)

// SQLite checkpointing. In WAL mode a commit appends pages to the WAL, and a
// checkpoint copies them back into the database file (and syncs it). By
// default SQLite checkpoints inside the commit that takes the WAL past 1,000
// pages, on the committing connection: here the one write connection, so
// every writer waits while pages are copied and the file is synced. Instead,
// a goroutine with a connection of its own runs PASSIVE checkpoints, which
// never block the writer or readers, soon after writes commit; the write
// connection's own automatic checkpoint stays on at a higher threshold
// (writerAutoCheckpoint) as a bound on the WAL's size. Under a steady stream
// of writes the background checkpoint is always a little behind, so the WAL
// cannot start over from its beginning on its own; when it reaches that
// bound, the writer's checkpoint finds nearly every page already copied,
// copies the rest and lets the next write restart the WAL.
const (
	// writerAutoCheckpoint is wal_autocheckpoint on the write connection, in
	// pages (4 KiB by default): 16 MiB of WAL.
	writerAutoCheckpoint = 4000

	// checkpointEvery is the least time between two background checkpoints.
	checkpointEvery = 100 * time.Millisecond
)

// checkpointer runs PASSIVE checkpoints on its own connection after writes.
type checkpointer struct {
	db     *sql.DB
	logger *slog.Logger
	kick   chan struct{} // a write committed; buffered, 1
	stop   chan struct{}
	done   chan struct{}

	mu    sync.Mutex
	stats CheckpointStats
	ran   chan struct{} // if not nil, closed when the next checkpoint is done (tests wait on it)
}

// CheckpointStats counts the background checkpoints of an SQLite DB.
type CheckpointStats struct {
	Runs   int64 // checkpoints run
	Busy   int64 // of which found the write connection checkpointing, and did nothing
	Errors int64 // of which failed
	// WALFrames and Backfilled are the last checkpoint's figures: frames
	// in the WAL, and how many of them are now in the database file.
	WALFrames, Backfilled int64
}

func newCheckpointer(db *sql.DB, logger *slog.Logger) *checkpointer {
	c := &checkpointer{db: db, logger: logger, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// committed tells the checkpointer that a write transaction committed. It
// never blocks.
func (c *checkpointer) committed() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTimer(0)
	<-t.C
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		}
		c.checkpoint()
		// Let writes accumulate: a checkpoint per commit would copy and
		// sync the same hot pages over and over.
		t.Reset(checkpointEvery)
		select {
		case <-c.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (c *checkpointer) checkpoint() {
	var busy, log, done int64
	err := c.db.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &done)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Runs++
	switch {
	case err != nil:
		c.stats.Errors++
		c.logger.Warn("background checkpoint failed", "error", err)
	case busy != 0:
		c.stats.Busy++
	default:
		c.stats.WALFrames, c.stats.Backfilled = log, done
	}
	if c.ran != nil {
		close(c.ran)
		c.ran = nil
	}
}

// close stops the goroutine and closes the connection.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}

func (c *checkpointer) snapshot() CheckpointStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// CheckpointStats returns the background checkpointer's counters; zero on
// PostgreSQL.
func (db *DB) CheckpointStats() CheckpointStats {
	if db.ckpt == nil {
		return CheckpointStats{}
	}
	return db.ckpt.snapshot()
}
