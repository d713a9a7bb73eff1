package sqldb_test

import (
	"context"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

func TestDB_Seed(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		ctx := context.Background()
		f := latchkeytest.MustBootstrap(t, db)
		sample, err := db.Seed(ctx, sqldb.Population{TenantID: f.Tenant.ID, Users: 3, Keys: 250, Sample: 100})
		if err != nil {
			t.Fatal(err)
		}
		// Every 250/100 = 2nd key.
		if got, want := len(sample), 125; got != want {
			t.Fatalf("%d sample secrets, want %d", got, want)
		}
		users := latchkeytest.MustQueryAll(t, db, `SELECT u.id, u.kind, m.role FROM users u JOIN memberships m ON m.user_id = u.id AND m.tenant_id = ? WHERE u.email LIKE 'bench-%@bench.invalid' ORDER BY u.id`, f.Tenant.ID)
		if len(users) != 3 {
			t.Fatalf("seeded users: %v", users)
		}
		seeded := map[string]bool{}
		for _, u := range users {
			if u["kind"] != string(latchkey.UserKindHuman) || u["role"] != string(latchkey.RoleUser) {
				t.Errorf("seeded user %v, want a human USER member", u)
			}
			seeded[u["id"]] = true
			// 250 keys in turn over 3 users: 84, 83, 83.
			if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys WHERE user_id = ? AND name = 'bench' AND created_by_user_id = user_id AND default_tenant_id = ?`, u["id"], f.Tenant.ID); n < 83 || n > 84 {
				t.Errorf("user %s has %d keys, want 83 or 84", u["id"], n)
			}
		}
		if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys WHERE name = 'bench'`); n != 250 {
			t.Errorf("%d seeded keys, want 250", n)
		}

		// Each sample secret is a stored key, as the services would have
		// written it: it authenticates as its USER owner in the tenant.
		auth := sqldb.NewAuthService(db, newFakeTokenService(clock))
		distinct, owners := map[string]bool{}, map[string]int{}
		for _, secret := range sample {
			distinct[secret] = true
			a, err := auth.Authenticate(ctx, secret, "")
			if err != nil {
				t.Fatalf("sample secret %s: %v", latchkey.SecretIdentifier(secret), err)
			}
			if !seeded[a.User.ID] || a.TenantID != f.Tenant.ID || a.Role != latchkey.RoleUser || a.Kind != latchkey.CredentialAPIKey {
				t.Fatalf("sample secret authenticates as %+v", a)
			}
			owners[a.User.ID]++
			rows := latchkeytest.MustQueryAll(t, db, `SELECT identifier FROM api_keys WHERE id = ?`, a.APIKeyID)
			if len(rows) != 1 || rows[0]["identifier"] != latchkey.SecretIdentifier(secret) {
				t.Errorf("key %s: identifier %v, want %s", a.APIKeyID, rows, latchkey.SecretIdentifier(secret))
			}
		}
		if len(distinct) != len(sample) || len(owners) != 3 {
			t.Errorf("%d distinct sample secrets of %d, over %d owners, want all distinct over 3", len(distinct), len(sample), len(owners))
		}

		// A second seeding adds to the first; no keys is allowed.
		more, err := db.Seed(ctx, sqldb.Population{TenantID: f.Tenant.ID, Users: 2, Keys: 0, Sample: 1})
		if err != nil || len(more) != 0 {
			t.Fatalf("second seeding: %d secrets, %v", len(more), err)
		}
		if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM memberships WHERE tenant_id = ? AND role = 'USER'`, f.Tenant.ID); n != 5 {
			t.Errorf("%d USER members after two seedings, want 5", n)
		}
	})
}

func TestDB_SeedRefusesBadPopulations(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		ctx := context.Background()
		f := latchkeytest.MustBootstrap(t, db)
		for _, p := range []sqldb.Population{
			{Users: 1, Keys: 1, Sample: 1},
			{TenantID: f.Tenant.ID, Users: 0, Keys: 1, Sample: 1},
			{TenantID: f.Tenant.ID, Users: 1, Keys: -1, Sample: 1},
			{TenantID: f.Tenant.ID, Users: 1, Keys: 1, Sample: 0},
		} {
			if _, err := db.Seed(ctx, p); latchkey.ErrorCode(err) != latchkey.EINVALID {
				t.Errorf("Seed(%+v) = %v, want %s", p, err, latchkey.EINVALID)
			}
		}
		// An unknown tenant fails, and stores nothing.
		if _, err := db.Seed(ctx, sqldb.Population{TenantID: "00000000-0000-7000-8000-000000000000", Users: 2, Keys: 10, Sample: 1}); err == nil {
			t.Error("seeding an unknown tenant succeeded")
		}
		if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM users`); n != 1 {
			t.Errorf("%d users after failed seedings, want only the admin", n)
		}
	})
}
