package sqldb_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// testClient is where the audit tests' requests come from.
var testClient = latchkey.ClientInfo{Addr: "203.0.113.7", UserAgent: "audit-test/1.0"}

// withClient returns ctx marked as coming from testClient.
func withClient(ctx context.Context) context.Context {
	return latchkey.NewContextWithClientInfo(ctx, testClient)
}

// auditRows returns every audit event of the database, oldest first, as
// column → value.
func auditRows(tb testing.TB, db *sqldb.DB) []map[string]string {
	tb.Helper()
	return latchkeytest.MustQueryAll(tb, db, `SELECT * FROM audit_events ORDER BY seq`)
}

// mustOneNewEvent runs fn and returns the one audit event it wrote, failing
// unless it wrote exactly one.
func mustOneNewEvent(t *testing.T, db *sqldb.DB, fn func() error) *latchkey.AuditEvent {
	t.Helper()
	evs := mustNewEvents(t, db, fn)
	if len(evs) != 1 {
		t.Fatalf("wrote %d audit events, want 1: %+v", len(evs), evs)
	}
	return evs[0]
}

// mustNewEvents runs fn, which must succeed, and returns the audit events
// it wrote, oldest first, as their tenants' admins read them.
func mustNewEvents(t *testing.T, db *sqldb.DB, fn func() error) []*latchkey.AuditEvent {
	t.Helper()
	before := len(auditRows(t, db))
	if err := fn(); err != nil {
		t.Fatal(err)
	}
	rows := auditRows(t, db)[before:]
	var out []*latchkey.AuditEvent
	for _, r := range rows {
		out = append(out, mustFindEvent(t, db, r["tenant_id"], r["id"]))
	}
	return out
}

// mustFindEvent reads event id through the service, as a human admin of
// tenantID.
func mustFindEvent(t *testing.T, db *sqldb.DB, tenantID, id string) *latchkey.AuditEvent {
	t.Helper()
	reader := &latchkey.User{ID: "audit-reader", Kind: latchkey.UserKindHuman}
	ctx := latchkeytest.AuthContext(context.Background(), reader, tenantID, latchkey.RoleTenantAdmin)
	evs, n, err := sqldb.NewAuditService(db).FindAuditEvents(ctx, latchkey.AuditFilter{ID: &id})
	if err != nil || n != 1 || len(evs) != 1 {
		t.Fatalf("find audit event %s: %v (count %d), err=%v", id, evs, n, err)
	}
	return evs[0]
}

// checkEvent compares the parts of e every test cares about.
func checkEvent(t *testing.T, e *latchkey.AuditEvent, tenantID string, actor *latchkey.User, kind latchkey.CredentialKind,
	action latchkey.AuditAction, targetType, targetID string, client latchkey.ClientInfo, now time.Time) {
	t.Helper()
	actorID := ""
	if actor != nil {
		actorID = actor.ID
	}
	if e.TenantID != tenantID || e.ActorUserID != actorID || e.ActorKind != kind || e.Action != action ||
		e.TargetType != targetType || e.TargetID != targetID || e.ClientAddr != client.Addr || e.UserAgent != client.UserAgent ||
		!e.CreatedAt.Equal(now) || e.ID == "" {
		t.Errorf("event=%+v\nwant tenant %s actor %s (%s) %s %s %s from %+v at %v", e, tenantID, actorID, kind, action, targetType, targetID, client, now)
	}
}

func TestAudit_EachActionWritesOneEvent(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		clock.Add(time.Minute)
		now := clock.Now()
		A := w.a.ID
		admin := withClient(w.ctx(cAdmin))
		keys, tokens := sqldb.NewAPIKeyService(db), sqldb.NewAPITokenService(db)
		sas, members := sqldb.NewServiceAccountService(db), sqldb.NewMembershipService(db)
		users := sqldb.NewUserService(db)
		users.PasswordParams = latchkeytest.FastPasswordParams()
		auth := sqldb.NewAuthService(db, newFakeTokenService(clock))

		t.Run("api_key", func(t *testing.T) {
			key := &latchkey.APIKey{Name: "ci key", ExpiresAt: ptrTo(now.Add(24 * time.Hour))}
			e := mustOneNewEvent(t, db, func() error { _, err := keys.CreateAPIKey(admin, key); return err })
			checkEvent(t, e, A, w.admin, latchkey.CredentialAPIKey, latchkey.AuditAPIKeyCreate, latchkey.AuditTargetAPIKey, key.ID, testClient, now)
			if got, want := e.Details, map[string]string{"name": "ci key", "user_id": w.admin.ID, "expires_at": now.Add(24 * time.Hour).Format(time.RFC3339)}; !equalMaps(got, want) {
				t.Errorf("details=%v, want %v", got, want)
			}
			e = mustOneNewEvent(t, db, func() error { return keys.DeleteAPIKey(admin, key.ID) })
			checkEvent(t, e, A, w.admin, latchkey.CredentialAPIKey, latchkey.AuditAPIKeyDelete, latchkey.AuditTargetAPIKey, key.ID, testClient, now)
			if e.Details["name"] != "ci key" || e.Details["user_id"] != w.admin.ID {
				t.Errorf("details=%v", e.Details)
			}

			saKey := &latchkey.APIKey{Name: "agent key", UserID: w.sa.ID}
			e = mustOneNewEvent(t, db, func() error { _, err := keys.CreateAPIKey(admin, saKey); return err })
			checkEvent(t, e, A, w.admin, latchkey.CredentialAPIKey, latchkey.AuditAPIKeyCreate, latchkey.AuditTargetAPIKey, saKey.ID, testClient, now)
			if e.Details["user_id"] != w.sa.ID {
				t.Errorf("details=%v", e.Details)
			}
			// A service account revoking its own key is the actor.
			sa := withClient(w.ctx(cSA))
			e = mustOneNewEvent(t, db, func() error { return keys.DeleteAPIKey(sa, saKey.ID) })
			checkEvent(t, e, A, latchkeytest.ServiceAccountUser(w.sa), latchkey.CredentialAPIKey, latchkey.AuditAPIKeyDelete, latchkey.AuditTargetAPIKey, saKey.ID, testClient, now)
		})

		t.Run("api_token", func(t *testing.T) {
			tok := &latchkey.APIToken{Name: "runner", Scope: latchkey.TokenScopeRunner}
			e := mustOneNewEvent(t, db, func() error { _, err := tokens.CreateAPIToken(admin, tok); return err })
			checkEvent(t, e, A, w.admin, latchkey.CredentialAPIKey, latchkey.AuditAPITokenCreate, latchkey.AuditTargetAPIToken, tok.ID, testClient, now)
			if got, want := e.Details, map[string]string{"name": "runner", "scope": "RUNNER", "user_id": w.admin.ID}; !equalMaps(got, want) {
				t.Errorf("details=%v, want %v", got, want)
			}
			// Through a USER token: the actor's credential is that token.
			pat := latchkey.NewContextWithAuth(withClient(context.Background()), &latchkey.Auth{User: w.admin, TenantID: A,
				Role: latchkey.RoleTenantAdmin, Kind: latchkey.CredentialAPIToken, APITokenID: "11111111-2222-3333-4444-555555555555", TokenScope: latchkey.TokenScopeUser})
			e = mustOneNewEvent(t, db, func() error { return tokens.DeleteAPIToken(pat, tok.ID) })
			checkEvent(t, e, A, w.admin, latchkey.CredentialAPIToken, latchkey.AuditAPITokenDelete, latchkey.AuditTargetAPIToken, tok.ID, testClient, now)
			if e.ActorCredentialID != "11111111-2222-3333-4444-555555555555" {
				t.Errorf("actor credential=%q", e.ActorCredentialID)
			}
		})

		t.Run("service_account", func(t *testing.T) {
			sa := &latchkey.ServiceAccount{Name: "deployer", Role: latchkey.RoleReadOnlyUser}
			e := mustOneNewEvent(t, db, func() error { return sas.CreateServiceAccount(admin, sa) })
			checkEvent(t, e, A, w.admin, latchkey.CredentialAPIKey, latchkey.AuditServiceAccountCreate, latchkey.AuditTargetServiceAccount, sa.ID, testClient, now)
			if e.Details["name"] != "deployer" || e.Details["role"] != "READ_ONLY_USER" {
				t.Errorf("details=%v", e.Details)
			}
			e = mustOneNewEvent(t, db, func() error { return sas.DeleteServiceAccount(admin, sa.ID) })
			checkEvent(t, e, A, w.admin, latchkey.CredentialAPIKey, latchkey.AuditServiceAccountDelete, latchkey.AuditTargetServiceAccount, sa.ID, testClient, now)
			if e.Details["name"] != "deployer" {
				t.Errorf("details=%v", e.Details)
			}
		})

		t.Run("membership", func(t *testing.T) {
			var m *latchkey.Membership
			e := mustOneNewEvent(t, db, func() (err error) {
				m, _, err = members.CreateMembership(admin, latchkey.MembershipCreate{Email: "New.Person@example.com", Role: latchkey.RoleUser})
				return err
			})
			checkEvent(t, e, A, w.admin, latchkey.CredentialAPIKey, latchkey.AuditMembershipCreate, latchkey.AuditTargetMembership, m.ID, testClient, now)
			if got, want := e.Details, map[string]string{"user_id": m.UserID, "email": "new.person@example.com", "role": "USER", "new_user": "true"}; !equalMaps(got, want) {
				t.Errorf("details=%v, want %v", got, want)
			}
			e = mustOneNewEvent(t, db, func() error {
				_, err := members.UpdateMembershipRole(admin, m.ID, latchkey.RoleTenantAdmin)
				return err
			})
			checkEvent(t, e, A, w.admin, latchkey.CredentialAPIKey, latchkey.AuditMembershipUpdateRole, latchkey.AuditTargetMembership, m.ID, testClient, now)
			if e.Details["role"] != "TENANT_ADMIN" || e.Details["previous_role"] != "USER" {
				t.Errorf("details=%v", e.Details)
			}
			e = mustOneNewEvent(t, db, func() error { return members.DeleteMembership(admin, m.ID) })
			checkEvent(t, e, A, w.admin, latchkey.CredentialAPIKey, latchkey.AuditMembershipDelete, latchkey.AuditTargetMembership, m.ID, testClient, now)
		})

		t.Run("tenant", func(t *testing.T) {
			tn := &latchkey.Tenant{Name: "Gamma Team"}
			e := mustOneNewEvent(t, db, func() error { return sqldb.NewTenantService(db).CreateTenant(admin, tn) })
			// In the new tenant's log, whose admin the caller now is.
			checkEvent(t, e, tn.ID, w.admin, latchkey.CredentialAPIKey, latchkey.AuditTenantCreate, latchkey.AuditTargetTenant, tn.ID, testClient, now)
			if e.Details["slug"] != "gamma-team" || e.Details["name"] != "Gamma Team" || e.Details["admin_user_id"] != w.admin.ID {
				t.Errorf("details=%v", e.Details)
			}
		})

		t.Run("password_reset", func(t *testing.T) {
			e := mustOneNewEvent(t, db, func() error { _, _, err := users.CreatePasswordReset(admin, w.user.ID); return err })
			checkEvent(t, e, A, w.admin, latchkey.CredentialAPIKey, latchkey.AuditPasswordResetCreate, latchkey.AuditTargetUser, w.user.ID, testClient, now)
			if e.Details["email"] != "user@example.com" || e.Details["expires_at"] == "" {
				t.Errorf("details=%v", e.Details)
			}
			// From `latchkey admin password-link`: no actor, "local", and
			// one event in each of the user's tenants.
			latchkeytest.MustCreateMember(t, db, w.b.ID, "user@example.com", latchkey.RoleUser)
			local := latchkey.ClientInfo{Addr: "local", UserAgent: "latchkey admin password-link"}
			evs := mustNewEvents(t, db, func() error {
				_, _, err := users.CreatePasswordResetForEmail(latchkey.NewContextWithClientInfo(context.Background(), local), "user@example.com")
				return err
			})
			if len(evs) != 2 {
				t.Fatalf("%d events, want one per tenant of the user", len(evs))
			}
			checkEvent(t, evs[0], A, nil, "", latchkey.AuditPasswordResetCreate, latchkey.AuditTargetUser, w.user.ID, local, now)
			checkEvent(t, evs[1], w.b.ID, nil, "", latchkey.AuditPasswordResetCreate, latchkey.AuditTargetUser, w.user.ID, local, now)
		})

		t.Run("session", func(t *testing.T) {
			var secret string
			e := mustOneNewEvent(t, db, func() (err error) {
				secret, _, err = auth.CreateSession(withClient(context.Background()), w.readonly.ID)
				return err
			})
			a, err := auth.Authenticate(context.Background(), secret, "")
			if err != nil {
				t.Fatal(err)
			}
			checkEvent(t, e, A, w.readonly, latchkey.CredentialPassword, latchkey.AuditSessionCreate, latchkey.AuditTargetSession, a.SessionID, testClient, now)
		})

		t.Run("bootstrap", func(t *testing.T) {
			local := latchkey.ClientInfo{Addr: "local", UserAgent: "latchkey admin init"}
			var res *latchkey.BootstrapResult
			evs := mustNewEvents(t, db, func() (err error) {
				res, err = sqldb.NewBootstrapService(db).Bootstrap(latchkey.NewContextWithClientInfo(context.Background(), local),
					latchkey.BootstrapInput{Email: "ops@example.com", TenantName: "Ops"})
				return err
			})
			if len(evs) != 3 {
				t.Fatalf("%d events, want 3", len(evs))
			}
			T := res.Tenant.ID
			checkEvent(t, evs[0], T, nil, "", latchkey.AuditTenantCreate, latchkey.AuditTargetTenant, T, local, now)
			checkEvent(t, evs[1], T, nil, "", latchkey.AuditMembershipCreate, latchkey.AuditTargetMembership, evs[1].TargetID, local, now)
			checkEvent(t, evs[2], T, nil, "", latchkey.AuditAPIKeyCreate, latchkey.AuditTargetAPIKey, res.APIKey.ID, local, now)
			if evs[1].Details["user_id"] != res.User.ID || evs[1].Details["role"] != "TENANT_ADMIN" {
				t.Errorf("membership details=%v", evs[1].Details)
			}
		})
	})
}

func ptrTo[T any](v T) *T { return &v }

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestAudit_RefusedAndRolledBackChangesWriteNothing(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		before := len(auditRows(t, db))
		members := sqldb.NewMembershipService(db)
		keys := sqldb.NewAPIKeyService(db)
		admin := withClient(w.ctx(cAdmin))

		// Refusals and failures of every kind.
		adminMembership := mustMembershipID(t, db, w.admin.ID, w.a.ID)
		wantErr(t, members.DeleteMembership(admin, adminMembership), latchkey.ECONFLICT) // last admin
		_, err := members.UpdateMembershipRole(admin, adminMembership, latchkey.RoleUser)
		wantErr(t, err, latchkey.ECONFLICT)
		_, _, err = members.CreateMembership(admin, latchkey.MembershipCreate{UserID: w.user.ID})
		wantErr(t, err, latchkey.ECONFLICT) // already a member
		_, err = keys.CreateAPIKey(withClient(w.ctx(cUser)), &latchkey.APIKey{Name: "x", UserID: w.sa.ID})
		wantErr(t, err, latchkey.EFORBIDDEN)
		wantErr(t, keys.DeleteAPIKey(admin, "00000000-0000-0000-0000-000000000000"), latchkey.ENOTFOUND)
		wantErr(t, sqldb.NewServiceAccountService(db).DeleteServiceAccount(withClient(w.ctx(cUser)), w.sa.ID), latchkey.EFORBIDDEN)
		if got := len(auditRows(t, db)); got != before {
			t.Fatalf("refused changes wrote %d audit events", got-before)
		}

		// A change whose transaction fails after its first events were
		// written: the events go with it. A trigger refuses the api_key.create
		// event, the last of bootstrap's three.
		failAuditAction(t, db, latchkey.AuditAPIKeyCreate)
		_, err = sqldb.NewBootstrapService(db).Bootstrap(withClient(context.Background()), latchkey.BootstrapInput{Email: "ops@example.com", TenantName: "Ops"})
		if err == nil {
			t.Fatal("bootstrap succeeded despite the trigger")
		}
		if got := len(auditRows(t, db)); got != before {
			t.Fatalf("a rolled-back bootstrap left %d audit events", got-before)
		}
		if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM tenants WHERE slug = 'ops'`); n != 0 {
			t.Fatal("bootstrap's tenant survived")
		}
		// And a failed audit write undoes the change it records.
		_, err = keys.CreateAPIKey(admin, &latchkey.APIKey{Name: "doomed"})
		if err == nil {
			t.Fatal("key created despite the trigger")
		}
		if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys WHERE name = 'doomed'`); n != 0 {
			t.Fatal("the key survived its failed audit event")
		}
		// A password reset for a user of two tenants: the second tenant's
		// event fails, the first is rolled back.
		latchkeytest.MustCreateMember(t, db, w.b.ID, "user@example.com", latchkey.RoleUser)
		failAuditTenant(t, db, w.b.ID)
		users := sqldb.NewUserService(db)
		if _, _, err := users.CreatePasswordResetForEmail(context.Background(), "user@example.com"); err == nil {
			t.Fatal("password reset succeeded despite the trigger")
		}
		if got := len(auditRows(t, db)); got != before {
			t.Fatalf("a rolled-back password reset left %d audit events", got-before)
		}
		if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM password_resets WHERE user_id = ?`, w.user.ID); n != 0 {
			t.Fatal("the reset survived its failed audit event")
		}
	})
}

// failAuditAction makes every insert of an audit event with action fail.
func failAuditAction(t *testing.T, db *sqldb.DB, action latchkey.AuditAction) {
	t.Helper()
	failAuditWhen(t, db, "action_"+strings.ReplaceAll(string(action), ".", "_"), `NEW.action = '`+string(action)+`'`)
}

// failAuditTenant makes every insert of an audit event of tenantID fail.
func failAuditTenant(t *testing.T, db *sqldb.DB, tenantID string) {
	t.Helper()
	failAuditWhen(t, db, "tenant", `NEW.tenant_id = '`+tenantID+`'`)
}

func failAuditWhen(t *testing.T, db *sqldb.DB, name, cond string) {
	t.Helper()
	if db.Postgres() {
		latchkeytest.MustExec(t, db, `CREATE FUNCTION fail_audit_`+name+`() RETURNS trigger AS $$ BEGIN IF `+cond+` THEN RAISE EXCEPTION 'audit refused by test'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`)
		latchkeytest.MustExec(t, db, `CREATE TRIGGER fail_audit_`+name+` BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION fail_audit_`+name+`()`)
		return
	}
	latchkeytest.MustExec(t, db, `CREATE TRIGGER fail_audit_`+name+` BEFORE INSERT ON audit_events WHEN `+cond+` BEGIN SELECT RAISE(ABORT, 'audit refused by test'); END`)
}

func TestAudit_FindAuditEvents_Authorization(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewAuditService(db)
		// One event in each tenant.
		keyA := mustWorldKey(t, db, withClient(w.ctx(cAdmin)), "a key", w.sa.ID)
		keyB := mustWorldKey(t, db, withClient(w.ctx(cOtherTenant)), "b key", w.saB.ID)
		w.eachCaller(t, map[string]latchkey.Code{
			cAdmin: "", cUserToken: "", cUser: latchkey.EFORBIDDEN, cReadOnly: latchkey.EFORBIDDEN,
			cSA: latchkey.EFORBIDDEN, cSAAdmin: latchkey.EFORBIDDEN, cTenantToken: latchkey.EFORBIDDEN,
			cRunnerToken: latchkey.EFORBIDDEN, cAnonymous: latchkey.EUNAUTHENTICATED, cOtherTenant: "",
		}, func(t *testing.T, name string, ctx context.Context) error {
			evs, n, err := s.FindAuditEvents(ctx, latchkey.AuditFilter{})
			if err != nil {
				return err
			}
			a := latchkey.AuthFromContext(ctx)
			var targets []string
			for _, e := range evs {
				if e.TenantID != a.TenantID {
					t.Errorf("event %s of tenant %s shown to a caller acting in %s", e.ID, e.TenantID, a.TenantID)
				}
				targets = append(targets, e.TargetID)
			}
			mine, theirs := keyA, keyB
			if name == cOtherTenant {
				mine, theirs = keyB, keyA
			}
			if !slices.Contains(targets, mine) || slices.Contains(targets, theirs) || n != len(evs) {
				t.Errorf("targets=%v (count %d): want %s and not %s", targets, n, mine, theirs)
			}
			return nil
		})

		// Filters naming the other tenant's events match nothing.
		bEvents := latchkeytest.MustQueryAll(t, db, `SELECT id FROM audit_events WHERE tenant_id = ?`, w.b.ID)
		for _, f := range []latchkey.AuditFilter{{ID: ptrTo(bEvents[0]["id"])}, {TargetID: &keyB}, {ActorUserID: &w.adminB.ID}} {
			if evs, n, err := s.FindAuditEvents(w.ctx(cAdmin), f); err != nil || n != 0 || len(evs) != 0 {
				t.Errorf("filter %+v: %d events of B (err=%v)", f, n, err)
			}
		}
	})
}

func TestAudit_FindAuditEvents_OrderFilterPage(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewAuditService(db)
		admin := withClient(w.ctx(cAdmin))
		var ids []string // key ids, oldest first
		for i := range 5 {
			clock.Add(time.Second)
			ids = append(ids, mustWorldKey(t, db, admin, "key "+string(rune('a'+i)), ""))
		}
		created := latchkey.AuditAPIKeyCreate
		evs, n, err := s.FindAuditEvents(admin, latchkey.AuditFilter{Action: &created, ActorUserID: &w.admin.ID, Limit: 2, Offset: 1})
		if err != nil {
			t.Fatal(err)
		}
		// Newest first: the fourth and third keys. (Bootstrap's key event
		// has no actor, so the actor filter leaves it out.)
		if n != 5 || len(evs) != 2 || evs[0].TargetID != ids[3] || evs[1].TargetID != ids[2] {
			t.Fatalf("page=%v (count %d), want %v", eventTargets(evs), n, []string{ids[3], ids[2]})
		}
		evs, _, err = s.FindAuditEvents(admin, latchkey.AuditFilter{Action: &created, OrderBy: []latchkey.SortOrder{{Field: "created_at"}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := eventTargets(evs); len(got) != 6 || !slices.Equal(got[1:], ids) {
			t.Fatalf("oldest first=%v, want bootstrap's key then %v", got, ids)
		}
		evs, _, err = s.FindAuditEvents(admin, latchkey.AuditFilter{TargetID: &ids[2], TargetType: ptrTo(latchkey.AuditTargetAPIKey)})
		if err != nil || len(evs) != 1 || evs[0].TargetID != ids[2] {
			t.Fatalf("by target: %v, %v", eventTargets(evs), err)
		}
		_, _, err = s.FindAuditEvents(admin, latchkey.AuditFilter{OrderBy: []latchkey.SortOrder{{Field: "action"}}})
		wantErr(t, err, latchkey.EINVALID)
	})
}

func eventTargets(evs []*latchkey.AuditEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.TargetID)
	}
	return out
}

// TestAudit_NoSecrets issues one secret of every kind and checks that no
// column of any audit event holds any of them, or anything shaped like a
// secret.
func TestAudit_NoSecrets(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		admin := withClient(e.adminCtx(t))
		secrets := []string{e.f.AdminKey}
		sa := latchkeytest.MustCreateServiceAccount(t, db, e.f.Tenant.ID, "agent", latchkey.RoleUser)
		key, s := e.mustCreateKey(t, admin, "mine", "")
		secrets = append(secrets, s)
		_, s = e.mustCreateKey(t, admin, "agent's", sa.ID)
		secrets = append(secrets, s)
		for _, scope := range []latchkey.TokenScope{latchkey.TokenScopeUser, latchkey.TokenScopeTenant, latchkey.TokenScopeRunner} {
			_, s := e.mustCreateToken(t, admin, "tok", scope)
			secrets = append(secrets, s)
		}
		users := sqldb.NewUserService(db)
		users.PasswordParams = latchkeytest.FastPasswordParams()
		member := latchkeytest.MustCreateMember(t, db, e.f.Tenant.ID, "member@example.com", latchkey.RoleUser)
		reset, _, err := users.CreatePasswordReset(admin, member.ID)
		if err != nil {
			t.Fatal(err)
		}
		reset2, _, err := users.CreatePasswordResetForEmail(withClient(context.Background()), "member@example.com")
		if err != nil {
			t.Fatal(err)
		}
		session, _, err := e.auth.CreateSession(withClient(context.Background()), member.ID)
		if err != nil {
			t.Fatal(err)
		}
		pair := e.mustSwitchTenant(t, e.mustAuthenticate(t, secrets[1], ""), "")
		secrets = append(secrets, reset, reset2, session, pair.AccessToken, pair.RefreshToken)
		if err := e.keys.DeleteAPIKey(admin, key.ID); err != nil {
			t.Fatal(err)
		}

		rows := auditRows(t, db)
		if len(rows) < 10 {
			t.Fatalf("only %d audit events: the scan scans little", len(rows))
		}
		shape := regexp.MustCompile(`lk[usktrcp]_[0-9A-Za-z]{8,}|eyJ[0-9A-Za-z_-]{8,}`)
		for _, r := range rows {
			for col, v := range r {
				for _, s := range secrets {
					if strings.Contains(v, s) || strings.Contains(v, s[4:]) {
						t.Errorf("audit event %s: %s holds a secret", r["id"], col)
					}
				}
				if m := shape.FindString(v); m != "" {
					t.Errorf("audit event %s: %s holds something shaped like a secret: %.8s…", r["id"], col, m)
				}
			}
		}
	})
}
