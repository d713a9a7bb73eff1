package inmem_test

import (
	"context"
	"sync"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/inmem"
)

func TestEventService_PublishIsSynchronous(t *testing.T) {
	t.Parallel()
	s := inmem.NewEventService()
	var got []latchkey.Event
	unsub := s.Subscribe(func(ev latchkey.Event) { got = append(got, ev) })
	ev := latchkey.Event{Type: latchkey.EventAPIKeyDeleted, UserID: "u1", APIKeyID: "k1"}
	if err := s.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	// Delivered before Publish returned: no waiting.
	if len(got) != 1 || got[0] != ev {
		t.Fatalf("got %+v, want [%+v]", got, ev)
	}
	unsub()
	unsub() // idempotent
	if err := s.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("delivered after unsubscribe: %+v", got)
	}
}

func TestEventService_EverySubscriber(t *testing.T) {
	t.Parallel()
	var s inmem.EventService // the zero value works
	var a, b int
	s.Subscribe(func(latchkey.Event) { a++ })
	unsubB := s.Subscribe(func(latchkey.Event) { b++ })
	s.Publish(context.Background(), latchkey.Event{Type: latchkey.EventMembershipChanged, UserID: "u", TenantID: "t"})
	unsubB()
	s.Publish(context.Background(), latchkey.Event{Type: latchkey.EventMembershipChanged, UserID: "u", TenantID: "t"})
	if got, want := a, 2; got != want {
		t.Fatalf("a=%d, want %d", got, want)
	}
	if got, want := b, 1; got != want {
		t.Fatalf("b=%d, want %d", got, want)
	}
}

// A subscriber may publish or unsubscribe from inside its handler without
// deadlocking, and concurrent use is race-free (run with -race).
func TestEventService_Reentrant(t *testing.T) {
	t.Parallel()
	s := inmem.NewEventService()
	var mu sync.Mutex
	n := 0
	var unsub func()
	unsub = s.Subscribe(func(ev latchkey.Event) {
		mu.Lock()
		n++
		mu.Unlock()
		if ev.Type == latchkey.EventUserDeleted {
			s.Publish(context.Background(), latchkey.Event{Type: latchkey.EventSessionsDeleted, UserID: ev.UserID})
			unsub()
		}
	})
	s.Publish(context.Background(), latchkey.Event{Type: latchkey.EventUserDeleted, UserID: "sa"})
	if n != 2 {
		t.Fatalf("n=%d, want 2 (the event and the one its handler published)", n)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := s.Subscribe(func(latchkey.Event) {})
			s.Publish(context.Background(), latchkey.Event{Type: latchkey.EventAPITokenDeleted, UserID: "u"})
			u()
		}()
	}
	wg.Wait()
	if n != 2 {
		t.Fatalf("unsubscribed handler still called: n=%d", n)
	}
}
