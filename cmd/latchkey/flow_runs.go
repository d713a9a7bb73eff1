package main

import (
	"context"
	"time"

	"github.com/spf13/pflag"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/sqldb"
)

// flowRunFlags registers the server's flow-run options.
func (m *Main) flowRunFlags(fs *pflag.FlagSet) {
	if m.FlowRunHeartbeatTimeout == 0 {
		m.FlowRunHeartbeatTimeout = latchkey.DefaultFlowRunHeartbeatTimeout
	}
	fs.DurationVar(&m.FlowRunHeartbeatTimeout, "flow-run-heartbeat-timeout", m.FlowRunHeartbeatTimeout,
		"mark a Submitted or Running flow run Failed (lost contact) after this long without a heartbeat")
}

// startFlowRunSweeper starts marking flow runs whose heartbeats stopped as
// having lost contact, every FlowRunSweepInterval (default: a tenth of the
// timeout, between 1 s and 30 s), and deleting expired refresh tokens,
// sessions and password-reset links every ten minutes. Every replica may
// run it: the updates are conditional, so a run is marked once.
func (m *Main) startFlowRunSweeper(runs *sqldb.FlowRunService) {
	timeout := m.FlowRunHeartbeatTimeout
	if timeout <= 0 {
		timeout = latchkey.DefaultFlowRunHeartbeatTimeout
	}
	every := m.FlowRunSweepInterval
	if every <= 0 {
		every = min(max(timeout/10, time.Second), 30*time.Second)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	m.stopSweeper = func() { cancel(); <-done }
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		var lastCleanup time.Time // zero: clean up on the first tick
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			n, err := runs.MarkLostFlowRuns(ctx, timeout)
			if err != nil && ctx.Err() == nil {
				m.Logger.Error("marking flow runs that lost contact", "error", err)
			} else if n > 0 {
				m.Logger.Warn("marked flow runs as having lost contact (no heartbeat)", "runs", n, "timeout", timeout)
			}
			if now := time.Now(); now.Sub(lastCleanup) >= expiredCleanupInterval {
				lastCleanup = now
				if n, err := m.DB.DeleteExpiredCredentials(ctx); err != nil && ctx.Err() == nil {
					m.Logger.Error("deleting expired credentials", "error", err)
				} else if n > 0 {
					m.Logger.Info("deleted expired refresh tokens, sessions and reset links", "rows", n)
				}
			}
		}
	}()
}

// stopFlowRunSweeper stops the sweeper and waits for it, if it runs.
func (m *Main) stopFlowRunSweeper() {
	if m.stopSweeper != nil {
		m.stopSweeper()
		m.stopSweeper = nil
	}
}

// expiredCleanupInterval is how often expired credentials are deleted.
const expiredCleanupInterval = 10 * time.Minute
