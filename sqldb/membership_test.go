package sqldb_test

import (
	"context"
	"slices"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

func membershipUserIDs(ms []*latchkey.Membership) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.UserID)
	}
	return out
}

// mustMembershipID returns the id of userID's membership in tenantID.
func mustMembershipID(tb testing.TB, db *sqldb.DB, userID, tenantID string) string {
	tb.Helper()
	rows := latchkeytest.MustQueryAll(tb, db, `SELECT id FROM memberships WHERE user_id = ? AND tenant_id = ?`, userID, tenantID)
	if len(rows) != 1 {
		tb.Fatalf("memberships of %s in %s: %d", userID, tenantID, len(rows))
	}
	return rows[0]["id"]
}

func TestMembershipService_FindMemberships(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		// userB is also a USER of A: admins of A see that membership, not the one in B.
		latchkeytest.MustCreateMember(t, db, w.a.ID, "userb@example.com", latchkey.RoleUser)
		s := sqldb.NewMembershipService(db)
		allA := []string{w.admin.ID, w.user.ID, w.readonly.ID, w.sa.ID, w.saAdmin.ID, w.userB.ID}
		want := map[string][]string{
			cAdmin:       allA,
			cUserToken:   allA,
			cUser:        {w.user.ID},
			cReadOnly:    {w.readonly.ID},
			cSA:          {w.sa.ID},
			cSAAdmin:     {w.saAdmin.ID}, // service accounts never manage members, whatever their role
			cTenantToken: {w.admin.ID},   // capped at USER
			cOtherTenant: {w.adminB.ID, w.userB.ID, w.saB.ID},
		}
		w.eachCaller(t, map[string]latchkey.Code{
			cAdmin: "", cUserToken: "", cUser: "", cReadOnly: "", cSA: "", cSAAdmin: "", cTenantToken: "",
			cRunnerToken: latchkey.EFORBIDDEN, cAnonymous: latchkey.EUNAUTHENTICATED, cOtherTenant: "",
		}, func(t *testing.T, name string, ctx context.Context) error {
			ms, n, err := s.FindMemberships(ctx, latchkey.MembershipFilter{})
			if err != nil {
				return err
			}
			if got := membershipUserIDs(ms); !slices.Equal(got, want[name]) || n != len(want[name]) {
				t.Errorf("members=%v (count %d), want %v", got, n, want[name])
			}
			a := latchkey.AuthFromContext(ctx)
			for _, m := range ms {
				if m.TenantID != a.TenantID {
					t.Errorf("membership %s of tenant %s", m.ID, m.TenantID)
				}
				if m.User == nil || m.User.ID != m.UserID {
					t.Errorf("membership %s: user not filled in", m.ID)
				}
			}
			return nil
		})

		ctx := w.ctx(cAdmin)
		ms, _, err := s.FindMemberships(ctx, latchkey.MembershipFilter{UserID: &w.sa.ID})
		if err != nil {
			t.Fatal(err)
		} else if len(ms) != 1 || ms[0].Role != latchkey.RoleUser || ms[0].User.Kind != latchkey.UserKindServiceAccount || ms[0].User.Name != "agent" {
			t.Fatalf("sa membership=%+v", ms)
		}
		bMembership := mustMembershipID(t, db, w.userB.ID, w.b.ID)
		for _, f := range []latchkey.MembershipFilter{
			{TenantID: &w.b.ID},
			{ID: &bMembership},
			{UserID: &w.adminB.ID},
		} {
			if ms, n, err := s.FindMemberships(ctx, f); err != nil || len(ms) != 0 || n != 0 {
				t.Errorf("filter %+v: %d memberships of B (err=%v)", f, n, err)
			}
		}
		if ms, n, err := s.FindMemberships(ctx, latchkey.MembershipFilter{TenantID: &w.a.ID, Offset: 2, Limit: 2}); err != nil {
			t.Fatal(err)
		} else if got := membershipUserIDs(ms); !slices.Equal(got, allA[2:4]) || n != len(allA) {
			t.Errorf("page=%v (count %d)", got, n)
		}
	})
}

func TestMembershipService_CreateMembership(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewMembershipService(db)
		w.eachCaller(t, onlyHumanAdmins(), func(t *testing.T, name string, ctx context.Context) error {
			email := "new-" + name + "@example.com"
			m, inv, err := s.CreateMembership(ctx, latchkey.MembershipCreate{Email: email, Role: latchkey.RoleReadOnlyUser})
			if err == nil && (m == nil || inv != nil) {
				t.Fatalf("a new email: membership=%+v invitation=%+v, want a membership only", m, inv)
			}
			if err != nil {
				if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM users WHERE email = ?`, email); n != 0 {
					t.Errorf("denied, yet the user was created")
				}
				return err
			}
			tenantID := latchkey.AuthFromContext(ctx).TenantID
			if m.TenantID != tenantID || m.Role != latchkey.RoleReadOnlyUser || m.User == nil || m.User.Email != email {
				t.Errorf("membership=%+v", m)
			}
			if m.User.DefaultTenantID != tenantID || m.User.Kind != latchkey.UserKindHuman || !m.UserCreated {
				t.Errorf("user=%+v created=%v", m.User, m.UserCreated)
			}
			if got := mustRole(t, db, m.UserID, tenantID); got != latchkey.RoleReadOnlyUser {
				t.Errorf("role=%q", got)
			}
			// A new user has no password.
			if rows := latchkeytest.MustQueryAll(t, db, `SELECT password_hash FROM users WHERE id = ?`, m.UserID); rows[0]["password_hash"] != "" {
				t.Error("new user has a password")
			}
			return nil
		})

		ctx := w.ctx(cAdmin)
		// An existing user, by id or by email (in another case), is invited,
		// not added: empty role is USER.
		for _, in := range []latchkey.MembershipCreate{{UserID: w.userB.ID}, {Email: "AdminB@Example.com", Role: latchkey.RoleTenantAdmin}} {
			m, inv, err := s.CreateMembership(ctx, in)
			if err != nil {
				t.Fatal(err)
			} else if m != nil || inv == nil {
				t.Fatalf("%+v: membership=%+v invitation=%+v, want an invitation only", in, m, inv)
			}
			wantRole, wantInvitee := latchkey.RoleUser, in.UserID
			if in.Email != "" {
				wantRole, wantInvitee = latchkey.RoleTenantAdmin, "adminb@example.com"
			}
			if inv.TenantID != w.a.ID || inv.Role != wantRole || inv.Invitee != wantInvitee || inv.InvitedByUserID != w.admin.ID {
				t.Errorf("invitation=%+v", inv)
			}
		}
		if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM memberships WHERE tenant_id = ? AND user_id IN (?, ?)`, w.a.ID, w.userB.ID, w.adminB.ID); n != 0 {
			t.Errorf("invited users are members of A already (%d)", n)
		}
		for _, tt := range []struct {
			name string
			in   latchkey.MembershipCreate
			code latchkey.Code
		}{
			{"already a member", latchkey.MembershipCreate{UserID: w.user.ID}, latchkey.ECONFLICT},
			{"already a member by email", latchkey.MembershipCreate{Email: "user@example.com"}, latchkey.ECONFLICT},
			{"another tenant", latchkey.MembershipCreate{TenantID: w.b.ID, Email: "x1@example.com"}, latchkey.EFORBIDDEN},
			{"service account of A", latchkey.MembershipCreate{UserID: w.sa.ID}, latchkey.EINVALID},
			{"service account of B", latchkey.MembershipCreate{UserID: w.saB.ID}, latchkey.EINVALID},
			{"unknown id", latchkey.MembershipCreate{UserID: "no-such-user"}, latchkey.ENOTFOUND},
			{"already invited", latchkey.MembershipCreate{Email: "userb@example.com"}, latchkey.ECONFLICT},
			{"bad role", latchkey.MembershipCreate{Email: "x2@example.com", Role: "OWNER"}, latchkey.EINVALID},
			{"bad email", latchkey.MembershipCreate{Email: "not an email"}, latchkey.EINVALID},
			{"neither", latchkey.MembershipCreate{}, latchkey.EINVALID},
			{"both", latchkey.MembershipCreate{UserID: w.userB.ID, Email: "x3@example.com"}, latchkey.EINVALID},
		} {
			if _, _, err := s.CreateMembership(ctx, tt.in); latchkey.ErrorCode(err) != tt.code {
				t.Errorf("%s: err=%v, want %s", tt.name, err, tt.code)
			}
		}
		if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM memberships WHERE tenant_id = ?`, w.b.ID); n != 4 {
			t.Errorf("B has %d members, want 4 (3 + the one B's admin added)", n)
		}
		if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM users WHERE email LIKE 'x%'`); n != 0 {
			t.Errorf("%d users created by failed calls", n)
		}
	})
}

func TestMembershipService_UpdateMembershipRole(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewMembershipService(db)
		w.eachCaller(t, onlyHumanAdmins(), func(t *testing.T, name string, ctx context.Context) error {
			// Each caller promotes the USER of its own tenant to READ_ONLY_USER and back.
			target := w.user
			tenantID := w.a.ID
			if name == cOtherTenant {
				target, tenantID = w.userB, w.b.ID
			}
			id := mustMembershipID(t, db, target.ID, tenantID)
			m, err := s.UpdateMembershipRole(ctx, id, latchkey.RoleReadOnlyUser)
			if err != nil {
				if got := mustRole(t, db, target.ID, tenantID); got != latchkey.RoleUser {
					t.Errorf("denied, yet role=%q", got)
				}
				return err
			}
			if m.Role != latchkey.RoleReadOnlyUser || m.User == nil || m.User.ID != target.ID {
				t.Errorf("membership=%+v", m)
			}
			if got := mustRole(t, db, target.ID, tenantID); got != latchkey.RoleReadOnlyUser {
				t.Errorf("role=%q", got)
			}
			if _, err := s.UpdateMembershipRole(ctx, id, latchkey.RoleUser); err != nil {
				t.Fatal(err)
			}
			return nil
		})

		ctx := w.ctx(cAdmin)
		// Cross-tenant: A's admin cannot touch B's memberships.
		bID := mustMembershipID(t, db, w.userB.ID, w.b.ID)
		_, err := s.UpdateMembershipRole(ctx, bID, latchkey.RoleTenantAdmin)
		wantErr(t, err, latchkey.ENOTFOUND)
		if got := mustRole(t, db, w.userB.ID, w.b.ID); got != latchkey.RoleUser {
			t.Fatalf("B's membership changed to %q", got)
		}
		_, err = s.UpdateMembershipRole(ctx, mustMembershipID(t, db, w.sa.ID, w.a.ID), latchkey.RoleTenantAdmin)
		wantErr(t, err, latchkey.EINVALID)
		_, err = s.UpdateMembershipRole(ctx, mustMembershipID(t, db, w.user.ID, w.a.ID), "OWNER")
		wantErr(t, err, latchkey.EINVALID)

		// Last human admin: the admin service account does not count.
		adminID := mustMembershipID(t, db, w.admin.ID, w.a.ID)
		_, err = s.UpdateMembershipRole(ctx, adminID, latchkey.RoleUser)
		wantErr(t, err, latchkey.ECONFLICT)
		if got := mustRole(t, db, w.admin.ID, w.a.ID); got != latchkey.RoleTenantAdmin {
			t.Fatalf("last admin demoted to %q", got)
		}
		// With a second human admin, the first may step down; then the second cannot.
		userID := mustMembershipID(t, db, w.user.ID, w.a.ID)
		if _, err := s.UpdateMembershipRole(ctx, userID, latchkey.RoleTenantAdmin); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateMembershipRole(ctx, adminID, latchkey.RoleUser); err != nil {
			t.Fatal(err)
		}
		userCtx := latchkeytest.AuthContext(context.Background(), w.user, w.a.ID, latchkey.RoleTenantAdmin)
		_, err = s.UpdateMembershipRole(userCtx, userID, latchkey.RoleReadOnlyUser)
		wantErr(t, err, latchkey.ECONFLICT)
		// Re-asserting an admin's role is fine.
		if _, err := s.UpdateMembershipRole(userCtx, userID, latchkey.RoleTenantAdmin); err != nil {
			t.Fatal(err)
		}
	})
}

func TestMembershipService_DeleteMembership(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewMembershipService(db)
		w.eachCaller(t, onlyHumanAdmins(), func(t *testing.T, name string, ctx context.Context) error {
			tenantID := latchkey.AuthFromContext(ctx)
			tid := w.a.ID
			if tenantID != nil {
				tid = tenantID.TenantID
			}
			u := latchkeytest.MustCreateMember(t, db, tid, "gone-"+name+"@example.com", latchkey.RoleUser)
			id := mustMembershipID(t, db, u.ID, tid)
			if err := s.DeleteMembership(ctx, id); err != nil {
				if got := mustRole(t, db, u.ID, tid); got != latchkey.RoleUser {
					t.Errorf("denied, yet role=%q", got)
				}
				return err
			}
			if got := mustRole(t, db, u.ID, tid); got != "" {
				t.Errorf("still a member with %q", got)
			}
			// Their default tenant was this one; now they have none.
			if rows := latchkeytest.MustQueryAll(t, db, `SELECT default_tenant_id FROM users WHERE id = ?`, u.ID); rows[0]["default_tenant_id"] != "" {
				t.Errorf("default tenant still %q", rows[0]["default_tenant_id"])
			}
			return nil
		})

		ctx := w.ctx(cAdmin)
		bID := mustMembershipID(t, db, w.userB.ID, w.b.ID)
		wantErr(t, s.DeleteMembership(ctx, bID), latchkey.ENOTFOUND)
		if got := mustRole(t, db, w.userB.ID, w.b.ID); got != latchkey.RoleUser {
			t.Fatalf("B's membership gone (role %q)", got)
		}
		wantErr(t, s.DeleteMembership(ctx, "no-such-id"), latchkey.ENOTFOUND)
		wantErr(t, s.DeleteMembership(ctx, mustMembershipID(t, db, w.sa.ID, w.a.ID)), latchkey.EINVALID)
		adminID := mustMembershipID(t, db, w.admin.ID, w.a.ID)
		wantErr(t, s.DeleteMembership(ctx, adminID), latchkey.ECONFLICT)
		if got := mustRole(t, db, w.admin.ID, w.a.ID); got != latchkey.RoleTenantAdmin {
			t.Fatalf("last admin removed (role %q)", got)
		}
		// With another human admin, an admin may leave.
		if _, err := s.UpdateMembershipRole(ctx, mustMembershipID(t, db, w.user.ID, w.a.ID), latchkey.RoleTenantAdmin); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteMembership(ctx, adminID); err != nil {
			t.Fatal(err)
		}
		// The user with a default elsewhere keeps it.
		latchkeytest.MustCreateMember(t, db, w.a.ID, "userb@example.com", latchkey.RoleUser)
		userCtx := latchkeytest.AuthContext(context.Background(), w.user, w.a.ID, latchkey.RoleTenantAdmin)
		if err := s.DeleteMembership(userCtx, mustMembershipID(t, db, w.userB.ID, w.a.ID)); err != nil {
			t.Fatal(err)
		}
		if rows := latchkeytest.MustQueryAll(t, db, `SELECT default_tenant_id FROM users WHERE id = ?`, w.userB.ID); rows[0]["default_tenant_id"] != w.b.ID {
			t.Errorf("userB's default tenant=%q, want B", rows[0]["default_tenant_id"])
		}
	})
}

// Two admins demoting each other at the same moment must not leave the
// tenant without one.
func TestMembershipService_LastAdminRace(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewMembershipService(db)
		adminID := mustMembershipID(t, db, w.admin.ID, w.a.ID)
		userID := mustMembershipID(t, db, w.user.ID, w.a.ID)
		adminCtx := w.ctx(cAdmin)
		userCtx := latchkeytest.AuthContext(context.Background(), w.user, w.a.ID, latchkey.RoleTenantAdmin)
		for i := 0; i < 10; i++ {
			latchkeytest.MustExec(t, db, `UPDATE memberships SET role = ? WHERE id IN (?, ?)`, string(latchkey.RoleTenantAdmin), adminID, userID)
			errs := make(chan error, 2)
			go func() { _, err := s.UpdateMembershipRole(adminCtx, userID, latchkey.RoleUser); errs <- err }()
			go func() { _, err := s.UpdateMembershipRole(userCtx, adminID, latchkey.RoleUser); errs <- err }()
			var conflicts int
			for range 2 {
				if err := <-errs; latchkey.ErrorCode(err) == latchkey.ECONFLICT {
					conflicts++
				} else if err != nil {
					t.Fatal(err)
				}
			}
			if conflicts != 1 {
				t.Fatalf("round %d: %d conflicts, want 1", i, conflicts)
			}
			if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM memberships WHERE tenant_id = ? AND role = ? AND user_id IN (?, ?)`,
				w.a.ID, string(latchkey.RoleTenantAdmin), w.admin.ID, w.user.ID); n != 1 {
				t.Fatalf("round %d: %d human admins left, want 1", i, n)
			}
		}
	})
}
