package sqldb_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

func newUserService(db *sqldb.DB) *sqldb.UserService {
	s := sqldb.NewUserService(db)
	s.PasswordParams = latchkeytest.FastPasswordParams()
	return s
}

func userIDs(us []*latchkey.User) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.ID)
	}
	return out
}

func TestUserService_FindUserByID(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := newUserService(db)
		for _, tt := range []struct {
			target string
			id     string
			want   map[string]latchkey.Code
		}{
			// A member of A: visible to everyone acting in A but RUNNER tokens.
			{"user of A", w.user.ID, map[string]latchkey.Code{
				cAdmin: "", cUserToken: "", cUser: "", cReadOnly: "", cSA: "", cSAAdmin: "", cTenantToken: "",
				cRunnerToken: latchkey.ENOTFOUND, cAnonymous: latchkey.EUNAUTHENTICATED, cOtherTenant: latchkey.ENOTFOUND,
			}},
			// A service account of A: likewise.
			{"sa of A", w.sa.ID, map[string]latchkey.Code{
				cAdmin: "", cUserToken: "", cUser: "", cReadOnly: "", cSA: "", cSAAdmin: "", cTenantToken: "",
				cRunnerToken: latchkey.ENOTFOUND, cAnonymous: latchkey.EUNAUTHENTICATED, cOtherTenant: latchkey.ENOTFOUND,
			}},
			// A member of B: visible only from B.
			{"user of B", w.userB.ID, map[string]latchkey.Code{
				cAdmin: latchkey.ENOTFOUND, cUserToken: latchkey.ENOTFOUND, cUser: latchkey.ENOTFOUND, cReadOnly: latchkey.ENOTFOUND,
				cSA: latchkey.ENOTFOUND, cSAAdmin: latchkey.ENOTFOUND, cTenantToken: latchkey.ENOTFOUND,
				cRunnerToken: latchkey.ENOTFOUND, cAnonymous: latchkey.EUNAUTHENTICATED, cOtherTenant: "",
			}},
			{"sa of B", w.saB.ID, map[string]latchkey.Code{
				cAdmin: latchkey.ENOTFOUND, cUserToken: latchkey.ENOTFOUND, cUser: latchkey.ENOTFOUND, cReadOnly: latchkey.ENOTFOUND,
				cSA: latchkey.ENOTFOUND, cSAAdmin: latchkey.ENOTFOUND, cTenantToken: latchkey.ENOTFOUND,
				cRunnerToken: latchkey.ENOTFOUND, cAnonymous: latchkey.EUNAUTHENTICATED, cOtherTenant: "",
			}},
		} {
			t.Run(tt.target, func(t *testing.T) {
				w.eachCaller(t, tt.want, func(t *testing.T, name string, ctx context.Context) error {
					u, err := s.FindUserByID(ctx, tt.id)
					if err == nil && u.ID != tt.id {
						t.Errorf("id=%q, want %q", u.ID, tt.id)
					}
					return err
				})
			})
		}
		// Everyone sees themselves, RUNNER tokens included.
		w.eachCaller(t, map[string]latchkey.Code{
			cAdmin: "", cUserToken: "", cUser: "", cReadOnly: "", cSA: "", cSAAdmin: "", cTenantToken: "",
			cRunnerToken: "", cAnonymous: latchkey.EUNAUTHENTICATED, cOtherTenant: "",
		}, func(t *testing.T, name string, ctx context.Context) error {
			a := latchkey.AuthFromContext(ctx)
			if a == nil {
				_, err := s.FindUserByID(ctx, w.admin.ID)
				return err
			}
			u, err := s.FindUserByID(ctx, a.User.ID)
			if err != nil {
				return err
			}
			if u.ID != a.User.ID || u.Kind != a.User.Kind {
				t.Errorf("got %+v, want %+v", u, a.User)
			}
			return nil
		})
		u, err := s.FindUserByID(w.ctx(cAdmin), w.user.ID)
		if err != nil {
			t.Fatal(err)
		}
		if u.Email != "user@example.com" || u.Kind != latchkey.UserKindHuman || u.DefaultTenantID != w.a.ID || u.TenantID != "" {
			t.Errorf("user=%+v", u)
		}
		sa, err := s.FindUserByID(w.ctx(cAdmin), w.sa.ID)
		if err != nil {
			t.Fatal(err)
		}
		if sa.Email != "" || sa.Kind != latchkey.UserKindServiceAccount || sa.TenantID != w.a.ID || sa.Name != "agent" {
			t.Errorf("sa=%+v", sa)
		}
	})
}

func TestUserService_FindUsers(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := newUserService(db)
		membersA := []string{w.admin.ID, w.user.ID, w.readonly.ID, w.sa.ID, w.saAdmin.ID}
		membersB := []string{w.adminB.ID, w.userB.ID, w.saB.ID}
		codes := map[string]latchkey.Code{}
		for _, c := range w.callers {
			codes[c.name] = ""
		}
		codes[cAnonymous] = latchkey.EUNAUTHENTICATED
		w.eachCaller(t, codes, func(t *testing.T, name string, ctx context.Context) error {
			us, n, err := s.FindUsers(ctx, latchkey.UserFilter{})
			if err != nil {
				return err
			}
			want := membersA
			switch name {
			case cRunnerToken:
				want = []string{w.admin.ID}
			case cOtherTenant:
				want = membersB
			}
			if got := userIDs(us); !slices.Equal(got, want) || n != len(want) {
				t.Errorf("users=%v (count %d), want %v", got, n, want)
			}
			return nil
		})

		// userB joins A too: filtering A's view by tenant B must still match
		// nothing, not reveal who else is in B.
		latchkeytest.MustCreateMember(t, db, w.a.ID, "userb@example.com", latchkey.RoleUser)
		membersA = append(membersA, w.userB.ID)

		ctx := w.ctx(cUser)
		str := func(s string) *string { return &s }
		for _, tt := range []struct {
			name   string
			filter latchkey.UserFilter
			want   []string
			count  int
		}{
			{"email", latchkey.UserFilter{Email: str(" ReadOnly@Example.com")}, []string{w.readonly.ID}, 1},
			{"email of B", latchkey.UserFilter{Email: str("adminb@example.com")}, nil, 0},
			{"id of B", latchkey.UserFilter{ID: &w.adminB.ID}, nil, 0},
			{"tenant A", latchkey.UserFilter{TenantID: &w.a.ID}, membersA, 6},
			{"tenant B", latchkey.UserFilter{TenantID: &w.b.ID}, nil, 0},
			{"limit offset", latchkey.UserFilter{Offset: 1, Limit: 2}, membersA[1:3], 6},
			{"id of a member of both", latchkey.UserFilter{ID: &w.userB.ID, TenantID: &w.b.ID}, nil, 0},
		} {
			t.Run(tt.name, func(t *testing.T) {
				us, n, err := s.FindUsers(ctx, tt.filter)
				if err != nil {
					t.Fatal(err)
				}
				if got := userIDs(us); !slices.Equal(got, tt.want) || n != tt.count {
					t.Errorf("users=%v (count %d), want %v (count %d)", got, n, tt.want, tt.count)
				}
			})
		}
	})
}

// mustSetPasswordByReset gives user a password through a reset created by
// the admin of A.
func mustSetPasswordByReset(t *testing.T, w *world, s *sqldb.UserService, userID, password string) {
	t.Helper()
	secret, _, err := s.CreatePasswordReset(w.ctx(cAdmin), userID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResetPassword(context.Background(), secret, password); err != nil {
		t.Fatal(err)
	}
}

func TestUserService_AuthenticatePassword(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := newUserService(db)
		ctx := context.Background()
		mustSetPasswordByReset(t, w, s, w.user.ID, "correct horse battery")

		u, err := s.AuthenticatePassword(ctx, "user@example.com", "correct horse battery")
		if err != nil {
			t.Fatal(err)
		} else if u.ID != w.user.ID || u.Email != "user@example.com" {
			t.Fatalf("user=%+v", u)
		}
		if u, err := s.AuthenticatePassword(ctx, "  USER@example.COM ", "correct horse battery"); err != nil || u.ID != w.user.ID {
			t.Fatalf("mixed-case email: %v", err)
		}
		var msgs []string
		for _, tt := range []struct{ name, email, password string }{
			{"wrong password", "user@example.com", "correct horse batterY"},
			{"empty password", "user@example.com", ""},
			{"unknown email", "nobody@example.com", "correct horse battery"},
			{"no password set", "readonly@example.com", "correct horse battery"},
			{"no password set, empty", "readonly@example.com", ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.AuthenticatePassword(ctx, tt.email, tt.password)
				wantErr(t, err, latchkey.EUNAUTHENTICATED)
				msgs = append(msgs, latchkey.ErrorMessage(err))
				if strings.Contains(err.Error(), tt.password) && tt.password != "" {
					t.Errorf("error %q contains the password", err)
				}
			})
		}
		// One message for every failure, so it tells nothing.
		for _, m := range msgs {
			if m != "Invalid email or password." {
				t.Errorf("message=%q", m)
			}
		}
		// The stored hash is Argon2id, not the password.
		rows := latchkeytest.MustQueryAll(t, db, `SELECT password_hash FROM users WHERE id = ?`, w.user.ID)
		if h := rows[0]["password_hash"]; !strings.HasPrefix(h, "$argon2id$") || strings.Contains(h, "correct horse") {
			t.Errorf("password_hash=%q", h)
		}
	})
}

func TestUserService_SetPassword(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := newUserService(db)
		mustSetPasswordByReset(t, w, s, w.user.ID, "first password 1")
		mustSetPasswordByReset(t, w, s, w.admin.ID, "admin password 1")

		// Only humans with an unscoped credential; nobody without one.
		w.eachCaller(t, map[string]latchkey.Code{
			// the admin's current password is "admin password 1"; user's "first password 1";
			// others have none, so the check of the current one fails.
			cAdmin: "", cUserToken: "", cUser: "", cReadOnly: latchkey.EUNAUTHENTICATED,
			cSA: latchkey.EFORBIDDEN, cSAAdmin: latchkey.EFORBIDDEN, cTenantToken: latchkey.EFORBIDDEN,
			cRunnerToken: latchkey.EFORBIDDEN, cAnonymous: latchkey.EUNAUTHENTICATED, cOtherTenant: latchkey.EUNAUTHENTICATED,
		}, func(t *testing.T, name string, ctx context.Context) error {
			current := "admin password 1"
			if name == cUser {
				current = "first password 1"
			}
			if err := s.SetPassword(ctx, current, "new password "+name); err != nil {
				return err
			}
			if name == cAdmin {
				// Back, so the USER-token caller (the same admin) can change it too.
				if err := s.SetPassword(ctx, "new password "+name, "admin password 1"); err != nil {
					t.Fatal(err)
				}
			}
			return nil
		})

		ctx := w.ctx(cUser)
		wantErr(t, s.SetPassword(ctx, "wrong current pw", "another password 2"), latchkey.EUNAUTHENTICATED)
		wantErr(t, s.SetPassword(ctx, "new password user", "short"), latchkey.EINVALID)
		if _, err := s.AuthenticatePassword(context.Background(), "user@example.com", "new password user"); err != nil {
			t.Fatalf("new password: %v", err)
		}
		if _, err := s.AuthenticatePassword(context.Background(), "user@example.com", "first password 1"); latchkey.ErrorCode(err) != latchkey.EUNAUTHENTICATED {
			t.Fatalf("old password: err=%v", err)
		}

		// Other sessions end; the one in use stays.
		for _, id := range []string{"s-current", "s-other"} {
			latchkeytest.MustExec(t, db, `INSERT INTO sessions (id, token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
				id, latchkey.HashSecret(id), w.user.ID, sqldb.Time(clock.Now()), sqldb.Time(clock.Now().Add(time.Hour)))
		}
		a := *latchkey.AuthFromContext(ctx)
		a.Kind, a.SessionID = latchkey.CredentialSession, "s-current"
		if err := s.SetPassword(latchkey.NewContextWithAuth(context.Background(), &a), "new password user", "third password 3"); err != nil {
			t.Fatal(err)
		}
		rows := latchkeytest.MustQueryAll(t, db, `SELECT id FROM sessions WHERE user_id = ?`, w.user.ID)
		if len(rows) != 1 || rows[0]["id"] != "s-current" {
			t.Errorf("sessions left=%v, want only s-current", rows)
		}
	})
}

func TestUserService_CreatePasswordReset(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := newUserService(db)
		want := onlyHumanAdmins()
		want[cOtherTenant] = latchkey.ENOTFOUND // the user is not a member of B
		w.eachCaller(t, want, func(t *testing.T, name string, ctx context.Context) error {
			before := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM password_resets`)
			secret, expiresAt, err := s.CreatePasswordReset(ctx, w.user.ID)
			if err != nil {
				if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM password_resets`); got != before {
					t.Errorf("denied, yet resets went from %d to %d", before, got)
				}
				return err
			}
			if prefix, err := latchkey.ParseSecret(secret); err != nil || prefix != latchkey.PrefixPasswordReset {
				t.Errorf("secret prefix=%q err=%v", prefix, err)
			}
			if want := clock.Now().Add(72 * time.Hour); !expiresAt.Equal(want) {
				t.Errorf("expires=%v, want %v", expiresAt, want)
			}
			// Only the hash is stored; the older unused reset is gone.
			rows := latchkeytest.MustQueryAll(t, db, `SELECT * FROM password_resets WHERE user_id = ?`, w.user.ID)
			if len(rows) != 1 {
				t.Fatalf("resets=%d, want 1", len(rows))
			}
			for col, v := range rows[0] {
				if strings.Contains(v, secret[4:]) {
					t.Errorf("column %s holds the secret", col)
				}
			}
			if rows[0]["token_hash"] != string(latchkey.HashSecret(secret)) {
				t.Error("token_hash is not the secret's SHA-256")
			}
			return nil
		})
		ctx := w.ctx(cAdmin)
		// The admin of A invites B's admin, then tries to take the account
		// over with a reset: refused, since that would hand over tenant B.
		ms := sqldb.NewMembershipService(db)
		_, inv, err := ms.CreateMembership(ctx, latchkey.MembershipCreate{Email: "adminb@example.com", Role: latchkey.RoleUser})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sqldb.NewInvitationService(db).AcceptInvitation(w.ctx(cOtherTenant), inv.ID); err != nil {
			t.Fatal(err)
		}
		_, _, err = s.CreatePasswordReset(ctx, w.adminB.ID)
		wantErr(t, err, latchkey.EFORBIDDEN)
		// Once A's admin is also an admin of B, the reset is allowed.
		latchkeytest.MustCreateMember(t, db, w.b.ID, "admin@example.com", latchkey.RoleTenantAdmin)
		if _, _, err := s.CreatePasswordReset(ctx, w.adminB.ID); err != nil {
			t.Fatalf("admin of both tenants: %v", err)
		}
		for _, tt := range []struct {
			name, id string
			code     latchkey.Code
		}{
			{"service account", w.sa.ID, latchkey.EINVALID},
			{"member of B only", w.userB.ID, latchkey.ENOTFOUND},
			{"unknown", "no-such-user", latchkey.ENOTFOUND},
		} {
			_, _, err := s.CreatePasswordReset(ctx, tt.id)
			if latchkey.ErrorCode(err) != tt.code {
				t.Errorf("%s: err=%v, want %s", tt.name, err, tt.code)
			}
		}
	})
}

func TestUserService_ResetPassword(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := newUserService(db)
		bg := context.Background()
		admin := w.ctx(cAdmin)

		t.Run("single use", func(t *testing.T) {
			secret, _, err := s.CreatePasswordReset(admin, w.user.ID)
			if err != nil {
				t.Fatal(err)
			}
			// A bad password does not consume it.
			_, err = s.ResetPassword(bg, secret, "short")
			wantErr(t, err, latchkey.EINVALID)
			latchkeytest.MustExec(t, db, `INSERT INTO sessions (id, token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
				"s1", latchkey.HashSecret("s1"), w.user.ID, sqldb.Time(clock.Now()), sqldb.Time(clock.Now().Add(time.Hour)))
			u, err := s.ResetPassword(bg, secret, "brand new password")
			if err != nil {
				t.Fatal(err)
			} else if u.ID != w.user.ID {
				t.Fatalf("user=%q", u.ID)
			}
			if _, err := s.AuthenticatePassword(bg, "user@example.com", "brand new password"); err != nil {
				t.Fatal(err)
			}
			if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM sessions WHERE user_id = ?`, w.user.ID); n != 0 {
				t.Errorf("sessions=%d after reset, want 0", n)
			}
			_, err = s.ResetPassword(bg, secret, "another new password")
			wantErr(t, err, latchkey.EUNAUTHENTICATED)
			if _, err := s.AuthenticatePassword(bg, "user@example.com", "another new password"); err == nil {
				t.Fatal("the reused secret changed the password")
			}
		})
		t.Run("expiry", func(t *testing.T) {
			secret, _, err := s.CreatePasswordReset(admin, w.readonly.ID)
			if err != nil {
				t.Fatal(err)
			}
			clock.Add(72 * time.Hour)
			_, err = s.ResetPassword(bg, secret, "brand new password")
			wantErr(t, err, latchkey.EUNAUTHENTICATED)

			secret, _, err = s.CreatePasswordReset(admin, w.readonly.ID)
			if err != nil {
				t.Fatal(err)
			}
			clock.Add(72*time.Hour - time.Second)
			if _, err := s.ResetPassword(bg, secret, "brand new password"); err != nil {
				t.Fatalf("just before expiry: %v", err)
			}
		})
		t.Run("superseded", func(t *testing.T) {
			first, _, err := s.CreatePasswordReset(admin, w.readonly.ID)
			if err != nil {
				t.Fatal(err)
			}
			second, _, err := s.CreatePasswordReset(admin, w.readonly.ID)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.ResetPassword(bg, first, "brand new password")
			wantErr(t, err, latchkey.EUNAUTHENTICATED)
			if _, err := s.ResetPassword(bg, second, "brand new password"); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("bad secrets", func(t *testing.T) {
			secret, _, err := s.CreatePasswordReset(admin, w.user.ID)
			if err != nil {
				t.Fatal(err)
			}
			other, err := latchkey.NewSecret(db.Rand, latchkey.PrefixPasswordReset)
			if err != nil {
				t.Fatal(err)
			}
			session, err := latchkey.NewSecret(db.Rand, latchkey.PrefixSession)
			if err != nil {
				t.Fatal(err)
			}
			last := "x"
			if strings.HasSuffix(secret, last) {
				last = "y" // a "typo" must actually differ from the secret
			}
			for _, bad := range []string{"", "lkp_short", secret[:len(secret)-1] + last, other, session, w.f.AdminKey} {
				_, err := s.ResetPassword(bg, bad, "brand new password")
				wantErr(t, err, latchkey.EUNAUTHENTICATED)
				if bad != "" && strings.Contains(err.Error(), bad) {
					t.Errorf("error %q echoes the secret", err)
				}
			}
			// The real one still works.
			if _, err := s.ResetPassword(bg, secret, "brand new password"); err != nil {
				t.Fatal(err)
			}
		})
	})
}
