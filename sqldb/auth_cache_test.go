package sqldb_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/inmem"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// mustEvents sets db.Events as the server does: LISTEN/NOTIFY on
// PostgreSQL, the in-process bus on SQLite.
func mustEvents(tb testing.TB, db *sqldb.DB) latchkey.EventService {
	tb.Helper()
	if !db.Postgres() {
		db.Events = inmem.NewEventService()
		return db.Events
	}
	es := sqldb.NewEventService(db)
	if err := es.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { es.Close() })
	db.Events = es
	return es
}

// newCachedEnv is newCredEnv with the cache on. Its TTL is long, so that
// only events (and expiry) end what it holds.
func newCachedEnv(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) (*credEnv, *sqldb.AuthCache) {
	t.Helper()
	events := mustEvents(t, db)
	e := newCredEnv(t, db, clock)
	c := sqldb.NewAuthCache(events)
	c.TTL = 24 * time.Hour
	t.Cleanup(c.Close)
	e.auth.Cache = c
	return e, c
}

// mustWarm authenticates credential until the cache answers it alone, and
// returns the caller's context.
func mustWarm(tb testing.TB, e *credEnv, c *sqldb.AuthCache, credential, tenantID string) context.Context {
	tb.Helper()
	e.mustAuthenticate(tb, credential, tenantID)
	before := c.Stats()
	ctx := e.mustAuthenticate(tb, credential, tenantID)
	if after := c.Stats(); after.Misses != before.Misses || after.Hits == before.Hits {
		tb.Fatalf("second authentication was not answered from the cache: before %+v, after %+v", before, after)
	}
	return ctx
}

// mustReject checks that credential is refused with a message containing msg.
func mustReject(tb testing.TB, e *credEnv, credential, tenantID, msg string) {
	tb.Helper()
	_, err := e.auth.Authenticate(context.Background(), credential, tenantID)
	expectCode(tb, err, latchkey.EUNAUTHENTICATED, msg)
}

// The cache really answers: a row deleted behind the services' back (no
// event) is still accepted from the cache, and the event alone rejects it.
// This is what makes the tests below able to fail.
func TestAuthCache_ServesFromCacheUntilEvent(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		e, c := newCachedEnv(t, db, clock)
		adminCtx := mustWarm(t, e, c, e.f.AdminKey, "")
		k, secret := e.mustCreateKey(t, adminCtx, "k", "")
		keyCtx := mustWarm(t, e, c, secret, "")
		at := e.mustSwitchTenant(t, keyCtx, "")
		mustWarm(t, e, c, at.AccessToken, "")

		latchkeytest.MustExec(t, db, `DELETE FROM api_keys WHERE id = ?`, k.ID)
		e.mustAuthenticate(t, secret, "")
		e.mustAuthenticate(t, at.AccessToken, "")

		if err := db.Events.Publish(context.Background(), latchkey.Event{Type: latchkey.EventAPIKeyDeleted, UserID: e.f.Admin.ID, APIKeyID: k.ID}); err != nil {
			t.Fatal(err)
		}
		mustReject(t, e, secret, "", "Invalid API key.")
		mustReject(t, e, at.AccessToken, "", "revoked")
		e.mustAuthenticate(t, e.f.AdminKey, "")
	})
}

// Every revocation is rejected on the same replica as soon as the revoking
// call returns, with the cache warm; other credentials keep working.
func TestAuthCache_RevocationIsImmediate(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		e, c := newCachedEnv(t, db, clock)
		t1 := e.f.Tenant
		adminCtx := mustWarm(t, e, c, e.f.AdminKey, "")
		bystander := latchkeytest.MustCreateMember(t, db, t1.ID, "bystander@example.com", latchkey.RoleUser)
		_, bystanderKey := e.mustCreateKey(t, latchkeytest.AuthContext(context.Background(), bystander, t1.ID, latchkey.RoleUser), "b", "")
		mustWarm(t, e, c, bystanderKey, "")
		othersStillWork := func(t *testing.T) {
			t.Helper()
			mustWarm(t, e, c, e.f.AdminKey, "")
			mustWarm(t, e, c, bystanderKey, "")
		}

		t.Run("api key", func(t *testing.T) {
			k, secret := e.mustCreateKey(t, adminCtx, "k", "")
			at := e.mustSwitchTenant(t, mustWarm(t, e, c, secret, ""), "")
			mustWarm(t, e, c, at.AccessToken, "")
			if err := e.keys.DeleteAPIKey(adminCtx, k.ID); err != nil {
				t.Fatal(err)
			}
			mustReject(t, e, secret, "", "Invalid API key.")
			mustReject(t, e, at.AccessToken, "", "revoked")
			othersStillWork(t)
		})

		t.Run("api token", func(t *testing.T) {
			tok, secret := e.mustCreateToken(t, adminCtx, "t", latchkey.TokenScopeUser)
			at := e.mustSwitchTenant(t, mustWarm(t, e, c, secret, ""), "")
			mustWarm(t, e, c, at.AccessToken, "")
			if err := e.tokens.DeleteAPIToken(adminCtx, tok.ID); err != nil {
				t.Fatal(err)
			}
			mustReject(t, e, secret, "", "Invalid API token.")
			mustReject(t, e, at.AccessToken, "", "revoked")
			othersStillWork(t)
		})

		t.Run("service account", func(t *testing.T) {
			sas := sqldb.NewServiceAccountService(db)
			sa := &latchkey.ServiceAccount{Name: "agent"}
			if err := sas.CreateServiceAccount(adminCtx, sa); err != nil {
				t.Fatal(err)
			}
			_, secret := e.mustCreateKey(t, adminCtx, "agent key", sa.ID)
			at := e.mustSwitchTenant(t, mustWarm(t, e, c, secret, ""), "")
			mustWarm(t, e, c, at.AccessToken, "")
			if err := sas.DeleteServiceAccount(adminCtx, sa.ID); err != nil {
				t.Fatal(err)
			}
			mustReject(t, e, secret, "", "Invalid API key.")
			mustReject(t, e, at.AccessToken, "", "revoked")
			othersStillWork(t)
		})

		t.Run("membership", func(t *testing.T) {
			t2 := latchkeytest.MustCreateTenant(t, db, "two", nil)
			u := latchkeytest.MustCreateMember(t, db, t1.ID, "member@example.com", latchkey.RoleUser)
			latchkeytest.MustCreateMember(t, db, t2.ID, "member@example.com", latchkey.RoleUser)
			_, secret := e.mustCreateKey(t, latchkeytest.AuthContext(context.Background(), u, t1.ID, latchkey.RoleUser), "k", "")
			keyCtx := mustWarm(t, e, c, secret, "")
			at := e.mustSwitchTenant(t, keyCtx, "")
			mustWarm(t, e, c, at.AccessToken, "")
			mustWarm(t, e, c, secret, t2.ID)

			// A role change is seen at once.
			ms := sqldb.NewMembershipService(db)
			mid := mustMembershipID(t, db, u.ID, t1.ID)
			if _, err := ms.UpdateMembershipRole(adminCtx, mid, latchkey.RoleReadOnlyUser); err != nil {
				t.Fatal(err)
			}
			for _, cred := range []string{secret, at.AccessToken} {
				if a, err := e.auth.Authenticate(context.Background(), cred, ""); err != nil {
					t.Fatal(err)
				} else if a.Role != latchkey.RoleReadOnlyUser {
					t.Fatalf("role after the change=%q, want %q", a.Role, latchkey.RoleReadOnlyUser)
				}
			}
			mustWarm(t, e, c, secret, "")
			mustWarm(t, e, c, at.AccessToken, "")

			// So is a removal, in that tenant only.
			if err := ms.DeleteMembership(adminCtx, mid); err != nil {
				t.Fatal(err)
			}
			mustReject(t, e, secret, t1.ID, "Not a member of tenant "+t1.ID)
			mustReject(t, e, at.AccessToken, "", "Not a member of tenant "+t1.ID)
			mustWarm(t, e, c, secret, t2.ID)
			othersStillWork(t)
		})

		t.Run("sessions", func(t *testing.T) {
			u := latchkeytest.MustCreateMember(t, db, t1.ID, "web@example.com", latchkey.RoleUser)
			s1, _, err := e.auth.CreateSession(context.Background(), u.ID)
			if err != nil {
				t.Fatal(err)
			}
			s2, _, err := e.auth.CreateSession(context.Background(), u.ID)
			if err != nil {
				t.Fatal(err)
			}
			sessCtx := mustWarm(t, e, c, s1, "")
			mustWarm(t, e, c, s2, "")
			if err := e.auth.DeleteSession(sessCtx, latchkey.AuthFromContext(sessCtx).SessionID); err != nil {
				t.Fatal(err)
			}
			mustReject(t, e, s1, "", "Invalid session.")
			mustWarm(t, e, c, s2, "")

			// A password reset signs the user out everywhere.
			us := sqldb.NewUserService(db)
			us.PasswordParams = latchkeytest.FastPasswordParams()
			reset, _, err := us.CreatePasswordReset(adminCtx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := us.ResetPassword(context.Background(), reset, "correct horse battery"); err != nil {
				t.Fatal(err)
			}
			mustReject(t, e, s2, "", "Invalid session.")
			othersStillWork(t)
		})
	})
}

// Expiry needs no event: it is checked on every hit against the cached
// expires_at. And a busy cached key still records its use once a minute.
func TestAuthCache_ExpiryAndLastUsed(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		e, c := newCachedEnv(t, db, clock)
		adminCtx := e.mustAuthenticate(t, e.f.AdminKey, "")
		exp := clock.Now().Add(time.Hour)
		k := &latchkey.APIKey{Name: "short", ExpiresAt: &exp}
		secret, err := e.keys.CreateAPIKey(adminCtx, k)
		if err != nil {
			t.Fatal(err)
		}
		start := clock.Now()
		mustWarm(t, e, c, secret, "")
		if got := lastUsedAt(t, db, "api_keys", "last_used_at", k.ID); !got.Equal(start) {
			t.Fatalf("last_used_at=%v, want %v", got, start)
		}
		clock.Add(59 * time.Second)
		mustWarm(t, e, c, secret, "")
		if got := lastUsedAt(t, db, "api_keys", "last_used_at", k.ID); !got.Equal(start) {
			t.Fatalf("written within the minute: last_used_at=%v", got)
		}
		clock.Add(time.Second)
		mustWarm(t, e, c, secret, "")
		if got, want := lastUsedAt(t, db, "api_keys", "last_used_at", k.ID), start.Add(time.Minute); !got.Equal(want) {
			t.Fatalf("last_used_at=%v, want %v", got, want)
		}

		clock.Set(exp.Add(-time.Second))
		mustWarm(t, e, c, secret, "")
		clock.Set(exp)
		before := c.Stats()
		mustReject(t, e, secret, "", "API key expired.")
		if after := c.Stats(); after.Misses != before.Misses {
			t.Fatalf("expiry needed a database read: before %+v, after %+v", before, after)
		}
	})
}

// A failed change publishes nothing: its transaction rolled back.
func TestAuthCache_RollbackPublishesNothing(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		e, c := newCachedEnv(t, db, clock)
		adminCtx := mustWarm(t, e, c, e.f.AdminKey, "")
		before := c.Stats().Invalidations
		// The last admin cannot leave.
		err := sqldb.NewMembershipService(db).DeleteMembership(adminCtx, mustMembershipID(t, db, e.f.Admin.ID, e.f.Tenant.ID))
		expectCode(t, err, latchkey.ECONFLICT, "")
		if got := c.Stats().Invalidations; got != before {
			t.Fatalf("%d events from a rolled-back change", got-before)
		}
		mustWarm(t, e, c, e.f.AdminKey, "")
	})
}

// Requests racing a revocation: once DeleteAPIKey has returned, no
// request that starts afterwards is accepted, whatever lookups were in
// flight when it committed.
func TestAuthCache_ConcurrentRevocation(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		e, c := newCachedEnv(t, db, clock)
		adminCtx := e.mustAuthenticate(t, e.f.AdminKey, "")
		for round := range 5 {
			k, secret := e.mustCreateKey(t, adminCtx, "k", "")
			at := e.mustSwitchTenant(t, e.mustAuthenticate(t, secret, ""), "")
			// Each worker says when it has sent a request that started
			// after the revocation returned, and then one that started
			// after every worker had: once every request from before the
			// revocation had finished.
			var revoked, settled atomic.Bool
			var accepted, triedAfter, triedSettled, wg sync.WaitGroup
			accepted.Add(4)
			triedAfter.Add(4)
			triedSettled.Add(4)
			stop := make(chan struct{})
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sawAfter, sawSettled := false, false
					defer func() { // a worker that stopped early waits for nothing
						if !sawAfter {
							triedAfter.Done()
						}
						if !sawSettled {
							triedSettled.Done()
						}
					}()
					cred := secret
					if w%2 == 1 {
						cred = at.AccessToken
					}
					first := true
					for {
						select {
						case <-stop:
							return
						default:
						}
						after, afterSettled := revoked.Load(), settled.Load()
						_, err := e.auth.Authenticate(context.Background(), cred, "")
						if after && !sawAfter {
							sawAfter = true
							triedAfter.Done()
						}
						if afterSettled && !sawSettled {
							sawSettled = true
							triedSettled.Done()
						}
						if after && err == nil {
							t.Errorf("round %d: a request started after the revocation returned was accepted", round)
							return
						} else if !after && err == nil && first {
							first = false
							accepted.Done()
						}
					}
				}()
			}
			accepted.Wait() // every worker got in before the revocation
			if err := e.keys.DeleteAPIKey(adminCtx, k.ID); err != nil {
				t.Fatal(err)
			}
			revoked.Store(true)
			triedAfter.Wait()
			settled.Store(true)
			triedSettled.Wait()
			close(stop)
			wg.Wait()
		}
		if c.Stats().Hits == 0 {
			t.Fatal("the cache never answered")
		}
	})
}

// BenchmarkAuthenticate measures Authenticate by API key and by access
// token on SQLite, answered by the cache (a hit costs no database round
// trip) and, for comparison, by the database.
func BenchmarkAuthenticate(b *testing.B) {
	for _, cached := range []bool{true, false} {
		name := "db"
		if cached {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			clock := latchkeytest.NewClock()
			db := latchkeytest.MustOpenDB(b, "sqlite", clock)
			db.Events = inmem.NewEventService()
			f := latchkeytest.MustBootstrap(b, db)
			auth := sqldb.NewAuthService(db, newFakeTokenService(clock))
			if cached {
				auth.Cache = sqldb.NewAuthCache(db.Events)
				b.Cleanup(auth.Cache.Close)
			}
			a, err := auth.Authenticate(context.Background(), f.AdminKey, "")
			if err != nil {
				b.Fatal(err)
			}
			at, err := auth.SwitchTenant(latchkey.NewContextWithAuth(context.Background(), a), "")
			if err != nil {
				b.Fatal(err)
			}
			for _, cred := range []struct{ name, secret string }{{"key", f.AdminKey}, {"jwt", at.AccessToken}} {
				b.Run(cred.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if _, err := auth.Authenticate(context.Background(), cred.secret, ""); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
