package sqldb_test

import (
	"context"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

func TestUserService_CreatePasswordResetForEmail(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		ctx := context.Background()
		f := latchkeytest.MustBootstrap(t, db)
		s := sqldb.NewUserService(db)
		s.PasswordParams = latchkeytest.FastPasswordParams()

		first, _, err := s.CreatePasswordResetForEmail(ctx, "Admin@Example.com ")
		if err != nil {
			t.Fatal(err)
		}
		secret, expires, err := s.CreatePasswordResetForEmail(ctx, "admin@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(secret, latchkey.PrefixPasswordReset) {
			t.Fatalf("secret prefix: %q", secret[:4])
		}
		if got, want := expires, clock.Now().Add(sqldb.PasswordResetTTL); !got.Equal(want) {
			t.Fatalf("expires=%v, want %v", got, want)
		}
		// A newer link replaces the older one.
		if _, err := s.ResetPassword(ctx, first, "correct horse battery"); latchkey.ErrorCode(err) != latchkey.EUNAUTHENTICATED {
			t.Fatalf("old link: err=%v, want EUNAUTHENTICATED", err)
		}
		u, err := s.ResetPassword(ctx, secret, "correct horse battery")
		if err != nil {
			t.Fatal(err)
		} else if u.ID != f.Admin.ID {
			t.Fatalf("reset user %s, want %s", u.ID, f.Admin.ID)
		}
		if _, err := s.AuthenticatePassword(ctx, "admin@example.com", "correct horse battery"); err != nil {
			t.Fatalf("sign in with new password: %v", err)
		}
		// Only the hash is stored, with no creator.
		rows := latchkeytest.MustQueryAll(t, db, `SELECT token_hash, created_by_user_id FROM password_resets WHERE user_id = ?`, f.Admin.ID)
		if len(rows) != 1 {
			t.Fatalf("password_resets rows: %d, want 1", len(rows))
		} else if rows[0]["token_hash"] != string(latchkey.HashSecret(secret)) || rows[0]["created_by_user_id"] != "" {
			t.Fatalf("password_resets row: created_by=%q, hash matches=%v", rows[0]["created_by_user_id"], rows[0]["token_hash"] == string(latchkey.HashSecret(secret)))
		}

		// Unknown emails have no user to reset.
		if _, _, err := s.CreatePasswordResetForEmail(ctx, "nobody@example.com"); latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
			t.Fatalf("unknown email: err=%v, want ENOTFOUND", err)
		}
	})
}
