package sqldb_test

import (
	"context"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// Reusing a spent refresh token revokes the access tokens of its family
// too, at once, with and without the credential cache; other families'
// access tokens keep working.
func TestAuthService_RefreshReuseRevokesAccessTokens(t *testing.T) {
	t.Parallel()
	for _, cached := range []bool{false, true} {
		name := "uncached"
		if cached {
			name = "cached"
		}
		t.Run(name, func(t *testing.T) {
			latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
				var e *credEnv
				if cached {
					e, _ = newCachedEnv(t, db, clock)
				} else {
					e = newCredEnv(t, db, clock)
				}
				ctx := context.Background()
				adminCtx := e.adminCtx(t)
				at1 := e.mustSwitchTenant(t, adminCtx, "")
				other := e.mustSwitchTenant(t, adminCtx, "")
				at2, err := e.auth.RefreshAccessToken(ctx, at1.RefreshToken, at1.AccessToken)
				if err != nil {
					t.Fatal(err)
				}
				// The newest access token of the family works (and, with the
				// cache, its source is now cached).
				for range 2 {
					if _, err := e.auth.Authenticate(ctx, at2.AccessToken, ""); err != nil {
						t.Fatalf("before reuse: %v", err)
					}
				}
				// A thief replays the spent refresh token.
				_, err = e.auth.RefreshAccessToken(ctx, at1.RefreshToken, at1.AccessToken)
				expectCode(t, err, latchkey.EUNAUTHENTICATED, "Refresh token reuse detected")
				_, err = e.auth.Authenticate(ctx, at2.AccessToken, "")
				expectCode(t, err, latchkey.EUNAUTHENTICATED, "refresh token was used twice")
				// The key itself is not revoked: it still mints.
				if _, err := e.auth.SwitchTenant(adminCtx, ""); err != nil {
					t.Fatalf("the key itself: %v", err)
				}
				// The other family is untouched.
				if _, err := e.auth.Authenticate(ctx, other.AccessToken, ""); err != nil {
					t.Fatalf("other family: %v", err)
				}
				if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM refresh_families WHERE revoked_at IS NOT NULL`); got != 1 {
					t.Fatalf("%d revoked families, want 1", got)
				}
				// Once every token of the family has expired, the row goes.
				clock.Add(latchkey.DefaultRefreshTokenTTL + time.Minute)
				if _, err := db.DeleteExpiredCredentials(ctx); err != nil {
					t.Fatal(err)
				}
				if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM refresh_families`); got != 0 {
					t.Fatalf("%d revoked families after expiry, want 0", got)
				}
			})
		})
	}
}
