package sqldb_test

import (
	"context"
	"slices"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

func tokenIDs(tokens []*latchkey.APIToken) []string {
	var ids []string
	for _, t := range tokens {
		ids = append(ids, t.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestAPITokenService_CreateAPIToken(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		tid := e.f.Tenant.ID
		adminCtx := e.adminCtx(t)
		user := latchkey.AuthFromContext(adminCtx).User

		for _, scope := range []latchkey.TokenScope{latchkey.TokenScopeUser, latchkey.TokenScopeTenant, latchkey.TokenScopeRunner} {
			tok, secret := e.mustCreateToken(t, adminCtx, "t-"+string(scope), scope)
			if prefix, err := latchkey.ParseSecret(secret); err != nil || prefix != latchkey.PrefixAPIToken {
				t.Fatalf("prefix=%q err=%v", prefix, err)
			}
			if tok.ID == "" || tok.UserID != user.ID || tok.TenantID != tid || tok.Scope != scope || !tok.CreatedAt.Equal(clock.Now()) {
				t.Errorf("token=%+v", tok)
			}
		}

		ro := latchkeytest.MustCreateMember(t, db, tid, "ro@example.com", latchkey.RoleReadOnlyUser)
		roCtx := latchkeytest.AuthContext(context.Background(), ro, tid, latchkey.RoleReadOnlyUser)
		plain := latchkeytest.MustCreateMember(t, db, tid, "user@example.com", latchkey.RoleUser)
		plainCtx := latchkeytest.AuthContext(context.Background(), plain, tid, latchkey.RoleUser)
		if _, secret := e.mustCreateToken(t, roCtx, "ro pat", latchkey.TokenScopeUser); secret == "" {
			t.Fatal("no secret")
		}
		sa := latchkeytest.MustCreateServiceAccount(t, db, tid, "sa", latchkey.RoleTenantAdmin)
		saCtx := latchkeytest.AuthContext(context.Background(), latchkeytest.ServiceAccountUser(sa), tid, latchkey.RoleTenantAdmin)
		other := latchkeytest.MustCreateTenant(t, db, "other", e.f.Admin)
		_, tenantTok := e.mustCreateToken(t, adminCtx, "tenant", latchkey.TokenScopeTenant)
		_, runnerTok := e.mustCreateToken(t, adminCtx, "runner", latchkey.TokenScopeRunner)
		before := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_tokens`)

		for _, tt := range []struct {
			name string
			ctx  context.Context
			tok  latchkey.APIToken
			code latchkey.Code
		}{
			{"TENANT scope by user", plainCtx, latchkey.APIToken{Name: "x", Scope: latchkey.TokenScopeTenant}, latchkey.EFORBIDDEN},
			{"RUNNER scope by read-only user", roCtx, latchkey.APIToken{Name: "x", Scope: latchkey.TokenScopeRunner}, latchkey.EFORBIDDEN},
			{"service account", saCtx, latchkey.APIToken{Name: "x", Scope: latchkey.TokenScopeUser}, latchkey.EFORBIDDEN},
			{"by TENANT token", e.mustAuthenticate(t, tenantTok, ""), latchkey.APIToken{Name: "x", Scope: latchkey.TokenScopeUser}, latchkey.EFORBIDDEN},
			{"by RUNNER token", e.mustAuthenticate(t, runnerTok, ""), latchkey.APIToken{Name: "x", Scope: latchkey.TokenScopeUser}, latchkey.EFORBIDDEN},
			{"for someone else", adminCtx, latchkey.APIToken{Name: "x", Scope: latchkey.TokenScopeUser, UserID: plain.ID}, latchkey.EFORBIDDEN},
			{"in another tenant", adminCtx, latchkey.APIToken{Name: "x", Scope: latchkey.TokenScopeUser, TenantID: other.ID}, latchkey.EFORBIDDEN},
			{"bad scope", adminCtx, latchkey.APIToken{Name: "x", Scope: "ADMIN"}, latchkey.EINVALID},
			{"no scope", adminCtx, latchkey.APIToken{Name: "x"}, latchkey.EINVALID},
			{"no name", adminCtx, latchkey.APIToken{Scope: latchkey.TokenScopeUser}, latchkey.EINVALID},
			{"anonymous", context.Background(), latchkey.APIToken{Name: "x", Scope: latchkey.TokenScopeUser}, latchkey.EUNAUTHENTICATED},
		} {
			t.Run(tt.name, func(t *testing.T) {
				tok := tt.tok
				secret, err := e.tokens.CreateAPIToken(tt.ctx, &tok)
				expectCode(t, err, tt.code, "")
				if secret != "" || tok.ID != "" {
					t.Errorf("secret or id returned with an error")
				}
			})
		}
		if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_tokens`); got != before {
			t.Errorf("api_tokens=%d after refused creates, want %d", got, before)
		}
	})
}

func TestAPITokenService_FindDelete(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		t1 := e.f.Tenant
		adminCtx := e.adminCtx(t)
		user := latchkeytest.MustCreateMember(t, db, t1.ID, "user@example.com", latchkey.RoleUser)
		userCtx := latchkeytest.AuthContext(context.Background(), user, t1.ID, latchkey.RoleUser)
		t2 := latchkeytest.MustCreateTenant(t, db, "two", e.f.Admin)
		adminInT2 := e.mustAuthenticate(t, e.f.AdminKey, t2.ID)
		// user2 administers t2 only.
		user2 := latchkeytest.MustCreateMember(t, db, t2.ID, "user2@example.com", latchkey.RoleTenantAdmin)
		user2Ctx := latchkeytest.AuthContext(context.Background(), user2, t2.ID, latchkey.RoleTenantAdmin)

		adminUser, _ := e.mustCreateToken(t, adminCtx, "admin pat", latchkey.TokenScopeUser)
		adminTenant, _ := e.mustCreateToken(t, adminCtx, "admin tenant", latchkey.TokenScopeTenant)
		adminRunnerT2, _ := e.mustCreateToken(t, adminInT2, "admin runner t2", latchkey.TokenScopeRunner)
		userUser, userSecret := e.mustCreateToken(t, userCtx, "user pat", latchkey.TokenScopeUser)
		user2Runner, _ := e.mustCreateToken(t, user2Ctx, "user2 runner", latchkey.TokenScopeRunner)

		find := func(ctx context.Context, filter latchkey.APITokenFilter) ([]string, int) {
			t.Helper()
			toks, n, err := e.tokens.FindAPITokens(ctx, filter)
			if err != nil {
				t.Fatal(err)
			}
			return tokenIDs(toks), n
		}
		// Own tokens, plus for an admin the TENANT/RUNNER tokens of the acting tenant.
		if got, n := find(adminCtx, latchkey.APITokenFilter{}); !slices.Equal(got, sortedIDs(adminUser.ID, adminTenant.ID, adminRunnerT2.ID)) || n != 3 {
			t.Errorf("admin in t1: %v n=%d", got, n)
		}
		if got, _ := find(adminInT2, latchkey.APITokenFilter{}); !slices.Equal(got, sortedIDs(adminUser.ID, adminTenant.ID, adminRunnerT2.ID, user2Runner.ID)) {
			t.Errorf("admin in t2: %v", got)
		}
		if got, _ := find(userCtx, latchkey.APITokenFilter{}); !slices.Equal(got, sortedIDs(userUser.ID)) {
			t.Errorf("user: %v", got)
		}
		if got, _ := find(user2Ctx, latchkey.APITokenFilter{}); !slices.Equal(got, sortedIDs(user2Runner.ID, adminRunnerT2.ID)) {
			t.Errorf("user2 in t2: %v", got)
		}
		if got, _ := find(user2Ctx, latchkey.APITokenFilter{ID: &adminUser.ID}); len(got) != 0 {
			t.Errorf("user2 sees admin's USER token: %v", got)
		}
		if got, n := find(adminInT2, latchkey.APITokenFilter{UserID: &user2.ID, Limit: 1}); !slices.Equal(got, []string{user2Runner.ID}) || n != 1 {
			t.Errorf("UserID filter: %v n=%d", got, n)
		}
		if got, n := find(adminInT2, latchkey.APITokenFilter{Limit: 1, Offset: 1}); len(got) != 1 || n != 4 {
			t.Errorf("page: %v n=%d", got, n)
		}

		// Delete follows the same visibility.
		expectCode(t, e.tokens.DeleteAPIToken(user2Ctx, adminUser.ID), latchkey.ENOTFOUND, "")
		expectCode(t, e.tokens.DeleteAPIToken(adminCtx, userUser.ID), latchkey.ENOTFOUND, "")
		expectCode(t, e.tokens.DeleteAPIToken(adminCtx, user2Runner.ID), latchkey.ENOTFOUND, "") // t2's, admin acts in t1
		if err := e.tokens.DeleteAPIToken(user2Ctx, adminRunnerT2.ID); err != nil {
			t.Fatalf("t2 admin deleting t2 RUNNER token: %v", err)
		}
		if err := e.tokens.DeleteAPIToken(userCtx, userUser.ID); err != nil {
			t.Fatal(err)
		}
		_, err := e.auth.Authenticate(context.Background(), userSecret, "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Invalid API token.")
		expectCode(t, e.tokens.DeleteAPIToken(userCtx, userUser.ID), latchkey.ENOTFOUND, "")
		if got, _ := find(adminInT2, latchkey.APITokenFilter{}); !slices.Equal(got, sortedIDs(adminUser.ID, adminTenant.ID, user2Runner.ID)) {
			t.Errorf("after deletes: %v", got)
		}
	})
}
