package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
)

// Failed-authentication counting: the authentication middleware and the
// sign-in form report each failure here; failures are counted in memory
// per kind, identifier, client address and minute, and written to the
// store once a minute (one row per key, whatever the number of attempts).
const (
	failureFlushEvery = time.Minute
	// maxFailureKeys bounds the memory between flushes: past it, failures
	// of new identifiers and addresses are only counted as dropped.
	maxFailureKeys = 10000
)

type failureKey struct {
	kind       latchkey.AuthFailureKind
	identifier string
	addr       string
	minute     time.Time
}

// failureAggregator counts failed authentications and flushes them to
// Store. It implements latchkey.FailureCounter and html.SignInFailures.
type failureAggregator struct {
	Store  latchkey.AuthFailureService
	Now    func() time.Time
	Logger *slog.Logger

	// Retention, if positive, is how long stored counts are kept: each
	// flush deletes the minutes older than that.
	Retention time.Duration

	mu      sync.Mutex
	counts  map[failureKey]*latchkey.AuthFailure
	dropped int

	stop chan struct{}
	done chan struct{}
}

func newFailureAggregator(store latchkey.AuthFailureService, now func() time.Time, logger *slog.Logger) *failureAggregator {
	return &failureAggregator{Store: store, Now: now, Logger: logger, counts: map[failureKey]*latchkey.AuthFailure{}}
}

// FailCredential counts a refused credential by its non-secret identifier.
func (a *failureAggregator) FailCredential(addr, credential string) {
	a.add(latchkey.AuthFailureCredential, latchkey.SecretIdentifier(credential), addr)
}

// FailSignIn counts a refused sign-in by the email tried.
func (a *failureAggregator) FailSignIn(addr, email string) {
	email = latchkey.NormalizeEmail(email)
	if len(email) > 254 {
		email = email[:254]
	}
	a.add(latchkey.AuthFailureSignIn, email, addr)
}

func (a *failureAggregator) add(kind latchkey.AuthFailureKind, identifier, addr string) {
	now := a.Now().UTC()
	k := failureKey{kind: kind, identifier: identifier, addr: addr, minute: now.Truncate(time.Minute)}
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.counts[k]
	if f == nil {
		if len(a.counts) >= maxFailureKeys {
			a.dropped++
			return
		}
		f = &latchkey.AuthFailure{Kind: kind, Identifier: identifier, ClientAddr: addr, Minute: k.minute, FirstAt: now}
		a.counts[k] = f
	}
	f.Count++
	f.LastAt = now
}

// Flush writes the counts so far to the store, then deletes the stored
// ones older than Retention. On failure the counts are lost (and logged):
// counting never holds up authentication.
func (a *failureAggregator) Flush(ctx context.Context) error {
	a.mu.Lock()
	counts, dropped := a.counts, a.dropped
	a.counts, a.dropped = map[failureKey]*latchkey.AuthFailure{}, 0
	a.mu.Unlock()
	if dropped > 0 {
		a.Logger.Warn("failed authentications not counted: too many distinct clients in a minute", "dropped", dropped)
	}
	fs := make([]*latchkey.AuthFailure, 0, len(counts))
	for _, f := range counts {
		fs = append(fs, f)
	}
	if err := a.Store.RecordAuthFailures(ctx, fs); err != nil {
		a.Logger.Error("record failed authentications", "err", latchkey.RedactSecrets(err.Error()), "records", len(fs))
		return err
	}
	if a.Retention > 0 {
		if _, err := a.Store.DeleteAuthFailuresBefore(ctx, a.Now().Add(-a.Retention)); err != nil {
			a.Logger.Error("delete old counts of failed authentications", "err", err)
			return err
		}
	}
	return nil
}

// Start flushes once a minute until Close.
func (a *failureAggregator) Start() {
	a.stop, a.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(a.done)
		t := time.NewTicker(failureFlushEvery)
		defer t.Stop()
		for {
			select {
			case <-a.stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_ = a.Flush(ctx)
				cancel()
			}
		}
	}()
}

// Close stops the flushing and writes what is left.
func (a *failureAggregator) Close(ctx context.Context) error {
	if a.stop != nil {
		close(a.stop)
		<-a.done
		a.stop = nil
	}
	return a.Flush(ctx)
}

// failureFanout tells every counter of each refused credential.
type failureFanout []latchkey.FailureCounter

func (f failureFanout) FailCredential(addr, credential string) {
	for _, c := range f {
		c.FailCredential(addr, credential)
	}
}
