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

func TestSearch_MembersAndServiceAccounts(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		latchkeytest.MustCreateMember(t, db, w.a.ID, "per%cent@example.com", latchkey.RoleUser)
		latchkeytest.MustCreateMember(t, db, w.a.ID, "under_score@example.com", latchkey.RoleUser)
		latchkeytest.MustCreateServiceAccount(t, db, w.a.ID, "Deploy_Bot", latchkey.RoleUser)
		emails := func(q string, role *latchkey.Role) []string {
			t.Helper()
			ms, n, err := sqldb.NewMembershipService(db).FindMemberships(w.ctx(cAdmin), latchkey.MembershipFilter{EmailContains: &q, Role: role})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, m := range ms {
				out = append(out, m.User.Email)
			}
			if n != len(out) {
				t.Errorf("%q: count %d for %d rows", q, n, len(out))
			}
			slices.Sort(out)
			return out
		}
		readOnly := latchkey.RoleReadOnlyUser
		for _, tt := range []struct {
			q    string
			role *latchkey.Role
			want []string
		}{
			{"READ", nil, []string{"readonly@example.com"}},
			{"%", nil, []string{"per%cent@example.com"}}, // LIKE's wildcards match themselves
			{"_", nil, []string{"under_score@example.com"}},
			{"n_e", nil, nil},   // would match "nde" were _ a wildcard
			{"userb", nil, nil}, // another tenant's member
			{"example", &readOnly, []string{"readonly@example.com"}},
		} {
			if got := emails(tt.q, tt.role); !slices.Equal(got, tt.want) {
				t.Errorf("%q: %v, want %v", tt.q, got, tt.want)
			}
		}
		keys := sqldb.NewAPIKeyService(db)
		for _, name := range []string{"Laptop CLI", "ci_100%"} {
			k := &latchkey.APIKey{Name: name}
			if _, err := keys.CreateAPIKey(w.ctx(cUser), k); err != nil {
				t.Fatal(err)
			}
			if name == "ci_100%" {
				if err := keys.DeleteAPIKey(w.ctx(cUser), k.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		for q, want := range map[string]int{"laptop": 1, "%": 0, "cli": 1, "": 1} {
			ks, _, err := keys.FindAPIKeys(w.ctx(cUser), latchkey.APIKeyFilter{NameContains: &q})
			if err != nil || len(ks) != want {
				t.Errorf("keys %q: %d, err=%v, want %d", q, len(ks), err, want)
			}
		}
		for q, want := range map[string]int{"0%": 1, "i_1": 1, "i21": 0, "laptop": 0} {
			ks, _, err := keys.FindRevokedAPIKeys(w.ctx(cUser), latchkey.RevokedAPIKeyFilter{NameContains: &q})
			if err != nil || len(ks) != want {
				t.Errorf("revoked keys %q: %d, err=%v, want %d", q, len(ks), err, want)
			}
		}
		for q, want := range map[string][]string{"bot": {"robot admin", "Deploy_Bot"}, "y_b": {"Deploy_Bot"}, "AGENT": {"agent"}, "%": nil} {
			sas, _, err := sqldb.NewServiceAccountService(db).FindServiceAccounts(w.ctx(cAdmin), latchkey.ServiceAccountFilter{NameContains: &q})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, sa := range sas {
				got = append(got, sa.Name)
			}
			if !slices.Equal(got, want) {
				t.Errorf("service accounts %q: %v, want %v", q, got, want)
			}
		}
	})
}

func TestServiceAccountService_UpdateRole(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewServiceAccountService(db)
		w.eachCaller(t, map[string]latchkey.Code{
			cAdmin: "", cUserToken: "", cUser: latchkey.EFORBIDDEN, cReadOnly: latchkey.EFORBIDDEN,
			cSA: latchkey.EFORBIDDEN, cSAAdmin: latchkey.EFORBIDDEN, cTenantToken: latchkey.EFORBIDDEN,
			cRunnerToken: latchkey.EFORBIDDEN, cAnonymous: latchkey.EUNAUTHENTICATED, cOtherTenant: latchkey.ENOTFOUND,
		}, func(t *testing.T, name string, ctx context.Context) error {
			sa, err := s.UpdateServiceAccountRole(ctx, w.sa.ID, latchkey.RoleReadOnlyUser)
			if err == nil && (sa.Role != latchkey.RoleReadOnlyUser || sa.ID != w.sa.ID) {
				t.Errorf("sa=%+v", sa)
			}
			return err
		})
		if got := mustRole(t, db, w.sa.ID, w.a.ID); got != latchkey.RoleReadOnlyUser {
			t.Fatalf("role=%q", got)
		}
		clock.Add(time.Second)
		e := mustOneNewEvent(t, db, func() error {
			_, err := s.UpdateServiceAccountRole(withClient(w.ctx(cAdmin)), w.sa.ID, latchkey.RoleTenantAdmin)
			return err
		})
		checkEvent(t, e, w.a.ID, w.admin, latchkey.CredentialAPIKey, latchkey.AuditServiceAccountRole, latchkey.AuditTargetServiceAccount, w.sa.ID, testClient, clock.Now())
		if e.Details["previous_role"] != "READ_ONLY_USER" || e.Details["role"] != "TENANT_ADMIN" {
			t.Errorf("details=%v", e.Details)
		}
		_, err := s.UpdateServiceAccountRole(w.ctx(cAdmin), w.sa.ID, "OWNER")
		wantErr(t, err, latchkey.EINVALID)
		_, err = s.UpdateServiceAccountRole(w.ctx(cAdmin), w.user.ID, latchkey.RoleUser) // a human
		wantErr(t, err, latchkey.ENOTFOUND)
	})
}

func TestAuditService_DateRangeAndActingKey(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		keys := sqldb.NewAPIKeyService(db)
		start := clock.Now()
		// The admin acts with a key named "ci key" (the world's caller
		// contexts name none, so set it).
		k := &latchkey.APIKey{Name: "ci key"}
		if _, err := keys.CreateAPIKey(w.ctx(cAdmin), k); err != nil {
			t.Fatal(err)
		}
		viaKey := latchkey.NewContextWithAuth(w.ctx(cAdmin), &latchkey.Auth{User: w.admin, TenantID: w.a.ID, Role: latchkey.RoleTenantAdmin, Kind: latchkey.CredentialAPIKey, APIKeyID: k.ID})
		clock.Add(time.Hour)
		mid := clock.Now()
		if err := sqldb.NewServiceAccountService(db).CreateServiceAccount(viaKey, &latchkey.ServiceAccount{Name: "later"}); err != nil {
			t.Fatal(err)
		}
		// Revoked, the key is still named.
		if err := keys.DeleteAPIKey(w.ctx(cAdmin), k.ID); err != nil {
			t.Fatal(err)
		}
		audit := sqldb.NewAuditService(db)
		find := func(from, before *time.Time) []*latchkey.AuditEvent {
			t.Helper()
			evs, n, err := audit.FindAuditEvents(w.ctx(cAdmin), latchkey.AuditFilter{CreatedFrom: from, CreatedBefore: before})
			if err != nil || n != len(evs) {
				t.Fatalf("%v (count %d), err=%v", evs, n, err)
			}
			return evs
		}
		before, after := find(&start, &mid), find(&mid, nil)
		if len(before) != 1 || before[0].Action != latchkey.AuditAPIKeyCreate {
			t.Errorf("before %v: %+v", mid, before)
		}
		if len(after) != 2 || after[1].Action != latchkey.AuditServiceAccountCreate || after[0].Action != latchkey.AuditAPIKeyDelete {
			t.Fatalf("after %v: %+v", mid, after)
		}
		if e := after[1]; e.ActorCredentialID != k.ID || e.ActorCredentialName != "ci key" {
			t.Errorf("acting key %q %q, want %s “ci key”", e.ActorCredentialID, e.ActorCredentialName, k.ID)
		}
		// And identified by the identifier stored at its creation, even revoked.
		if e := after[1]; e.ActorCredentialIdentifier == "" || e.ActorCredentialIdentifier != k.Identifier {
			t.Errorf("acting key identifier %q, want %q", e.ActorCredentialIdentifier, k.Identifier)
		}
	})
}

func TestUserService_ResetPasswordAudited(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		users := sqldb.NewUserService(db)
		users.PasswordParams = latchkeytest.FastPasswordParams()
		secret, _, err := users.CreatePasswordReset(w.ctx(cAdmin), w.user.ID)
		if err != nil {
			t.Fatal(err)
		}
		e := mustOneNewEvent(t, db, func() error {
			_, err := users.ResetPassword(withClient(t.Context()), secret, "a good password 1")
			return err
		})
		checkEvent(t, e, w.a.ID, w.user, latchkey.CredentialPasswordLink, latchkey.AuditPasswordReset, latchkey.AuditTargetUser, w.user.ID, testClient, clock.Now())
		if e.Details["email"] != "user@example.com" || e.ActorCredentialID == "" {
			t.Errorf("event=%+v", e)
		}
	})
}
