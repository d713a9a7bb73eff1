package sqldb_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// replica is one more handle on a database, as another server process
// would open it, with its event listener, cache and services.
type replica struct {
	db     *sqldb.DB
	events *sqldb.EventService
	cache  *sqldb.AuthCache
	auth   *sqldb.AuthService
	keys   *sqldb.APIKeyService
	got    chan latchkey.Event
}

func mustOpenReplica(tb testing.TB, dsn string, tokens latchkey.TokenService) *replica {
	tb.Helper()
	db := latchkeytest.NewDB(dsn)
	if err := db.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	es := sqldb.NewEventService(db)
	es.Heartbeat = 100 * time.Millisecond
	db.Events = es
	r := &replica{db: db, events: es, keys: sqldb.NewAPIKeyService(db), got: make(chan latchkey.Event, 100)}
	// Subscribed before Open: told the service is not listening yet. The
	// cache first, so it has handled each event r.got receives.
	r.cache = sqldb.NewAuthCache(es)
	r.cache.TTL = time.Hour
	tb.Cleanup(r.cache.Close)
	es.Subscribe(func(ev latchkey.Event) { r.got <- ev })
	if ev := r.next(tb); ev.Type != latchkey.EventsInterrupted || !r.cache.Stats().Disabled {
		tb.Fatalf("before Open: got %+v, cache %+v", ev, r.cache.Stats())
	}
	if err := es.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { es.Close() })
	if ev := r.next(tb); ev.Type != latchkey.EventsResumed || r.cache.Stats().Disabled {
		tb.Fatalf("after Open: got %+v, cache %+v", ev, r.cache.Stats())
	}
	r.auth = sqldb.NewAuthService(db, tokens)
	r.auth.Cache = r.cache
	return r
}

// next returns the next event r heard, or fails after five seconds.
func (r *replica) next(tb testing.TB) latchkey.Event {
	tb.Helper()
	select {
	case ev := <-r.got:
		return ev
	case <-time.After(5 * time.Second):
		tb.Fatal("no event within five seconds")
		return latchkey.Event{}
	}
}

// none checks that r heard nothing more within d.
func (r *replica) none(tb testing.TB, d time.Duration) {
	tb.Helper()
	select {
	case ev := <-r.got:
		tb.Fatalf("unexpected event %+v", ev)
	case <-time.After(d):
	}
}

func postgresDSN(t *testing.T) string {
	t.Helper()
	for _, engine := range latchkeytest.Engines() {
		if engine == "postgres" {
			return latchkeytest.MustDSN(t, engine)
		}
	}
	t.Skipf("%s not set", latchkeytest.PostgresDSNEnv)
	return ""
}

func TestEventService_NeedsPostgres(t *testing.T) {
	t.Parallel()
	db := latchkeytest.MustOpenDB(t, "sqlite", nil)
	if err := sqldb.NewEventService(db).Open(context.Background()); err == nil {
		t.Fatal("LISTEN/NOTIFY on SQLite: no error")
	}
}

// A change committed through one replica reaches the other's subscribers
// with every id; the replica that made it delivers it once (on commit, not
// again from its own notification); a rolled-back change is never heard.
func TestEventService_AcrossReplicas(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	clock := latchkeytest.NewClock()
	a := mustOpenReplica(t, dsn, newFakeTokenService(clock))
	b := mustOpenReplica(t, dsn, newFakeTokenService(clock))
	f := latchkeytest.MustBootstrap(t, a.db)
	ctx := latchkeytest.AuthContext(context.Background(), f.Admin, f.Tenant.ID, latchkey.RoleTenantAdmin)
	k := &latchkey.APIKey{Name: "k"}
	if _, err := a.keys.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := a.keys.DeleteAPIKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	want := latchkey.Event{Type: latchkey.EventAPIKeyDeleted, UserID: f.Admin.ID, APIKeyID: k.ID}
	select {
	case ev := <-a.got:
		if ev != want {
			t.Fatalf("a got %+v, want %+v", ev, want)
		}
	default:
		t.Fatal("the replica that deleted the key had not delivered the event when DeleteAPIKey returned")
	}
	if ev := b.next(t); ev != want {
		t.Fatalf("b got %+v, want %+v", ev, want)
	}
	a.none(t, 200*time.Millisecond) // not twice

	// Rolled back: not heard. Then committed: heard, and only that one.
	notifyInTx := func(commit bool, userID string) {
		tx, err := a.db.BeginTx(context.Background(), true)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		payload := `{"o":"test","t":"user_deleted","u":"` + userID + `"}`
		var ch string
		if err := tx.QueryRowContext(context.Background(), `SELECT 'latchkey:' || current_schema()`).Scan(&ch); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(context.Background(), `SELECT pg_notify(?, ?)`, ch, payload); err != nil {
			t.Fatal(err)
		}
		if commit {
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	notifyInTx(false, "rolled-back")
	notifyInTx(true, "committed")
	for _, r := range []*replica{a, b} {
		if ev := r.next(t); ev.Type != latchkey.EventUserDeleted || ev.UserID != "committed" {
			t.Fatalf("got %+v, want the committed event only", ev)
		}
	}
	// Publish outside a transaction reaches both.
	if err := b.events.Publish(context.Background(), latchkey.Event{Type: latchkey.EventSessionsDeleted, UserID: "u9"}); err != nil {
		t.Fatal(err)
	}
	if ev := b.next(t); ev.UserID != "u9" {
		t.Fatalf("b got %+v", ev)
	}
	if ev := a.next(t); ev.UserID != "u9" {
		t.Fatalf("a got %+v", ev)
	}
}

// Replicas in other schemas of the same database are other deployments:
// they do not hear each other.
func TestEventService_SchemaIsolation(t *testing.T) {
	t.Parallel()
	a := mustOpenReplica(t, postgresDSN(t), nil)
	b := mustOpenReplica(t, postgresDSN(t), nil)
	if err := a.events.Publish(context.Background(), latchkey.Event{Type: latchkey.EventUserDeleted, UserID: "u"}); err != nil {
		t.Fatal(err)
	}
	a.next(t)
	b.none(t, 300*time.Millisecond)
}

// When the listening connection dies, subscribers hear EventsInterrupted at
// once (the cache stops serving), then EventsResumed once the service
// listens again (the cache starts from empty), and events flow again.
func TestEventService_Reconnect(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	clock := latchkeytest.NewClock()
	a := mustOpenReplica(t, dsn, newFakeTokenService(clock))
	b := mustOpenReplica(t, dsn, newFakeTokenService(clock))
	a.db.Now = clock.Now
	f := latchkeytest.MustBootstrap(t, a.db)
	if _, err := a.auth.Authenticate(context.Background(), f.AdminKey, ""); err != nil {
		t.Fatal(err)
	}
	if a.cache.Len() == 0 {
		t.Fatal("nothing cached")
	}
	// Subscribing while connected delivers nothing extra.
	a.none(t, 0)

	pid := a.events.BackendPID()
	if pid == 0 || !a.events.Connected() {
		t.Fatal("not listening")
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	if ev := a.next(t); ev.Type != latchkey.EventsInterrupted {
		t.Fatalf("got %+v, want %s", ev, latchkey.EventsInterrupted)
	}
	if ev := a.next(t); ev.Type != latchkey.EventsResumed {
		t.Fatalf("got %+v, want %s", ev, latchkey.EventsResumed)
	}
	if got := a.events.Reconnects(); got != 1 {
		t.Fatalf("reconnects=%d, want 1", got)
	}
	if a.cache.Len() != 0 || a.cache.Stats().Disabled {
		t.Fatalf("after reconnecting: %+v, want an empty, enabled cache", a.cache.Stats())
	}
	if got := a.events.BackendPID(); got == pid || got == 0 {
		t.Fatalf("backend pid %d after reconnecting (was %d)", got, pid)
	}
	// Listening again: b's events reach a.
	if err := b.events.Publish(context.Background(), latchkey.Event{Type: latchkey.EventMembershipChanged, UserID: "u", TenantID: "t"}); err != nil {
		t.Fatal(err)
	}
	if ev := a.next(t); ev.Type != latchkey.EventMembershipChanged {
		t.Fatalf("got %+v after reconnecting", ev)
	}
	// Closing tells subscribers; one arriving afterwards hears so first.
	a.events.Close()
	if ev := a.next(t); ev.Type != latchkey.EventsInterrupted || !a.cache.Stats().Disabled {
		t.Fatalf("after Close: got %+v, cache %+v", ev, a.cache.Stats())
	}
	var first latchkey.Event
	unsub := a.events.Subscribe(func(ev latchkey.Event) { first = ev })
	unsub()
	if first.Type != latchkey.EventsInterrupted {
		t.Fatalf("late subscriber got %+v, want %s", first, latchkey.EventsInterrupted)
	}
}

// Two handles on one PostgreSQL database, caches warm on both: a key
// revoked through one is rejected by the other within a second, and so are
// access tokens minted from it.
func TestAuthCache_AcrossReplicas(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	clock := latchkeytest.NewClock()
	jwt := newFakeTokenService(clock) // shared: both replicas verify the same tokens
	a := mustOpenReplica(t, dsn, jwt)
	b := mustOpenReplica(t, dsn, jwt)
	a.db.Now, b.db.Now = clock.Now, clock.Now
	f := latchkeytest.MustBootstrap(t, a.db)
	ctx := latchkeytest.AuthContext(context.Background(), f.Admin, f.Tenant.ID, latchkey.RoleTenantAdmin)
	k := &latchkey.APIKey{Name: "k"}
	secret, err := a.keys.CreateAPIKey(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	keyAuth, err := a.auth.Authenticate(context.Background(), secret, "")
	if err != nil {
		t.Fatal(err)
	}
	at, err := a.auth.SwitchTenant(latchkey.NewContextWithAuth(context.Background(), keyAuth), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*replica{a, b} {
		for _, cred := range []string{secret, at.AccessToken, secret, at.AccessToken, f.AdminKey} {
			if _, err := r.auth.Authenticate(context.Background(), cred, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	if b.cache.Stats().Hits < 2 {
		t.Fatalf("b's cache is not warm: %+v", b.cache.Stats())
	}
	start := time.Now()
	if err := a.keys.DeleteAPIKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	for _, cred := range []string{secret, at.AccessToken} {
		if _, err := a.auth.Authenticate(context.Background(), cred, ""); latchkey.ErrorCode(err) != latchkey.EUNAUTHENTICATED {
			t.Fatalf("a accepts the revoked credential: %v", err)
		}
	}
	// b hears of the deletion (its cache has handled each event b.got
	// receives), within a second.
	for heard := false; !heard; {
		select {
		case ev := <-b.got:
			heard = ev.Type == latchkey.EventAPIKeyDeleted && ev.APIKeyID == k.ID
		case <-time.After(time.Until(start.Add(time.Second))):
			t.Fatal("b has not heard of the revocation a second later")
		}
	}
	t.Logf("revocation reached the other replica in %v", time.Since(start))
	_, errKey := b.auth.Authenticate(context.Background(), secret, "")
	_, errJWT := b.auth.Authenticate(context.Background(), at.AccessToken, "")
	if latchkey.ErrorCode(errKey) != latchkey.EUNAUTHENTICATED || latchkey.ErrorCode(errJWT) != latchkey.EUNAUTHENTICATED {
		t.Fatalf("b still accepts the revoked key once it has heard of the revocation (key: %v, jwt: %v)", errKey, errJWT)
	}
	for _, r := range []*replica{a, b} {
		if _, err := r.auth.Authenticate(context.Background(), f.AdminKey, ""); err != nil {
			t.Fatalf("another key broke: %v", err)
		}
	}
}
