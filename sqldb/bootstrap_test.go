package sqldb_test

import (
	"context"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

func TestBootstrapService_Bootstrap(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, _ *latchkeytest.Clock) {
		ctx := context.Background()
		s := sqldb.NewBootstrapService(db)
		s.PasswordParams = latchkeytest.FastPasswordParams()
		if need, err := s.NeedsBootstrap(ctx); err != nil {
			t.Fatal(err)
		} else if !need {
			t.Fatal("NeedsBootstrap=false on an empty database")
		}
		res, err := s.Bootstrap(ctx, latchkey.BootstrapInput{Email: " Admin@Example.com ", Password: "correct horse battery", TenantName: "Acme Corp"})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := res.Tenant.Slug, "acme-corp"; got != want {
			t.Errorf("slug=%q, want %q", got, want)
		}
		if got, want := res.User.Email, "admin@example.com"; got != want {
			t.Errorf("email=%q, want %q", got, want)
		}
		if got, want := res.User.DefaultTenantID, res.Tenant.ID; got != want {
			t.Errorf("default tenant=%q, want %q", got, want)
		}
		if prefix, err := latchkey.ParseSecret(res.Secret); err != nil || prefix != latchkey.PrefixUserKey {
			t.Fatalf("secret prefix=%q err=%v", prefix, err)
		}
		if got, want := res.APIKey.Name, sqldb.BootstrapKeyName; got != want {
			t.Errorf("key name=%q, want %q", got, want)
		}
		if got, want := res.APIKey.DefaultTenantID, res.Tenant.ID; got != want {
			t.Errorf("key tenant=%q, want %q", got, want)
		}
		if need, err := s.NeedsBootstrap(ctx); err != nil {
			t.Fatal(err)
		} else if need {
			t.Fatal("NeedsBootstrap=true after bootstrap")
		}

		// Exactly one key, stored as its hash; no column holds the text.
		rows := latchkeytest.MustQueryAll(t, db, `SELECT * FROM api_keys`)
		if got, want := len(rows), 1; got != want {
			t.Fatalf("api_keys rows=%d, want %d", got, want)
		}
		var sawHash bool
		for col, v := range rows[0] {
			if strings.Contains(v, res.Secret) || strings.Contains(v, res.Secret[4:]) {
				t.Errorf("column %s holds the secret", col)
			}
			if v == string(latchkey.HashSecret(res.Secret)) {
				sawHash = true
			}
		}
		if !sawHash {
			t.Error("no column holds the key's SHA-256")
		}
		// The admin is a TENANT_ADMIN of the tenant, and the password works.
		if got, want := mustRole(t, db, res.User.ID, res.Tenant.ID), latchkey.RoleTenantAdmin; got != want {
			t.Errorf("role=%q, want %q", got, want)
		}
		us := sqldb.NewUserService(db)
		us.PasswordParams = latchkeytest.FastPasswordParams()
		if u, err := us.AuthenticatePassword(ctx, "admin@example.com", "correct horse battery"); err != nil {
			t.Fatalf("AuthenticatePassword: %v", err)
		} else if u.ID != res.User.ID {
			t.Fatalf("user=%q, want %q", u.ID, res.User.ID)
		}
		// No password hash or secret in the users table either.
		for _, r := range latchkeytest.MustQueryAll(t, db, `SELECT * FROM users`) {
			for col, v := range r {
				if strings.Contains(v, "correct horse") {
					t.Errorf("users.%s holds the password", col)
				}
			}
		}
	})
}

func TestBootstrapService_Bootstrap_ReuseUser(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, _ *latchkeytest.Clock) {
		ctx := context.Background()
		f := latchkeytest.MustBootstrap(t, db)
		s := sqldb.NewBootstrapService(db)
		res, err := s.Bootstrap(ctx, latchkey.BootstrapInput{Email: "admin@example.com", TenantName: "Second", TenantSlug: "second"})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := res.User.ID, f.Admin.ID; got != want {
			t.Fatalf("user=%q, want the existing %q", got, want)
		}
		if got, want := res.User.DefaultTenantID, f.Tenant.ID; got != want {
			t.Errorf("default tenant changed to %q, want %q", got, want)
		}
		if got, want := mustRole(t, db, f.Admin.ID, res.Tenant.ID), latchkey.RoleTenantAdmin; got != want {
			t.Errorf("role=%q, want %q", got, want)
		}
		if got, want := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM users`), 1; got != want {
			t.Errorf("users=%d, want %d", got, want)
		}
		if res.Secret == f.AdminKey {
			t.Error("the same key text twice")
		}
	})
}

func TestBootstrapService_Bootstrap_Errors(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, _ *latchkeytest.Clock) {
		ctx := context.Background()
		latchkeytest.MustBootstrap(t, db)
		s := sqldb.NewBootstrapService(db)
		for _, tt := range []struct {
			in   latchkey.BootstrapInput
			code latchkey.Code
		}{
			{latchkey.BootstrapInput{Email: "new@example.com", TenantName: "Tenant One"}, latchkey.ECONFLICT},
			{latchkey.BootstrapInput{Email: "not an email", TenantName: "X"}, latchkey.EINVALID},
			{latchkey.BootstrapInput{Email: "x@example.com", TenantName: ""}, latchkey.EINVALID},
			{latchkey.BootstrapInput{Email: "x@example.com", TenantName: "X", TenantSlug: "Bad Slug"}, latchkey.EINVALID},
			{latchkey.BootstrapInput{Email: "x@example.com", TenantName: "X", Password: "short"}, latchkey.EINVALID},
		} {
			if _, err := s.Bootstrap(ctx, tt.in); latchkey.ErrorCode(err) != tt.code {
				t.Errorf("Bootstrap(%+v)=%v, want %s", tt.in, err, tt.code)
			}
		}
		// The failed conflict left nothing behind.
		if got, want := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM users`), 1; got != want {
			t.Errorf("users=%d, want %d", got, want)
		}
		if got, want := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys`), 1; got != want {
			t.Errorf("api_keys=%d, want %d", got, want)
		}
	})
}

// mustRole returns userID's role in tenantID, "" if not a member.
func mustRole(tb testing.TB, db *sqldb.DB, userID, tenantID string) latchkey.Role {
	tb.Helper()
	rows := latchkeytest.MustQueryAll(tb, db, `SELECT role FROM memberships WHERE user_id = ? AND tenant_id = ?`, userID, tenantID)
	if len(rows) == 0 {
		return ""
	}
	return latchkey.Role(rows[0]["role"])
}
