package sqldb_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

func TestAuthService_Authenticate_APIKey(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		a, err := e.auth.Authenticate(context.Background(), e.f.AdminKey, "")
		if err != nil {
			t.Fatal(err)
		}
		if a.User.ID != e.f.Admin.ID || a.User.Email != "admin@example.com" || a.TenantID != e.f.Tenant.ID ||
			a.Role != latchkey.RoleTenantAdmin || a.Kind != latchkey.CredentialAPIKey || a.APIKeyID == "" ||
			a.APITokenID != "" || a.TokenScope != "" || a.SessionID != "" {
			t.Errorf("auth=%+v user=%+v", a, a.User)
		}

		unknown, err := latchkey.NewSecret(db.Rand, latchkey.PrefixUserKey)
		if err != nil {
			t.Fatal(err)
		}
		refresh, _ := latchkey.NewSecret(db.Rand, latchkey.PrefixRefreshToken)
		reset, _ := latchkey.NewSecret(db.Rand, latchkey.PrefixPasswordReset)
		for _, tt := range []struct {
			name, cred, msg string
		}{
			{"mistyped", mistype(e.f.AdminKey), "Malformed API key."},
			{"truncated", e.f.AdminKey[:len(e.f.AdminKey)-1], "Malformed API key."},
			{"mistyped SA key", "lks_" + mistype(e.f.AdminKey)[4:], "Malformed API key."},
			{"mistyped token", "lkt_" + mistype(e.f.AdminKey)[4:], "Malformed API token."},
			{"unknown", unknown, "Invalid API key."},
			{"refresh token", refresh, "Invalid credential."},
			{"password reset secret", reset, "Invalid credential."},
			{"garbage", "hunter2", "Invalid credential."},
			{"empty", "", "Invalid credential."},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := e.auth.Authenticate(context.Background(), tt.cred, "")
				expectCode(t, err, latchkey.EUNAUTHENTICATED, tt.msg)
				if tt.cred != "" && strings.Contains(err.Error(), tt.cred) {
					t.Errorf("error %q echoes the credential", err)
				}
			})
		}
	})
}

// A mistyped key is refused by its checksum before any lookup: the service
// here sits on a database that was never opened, so any query would fail
// (panic on the nil pool).
func TestAuthService_Authenticate_MistypedKeyNoLookup(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		unopened := sqldb.NewDB("sqlite:" + t.TempDir() + "/never-opened.db")
		auth := sqldb.NewAuthService(unopened, e.jwt)
		touched := func(cred string) (touched bool, err error) {
			defer func() {
				if recover() != nil {
					touched = true
				}
			}()
			_, err = auth.Authenticate(context.Background(), cred, "")
			return latchkey.ErrorCode(err) != latchkey.EUNAUTHENTICATED, err
		}
		if hit, err := touched(mistype(e.f.AdminKey)); hit {
			t.Fatalf("a mistyped key reached the database (err=%v)", err)
		} else {
			expectCode(t, err, latchkey.EUNAUTHENTICATED, "Malformed API key.")
		}
		// Control: a well-formed key does reach the database.
		if hit, _ := touched(e.f.AdminKey); !hit {
			t.Fatal("control: a well-formed key did not reach the database")
		}
	})
}

func TestAuthService_Authenticate_APIKeyExpired(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		at := clock.Now().Add(time.Hour)
		k := &latchkey.APIKey{Name: "short", ExpiresAt: &at}
		secret, err := e.keys.CreateAPIKey(e.adminCtx(t), k)
		if err != nil {
			t.Fatal(err)
		}
		clock.Add(time.Hour - time.Microsecond)
		if _, err := e.auth.Authenticate(context.Background(), secret, ""); err != nil {
			t.Fatalf("just before expiry: %v", err)
		}
		clock.Add(time.Microsecond)
		_, err = e.auth.Authenticate(context.Background(), secret, "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "API key expired.")
	})
}

func TestAuthService_Authenticate_TenantHeader(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		t1, t2, t3, u := e.threeTenants(t, latchkey.RoleTenantAdmin, latchkey.RoleReadOnlyUser)
		_, secret := e.mustCreateKey(t, latchkeytest.AuthContext(context.Background(), u, t1.ID, latchkey.RoleTenantAdmin), "k", "")

		a, err := e.auth.Authenticate(context.Background(), secret, t2.ID)
		if err != nil {
			t.Fatal(err)
		} else if a.TenantID != t2.ID || a.Role != latchkey.RoleReadOnlyUser {
			t.Errorf("tenant=%q role=%q, want %q %q", a.TenantID, a.Role, t2.ID, latchkey.RoleReadOnlyUser)
		}
		// Upper-case UUIDs name the same tenant.
		if a, err := e.auth.Authenticate(context.Background(), secret, strings.ToUpper(t2.ID)); err != nil {
			t.Fatal(err)
		} else if a.TenantID != t2.ID {
			t.Errorf("tenant=%q, want %q", a.TenantID, t2.ID)
		}
		_, err = e.auth.Authenticate(context.Background(), secret, t3.ID)
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Not a member of tenant "+t3.ID+".")
		_, err = e.auth.Authenticate(context.Background(), secret, "not-a-uuid "+secret)
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Invalid tenant id.")
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q echoes the credential", err)
		}

		// A service-account key acts in its own tenant only.
		sa := latchkeytest.MustCreateServiceAccount(t, db, t1.ID, "agent", latchkey.RoleReadOnlyUser)
		_, saSecret := e.mustCreateKey(t, e.adminCtx(t), "agent", sa.ID)
		if a, err := e.auth.Authenticate(context.Background(), saSecret, t1.ID); err != nil {
			t.Fatal(err)
		} else if a.TenantID != t1.ID || a.Role != latchkey.RoleReadOnlyUser {
			t.Errorf("SA auth=%+v", a)
		}
		// Even with a membership row in another tenant (which should never exist).
		latchkeytest.MustExec(t, db, `INSERT INTO memberships (id, tenant_id, user_id, role, created_at) VALUES (?, ?, ?, ?, ?)`,
			"22222222-2222-4222-8222-222222222222", t2.ID, sa.ID, string(latchkey.RoleUser), sqldb.Time(clock.Now()))
		_, err = e.auth.Authenticate(context.Background(), saSecret, t2.ID)
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Not a member of tenant "+t2.ID+".")
	})
}

func TestAuthService_Authenticate_LastUsed(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		k, secret := e.mustCreateKey(t, e.adminCtx(t), "k", "")
		tok, tokSecret := e.mustCreateToken(t, e.adminCtx(t), "t", latchkey.TokenScopeUser)
		if got := lastUsedAt(t, db, "api_keys", "last_used_at", k.ID); !got.IsZero() {
			t.Fatalf("last_used_at=%v before use", got)
		}
		start := clock.Now()
		for _, step := range []struct {
			advance time.Duration
			want    time.Time
		}{
			{0, start},                                 // first use: written
			{30 * time.Second, start},                  // within a minute: not written
			{29 * time.Second, start},                  // 59s: still not
			{time.Second, start.Add(time.Minute)},      // 60s: written
			{10 * time.Second, start.Add(time.Minute)}, // throttled again
		} {
			clock.Add(step.advance)
			e.mustAuthenticate(t, secret, "")
			e.mustAuthenticate(t, tokSecret, "")
			if got := lastUsedAt(t, db, "api_keys", "last_used_at", k.ID); !got.Equal(step.want) {
				t.Errorf("at +%v: key last_used_at=%v, want %v", clock.Now().Sub(start), got, step.want)
			}
			if got := lastUsedAt(t, db, "api_tokens", "last_used_at", tok.ID); !got.Equal(step.want) {
				t.Errorf("at +%v: token last_used_at=%v, want %v", clock.Now().Sub(start), got, step.want)
			}
		}
		keys, _, err := e.keys.FindAPIKeys(e.adminCtx(t), latchkey.APIKeyFilter{ID: &k.ID})
		if err != nil {
			t.Fatal(err)
		} else if len(keys) != 1 || keys[0].LastUsedAt == nil || !keys[0].LastUsedAt.Equal(start.Add(time.Minute)) {
			t.Errorf("found LastUsedAt=%v", keys[0].LastUsedAt)
		}
	})
}

func TestAuthService_Authenticate_APIToken(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		t1 := e.f.Tenant
		adminCtx := e.adminCtx(t)
		ro := latchkeytest.MustCreateMember(t, db, t1.ID, "ro@example.com", latchkey.RoleReadOnlyUser)
		t2 := latchkeytest.MustCreateTenant(t, db, "two", e.f.Admin)

		for _, tt := range []struct {
			ctx   context.Context
			scope latchkey.TokenScope
			role  latchkey.Role
		}{
			{adminCtx, latchkey.TokenScopeUser, latchkey.RoleTenantAdmin},
			{adminCtx, latchkey.TokenScopeTenant, latchkey.RoleUser},
			{adminCtx, latchkey.TokenScopeRunner, latchkey.RoleUser},
			{latchkeytest.AuthContext(context.Background(), ro, t1.ID, latchkey.RoleReadOnlyUser), latchkey.TokenScopeUser, latchkey.RoleReadOnlyUser},
		} {
			t.Run(string(tt.scope)+"/"+string(tt.role), func(t *testing.T) {
				tok, secret := e.mustCreateToken(t, tt.ctx, "t", tt.scope)
				a, err := e.auth.Authenticate(context.Background(), secret, "")
				if err != nil {
					t.Fatal(err)
				}
				if a.User.ID != tok.UserID || a.TenantID != t1.ID || a.Role != tt.role || a.Kind != latchkey.CredentialAPIToken ||
					a.APITokenID != tok.ID || a.TokenScope != tt.scope || a.APIKeyID != "" {
					t.Errorf("auth=%+v", a)
				}
				if got, want := a.IsRunner(), tt.scope == latchkey.TokenScopeRunner; got != want {
					t.Errorf("IsRunner=%v, want %v", got, want)
				}
				// The header may only repeat the token's tenant.
				if _, err := e.auth.Authenticate(context.Background(), secret, t1.ID); err != nil {
					t.Errorf("own tenant header: %v", err)
				}
				_, err = e.auth.Authenticate(context.Background(), secret, t2.ID)
				expectCode(t, err, latchkey.EUNAUTHENTICATED, "")
			})
		}

		// The owner must still be a member of the token's tenant.
		_, secret := e.mustCreateToken(t, latchkeytest.AuthContext(context.Background(), ro, t1.ID, latchkey.RoleReadOnlyUser), "t", latchkey.TokenScopeUser)
		latchkeytest.MustExec(t, db, `DELETE FROM memberships WHERE user_id = ? AND tenant_id = ?`, ro.ID, t1.ID)
		_, err := e.auth.Authenticate(context.Background(), secret, "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Not a member of tenant")
	})
}

func TestAuthService_SwitchTenant_AccessToken(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		t1, t2, t3, u := e.threeTenants(t, latchkey.RoleUser, latchkey.RoleTenantAdmin)
		k, secret := e.mustCreateKey(t, latchkeytest.AuthContext(context.Background(), u, t1.ID, latchkey.RoleUser), "k", "")
		keyCtx := e.mustAuthenticate(t, secret, "")

		// Same tenant ("" = acting tenant).
		at := e.mustSwitchTenant(t, keyCtx, "")
		if got, want := at.ExpiresAt, clock.Now().Add(latchkey.DefaultAccessTokenTTL); !got.Equal(want) {
			t.Errorf("ExpiresAt=%v, want %v", got, want)
		}
		if !strings.HasPrefix(at.RefreshToken, latchkey.PrefixRefreshToken) || latchkey.RedactSecrets(at.RefreshToken) != "lkr_[REDACTED]" {
			t.Errorf("refresh token %q: not an lkr_ secret the redactor hides whole", at.RefreshToken)
		}
		a, err := e.auth.Authenticate(context.Background(), at.AccessToken, "")
		if err != nil {
			t.Fatal(err)
		}
		if a.User.ID != u.ID || a.TenantID != t1.ID || a.Role != latchkey.RoleUser || a.Kind != latchkey.CredentialAccessToken || a.APIKeyID != k.ID {
			t.Errorf("auth=%+v", a)
		}

		// Another tenant: the role there is looked up, never carried.
		at2 := e.mustSwitchTenant(t, keyCtx, t2.ID)
		a2, err := e.auth.Authenticate(context.Background(), at2.AccessToken, t2.ID)
		if err != nil {
			t.Fatal(err)
		} else if a2.TenantID != t2.ID || a2.Role != latchkey.RoleTenantAdmin {
			t.Errorf("auth in t2=%+v", a2)
		}
		latchkeytest.MustExec(t, db, `UPDATE memberships SET role = ? WHERE user_id = ? AND tenant_id = ?`, string(latchkey.RoleReadOnlyUser), u.ID, t2.ID)
		if a2, err = e.auth.Authenticate(context.Background(), at2.AccessToken, ""); err != nil {
			t.Fatal(err)
		} else if a2.Role != latchkey.RoleReadOnlyUser {
			t.Errorf("role after demotion=%q, want %q", a2.Role, latchkey.RoleReadOnlyUser)
		}
		// A different tenant header is refused.
		_, err = e.auth.Authenticate(context.Background(), at2.AccessToken, t1.ID)
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "another tenant")

		// Not a member.
		_, err = e.auth.SwitchTenant(keyCtx, t3.ID)
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Not a member of tenant "+t3.ID)
		_, err = e.auth.SwitchTenant(keyCtx, "nonsense")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "")
		_, err = e.auth.SwitchTenant(context.Background(), "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "")

		// Access tokens expire (the fake token service honours the clock).
		clock.Add(latchkey.DefaultAccessTokenTTL)
		_, err = e.auth.Authenticate(context.Background(), at.AccessToken, "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "")
		at, err = e.auth.SwitchTenant(keyCtx, "")
		if err != nil {
			t.Fatal(err)
		}
		e.mustAuthenticate(t, at.AccessToken, "")

		// Revoking the source key rejects its access tokens at once.
		if err := e.keys.DeleteAPIKey(keyCtx, k.ID); err != nil {
			t.Fatal(err)
		}
		_, err = e.auth.Authenticate(context.Background(), at.AccessToken, "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "revoked")
		_, err = e.auth.SwitchTenant(keyCtx, "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "revoked")
		if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM refresh_tokens WHERE api_key_id = ?`, k.ID); got != 0 {
			t.Errorf("%d refresh tokens of the deleted key left", got)
		}
	})
}

func TestAuthService_SwitchTenant_SourceChecks(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		t1 := e.f.Tenant
		adminCtx := e.adminCtx(t)
		t2 := latchkeytest.MustCreateTenant(t, db, "two", e.f.Admin)

		// An expiring key: its access tokens stop with it.
		exp := clock.Now().Add(2 * time.Minute)
		k := &latchkey.APIKey{Name: "short", ExpiresAt: &exp}
		secret, err := e.keys.CreateAPIKey(adminCtx, k)
		if err != nil {
			t.Fatal(err)
		}
		at := e.mustSwitchTenant(t, e.mustAuthenticate(t, secret, ""), "")
		clock.Add(2 * time.Minute)
		_, err = e.auth.Authenticate(context.Background(), at.AccessToken, "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "API key expired.")

		// USER-scoped legacy tokens may switch to any of the owner's tenants.
		userTok, userSecret := e.mustCreateToken(t, adminCtx, "pat", latchkey.TokenScopeUser)
		tokCtx := e.mustAuthenticate(t, userSecret, "")
		at, err = e.auth.SwitchTenant(tokCtx, t2.ID)
		if err != nil {
			t.Fatal(err)
		}
		a, err := e.auth.Authenticate(context.Background(), at.AccessToken, "")
		if err != nil {
			t.Fatal(err)
		} else if a.TenantID != t2.ID || a.APITokenID != userTok.ID || a.TokenScope != latchkey.TokenScopeUser || a.Role != latchkey.RoleTenantAdmin {
			t.Errorf("auth=%+v", a)
		}
		if err := e.tokens.DeleteAPIToken(adminCtx, userTok.ID); err != nil {
			t.Fatal(err)
		}
		_, err = e.auth.Authenticate(context.Background(), at.AccessToken, "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "revoked")

		// TENANT and RUNNER tokens: own tenant only, role capped, scope carried.
		for _, scope := range []latchkey.TokenScope{latchkey.TokenScopeTenant, latchkey.TokenScopeRunner} {
			tok, secret := e.mustCreateToken(t, adminCtx, "scoped", scope)
			ctx := e.mustAuthenticate(t, secret, "")
			_, err := e.auth.SwitchTenant(ctx, t2.ID)
			expectCode(t, err, latchkey.EFORBIDDEN, "")
			at := e.mustSwitchTenant(t, ctx, t1.ID)
			a, err := e.auth.Authenticate(context.Background(), at.AccessToken, "")
			if err != nil {
				t.Fatal(err)
			} else if a.TokenScope != scope || a.Role != latchkey.RoleUser || a.APITokenID != tok.ID || a.TenantID != t1.ID {
				t.Errorf("%s: auth=%+v", scope, a)
			}
		}

		// Service accounts: their own tenant only.
		sa := latchkeytest.MustCreateServiceAccount(t, db, t1.ID, "agent", latchkey.RoleUser)
		_, saSecret := e.mustCreateKey(t, adminCtx, "agent", sa.ID)
		saCtx := e.mustAuthenticate(t, saSecret, "")
		_, err = e.auth.SwitchTenant(saCtx, t2.ID)
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "")
		if at, err := e.auth.SwitchTenant(saCtx, ""); err != nil {
			t.Fatal(err)
		} else if a, err := e.auth.Authenticate(context.Background(), at.AccessToken, ""); err != nil {
			t.Fatal(err)
		} else if a.User.ID != sa.ID || a.Role != latchkey.RoleUser {
			t.Errorf("SA auth=%+v", a)
		}

		// Sessions cannot mint access tokens.
		sessSecret, _, err := e.auth.CreateSession(context.Background(), e.f.Admin.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.auth.SwitchTenant(e.mustAuthenticate(t, sessSecret, ""), "")
		expectCode(t, err, latchkey.EFORBIDDEN, "Use an API key.")
	})
}

func TestAuthService_RemovedMembership(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		t1 := e.f.Tenant
		t2 := latchkeytest.MustCreateTenant(t, db, "two", nil)
		u := latchkeytest.MustCreateMember(t, db, t1.ID, "u@example.com", latchkey.RoleUser)
		latchkeytest.MustCreateMember(t, db, t2.ID, "u@example.com", latchkey.RoleUser)
		_, secret := e.mustCreateKey(t, latchkeytest.AuthContext(context.Background(), u, t1.ID, latchkey.RoleUser), "k", "")
		at := e.mustSwitchTenant(t, e.mustAuthenticate(t, secret, t2.ID), "")
		e.mustAuthenticate(t, at.AccessToken, t2.ID)

		latchkeytest.MustExec(t, db, `DELETE FROM memberships WHERE user_id = ? AND tenant_id = ?`, u.ID, t2.ID)
		_, err := e.auth.Authenticate(context.Background(), secret, t2.ID)
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Not a member of tenant "+t2.ID)
		_, err = e.auth.Authenticate(context.Background(), at.AccessToken, "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Not a member of tenant "+t2.ID)
		_, err = e.auth.RefreshAccessToken(context.Background(), at.RefreshToken, at.AccessToken)
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Not a member of tenant "+t2.ID)
		// Still fine where the membership remains.
		if a, err := e.auth.Authenticate(context.Background(), secret, ""); err != nil {
			t.Fatal(err)
		} else if a.TenantID != t1.ID {
			t.Errorf("tenant=%q, want %q", a.TenantID, t1.ID)
		}
	})
}

func TestAuthService_RefreshAccessToken(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		adminCtx := e.adminCtx(t)
		keyID := latchkey.AuthFromContext(adminCtx).APIKeyID
		at1 := e.mustSwitchTenant(t, adminCtx, "")

		// The access token may have expired; the refresh token has not.
		clock.Add(latchkey.DefaultAccessTokenTTL + time.Minute)
		_, err := e.auth.Authenticate(context.Background(), at1.AccessToken, "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "")
		at2, err := e.auth.RefreshAccessToken(context.Background(), at1.RefreshToken, at1.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if at2.AccessToken == at1.AccessToken || at2.RefreshToken == at1.RefreshToken {
			t.Fatal("refresh returned the old tokens")
		}
		if got, want := at2.ExpiresAt, clock.Now().Truncate(time.Second).Add(latchkey.DefaultAccessTokenTTL); !got.Equal(want) {
			t.Errorf("ExpiresAt=%v, want %v", got, want)
		}
		a, err := e.auth.Authenticate(context.Background(), at2.AccessToken, "")
		if err != nil {
			t.Fatal(err)
		} else if a.User.ID != e.f.Admin.ID || a.TenantID != e.f.Tenant.ID || a.APIKeyID != keyID || a.Kind != latchkey.CredentialAccessToken {
			t.Errorf("auth=%+v", a)
		}
		// Both in one family, which the refresh moved to generation 1.
		if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM refresh_families`); got != 1 {
			t.Errorf("%d families, want 1", got)
		}
		if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM refresh_families WHERE generation = 1 AND revoked_at IS NULL`); got != 1 {
			t.Errorf("%d families at generation 1, want 1", got)
		}

		// A refresh token with someone else's access token: refused, not consumed.
		at3 := e.mustSwitchTenant(t, adminCtx, "")
		_, err = e.auth.RefreshAccessToken(context.Background(), at3.RefreshToken, at2.AccessToken)
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "does not belong")
		_, err = e.auth.RefreshAccessToken(context.Background(), at3.RefreshToken, "eyJnot.a.token")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "")
		at4, err := e.auth.RefreshAccessToken(context.Background(), at3.RefreshToken, at3.AccessToken)
		if err != nil {
			t.Fatalf("refresh after refused attempts: %v", err)
		}

		// Reuse of a spent refresh token revokes its whole family.
		_, err = e.auth.RefreshAccessToken(context.Background(), at1.RefreshToken, at1.AccessToken)
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Refresh token reuse detected; sign in again.")
		_, err = e.auth.RefreshAccessToken(context.Background(), at2.RefreshToken, at2.AccessToken)
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Invalid refresh token.")
		// Other families are untouched.
		if _, err := e.auth.RefreshAccessToken(context.Background(), at4.RefreshToken, at4.AccessToken); err != nil {
			t.Fatalf("other family: %v", err)
		}

		// Malformed and wrong-kind secrets.
		for _, bad := range []string{"", "lkr_short", mistype(at4.RefreshToken), e.f.AdminKey} {
			_, err := e.auth.RefreshAccessToken(context.Background(), bad, at4.AccessToken)
			expectCode(t, err, latchkey.EUNAUTHENTICATED, "Invalid refresh token.")
		}

		// Expired refresh tokens.
		at5 := e.mustSwitchTenant(t, adminCtx, "")
		clock.Add(latchkey.DefaultRefreshTokenTTL)
		_, err = e.auth.RefreshAccessToken(context.Background(), at5.RefreshToken, at5.AccessToken)
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Refresh token expired")
	})
}

func TestAuthService_RefreshAccessToken_SourceRevoked(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		k, secret := e.mustCreateKey(t, e.adminCtx(t), "k", "")
		keyCtx := e.mustAuthenticate(t, secret, "")
		at := e.mustSwitchTenant(t, keyCtx, "")
		if err := e.keys.DeleteAPIKey(keyCtx, k.ID); err != nil {
			t.Fatal(err)
		}
		_, err := e.auth.RefreshAccessToken(context.Background(), at.RefreshToken, at.AccessToken)
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "")
	})
}

func TestAuthService_Sessions(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		t1 := e.f.Tenant
		t2 := latchkeytest.MustCreateTenant(t, db, "two", nil)
		u := latchkeytest.MustCreateMember(t, db, t1.ID, "u@example.com", latchkey.RoleUser)
		clock.Add(time.Second)
		latchkeytest.MustCreateMember(t, db, t2.ID, "u@example.com", latchkey.RoleReadOnlyUser)

		secret, expiresAt, err := e.auth.CreateSession(context.Background(), u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if prefix, err := latchkey.ParseSecret(secret); err != nil || prefix != latchkey.PrefixSession {
			t.Fatalf("prefix=%q err=%v", prefix, err)
		}
		if want := clock.Now().Add(sqldb.DefaultSessionTTL); !expiresAt.Equal(want) {
			t.Errorf("expiresAt=%v, want %v", expiresAt, want)
		}
		a, err := e.auth.Authenticate(context.Background(), secret, "")
		if err != nil {
			t.Fatal(err)
		}
		if a.User.ID != u.ID || a.Kind != latchkey.CredentialSession || a.SessionID == "" || a.TenantID != t1.ID || a.Role != latchkey.RoleUser {
			t.Errorf("auth=%+v", a)
		}
		if a, err := e.auth.Authenticate(context.Background(), secret, t2.ID); err != nil {
			t.Fatal(err)
		} else if a.TenantID != t2.ID || a.Role != latchkey.RoleReadOnlyUser {
			t.Errorf("in t2: auth=%+v", a)
		}
		_, err = e.auth.Authenticate(context.Background(), secret, latchkeytest.MustCreateTenant(t, db, "three", nil).ID)
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Not a member")
		_, err = e.auth.Authenticate(context.Background(), mistype(secret), "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "")

		// Without its default tenant, a session acts in the oldest membership left.
		latchkeytest.MustExec(t, db, `DELETE FROM memberships WHERE user_id = ? AND tenant_id = ?`, u.ID, t1.ID)
		if a, err := e.auth.Authenticate(context.Background(), secret, ""); err != nil {
			t.Fatal(err)
		} else if a.TenantID != t2.ID {
			t.Errorf("fallback tenant=%q, want %q", a.TenantID, t2.ID)
		}
		latchkeytest.MustExec(t, db, `DELETE FROM memberships WHERE user_id = ? AND tenant_id = ?`, u.ID, t2.ID)
		_, err = e.auth.Authenticate(context.Background(), secret, "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "not a member of any tenant")
		latchkeytest.MustCreateMember(t, db, t1.ID, "u@example.com", latchkey.RoleUser)

		// Signing out: someone else's session is not found; one's own is gone after.
		sessCtx := e.mustAuthenticate(t, secret, "")
		sessID := latchkey.AuthFromContext(sessCtx).SessionID
		expectCode(t, e.auth.DeleteSession(e.adminCtx(t), sessID), latchkey.ENOTFOUND, "")
		expectCode(t, e.auth.DeleteSession(context.Background(), sessID), latchkey.EUNAUTHENTICATED, "")
		if err := e.auth.DeleteSession(sessCtx, sessID); err != nil {
			t.Fatal(err)
		}
		_, err = e.auth.Authenticate(context.Background(), secret, "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Invalid session.")

		// Expiry.
		secret, _, err = e.auth.CreateSession(context.Background(), u.ID)
		if err != nil {
			t.Fatal(err)
		}
		clock.Add(sqldb.DefaultSessionTTL - time.Microsecond)
		e.mustAuthenticate(t, secret, "")
		clock.Add(time.Microsecond)
		_, err = e.auth.Authenticate(context.Background(), secret, "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Session expired")

		// Only humans sign in.
		sa := latchkeytest.MustCreateServiceAccount(t, db, t1.ID, "agent", latchkey.RoleUser)
		_, _, err = e.auth.CreateSession(context.Background(), sa.ID)
		expectCode(t, err, latchkey.EINVALID, "")
		_, _, err = e.auth.CreateSession(context.Background(), "00000000-0000-4000-8000-000000000000")
		expectCode(t, err, latchkey.ENOTFOUND, "")
	})
}

func TestAuthService_SessionLastSeen(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		secret, _, err := e.auth.CreateSession(context.Background(), e.f.Admin.ID)
		if err != nil {
			t.Fatal(err)
		}
		start := clock.Now()
		sessID := latchkey.AuthFromContext(e.mustAuthenticate(t, secret, "")).SessionID
		clock.Add(59 * time.Second)
		e.mustAuthenticate(t, secret, "")
		if got := lastUsedAt(t, db, "sessions", "last_seen_at", sessID); !got.Equal(start) {
			t.Errorf("last_seen_at=%v, want %v", got, start)
		}
		clock.Add(time.Second)
		e.mustAuthenticate(t, secret, "")
		if got := lastUsedAt(t, db, "sessions", "last_seen_at", sessID); !got.Equal(start.Add(time.Minute)) {
			t.Errorf("last_seen_at=%v, want %v", got, start.Add(time.Minute))
		}
	})
}

// No column of the credential tables ever holds a secret's text: only
// SHA-256 hashes are stored.
func TestAuthService_NoSecretsStored(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		adminCtx := e.adminCtx(t)
		sa := latchkeytest.MustCreateServiceAccount(t, db, e.f.Tenant.ID, "agent", latchkey.RoleUser)
		secrets := map[string]string{"bootstrap key": e.f.AdminKey}
		_, secrets["user key"] = e.mustCreateKey(t, adminCtx, "k", "")
		_, secrets["sa key"] = e.mustCreateKey(t, adminCtx, "sa", sa.ID)
		for _, scope := range []latchkey.TokenScope{latchkey.TokenScopeUser, latchkey.TokenScopeTenant, latchkey.TokenScopeRunner} {
			_, secrets["token "+string(scope)] = e.mustCreateToken(t, adminCtx, "t", scope)
		}
		at := e.mustSwitchTenant(t, adminCtx, "")
		secrets["refresh 1"], secrets["access 1"] = at.RefreshToken, at.AccessToken
		at, err := e.auth.RefreshAccessToken(context.Background(), at.RefreshToken, at.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		secrets["refresh 2"], secrets["access 2"] = at.RefreshToken, at.AccessToken
		if secrets["session"], _, err = e.auth.CreateSession(context.Background(), e.f.Admin.ID); err != nil {
			t.Fatal(err)
		}
		// Use each once so that last-used columns are written too.
		for name, s := range secrets {
			if !strings.HasPrefix(s, latchkey.PrefixRefreshToken) {
				if _, err := e.auth.Authenticate(context.Background(), s, ""); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
		}

		hashes := map[string]bool{}
		// Refresh tokens are stored in no form: they describe themselves;
		// a used family has a row without any part of them.
		for table, hashCol := range map[string]string{"api_keys": "key_hash", "api_tokens": "token_hash", "sessions": "token_hash", "refresh_families": "id"} {
			rows := latchkeytest.MustQueryAll(t, db, `SELECT * FROM `+table)
			if len(rows) == 0 {
				t.Fatalf("%s is empty", table)
			}
			for _, row := range rows {
				hashes[row[hashCol]] = true
				for col, v := range row {
					for name, s := range secrets {
						body := s[4:]
						if strings.Contains(v, body) || strings.Contains(v, s) {
							t.Errorf("%s.%s holds the %s", table, col, name)
						}
					}
				}
			}
		}
		// The hashes are there (so the rows read are the right ones).
		for name, s := range secrets {
			if strings.HasPrefix(s, "eyJ") || strings.HasPrefix(s, latchkey.PrefixRefreshToken) {
				continue
			}
			if !hashes[string(latchkey.HashSecret(s))] {
				t.Errorf("no row holds the hash of the %s", name)
			}
		}
		if len(secrets) != 11 {
			t.Errorf("%d secrets issued, want 11", len(secrets))
		}
	})
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer = latchkeytest.SyncBuffer

// Within a minute of the last recorded use, Authenticate does not even try
// to write: with the row (SQLite: the database) write-locked by another
// replica it still succeeds and logs nothing. Past the minute it does try,
// and that failure is logged, not returned.
func TestAuthService_Authenticate_NoWriteWhenThrottled(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		if !db.Postgres() && sqliteReadsSerialized(t, db) {
			t.Skip("SQLite read transactions take the write lock (the read pool uses _txlock=immediate), so a held write lock blocks Authenticate's reads; this test runs once reads are deferred")
		}
		e := newCredEnv(t, db, clock)
		var logs syncBuffer
		db.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		e.mustAuthenticate(t, e.f.AdminKey, "") // first use: recorded

		// Another replica holds a write lock.
		other := latchkeytest.NewDB(db.DSN)
		if err := other.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		lock, err := other.BeginTx(context.Background(), true)
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Rollback()
		// SQLite: the open write transaction is the lock. PostgreSQL: block
		// every write to api_keys (an UPDATE matching no row would not
		// wait for a row lock), but not reads.
		if db.Postgres() {
			if _, err := lock.ExecContext(context.Background(), `LOCK TABLE api_keys IN EXCLUSIVE MODE`); err != nil {
				t.Fatal(err)
			}
		}

		authenticate := func() {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			if _, err := e.auth.Authenticate(ctx, e.f.AdminKey, ""); err != nil {
				t.Fatal(err)
			}
		}
		clock.Add(59 * time.Second)
		authenticate()
		if got := logs.String(); got != "" {
			t.Fatalf("throttled authentication tried to write: %s", got)
		}
		clock.Add(time.Second)
		authenticate()
		if got := logs.String(); !strings.Contains(got, "recording credential use failed") {
			t.Fatalf("control: no failed write logged past the minute; logs=%q", got)
		} else if strings.Contains(got, e.f.AdminKey) || strings.Contains(got, e.f.AdminKey[4:]) {
			t.Fatalf("log holds the key: %s", got)
		}
	})
}

// sqliteReadsSerialized reports whether a read transaction waits for
// another open read transaction, i.e. whether reads take the write lock.
func sqliteReadsSerialized(tb testing.TB, db *sqldb.DB) bool {
	tb.Helper()
	tx1, err := db.BeginTx(context.Background(), false)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx1.Rollback()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	tx2, err := db.BeginTx(ctx, false)
	if err != nil {
		return true
	}
	tx2.Rollback()
	return false
}
