package sqldb_test

import (
	"context"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

func TestDB_DeleteExpiredCredentials(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		ctx := context.Background()
		e := newCredEnv(t, db, clock)
		adminCtx := e.adminCtx(t)
		count := func(table string) int {
			return latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM `+table)
		}

		// One refresh token spent (its family's row is kept: reuse
		// detection), one fresh pair (no row: minting writes nothing).
		old := e.mustSwitchTenant(t, adminCtx, "")
		if _, err := e.auth.RefreshAccessToken(ctx, old.RefreshToken, old.AccessToken); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.auth.CreateSession(ctx, e.f.Admin.ID); err != nil {
			t.Fatal(err)
		}
		users := sqldb.NewUserService(db)
		if _, _, err := users.CreatePasswordResetForEmail(ctx, e.f.Admin.Email); err != nil {
			t.Fatal(err)
		}
		if n, err := db.DeleteExpiredCredentials(ctx); err != nil || n != 0 {
			t.Fatalf("nothing expired yet: n=%d err=%v", n, err)
		}
		if count("refresh_families") != 1 || count("sessions") != 1 || count("password_resets") != 1 {
			t.Fatal("fixtures missing")
		}
		// Reuse of the spent token is still detected before expiry.
		if _, err := e.auth.RefreshAccessToken(ctx, old.RefreshToken, old.AccessToken); latchkey.ErrorCode(err) != latchkey.EUNAUTHENTICATED {
			t.Fatalf("reuse: %v", err)
		}

		// Past every expiry, everything goes; the key itself stays.
		clock.Add(max(latchkey.DefaultRefreshTokenTTL, sqldb.DefaultSessionTTL, sqldb.PasswordResetTTL) + time.Second)
		if _, err := e.auth.SwitchTenant(adminCtx, ""); err != nil { // a fresh pair, not expired
			t.Fatal(err)
		}
		n, err := db.DeleteExpiredCredentials(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if count("sessions") != 0 || count("password_resets") != 0 || count("refresh_families") != 0 {
			t.Fatalf("after cleanup (n=%d): refresh families=%d sessions=%d resets=%d", n, count("refresh_families"), count("sessions"), count("password_resets"))
		}
		if _, err := e.auth.Authenticate(ctx, e.f.AdminKey, ""); err != nil {
			t.Fatalf("admin key after cleanup: %v", err)
		}
	})
}
