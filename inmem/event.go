// Package inmem implements Latchkey services in process memory, for a
// single node: an event bus that delivers each event to the subscribers of
// this process only.
package inmem

import (
	"context"
	"slices"
	"sync"

	"github.com/latchkey/latchkey"
)

var _ latchkey.EventService = (*EventService)(nil)

// EventService is a latchkey.EventService for one process (SQLite
// deployments, which run a single replica). Publish calls every subscriber
// synchronously, in the order they subscribed, so an event has been
// handled when Publish returns. The zero value is ready to use.
type EventService struct {
	mu   sync.RWMutex
	subs []subscriber
	next uint64
}

type subscriber struct {
	id uint64
	fn func(latchkey.Event)
}

// NewEventService returns an empty event bus.
func NewEventService() *EventService { return &EventService{} }

// Publish calls every subscriber with ev, in the caller's goroutine, and
// returns once they all have. It never fails.
func (s *EventService) Publish(_ context.Context, ev latchkey.Event) error {
	s.mu.RLock()
	subs := s.subs // never modified in place: see Subscribe
	s.mu.RUnlock()
	// Called outside the lock, so a subscriber may (un)subscribe or publish.
	for _, sub := range subs {
		sub.fn(ev)
	}
	return nil
}

// Subscribe calls fn for every event published from now on, until
// unsubscribe is called (calling it again does nothing).
func (s *EventService) Subscribe(fn func(latchkey.Event)) (unsubscribe func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.next
	s.next++
	// Copy on write, so Publish can call a snapshot without the lock.
	s.subs = append(slices.Clip(s.subs), subscriber{id, fn})
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.subs = slices.DeleteFunc(slices.Clone(s.subs), func(sub subscriber) bool { return sub.id == id })
	}
}
