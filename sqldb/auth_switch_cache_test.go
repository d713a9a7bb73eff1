package sqldb_test

import (
	"context"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// mustSwitchFromCache switches ctx's caller to tenantID and fails unless
// the cache alone answered the checks.
func mustSwitchFromCache(tb testing.TB, e *credEnv, c *sqldb.AuthCache, ctx context.Context, tenantID string) *latchkey.AccessToken {
	tb.Helper()
	before := c.Stats()
	at, err := e.auth.SwitchTenant(ctx, tenantID)
	if err != nil {
		tb.Fatalf("switch tenant %q: %v", tenantID, err)
	}
	if after := c.Stats(); after.Misses != before.Misses || after.Hits == before.Hits {
		tb.Fatalf("switch tenant %q was not answered from the cache: before %+v, after %+v", tenantID, before, after)
	}
	return at
}

// SwitchTenant and RefreshAccessToken check the source key and the role
// from the cache when it holds them, and a revocation still stops both at
// once on the same replica with the cache warm.
func TestAuthCache_SwitchTenant(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		e, c := newCachedEnv(t, db, clock)
		t1 := e.f.Tenant
		t2 := latchkeytest.MustCreateTenant(t, db, "two", nil)
		adminCtx := mustWarm(t, e, c, e.f.AdminKey, "")
		u := latchkeytest.MustCreateMember(t, db, t1.ID, "member@example.com", latchkey.RoleUser)
		latchkeytest.MustCreateMember(t, db, t2.ID, "member@example.com", latchkey.RoleUser)
		uCtx := latchkeytest.AuthContext(context.Background(), u, t1.ID, latchkey.RoleUser)
		k1, secret1 := e.mustCreateKey(t, uCtx, "k1", "")
		_, secret2 := e.mustCreateKey(t, uCtx, "k2", "")
		ms := sqldb.NewMembershipService(db)

		// Warm: the first switches read the database and fill the cache.
		key1Ctx := mustWarm(t, e, c, secret1, "")
		for _, tenantID := range []string{"", t2.ID} {
			if _, err := e.auth.SwitchTenant(key1Ctx, tenantID); err != nil {
				t.Fatal(err)
			}
		}
		at := mustSwitchFromCache(t, e, c, key1Ctx, "")
		mustSwitchFromCache(t, e, c, key1Ctx, t2.ID)
		if a := e.mustAuthenticate(t, at.AccessToken, ""); latchkey.AuthFromContext(a).TenantID != t1.ID {
			t.Fatalf("access token tenant=%q, want %q", latchkey.AuthFromContext(a).TenantID, t1.ID)
		}
		// A refresh checks the source from the cache too, and still works.
		before := c.Stats()
		at, err := e.auth.RefreshAccessToken(context.Background(), at.RefreshToken, at.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if after := c.Stats(); after.Misses != before.Misses || after.Hits == before.Hits {
			t.Fatalf("refresh was not answered from the cache: before %+v, after %+v", before, after)
		}

		// Removing the membership in t1 stops switching there at once, not to t2.
		if err := ms.DeleteMembership(adminCtx, mustMembershipID(t, db, u.ID, t1.ID)); err != nil {
			t.Fatal(err)
		}
		_, err = e.auth.SwitchTenant(key1Ctx, "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Not a member of tenant "+t1.ID)
		_, err = e.auth.RefreshAccessToken(context.Background(), at.RefreshToken, at.AccessToken)
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Not a member of tenant "+t1.ID)
		if _, err := e.auth.SwitchTenant(key1Ctx, t2.ID); err != nil {
			t.Fatal(err)
		}
		at2 := mustSwitchFromCache(t, e, c, key1Ctx, t2.ID)

		// Revoking the key stops switching and refreshing at once.
		if err := e.keys.DeleteAPIKey(latchkeytest.AuthContext(context.Background(), u, t2.ID, latchkey.RoleUser), k1.ID); err != nil {
			t.Fatal(err)
		}
		_, err = e.auth.SwitchTenant(key1Ctx, t2.ID)
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "revoked")
		_, err = e.auth.RefreshAccessToken(context.Background(), at2.RefreshToken, at2.AccessToken)
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "")

		// The cache really answers: a membership deleted behind the
		// services' back (no event) still allows switching until the event
		// arrives.
		key2Ctx := mustWarm(t, e, c, secret2, t2.ID)
		if _, err := e.auth.SwitchTenant(key2Ctx, ""); err != nil {
			t.Fatal(err)
		}
		latchkeytest.MustExec(t, db, `DELETE FROM memberships WHERE user_id = ? AND tenant_id = ?`, u.ID, t2.ID)
		mustSwitchFromCache(t, e, c, key2Ctx, "")
		if err := db.Events.Publish(context.Background(), latchkey.Event{Type: latchkey.EventMembershipChanged, UserID: u.ID, TenantID: t2.ID}); err != nil {
			t.Fatal(err)
		}
		_, err = e.auth.SwitchTenant(key2Ctx, "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Not a member of tenant "+t2.ID)

		// Other callers are unaffected.
		if _, err := e.auth.SwitchTenant(adminCtx, ""); err != nil {
			t.Fatal(err)
		}
		mustSwitchFromCache(t, e, c, adminCtx, "")
	})
}
