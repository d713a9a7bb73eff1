package sqldb_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/inmem"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// mustInvite has A's admin invite an existing user by email.
func mustInvite(t *testing.T, db *sqldb.DB, w *world, email string, role latchkey.Role) *latchkey.Invitation {
	t.Helper()
	m, inv, err := sqldb.NewMembershipService(db).CreateMembership(withClient(w.ctx(cAdmin)), latchkey.MembershipCreate{Email: email, Role: role})
	if err != nil {
		t.Fatal(err)
	} else if m != nil || inv == nil {
		t.Fatalf("membership=%+v invitation=%+v, want an invitation", m, inv)
	}
	return inv
}

func TestInvitationService_Invite(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewInvitationService(db)
		var inv *latchkey.Invitation
		e := mustOneNewEvent(t, db, func() error {
			inv = mustInvite(t, db, w, "UserB@example.com", latchkey.RoleReadOnlyUser)
			return nil
		})
		// The admin learns nothing about the user: the event and the
		// invitation hold what the admin typed, never the user's id.
		checkEvent(t, e, w.a.ID, w.admin, latchkey.CredentialAPIKey, latchkey.AuditInvitationCreate, latchkey.AuditTargetInvitation, inv.ID, testClient, clock.Now())
		if want := map[string]string{"invitee": "userb@example.com", "role": "READ_ONLY_USER"}; !equalMaps(e.Details, want) {
			t.Errorf("details=%v, want %v", e.Details, want)
		}
		w.eachCaller(t, onlyHumanAdmins(), func(t *testing.T, name string, ctx context.Context) error {
			invs, n, err := s.FindInvitations(ctx, latchkey.InvitationFilter{})
			if err != nil {
				return err
			}
			want := 1
			if name == cOtherTenant {
				want = 0 // B has none
			}
			if n != want || len(invs) != want {
				t.Fatalf("%d invitations (count %d), want %d", len(invs), n, want)
			}
			if want == 1 && (invs[0].ID != inv.ID || invs[0].Invitee != "userb@example.com" || invs[0].TenantName != "" || invs[0].Role != latchkey.RoleReadOnlyUser) {
				t.Errorf("invitation=%+v", invs[0])
			}
			return nil
		})
		// Not a member until accepted.
		if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM memberships WHERE tenant_id = ? AND user_id = ?`, w.a.ID, w.userB.ID); n != 0 {
			t.Fatal("invited user is already a member")
		}
		ms, _, err := sqldb.NewMembershipService(db).FindMemberships(w.ctx(cAdmin), latchkey.MembershipFilter{UserID: &w.userB.ID})
		if err != nil || len(ms) != 0 {
			t.Fatalf("admin finds the invited user as member: %v, %v", ms, err)
		}
	})
}

func TestInvitationService_Accept(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewInvitationService(db)
		inv := mustInvite(t, db, w, "userb@example.com", latchkey.RoleReadOnlyUser)
		bg := context.Background()
		userB := withClient(latchkeytest.AuthContext(bg, w.userB, w.b.ID, latchkey.RoleUser))

		// Only the invitee sees and may accept it.
		for name, ctx := range map[string]context.Context{
			"admin of A":      w.ctx(cAdmin),
			"admin of B":      w.ctx(cOtherTenant),
			"user of A":       w.ctx(cUser),
			"invitee, runner": latchkeytest.TokenAuthContext(bg, w.userB, w.b.ID, latchkey.RoleUser, latchkey.TokenScopeRunner),
		} {
			invs, err := s.FindMyInvitations(ctx, 0)
			if err == nil && len(invs) != 0 {
				t.Errorf("%s sees %+v", name, invs)
			}
			if _, err := s.AcceptInvitation(ctx, inv.ID); latchkey.ErrorCode(err) != latchkey.ENOTFOUND && latchkey.ErrorCode(err) != latchkey.EFORBIDDEN {
				t.Errorf("%s accepts: err=%v, want ENOTFOUND or EFORBIDDEN", name, err)
			}
			if err := s.DeclineInvitation(ctx, inv.ID); latchkey.ErrorCode(err) != latchkey.ENOTFOUND && latchkey.ErrorCode(err) != latchkey.EFORBIDDEN {
				t.Errorf("%s declines: err=%v", name, err)
			}
		}
		_, err := s.AcceptInvitation(latchkeytest.AuthContext(bg, latchkeytest.ServiceAccountUser(w.saB), w.b.ID, latchkey.RoleUser), inv.ID)
		wantErr(t, err, latchkey.EFORBIDDEN)

		invs, err := s.FindMyInvitations(userB, 0)
		if err != nil {
			t.Fatal(err)
		} else if len(invs) != 1 || invs[0].ID != inv.ID || invs[0].TenantName != w.a.Name || invs[0].Role != latchkey.RoleReadOnlyUser {
			t.Fatalf("my invitations=%+v", invs)
		}

		events := make(chan latchkey.Event, 16)
		es := inmem.NewEventService()
		db.Events = es
		defer es.Subscribe(func(ev latchkey.Event) { events <- ev })()
		clock.Add(time.Minute)
		var m *latchkey.Membership
		e := mustOneNewEvent(t, db, func() (err error) {
			m, err = s.AcceptInvitation(userB, inv.ID)
			return err
		})
		if m.TenantID != w.a.ID || m.UserID != w.userB.ID || m.Role != latchkey.RoleReadOnlyUser {
			t.Errorf("membership=%+v", m)
		}
		if got := mustRole(t, db, w.userB.ID, w.a.ID); got != latchkey.RoleReadOnlyUser {
			t.Errorf("role=%q", got)
		}
		checkEvent(t, e, w.a.ID, w.userB, latchkey.CredentialAPIKey, latchkey.AuditInvitationAccept, latchkey.AuditTargetMembership, m.ID, testClient, clock.Now())
		if e.Details["email"] != "userb@example.com" || e.Details["invitation_id"] != inv.ID {
			t.Errorf("details=%v", e.Details)
		}
		select {
		case ev := <-events:
			if ev.Type != latchkey.EventMembershipChanged || ev.UserID != w.userB.ID || ev.TenantID != w.a.ID {
				t.Errorf("event=%+v", ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no membership event")
		}
		// The default tenant stays B's.
		if rows := latchkeytest.MustQueryAll(t, db, `SELECT default_tenant_id FROM users WHERE id = ?`, w.userB.ID); rows[0]["default_tenant_id"] != w.b.ID {
			t.Errorf("default tenant=%q", rows[0]["default_tenant_id"])
		}
		// Gone once accepted.
		_, err = s.AcceptInvitation(userB, inv.ID)
		wantErr(t, err, latchkey.ENOTFOUND)
		if invs, _, err := s.FindInvitations(w.ctx(cAdmin), latchkey.InvitationFilter{}); err != nil || len(invs) != 0 {
			t.Errorf("pending after acceptance: %+v, %v", invs, err)
		}
		// Now a member: inviting again is a conflict.
		_, _, err = sqldb.NewMembershipService(db).CreateMembership(w.ctx(cAdmin), latchkey.MembershipCreate{Email: "userb@example.com"})
		wantErr(t, err, latchkey.ECONFLICT)
	})
}

func TestInvitationService_DeclineAndWithdraw(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewInvitationService(db)
		inv := mustInvite(t, db, w, "adminb@example.com", latchkey.RoleTenantAdmin)
		adminB := withClient(w.ctx(cOtherTenant))
		// Declining names neither the user nor where they were.
		e := mustOneNewEvent(t, db, func() error { return s.DeclineInvitation(adminB, inv.ID) })
		checkEvent(t, e, w.a.ID, nil, latchkey.CredentialInvitee, latchkey.AuditInvitationDecline, latchkey.AuditTargetInvitation, inv.ID, latchkey.ClientInfo{}, clock.Now())
		if e.ActorCredentialID != "" || strings.Contains(e.Details["invitee"], w.adminB.ID) {
			t.Errorf("decline event names the user: %+v", e)
		}
		if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM memberships WHERE tenant_id = ? AND user_id = ?`, w.a.ID, w.adminB.ID); n != 0 {
			t.Fatal("declined, yet a member")
		}
		// Declined: the admin may invite again, then withdraw.
		inv = mustInvite(t, db, w, "adminb@example.com", latchkey.RoleUser)
		w.eachCaller(t, map[string]latchkey.Code{
			cAdmin: "", cUserToken: "", cUser: latchkey.EFORBIDDEN, cReadOnly: latchkey.EFORBIDDEN,
			cSA: latchkey.EFORBIDDEN, cSAAdmin: latchkey.EFORBIDDEN, cTenantToken: latchkey.EFORBIDDEN,
			cRunnerToken: latchkey.EFORBIDDEN, cAnonymous: latchkey.EUNAUTHENTICATED, cOtherTenant: latchkey.ENOTFOUND,
		}, func(t *testing.T, name string, ctx context.Context) error {
			if name == cUserToken {
				return nil // the admin's own withdrawal is below
			}
			return s.DeleteInvitation(ctx, inv.ID)
		})
		if _, err := s.AcceptInvitation(adminB, inv.ID); latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
			t.Fatalf("withdrawn invitation: err=%v", err)
		}
		if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM invitations`); n != 0 {
			t.Errorf("%d invitations left", n)
		}
		if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM audit_events WHERE action = ?`, string(latchkey.AuditInvitationDelete)); got != 1 {
			t.Errorf("%d withdrawal events, want 1", got)
		}
	})
}
