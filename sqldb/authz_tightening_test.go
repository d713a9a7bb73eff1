package sqldb_test

import (
	"context"
	"slices"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// The lead's tightenings of AUTHZ.md: service accounts never manage
// credentials, members or service accounts, whatever their role; TENANT and
// RUNNER tokens never manage credentials; a USER token acts as its owner.

// mustWorldKey creates a key named name as the caller ctx, for userID ("" =
// the caller), and returns its id.
func mustWorldKey(t *testing.T, db *sqldb.DB, ctx context.Context, name, userID string) string {
	t.Helper()
	k := &latchkey.APIKey{Name: name, UserID: userID}
	if _, err := sqldb.NewAPIKeyService(db).CreateAPIKey(ctx, k); err != nil {
		t.Fatalf("create key %s: %v", name, err)
	}
	return k.ID
}

func TestAuthzTightening_FindAPIKeys(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewAPIKeyService(db)
		admin := w.ctx(cAdmin)
		adminKeys, _, err := s.FindAPIKeys(admin, latchkey.APIKeyFilter{UserID: &w.admin.ID})
		if err != nil || len(adminKeys) != 1 {
			t.Fatalf("bootstrap key: %v, %v", adminKeys, err)
		}
		bootstrapKey := adminKeys[0].ID
		saKey := mustWorldKey(t, db, admin, "sa key", w.sa.ID)
		saAdminKey := mustWorldKey(t, db, admin, "sa admin key", w.saAdmin.ID)
		userKey := mustWorldKey(t, db, w.ctx(cUser), "user key", "")
		saBKey := mustWorldKey(t, db, w.ctx(cOtherTenant), "sa b key", w.saB.ID)

		want := map[string][]string{
			cAdmin:       {bootstrapKey, saKey, saAdminKey},
			cUserToken:   {bootstrapKey, saKey, saAdminKey}, // a personal access token acts as its owner
			cUser:        {userKey},
			cReadOnly:    nil,
			cSA:          {saKey},
			cSAAdmin:     {saAdminKey}, // its own only, though its role is TENANT_ADMIN
			cOtherTenant: {saBKey},
		}
		w.eachCaller(t, map[string]latchkey.Code{
			cAdmin: "", cUserToken: "", cUser: "", cReadOnly: "", cSA: "", cSAAdmin: "",
			cTenantToken: latchkey.EFORBIDDEN, cRunnerToken: latchkey.EFORBIDDEN,
			cAnonymous: latchkey.EUNAUTHENTICATED, cOtherTenant: "",
		}, func(t *testing.T, name string, ctx context.Context) error {
			keys, n, err := s.FindAPIKeys(ctx, latchkey.APIKeyFilter{})
			if err != nil {
				return err
			}
			if got := keyIDs(keys); !slices.Equal(got, sortedIDs(want[name]...)) || n != len(want[name]) {
				t.Errorf("keys=%v (count %d), want %v", got, n, sortedIDs(want[name]...))
			}
			return nil
		})
	})
}

func TestAuthzTightening_DeleteAPIKey(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewAPIKeyService(db)
		admin := w.ctx(cAdmin)
		exists := func(id string) bool {
			return latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys WHERE id = ?`, id) == 1
		}

		// A service account with TENANT_ADMIN cannot revoke another
		// account's key: it does not exist for it.
		saKey := mustWorldKey(t, db, admin, "sa key", w.sa.ID)
		expectCode(t, s.DeleteAPIKey(w.ctx(cSAAdmin), saKey), latchkey.ENOTFOUND, "")
		// Nor a human's.
		userKey := mustWorldKey(t, db, w.ctx(cUser), "user key", "")
		expectCode(t, s.DeleteAPIKey(w.ctx(cSAAdmin), userKey), latchkey.ENOTFOUND, "")
		if !exists(saKey) || !exists(userKey) {
			t.Fatal("a refused delete deleted a key")
		}
		// It may revoke its own (self-revocation), as may a USER account.
		for _, c := range []struct {
			name string
			sa   string
		}{{cSAAdmin, w.saAdmin.ID}, {cSA, w.sa.ID}} {
			own := mustWorldKey(t, db, admin, "own key", c.sa)
			if err := s.DeleteAPIKey(w.ctx(c.name), own); err != nil {
				t.Fatalf("%s deletes its own key: %v", c.name, err)
			} else if exists(own) {
				t.Fatalf("%s: own key still there", c.name)
			}
		}

		// TENANT and RUNNER tokens may not revoke even their owner's keys.
		adminKey := mustWorldKey(t, db, admin, "admin key", "")
		for _, name := range []string{cTenantToken, cRunnerToken} {
			expectCode(t, s.DeleteAPIKey(w.ctx(name), adminKey), latchkey.EFORBIDDEN, "")
			expectCode(t, s.DeleteAPIKey(w.ctx(name), saKey), latchkey.EFORBIDDEN, "")
		}
		if !exists(adminKey) || !exists(saKey) {
			t.Fatal("a token-scoped caller deleted a key")
		}
		// A USER token acts as its owner.
		if err := s.DeleteAPIKey(w.ctx(cUserToken), saKey); err != nil {
			t.Fatalf("USER token deletes an SA key as its admin owner: %v", err)
		}
	})
}

func TestAuthzTightening_APITokens(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewAPITokenService(db)
		mustToken := func(ctx context.Context, scope latchkey.TokenScope) string {
			t.Helper()
			tok := &latchkey.APIToken{Name: "t " + string(scope), Scope: scope}
			if _, err := s.CreateAPIToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
			return tok.ID
		}
		own := mustToken(w.ctx(cAdmin), latchkey.TokenScopeUser)
		runner := mustToken(w.ctx(cAdmin), latchkey.TokenScopeRunner)

		w.eachCaller(t, map[string]latchkey.Code{
			cAdmin: "", cUserToken: "", cUser: "", cReadOnly: "",
			cSA: latchkey.EFORBIDDEN, cSAAdmin: latchkey.EFORBIDDEN,
			cTenantToken: latchkey.EFORBIDDEN, cRunnerToken: latchkey.EFORBIDDEN,
			cAnonymous: latchkey.EUNAUTHENTICATED, cOtherTenant: "",
		}, func(t *testing.T, name string, ctx context.Context) error {
			tokens, _, err := s.FindAPITokens(ctx, latchkey.APITokenFilter{})
			if err == nil && (name == cAdmin || name == cUserToken) && len(tokens) != 2 {
				t.Errorf("tokens=%d, want 2", len(tokens))
			}
			return err
		})
		for _, name := range []string{cSA, cSAAdmin, cTenantToken, cRunnerToken} {
			for _, id := range []string{own, runner} {
				expectCode(t, s.DeleteAPIToken(w.ctx(name), id), latchkey.EFORBIDDEN, "")
			}
		}
		if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_tokens`); n != 2 {
			t.Fatalf("tokens left=%d, want 2", n)
		}
		if err := s.DeleteAPIToken(w.ctx(cUserToken), runner); err != nil {
			t.Fatalf("USER token deletes its owner's RUNNER token: %v", err)
		}
	})
}

func TestAuthzTightening_ServiceAccountsAndMembers(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		sas := sqldb.NewServiceAccountService(db)
		for _, name := range []string{cSA, cSAAdmin} {
			ctx := w.ctx(name)
			if _, _, err := sas.FindServiceAccounts(ctx, latchkey.ServiceAccountFilter{}); latchkey.ErrorCode(err) != latchkey.EFORBIDDEN {
				t.Errorf("%s: find service accounts: %v", name, err)
			}
			expectCode(t, sas.CreateServiceAccount(ctx, &latchkey.ServiceAccount{Name: "x"}), latchkey.EFORBIDDEN, "")
			expectCode(t, sas.DeleteServiceAccount(ctx, w.sa.ID), latchkey.EFORBIDDEN, "")
			ms, n, err := sqldb.NewMembershipService(db).FindMemberships(ctx, latchkey.MembershipFilter{})
			a := latchkey.AuthFromContext(ctx)
			if err != nil || n != 1 || len(ms) != 1 || ms[0].UserID != a.User.ID {
				t.Errorf("%s: memberships=%v (count %d), err=%v, want only its own", name, membershipUserIDs(ms), n, err)
			}
		}
		// A USER token acts as its owner, an admin: it may create a tenant.
		tn := &latchkey.Tenant{Name: "Made With A PAT"}
		if err := sqldb.NewTenantService(db).CreateTenant(w.ctx(cUserToken), tn); err != nil {
			t.Fatalf("USER token creates a tenant: %v", err)
		}
	})
}
