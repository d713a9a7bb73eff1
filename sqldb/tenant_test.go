package sqldb_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

func tenantSlugs(ts []*latchkey.Tenant) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Slug)
	}
	return out
}

func TestTenantService_FindTenants_Visibility(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		// The admin of A is also admin of a third tenant.
		clock.Add(time.Second)
		latchkeytest.MustCreateTenant(t, db, "tenant-three", w.admin)
		s := sqldb.NewTenantService(db)
		want := map[string][]string{
			cAdmin:       {"tenant-one", "tenant-three"},
			cUserToken:   {"tenant-one", "tenant-three"},
			cUser:        {"tenant-one"},
			cReadOnly:    {"tenant-one"},
			cSA:          {"tenant-one"},
			cSAAdmin:     {"tenant-one"},
			cTenantToken: {"tenant-one"}, // bound to its tenant
			cRunnerToken: {"tenant-one"}, // bound to its tenant
			cAnonymous:   nil,
			cOtherTenant: {"tenant-two"},
		}
		codes := map[string]latchkey.Code{}
		for name := range want {
			codes[name] = ""
		}
		codes[cAnonymous] = latchkey.EUNAUTHENTICATED
		w.eachCaller(t, codes, func(t *testing.T, name string, ctx context.Context) error {
			ts, n, err := s.FindTenants(ctx, latchkey.TenantFilter{})
			if err != nil {
				return err
			}
			if got := tenantSlugs(ts); !slices.Equal(got, want[name]) {
				t.Errorf("tenants=%v, want %v", got, want[name])
			}
			if n != len(want[name]) {
				t.Errorf("count=%d, want %d", n, len(want[name]))
			}
			return nil
		})
	})
}

func TestTenantService_FindTenantByID(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		c := latchkeytest.MustCreateTenant(t, db, "tenant-three", w.admin)
		s := sqldb.NewTenantService(db)
		// Own tenant: every authenticated caller of A.
		w.eachCaller(t, map[string]latchkey.Code{
			cAdmin: "", cUserToken: "", cUser: "", cReadOnly: "", cSA: "", cSAAdmin: "", cTenantToken: "", cRunnerToken: "",
			cAnonymous: latchkey.EUNAUTHENTICATED, cOtherTenant: latchkey.ENOTFOUND,
		}, func(t *testing.T, name string, ctx context.Context) error {
			tn, err := s.FindTenantByID(ctx, w.a.ID)
			if err == nil && tn.Slug != "tenant-one" {
				t.Errorf("slug=%q", tn.Slug)
			}
			return err
		})
		// Another tenant of the admin: not through a tenant-bound token.
		t.Run("other-membership", func(t *testing.T) {
			if _, err := s.FindTenantByID(w.ctx(cAdmin), c.ID); err != nil {
				t.Errorf("admin: %v", err)
			}
			if _, err := s.FindTenantByID(w.ctx(cRunnerToken), c.ID); latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
				t.Errorf("runner: err=%v, want not found", err)
			}
			if _, err := s.FindTenantByID(w.ctx(cUser), c.ID); latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
				t.Errorf("user: err=%v, want not found", err)
			}
			if _, err := s.FindTenantByID(w.ctx(cAdmin), "no-such-id"); latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
				t.Errorf("unknown: err=%v, want not found", err)
			}
		})
	})
}

func TestTenantService_FindTenants_Filter(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewTenantService(db)
		for _, slug := range []string{"delta", "bravo", "charlie"} {
			clock.Add(time.Second)
			latchkeytest.MustCreateTenant(t, db, slug, w.admin)
		}
		ctx := w.ctx(cAdmin)
		str := func(s string) *string { return &s }
		for _, tt := range []struct {
			name   string
			filter latchkey.TenantFilter
			want   []string
			count  int
		}{
			{"all by creation", latchkey.TenantFilter{}, []string{"tenant-one", "delta", "bravo", "charlie"}, 4},
			{"slug", latchkey.TenantFilter{Slug: str("bravo")}, []string{"bravo"}, 1},
			{"name", latchkey.TenantFilter{Name: str("Tenant One")}, []string{"tenant-one"}, 1},
			{"id", latchkey.TenantFilter{ID: &w.a.ID}, []string{"tenant-one"}, 1},
			{"other tenant's id", latchkey.TenantFilter{ID: &w.b.ID}, nil, 0},
			{"other tenant's slug", latchkey.TenantFilter{Slug: str("tenant-two")}, nil, 0},
			{"ids incl. another tenant", latchkey.TenantFilter{IDs: []string{w.a.ID, w.b.ID}}, []string{"tenant-one"}, 1},
			{"empty ids", latchkey.TenantFilter{IDs: []string{}}, nil, 0},
			{"order slug", latchkey.TenantFilter{OrderBy: []latchkey.SortOrder{{Field: "slug"}}}, []string{"bravo", "charlie", "delta", "tenant-one"}, 4},
			{"order slug desc", latchkey.TenantFilter{OrderBy: []latchkey.SortOrder{{Field: "slug", Desc: true}}}, []string{"tenant-one", "delta", "charlie", "bravo"}, 4},
			{"limit offset", latchkey.TenantFilter{OrderBy: []latchkey.SortOrder{{Field: "slug"}}, Offset: 1, Limit: 2}, []string{"charlie", "delta"}, 4},
			{"offset only", latchkey.TenantFilter{OrderBy: []latchkey.SortOrder{{Field: "slug"}}, Offset: 3}, []string{"tenant-one"}, 4},
		} {
			t.Run(tt.name, func(t *testing.T) {
				ts, n, err := s.FindTenants(ctx, tt.filter)
				if err != nil {
					t.Fatal(err)
				}
				if got := tenantSlugs(ts); !slices.Equal(got, tt.want) {
					t.Errorf("tenants=%v, want %v", got, tt.want)
				}
				if n != tt.count {
					t.Errorf("count=%d, want %d", n, tt.count)
				}
			})
		}
		// Order fields are whitelisted: anything else is EINVALID, never SQL.
		for _, field := range []string{"password_hash", "slug; DROP TABLE tenants", "1", ""} {
			_, _, err := s.FindTenants(ctx, latchkey.TenantFilter{OrderBy: []latchkey.SortOrder{{Field: field}}})
			wantErr(t, err, latchkey.EINVALID)
		}
		if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM tenants`); got != 5 {
			t.Fatalf("tenants=%d, want 5", got)
		}
	})
}

func TestTenantService_CreateTenant(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewTenantService(db)
		w.eachCaller(t, onlyHumanAdmins(), func(t *testing.T, name string, ctx context.Context) error {
			tn := &latchkey.Tenant{Name: "New " + name}
			if err := s.CreateTenant(ctx, tn); err != nil {
				if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM tenants WHERE slug = ?`, latchkey.Slugify(tn.Name)); got != 0 {
					t.Errorf("denied, yet %d tenants created", got)
				}
				return err
			}
			if got, want := tn.Slug, "new-"+name; got != want {
				t.Errorf("slug=%q, want %q", got, want)
			}
			if tn.ID == "" || !tn.CreatedAt.Equal(clock.Now()) {
				t.Errorf("id=%q created=%v", tn.ID, tn.CreatedAt)
			}
			caller := latchkey.AuthFromContext(ctx).User
			if got := mustRole(t, db, caller.ID, tn.ID); got != latchkey.RoleTenantAdmin {
				t.Errorf("caller's role=%q, want TENANT_ADMIN", got)
			}
			// The creator now sees it.
			if _, err := sqldb.NewTenantService(db).FindTenantByID(ctx, tn.ID); err != nil {
				t.Errorf("find new tenant: %v", err)
			}
			return nil
		})
		ctx := w.ctx(cAdmin)
		wantErr(t, s.CreateTenant(ctx, &latchkey.Tenant{Name: "Whatever", Slug: "tenant-two"}), latchkey.ECONFLICT)
		wantErr(t, s.CreateTenant(ctx, &latchkey.Tenant{Name: "Tenant Two"}), latchkey.ECONFLICT)
		wantErr(t, s.CreateTenant(ctx, &latchkey.Tenant{Name: ""}), latchkey.EINVALID)
		wantErr(t, s.CreateTenant(ctx, &latchkey.Tenant{Name: "!!!"}), latchkey.EINVALID)
		wantErr(t, s.CreateTenant(ctx, &latchkey.Tenant{Name: "X", Slug: "Not_A_Slug"}), latchkey.EINVALID)
		tn := &latchkey.Tenant{Name: "Explicit", Slug: "explicit-slug"}
		if err := s.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		} else if tn.Slug != "explicit-slug" {
			t.Fatalf("slug=%q", tn.Slug)
		}
	})
}
