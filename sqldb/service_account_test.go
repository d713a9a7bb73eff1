package sqldb_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

func saIDs(sas []*latchkey.ServiceAccount) []string {
	var out []string
	for _, sa := range sas {
		out = append(out, sa.ID)
	}
	return out
}

func TestServiceAccountService_FindServiceAccounts(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewServiceAccountService(db)
		// Service accounts never manage service accounts, whatever their role.
		w.eachCaller(t, onlyHumanAdmins(), func(t *testing.T, name string, ctx context.Context) error {
			sas, n, err := s.FindServiceAccounts(ctx, latchkey.ServiceAccountFilter{})
			if err != nil {
				return err
			}
			wantIDs := []string{w.sa.ID, w.saAdmin.ID}
			if name == cOtherTenant {
				wantIDs = []string{w.saB.ID}
			}
			if got := saIDs(sas); !slices.Equal(got, wantIDs) || n != len(wantIDs) {
				t.Errorf("service accounts=%v (count %d), want %v", got, n, wantIDs)
			}
			return nil
		})
		ctx := w.ctx(cAdmin)
		sas, _, err := s.FindServiceAccounts(ctx, latchkey.ServiceAccountFilter{ID: &w.saAdmin.ID})
		if err != nil {
			t.Fatal(err)
		} else if len(sas) != 1 || sas[0].Name != "robot admin" || sas[0].Role != latchkey.RoleTenantAdmin || sas[0].TenantID != w.a.ID {
			t.Fatalf("sa=%+v", sas)
		}
		for _, f := range []latchkey.ServiceAccountFilter{{TenantID: &w.b.ID}, {ID: &w.saB.ID}, {ID: &w.user.ID}} {
			if sas, n, err := s.FindServiceAccounts(ctx, f); err != nil || len(sas) != 0 || n != 0 {
				t.Errorf("filter %+v: %v (count %d, err %v)", f, saIDs(sas), n, err)
			}
		}
		if sas, n, err := s.FindServiceAccounts(ctx, latchkey.ServiceAccountFilter{TenantID: &w.a.ID, Offset: 1, Limit: 5}); err != nil {
			t.Fatal(err)
		} else if got := saIDs(sas); !slices.Equal(got, []string{w.saAdmin.ID}) || n != 2 {
			t.Errorf("page=%v (count %d)", got, n)
		}
	})
}

func TestServiceAccountService_CreateServiceAccount(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewServiceAccountService(db)
		w.eachCaller(t, onlyHumanAdmins(), func(t *testing.T, name string, ctx context.Context) error {
			before := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM users`)
			sa := &latchkey.ServiceAccount{Name: "bot " + name}
			if err := s.CreateServiceAccount(ctx, sa); err != nil {
				if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM users`); got != before {
					t.Errorf("denied, yet users went from %d to %d", before, got)
				}
				return err
			}
			a := latchkey.AuthFromContext(ctx)
			if sa.ID == "" || sa.TenantID != a.TenantID || sa.Role != latchkey.RoleUser || sa.CreatedByUserID != a.User.ID || !sa.CreatedAt.Equal(clock.Now()) {
				t.Errorf("sa=%+v", sa)
			}
			if got := mustRole(t, db, sa.ID, a.TenantID); got != latchkey.RoleUser {
				t.Errorf("membership role=%q", got)
			}
			rows := latchkeytest.MustQueryAll(t, db, `SELECT kind, email, tenant_id, name FROM users WHERE id = ?`, sa.ID)
			if r := rows[0]; r["kind"] != "SERVICE_ACCOUNT" || r["email"] != "" || r["tenant_id"] != a.TenantID || r["name"] != sa.Name {
				t.Errorf("users row=%v", r)
			}
			return nil
		})
		ctx := w.ctx(cAdmin)
		sa := &latchkey.ServiceAccount{Name: "deployer", Role: latchkey.RoleReadOnlyUser, TenantID: w.a.ID}
		if err := s.CreateServiceAccount(ctx, sa); err != nil {
			t.Fatal(err)
		} else if got := mustRole(t, db, sa.ID, w.a.ID); got != latchkey.RoleReadOnlyUser {
			t.Fatalf("role=%q", got)
		}
		for _, tt := range []struct {
			name string
			sa   *latchkey.ServiceAccount
			code latchkey.Code
		}{
			{"another tenant", &latchkey.ServiceAccount{Name: "x", TenantID: w.b.ID}, latchkey.EFORBIDDEN},
			{"no name", &latchkey.ServiceAccount{}, latchkey.EINVALID},
			{"bad role", &latchkey.ServiceAccount{Name: "x", Role: "ROOT"}, latchkey.EINVALID},
			{"duplicate name", &latchkey.ServiceAccount{Name: "deployer"}, latchkey.ECONFLICT},
		} {
			if err := s.CreateServiceAccount(ctx, tt.sa); latchkey.ErrorCode(err) != tt.code {
				t.Errorf("%s: err=%v, want %s", tt.name, err, tt.code)
			}
		}
		if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM users WHERE tenant_id = ?`, w.b.ID); n != 2 {
			t.Errorf("B has %d service accounts, want 2", n)
		}
		err := s.CreateServiceAccount(ctx, &latchkey.ServiceAccount{Name: "deployer"})
		if want := "A service account named “deployer” already exists in this tenant."; !strings.Contains(latchkey.ErrorMessage(err), want) {
			t.Errorf("duplicate: %q, want %q", latchkey.ErrorMessage(err), want)
		}
		// The same name in another tenant is fine.
		if err := s.CreateServiceAccount(w.ctx(cOtherTenant), &latchkey.ServiceAccount{Name: "deployer"}); err != nil {
			t.Errorf("same name in another tenant: %v", err)
		}
	})
}

func TestServiceAccountService_DeleteServiceAccount(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewServiceAccountService(db)
		w.eachCaller(t, onlyHumanAdmins(), func(t *testing.T, name string, ctx context.Context) error {
			tenantID := w.a.ID
			if a := latchkey.AuthFromContext(ctx); a != nil {
				tenantID = a.TenantID
			}
			sa := latchkeytest.MustCreateServiceAccount(t, db, tenantID, "doomed "+name, latchkey.RoleUser)
			// A key of the account, which must go with it.
			latchkeytest.MustExec(t, db, `INSERT INTO api_keys (id, user_id, name, key_hash, created_by_user_id, default_tenant_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				"key-"+name, sa.ID, "k", latchkey.HashSecret("key-"+name), w.admin.ID, tenantID, sqldb.Time(clock.Now()))
			if err := s.DeleteServiceAccount(ctx, sa.ID); err != nil {
				if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys WHERE user_id = ?`, sa.ID); n != 1 {
					t.Errorf("denied, yet keys=%d", n)
				}
				return err
			}
			for _, q := range []string{
				`SELECT COUNT(*) FROM users WHERE id = ?`,
				`SELECT COUNT(*) FROM memberships WHERE user_id = ?`,
				`SELECT COUNT(*) FROM api_keys WHERE user_id = ?`,
			} {
				if n := latchkeytest.MustCount(t, db, q, sa.ID); n != 0 {
					t.Errorf("%s: %d left", q, n)
				}
			}
			return nil
		})
		ctx := w.ctx(cAdmin)
		for _, tt := range []struct{ name, id string }{
			{"service account of B", w.saB.ID},
			{"a human", w.user.ID},
			{"unknown", "no-such-id"},
		} {
			if err := s.DeleteServiceAccount(ctx, tt.id); latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
				t.Errorf("%s: err=%v, want not found", tt.name, err)
			}
		}
		if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM users WHERE id IN (?, ?)`, w.saB.ID, w.user.ID); n != 2 {
			t.Errorf("users left=%d, want 2", n)
		}
	})
}

// Concurrent creations of a name end with one service account of that name.
func TestServiceAccountService_CreateServiceAccount_DuplicateNameConcurrent(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewServiceAccountService(db)
		ctx := w.ctx(cAdmin)
		const n = 4
		errs := make(chan error, n)
		for range n {
			go func() { errs <- s.CreateServiceAccount(ctx, &latchkey.ServiceAccount{Name: "racer"}) }()
		}
		var ok int
		for range n {
			switch err := <-errs; latchkey.ErrorCode(err) {
			case "":
				ok++
			case latchkey.ECONFLICT:
			default:
				t.Errorf("err=%v", err)
			}
		}
		if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM users WHERE name = 'racer'`); ok != 1 || got != 1 {
			t.Fatalf("%d creations succeeded, %d accounts named racer; want 1 and 1", ok, got)
		}
	})
}
