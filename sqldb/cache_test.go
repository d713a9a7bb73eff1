package sqldb_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/inmem"
	"github.com/latchkey/latchkey/sqldb"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func mustNewCache(tb testing.TB) (*sqldb.AuthCache, *inmem.EventService) {
	tb.Helper()
	events := inmem.NewEventService()
	c := sqldb.NewAuthCache(events)
	tb.Cleanup(c.Close)
	return c, events
}

func TestAuthCache_HitAndTTL(t *testing.T) {
	t.Parallel()
	c, _ := mustNewCache(t)
	c.TTL = 10 * time.Second
	owner := &latchkey.User{ID: "u1", Kind: latchkey.UserKindHuman}
	key := &latchkey.APIKey{ID: "k1", UserID: "u1", DefaultTenantID: "t1"}
	c.PutAPIKey(c.Generation(), "secret-1", key, owner, t0)
	c.PutRole(c.Generation(), "u1", "t1", latchkey.RoleUser, t0)

	if k, u := c.APIKey("secret-1", t0.Add(9*time.Second)); k != key || u != owner {
		t.Fatalf("hit: got %v %v", k, u)
	}
	if k, _ := c.APIKey("secret-2", t0); k != nil {
		t.Fatalf("other secret hit %v", k)
	}
	if got, want := c.Role("u1", "t1", t0), latchkey.RoleUser; got != want {
		t.Fatalf("role=%q, want %q", got, want)
	}
	if got := c.Role("u1", "t2", t0); got != "" {
		t.Fatalf("role in another tenant=%q", got)
	}
	// The TTL is the safety net: an entry is not served once it is TTL old.
	if k, _ := c.APIKey("secret-1", t0.Add(10*time.Second)); k != nil {
		t.Fatal("served past its TTL")
	}
	st := c.Stats()
	if st.Hits != 2 || st.Misses != 3 || st.Entries != 2 {
		t.Fatalf("stats=%+v", st)
	}
}

func TestAuthCache_InvalidateUser(t *testing.T) {
	t.Parallel()
	c, events := mustNewCache(t)
	u1 := &latchkey.User{ID: "u1"}
	u2 := &latchkey.User{ID: "u2"}
	g := c.Generation()
	c.PutAPIKey(g, "k1a", &latchkey.APIKey{ID: "k1a", UserID: "u1"}, u1, t0)
	c.PutAPIKey(g, "k1b", &latchkey.APIKey{ID: "k1b", UserID: "u1"}, u1, t0)
	c.PutAPIKey(g, "k2", &latchkey.APIKey{ID: "k2", UserID: "u2"}, u2, t0)
	c.PutRole(g, "u1", "t1", latchkey.RoleTenantAdmin, t0)
	c.PutRole(g, "u1", "t2", latchkey.RoleUser, t0)
	c.PutRole(g, "u2", "t1", latchkey.RoleUser, t0)
	if got, want := c.Len(), 6; got != want {
		t.Fatalf("len=%d, want %d", got, want)
	}

	// Through the event bus, as the store publishes it.
	events.Publish(t.Context(), latchkey.Event{Type: latchkey.EventAPIKeyDeleted, UserID: "u1", APIKeyID: "k1a"})
	for _, s := range []string{"k1a", "k1b"} {
		if k, _ := c.APIKey(s, t0); k != nil {
			t.Errorf("%s still cached after its owner's event", s)
		}
	}
	if c.Role("u1", "t1", t0) != "" || c.Role("u1", "t2", t0) != "" {
		t.Error("u1's roles still cached")
	}
	// Other users are untouched.
	if k, _ := c.APIKey("k2", t0); k == nil || c.Role("u2", "t1", t0) != latchkey.RoleUser {
		t.Error("u2's entries were dropped")
	}
	if got, want := c.Len(), 2; got != want {
		t.Fatalf("len=%d, want %d", got, want)
	}

	// Every revocation event type invalidates its user.
	for _, typ := range []latchkey.EventType{latchkey.EventAPITokenDeleted, latchkey.EventUserDeleted,
		latchkey.EventMembershipChanged, latchkey.EventSessionsDeleted} {
		c.PutRole(c.Generation(), "u3", "t1", latchkey.RoleUser, t0)
		c.Handle(latchkey.Event{Type: typ, UserID: "u3"})
		if c.Role("u3", "t1", t0) != "" {
			t.Errorf("%s did not invalidate", typ)
		}
	}
	// An event of a type this version does not know flushes everything.
	c.Handle(latchkey.Event{Type: "tenant_deleted_in_a_later_version", TenantID: "t1"})
	if got := c.Len(); got != 0 {
		t.Fatalf("unknown event left %d entries", got)
	}
}

// A lookup that read the database before an invalidation must not store
// what it read after the invalidation, else a revoked credential would be
// cached again, for a whole TTL.
func TestAuthCache_InvalidationRace(t *testing.T) {
	t.Parallel()
	c, events := mustNewCache(t)
	owner := &latchkey.User{ID: "u1"}

	// The lookup starts (and reads the key row, still there) ...
	g := c.Generation()
	// ... meanwhile the key is deleted and the deletion's event handled ...
	events.Publish(t.Context(), latchkey.Event{Type: latchkey.EventAPIKeyDeleted, UserID: "u1", APIKeyID: "k1"})
	// ... then the lookup stores what it read.
	c.PutAPIKey(g, "k1", &latchkey.APIKey{ID: "k1", UserID: "u1"}, owner, t0)
	c.PutRole(g, "u1", "t1", latchkey.RoleUser, t0)
	if k, _ := c.APIKey("k1", t0); k != nil {
		t.Fatal("a lookup older than the invalidation re-populated the revoked key")
	}
	if c.Role("u1", "t1", t0) != "" {
		t.Fatal("a lookup older than the invalidation re-populated the role")
	}
	// The other order: stored first, then invalidated.
	g = c.Generation()
	c.PutAPIKey(g, "k1", &latchkey.APIKey{ID: "k1", UserID: "u1"}, owner, t0)
	if k, _ := c.APIKey("k1", t0); k == nil {
		t.Fatal("control: a lookup with the current generation was not stored")
	}
	c.Handle(latchkey.Event{Type: latchkey.EventAPIKeyDeleted, UserID: "u1", APIKeyID: "k1"})
	if k, _ := c.APIKey("k1", t0); k != nil {
		t.Fatal("stored entry survived the invalidation")
	}
}

func TestAuthCache_SizeBound(t *testing.T) {
	t.Parallel()
	c, _ := mustNewCache(t)
	c.MaxEntries = 3
	for i := range 5 {
		c.PutRole(c.Generation(), fmt.Sprintf("u%d", i), "t", latchkey.RoleUser, t0.Add(time.Duration(i)*time.Millisecond))
		if got := c.Len(); got > 3 {
			t.Fatalf("after %d puts len=%d, want <= 3", i+1, got)
		}
	}
	// The oldest go first.
	for i := range 5 {
		cached := c.Role(fmt.Sprintf("u%d", i), "t", t0) != ""
		if want := i >= 2; cached != want {
			t.Errorf("u%d cached=%v, want %v", i, cached, want)
		}
	}
	// Replacing an entry does not grow the cache, and drops nothing else.
	c.PutRole(c.Generation(), "u4", "t", latchkey.RoleTenantAdmin, t0)
	if got, want := c.Len(), 3; got != want {
		t.Fatalf("len=%d, want %d", got, want)
	}
	if c.Role("u2", "t", t0) == "" || c.Role("u4", "t", t0) != latchkey.RoleTenantAdmin {
		t.Fatal("replacement lost entries")
	}
	// Expired entries are dropped as new ones come in.
	c.TTL = time.Minute
	c.PutRole(c.Generation(), "late", "t", latchkey.RoleUser, t0.Add(2*time.Minute))
	if got, want := c.Len(), 1; got != want {
		t.Fatalf("len=%d after expiry, want %d", got, want)
	}
}

// While events may be lost the cache serves and stores nothing; when they
// flow again it starts from empty.
func TestAuthCache_InterruptedAndResumed(t *testing.T) {
	t.Parallel()
	c, events := mustNewCache(t)
	c.PutRole(c.Generation(), "u1", "t1", latchkey.RoleUser, t0)
	events.Publish(t.Context(), latchkey.Event{Type: latchkey.EventsInterrupted})
	if c.Role("u1", "t1", t0) != "" || !c.Stats().Disabled {
		t.Fatalf("interrupted: still serving; stats=%+v", c.Stats())
	}
	c.PutRole(c.Generation(), "u1", "t1", latchkey.RoleUser, t0)
	if c.Role("u1", "t1", t0) != "" {
		t.Fatal("stored while interrupted")
	}
	g := c.Generation() // a lookup that read while interrupted
	events.Publish(t.Context(), latchkey.Event{Type: latchkey.EventsResumed})
	c.PutRole(g, "u1", "t1", latchkey.RoleUser, t0)
	if c.Role("u1", "t1", t0) != "" {
		t.Fatal("a lookup from before the resumption was stored")
	}
	c.PutRole(c.Generation(), "u1", "t1", latchkey.RoleUser, t0)
	if c.Role("u1", "t1", t0) == "" || c.Stats().Disabled {
		t.Fatal("resumed: not caching")
	}
	// After Close the cache neither hears events nor stores.
	c.Close()
	c.PutRole(c.Generation(), "u1", "t1", latchkey.RoleUser, t0)
	if c.Len() != 0 {
		t.Fatal("stored after Close")
	}
}

// Concurrent stores, hits and invalidations keep the cache consistent
// (run with -race) and within its bound.
func TestAuthCache_Concurrent(t *testing.T) {
	t.Parallel()
	c, events := mustNewCache(t)
	c.MaxEntries = 50
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				u := fmt.Sprintf("u%d", (w*7+i)%20)
				switch i % 5 {
				case 0:
					events.Publish(t.Context(), latchkey.Event{Type: latchkey.EventMembershipChanged, UserID: u, TenantID: "t"})
				case 1:
					c.PutAPIKey(c.Generation(), fmt.Sprintf("s%d-%d", w, i), &latchkey.APIKey{ID: "k", UserID: u}, &latchkey.User{ID: u}, t0)
				default:
					c.PutRole(c.Generation(), u, fmt.Sprintf("t%d", i%7), latchkey.RoleUser, t0)
					c.Role(u, "t1", t0)
				}
			}
		}()
	}
	wg.Wait()
	if got := c.Len(); got > 50 {
		t.Fatalf("len=%d over the bound", got)
	}
	// Every user's invalidation still finds all its entries.
	for i := range 20 {
		c.Handle(latchkey.Event{Type: latchkey.EventUserDeleted, UserID: fmt.Sprintf("u%d", i)})
	}
	if got := c.Len(); got != 0 {
		t.Fatalf("len=%d after invalidating every user", got)
	}
}
