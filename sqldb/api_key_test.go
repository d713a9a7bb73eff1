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

func TestAPIKeyService_CreateAPIKey_Self(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		ctx := e.adminCtx(t)
		clock.Add(time.Hour)
		k, secret := e.mustCreateKey(t, ctx, "laptop", "")
		if prefix, err := latchkey.ParseSecret(secret); err != nil || prefix != latchkey.PrefixUserKey {
			t.Fatalf("prefix=%q err=%v, want %s", prefix, err, latchkey.PrefixUserKey)
		}
		if k.ID == "" {
			t.Fatal("no id")
		}
		if got, want := k.UserID, e.f.Admin.ID; got != want {
			t.Errorf("UserID=%q, want %q", got, want)
		}
		if got, want := k.CreatedByUserID, e.f.Admin.ID; got != want {
			t.Errorf("CreatedByUserID=%q, want %q", got, want)
		}
		if got, want := k.DefaultTenantID, e.f.Tenant.ID; got != want {
			t.Errorf("DefaultTenantID=%q, want %q", got, want)
		}
		if got, want := k.CreatedAt, clock.Now(); !got.Equal(want) {
			t.Errorf("CreatedAt=%v, want %v", got, want)
		}
		a, err := e.auth.Authenticate(context.Background(), secret, "")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := a.APIKeyID, k.ID; got != want {
			t.Errorf("APIKeyID=%q, want %q", got, want)
		}

		// Found as stored.
		keys, n, err := e.keys.FindAPIKeys(ctx, latchkey.APIKeyFilter{ID: &k.ID})
		if err != nil {
			t.Fatal(err)
		} else if n != 1 || len(keys) != 1 {
			t.Fatalf("n=%d len=%d, want 1", n, len(keys))
		}
		got := keys[0]
		if got.Name != "laptop" || got.UserID != k.UserID || got.CreatedByUserID != k.CreatedByUserID ||
			got.DefaultTenantID != k.DefaultTenantID || !got.CreatedAt.Equal(k.CreatedAt) || got.ExpiresAt != nil {
			t.Errorf("found %+v, want %+v", got, k)
		}
	})
}

func TestAPIKeyService_CreateAPIKey_ServiceAccount(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		ctx := e.adminCtx(t)
		sa := latchkeytest.MustCreateServiceAccount(t, db, e.f.Tenant.ID, "agent", latchkey.RoleUser)

		k, secret := e.mustCreateKey(t, ctx, "agent key", sa.ID)
		if prefix, err := latchkey.ParseSecret(secret); err != nil || prefix != latchkey.PrefixServiceKey {
			t.Fatalf("prefix=%q err=%v, want %s", prefix, err, latchkey.PrefixServiceKey)
		}
		if k.UserID != sa.ID || k.CreatedByUserID != e.f.Admin.ID || k.DefaultTenantID != e.f.Tenant.ID {
			t.Errorf("key=%+v", k)
		}
		a, err := e.auth.Authenticate(context.Background(), secret, "")
		if err != nil {
			t.Fatal(err)
		}
		if a.User.ID != sa.ID || !a.User.IsServiceAccount() || a.TenantID != e.f.Tenant.ID || a.Role != latchkey.RoleUser {
			t.Errorf("auth=%+v user=%+v", a, a.User)
		}

		// The key acts in the account's tenant only.
		other := latchkeytest.MustCreateTenant(t, db, "other", e.f.Admin)
		_, err = e.keys.CreateAPIKey(ctx, &latchkey.APIKey{Name: "x", UserID: sa.ID, DefaultTenantID: other.ID})
		expectCode(t, err, latchkey.EINVALID, "")

		// Even an admin of both tenants must switch to the account's tenant.
		sa2 := latchkeytest.MustCreateServiceAccount(t, db, other.ID, "other agent", latchkey.RoleUser)
		_, err = e.keys.CreateAPIKey(ctx, &latchkey.APIKey{Name: "x", UserID: sa2.ID})
		expectCode(t, err, latchkey.EFORBIDDEN, "Switch to that tenant first.")
		ctx2 := e.mustAuthenticate(t, e.f.AdminKey, other.ID)
		if _, err := e.keys.CreateAPIKey(ctx2, &latchkey.APIKey{Name: "x", UserID: sa2.ID}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestAPIKeyService_CreateAPIKey_Forbidden(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		tid := e.f.Tenant.ID
		adminCtx := e.adminCtx(t)
		sa := latchkeytest.MustCreateServiceAccount(t, db, tid, "agent", latchkey.RoleTenantAdmin)
		user := latchkeytest.MustCreateMember(t, db, tid, "user@example.com", latchkey.RoleUser)
		_, userKey := e.mustCreateKey(t, latchkeytest.AuthContext(context.Background(), user, tid, latchkey.RoleUser), "u", "")
		userCtx := e.mustAuthenticate(t, userKey, "")
		_, saKey := e.mustCreateKey(t, adminCtx, "sa", sa.ID)
		saCtx := e.mustAuthenticate(t, saKey, "")
		_, runnerToken := e.mustCreateToken(t, adminCtx, "runner", latchkey.TokenScopeRunner)
		runnerCtx := e.mustAuthenticate(t, runnerToken, "")
		_, tenantToken := e.mustCreateToken(t, adminCtx, "tenant", latchkey.TokenScopeTenant)
		tenantCtx := e.mustAuthenticate(t, tenantToken, "")
		before := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys`)

		for _, tt := range []struct {
			name string
			ctx  context.Context
			key  latchkey.APIKey
			code latchkey.Code
			msg  string
		}{
			{"non-admin for SA", userCtx, latchkey.APIKey{Name: "x", UserID: sa.ID}, latchkey.EFORBIDDEN, ""},
			{"admin for another human", adminCtx, latchkey.APIKey{Name: "x", UserID: user.ID}, latchkey.EFORBIDDEN, "only create keys for yourself"},
			{"user for another human", userCtx, latchkey.APIKey{Name: "x", UserID: e.f.Admin.ID}, latchkey.EFORBIDDEN, "only create keys for yourself"},
			{"unknown user", adminCtx, latchkey.APIKey{Name: "x", UserID: "00000000-0000-4000-8000-000000000000"}, latchkey.ENOTFOUND, ""},
			{"SA caller for itself", saCtx, latchkey.APIKey{Name: "x"}, latchkey.EFORBIDDEN, ""},
			{"SA caller for another SA", saCtx, latchkey.APIKey{Name: "x", UserID: sa.ID}, latchkey.EFORBIDDEN, ""},
			{"RUNNER token", runnerCtx, latchkey.APIKey{Name: "x"}, latchkey.EFORBIDDEN, "RUNNER"},
			{"TENANT token", tenantCtx, latchkey.APIKey{Name: "x"}, latchkey.EFORBIDDEN, ""},
			{"anonymous", context.Background(), latchkey.APIKey{Name: "x"}, latchkey.EUNAUTHENTICATED, ""},
			{"no name", adminCtx, latchkey.APIKey{}, latchkey.EINVALID, ""},
			{"long name", adminCtx, latchkey.APIKey{Name: strings.Repeat("n", 201)}, latchkey.EINVALID, ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				k := tt.key
				secret, err := e.keys.CreateAPIKey(tt.ctx, &k)
				expectCode(t, err, tt.code, tt.msg)
				if secret != "" || k.ID != "" {
					t.Errorf("secret=%q id=%q returned with an error", secret, k.ID)
				}
			})
		}
		if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys`); got != before {
			t.Errorf("api_keys=%d after refused creates, want %d", got, before)
		}

		// A USER-scoped token is a personal token: it may mint a key for its owner.
		_, userToken := e.mustCreateToken(t, adminCtx, "pat", latchkey.TokenScopeUser)
		if _, err := e.keys.CreateAPIKey(e.mustAuthenticate(t, userToken, ""), &latchkey.APIKey{Name: "from pat"}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestAPIKeyService_CreateAPIKey_ReadOnlyUser(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		ro := latchkeytest.MustCreateMember(t, db, e.f.Tenant.ID, "ro@example.com", latchkey.RoleReadOnlyUser)
		k, secret := e.mustCreateKey(t, latchkeytest.AuthContext(context.Background(), ro, e.f.Tenant.ID, latchkey.RoleReadOnlyUser), "ro key", "")
		a, err := e.auth.Authenticate(context.Background(), secret, "")
		if err != nil {
			t.Fatal(err)
		}
		if a.User.ID != ro.ID || a.Role != latchkey.RoleReadOnlyUser || a.APIKeyID != k.ID {
			t.Errorf("auth=%+v", a)
		}
		// ...and delete it.
		if err := e.keys.DeleteAPIKey(latchkey.NewContextWithAuth(context.Background(), a), k.ID); err != nil {
			t.Fatal(err)
		}
	})
}

func TestAPIKeyService_CreateAPIKey_DefaultTenant(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		t1, t2, t3, u := e.threeTenants(t, latchkey.RoleUser, latchkey.RoleReadOnlyUser)
		ctx1 := latchkeytest.AuthContext(context.Background(), u, t1.ID, latchkey.RoleUser)
		ctx2 := latchkeytest.AuthContext(context.Background(), u, t2.ID, latchkey.RoleReadOnlyUser)

		// Empty: the acting tenant.
		if k, _ := e.mustCreateKey(t, ctx2, "acting", ""); k.DefaultTenantID != t2.ID {
			t.Errorf("default=%q, want acting tenant %q", k.DefaultTenantID, t2.ID)
		}
		// Another tenant the caller belongs to.
		k := &latchkey.APIKey{Name: "in two", DefaultTenantID: t2.ID}
		secret, err := e.keys.CreateAPIKey(ctx1, k)
		if err != nil {
			t.Fatal(err)
		} else if k.DefaultTenantID != t2.ID {
			t.Errorf("default=%q, want %q", k.DefaultTenantID, t2.ID)
		}
		a, err := e.auth.Authenticate(context.Background(), secret, "")
		if err != nil {
			t.Fatal(err)
		} else if a.TenantID != t2.ID || a.Role != latchkey.RoleReadOnlyUser {
			t.Errorf("tenant=%q role=%q, want %q %q", a.TenantID, a.Role, t2.ID, latchkey.RoleReadOnlyUser)
		}
		// A tenant the caller does not belong to.
		_, err = e.keys.CreateAPIKey(ctx1, &latchkey.APIKey{Name: "in three", DefaultTenantID: t3.ID})
		expectCode(t, err, latchkey.EFORBIDDEN, "")
	})
}

func TestAPIKeyService_CreateAPIKey_Expiry(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		ctx := e.adminCtx(t)
		now := clock.Now()
		for _, at := range []time.Time{now.Add(-time.Second), now} {
			_, err := e.keys.CreateAPIKey(ctx, &latchkey.APIKey{Name: "x", ExpiresAt: &at})
			expectCode(t, err, latchkey.EINVALID, "Expiration must be in the future.")
		}
		at := now.Add(time.Hour).Add(123456789 * time.Nanosecond)
		k := &latchkey.APIKey{Name: "x", ExpiresAt: &at}
		if _, err := e.keys.CreateAPIKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		keys, _, err := e.keys.FindAPIKeys(ctx, latchkey.APIKeyFilter{ID: &k.ID})
		if err != nil {
			t.Fatal(err)
		} else if len(keys) != 1 || keys[0].ExpiresAt == nil || !keys[0].ExpiresAt.Equal(*k.ExpiresAt) {
			t.Fatalf("found %+v, want expiry %v", keys, k.ExpiresAt)
		} else if got, want := *keys[0].ExpiresAt, at.Truncate(time.Microsecond); !got.Equal(want) {
			t.Errorf("expires=%v, want %v", got, want)
		}
	})
}

// keyIDs returns the ids of keys, sorted.
func keyIDs(keys []*latchkey.APIKey) []string {
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	slices.Sort(ids)
	return ids
}

func sortedIDs(ids ...string) []string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

func TestAPIKeyService_FindAPIKeys(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		t1 := e.f.Tenant
		adminCtx := e.adminCtx(t)
		bootKey := latchkey.AuthFromContext(adminCtx).APIKeyID

		// A second tenant, administered by admin2 and also by the fixture admin.
		admin2 := latchkeytest.MustCreateMember(t, db, t1.ID, "admin2@example.com", latchkey.RoleReadOnlyUser)
		t2 := latchkeytest.MustCreateTenant(t, db, "two", admin2)
		latchkeytest.MustExec(t, db, `INSERT INTO memberships (id, tenant_id, user_id, role, created_at) VALUES (?, ?, ?, ?, ?)`,
			"11111111-1111-4111-8111-111111111111", t2.ID, e.f.Admin.ID, string(latchkey.RoleTenantAdmin), sqldb.Time(clock.Now()))
		user := latchkeytest.MustCreateMember(t, db, t1.ID, "user@example.com", latchkey.RoleUser)
		sa1 := latchkeytest.MustCreateServiceAccount(t, db, t1.ID, "sa1", latchkey.RoleUser)
		sa2 := latchkeytest.MustCreateServiceAccount(t, db, t2.ID, "sa2", latchkey.RoleUser)

		clock.Add(time.Second)
		adminKey, _ := e.mustCreateKey(t, adminCtx, "b admin", "")
		clock.Add(time.Second)
		userCtx := latchkeytest.AuthContext(context.Background(), user, t1.ID, latchkey.RoleUser)
		userKey, _ := e.mustCreateKey(t, userCtx, "user", "")
		clock.Add(time.Second)
		sa1Key, _ := e.mustCreateKey(t, adminCtx, "c sa1", sa1.ID)
		clock.Add(time.Second)
		admin2Ctx := latchkeytest.AuthContext(context.Background(), admin2, t2.ID, latchkey.RoleTenantAdmin)
		sa2Key, _ := e.mustCreateKey(t, admin2Ctx, "sa2", sa2.ID)
		admin2Key, _ := e.mustCreateKey(t, admin2Ctx, "admin2", "")

		find := func(ctx context.Context, filter latchkey.APIKeyFilter) ([]*latchkey.APIKey, int) {
			t.Helper()
			keys, n, err := e.keys.FindAPIKeys(ctx, filter)
			if err != nil {
				t.Fatal(err)
			}
			return keys, n
		}

		// Admin of t1: own keys and t1's SA keys; not user's, not t2's SA keys.
		keys, n := find(adminCtx, latchkey.APIKeyFilter{})
		if got, want := keyIDs(keys), sortedIDs(bootKey, adminKey.ID, sa1Key.ID); !slices.Equal(got, want) || n != 3 {
			t.Errorf("admin in t1: ids=%v n=%d, want %v", got, n, want)
		}
		// The same admin acting in t2 sees t2's SA keys instead.
		adminInT2 := e.mustAuthenticate(t, e.f.AdminKey, t2.ID)
		keys, _ = find(adminInT2, latchkey.APIKeyFilter{})
		if got, want := keyIDs(keys), sortedIDs(bootKey, adminKey.ID, sa2Key.ID); !slices.Equal(got, want) {
			t.Errorf("admin in t2: ids=%v, want %v", got, want)
		}
		// A plain user: own keys only.
		keys, _ = find(userCtx, latchkey.APIKeyFilter{})
		if got, want := keyIDs(keys), sortedIDs(userKey.ID); !slices.Equal(got, want) {
			t.Errorf("user: ids=%v, want %v", got, want)
		}
		// admin2 is read-only in t1: there, own keys only.
		keys, _ = find(latchkeytest.AuthContext(context.Background(), admin2, t1.ID, latchkey.RoleReadOnlyUser), latchkey.APIKeyFilter{})
		if got, want := keyIDs(keys), sortedIDs(admin2Key.ID); !slices.Equal(got, want) {
			t.Errorf("admin2 in t1: ids=%v, want %v", got, want)
		}
		// Filters never widen visibility.
		keys, n = find(userCtx, latchkey.APIKeyFilter{ID: &adminKey.ID})
		if len(keys) != 0 || n != 0 {
			t.Errorf("user found admin's key by id: %v", keyIDs(keys))
		}
		keys, _ = find(adminCtx, latchkey.APIKeyFilter{UserID: &sa2.ID})
		if len(keys) != 0 {
			t.Errorf("admin in t1 found t2's SA keys: %v", keyIDs(keys))
		}
		keys, _ = find(adminCtx, latchkey.APIKeyFilter{UserID: &sa1.ID})
		if got, want := keyIDs(keys), sortedIDs(sa1Key.ID); !slices.Equal(got, want) {
			t.Errorf("UserID filter: %v, want %v", got, want)
		}
		keys, _ = find(adminCtx, latchkey.APIKeyFilter{IDs: []string{adminKey.ID, sa2Key.ID, userKey.ID}})
		if got, want := keyIDs(keys), sortedIDs(adminKey.ID); !slices.Equal(got, want) {
			t.Errorf("IDs filter: %v, want %v", got, want)
		}
		if keys, n = find(adminCtx, latchkey.APIKeyFilter{IDs: []string{}}); len(keys) != 0 || n != 0 {
			t.Errorf("empty IDs matched %v", keyIDs(keys))
		}
		// Order, limit, offset and the total count.
		keys, n = find(adminCtx, latchkey.APIKeyFilter{OrderBy: []latchkey.SortOrder{{Field: "name", Desc: true}}, Limit: 2})
		if n != 3 || len(keys) != 2 || keys[0].Name != "c sa1" || keys[1].Name != "bootstrap admin key" {
			t.Errorf("ordered page: n=%d %v", n, keys)
		}
		keys, n = find(adminCtx, latchkey.APIKeyFilter{Offset: 2})
		if n != 3 || len(keys) != 1 || keys[0].ID != sa1Key.ID {
			t.Errorf("offset 2: n=%d %v", n, keyIDs(keys))
		}
		keys, n = find(adminCtx, latchkey.APIKeyFilter{Offset: 5})
		if n != 3 || len(keys) != 0 {
			t.Errorf("offset 5: n=%d %v", n, keyIDs(keys))
		}
		_, _, err := e.keys.FindAPIKeys(adminCtx, latchkey.APIKeyFilter{OrderBy: []latchkey.SortOrder{{Field: "key_hash"}}})
		expectCode(t, err, latchkey.EINVALID, "")

		// RUNNER tokens may not list keys; anonymous callers are refused.
		_, runner := e.mustCreateToken(t, adminCtx, "runner", latchkey.TokenScopeRunner)
		_, _, err = e.keys.FindAPIKeys(e.mustAuthenticate(t, runner, ""), latchkey.APIKeyFilter{})
		expectCode(t, err, latchkey.EFORBIDDEN, "")
		_, _, err = e.keys.FindAPIKeys(context.Background(), latchkey.APIKeyFilter{})
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "")
	})
}

func TestAPIKeyService_DeleteAPIKey(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		t1 := e.f.Tenant
		adminCtx := e.adminCtx(t)
		user := latchkeytest.MustCreateMember(t, db, t1.ID, "user@example.com", latchkey.RoleUser)
		userCtx := latchkeytest.AuthContext(context.Background(), user, t1.ID, latchkey.RoleUser)
		sa := latchkeytest.MustCreateServiceAccount(t, db, t1.ID, "sa", latchkey.RoleUser)
		t2 := latchkeytest.MustCreateTenant(t, db, "two", e.f.Admin)
		sa2 := latchkeytest.MustCreateServiceAccount(t, db, t2.ID, "sa2", latchkey.RoleUser)

		userKey, userSecret := e.mustCreateKey(t, userCtx, "user", "")
		saKey, saSecret := e.mustCreateKey(t, adminCtx, "sa", sa.ID)
		sa2Key, _ := e.mustCreateKey(t, e.mustAuthenticate(t, e.f.AdminKey, t2.ID), "sa2", sa2.ID)
		adminKey, _ := e.mustCreateKey(t, adminCtx, "admin", "")

		for _, tt := range []struct {
			name string
			ctx  context.Context
			id   string
		}{
			{"user deletes admin's key", userCtx, adminKey.ID},
			{"user deletes SA key", userCtx, saKey.ID},
			{"admin deletes user's key", adminCtx, userKey.ID},
			{"admin deletes another tenant's SA key", adminCtx, sa2Key.ID},
			{"unknown id", adminCtx, "00000000-0000-4000-8000-000000000000"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				expectCode(t, e.keys.DeleteAPIKey(tt.ctx, tt.id), latchkey.ENOTFOUND, "")
			})
		}
		if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys WHERE id IN (?, ?, ?, ?)`, userKey.ID, saKey.ID, sa2Key.ID, adminKey.ID); got != 4 {
			t.Fatalf("%d of 4 keys left after refused deletes", got)
		}

		// Own key: revoked at once.
		if err := e.keys.DeleteAPIKey(userCtx, userKey.ID); err != nil {
			t.Fatal(err)
		}
		_, err := e.auth.Authenticate(context.Background(), userSecret, "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Invalid API key.")
		// An SA key, by an admin of its tenant.
		if err := e.keys.DeleteAPIKey(adminCtx, saKey.ID); err != nil {
			t.Fatal(err)
		}
		_, err = e.auth.Authenticate(context.Background(), saSecret, "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "Invalid API key.")
		// Gone means gone.
		expectCode(t, e.keys.DeleteAPIKey(adminCtx, saKey.ID), latchkey.ENOTFOUND, "")
		expectCode(t, e.keys.DeleteAPIKey(context.Background(), adminKey.ID), latchkey.EUNAUTHENTICATED, "")
	})
}

// The identifier (prefix and last four characters) is stored at creation
// and returned by every lookup; nothing more of the key is stored.
func TestAPIKeyService_Identifier(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		ctx := e.adminCtx(t)
		k, secret := e.mustCreateKey(t, ctx, "laptop", "")
		want := secret[:4] + "…" + secret[len(secret)-4:]
		if k.Identifier != want {
			t.Fatalf("Identifier=%q, want %q", k.Identifier, want)
		}
		keys, _, err := e.keys.FindAPIKeys(ctx, latchkey.APIKeyFilter{ID: &k.ID})
		if err != nil || len(keys) != 1 {
			t.Fatalf("keys=%v err=%v", keys, err)
		} else if keys[0].Identifier != want {
			t.Fatalf("found Identifier=%q, want %q", keys[0].Identifier, want)
		}
		rows := latchkeytest.MustQueryAll(t, db, `SELECT identifier FROM api_keys WHERE id = ?`, k.ID)
		if got := rows[0]["identifier"]; got != want {
			t.Fatalf("stored %q, want %q", got, want)
		}

		// A key from before identifiers were stored has none.
		latchkeytest.MustExec(t, db, `UPDATE api_keys SET identifier = NULL WHERE id = ?`, k.ID)
		keys, _, err = e.keys.FindAPIKeys(ctx, latchkey.APIKeyFilter{ID: &k.ID})
		if err != nil || len(keys) != 1 || keys[0].Identifier != "" {
			t.Fatalf("keys=%v err=%v, want one without identifier", keys, err)
		}
		if _, err := e.auth.Authenticate(context.Background(), secret, ""); err != nil {
			t.Fatalf("a key without identifier: %v", err)
		}
	})
}

// An owner cannot have two keys of the same name; other owners can use it,
// and the name is free again once the key is revoked.
func TestAPIKeyService_CreateAPIKey_DuplicateName(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		ctx := e.adminCtx(t)
		sa := latchkeytest.MustCreateServiceAccount(t, db, e.f.Tenant.ID, "agent", latchkey.RoleUser)
		mine, _ := e.mustCreateKey(t, ctx, "ci", "")
		e.mustCreateKey(t, ctx, "ci", sa.ID) // another owner

		before := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys`)
		for _, owner := range []string{"", sa.ID} {
			_, err := e.keys.CreateAPIKey(ctx, &latchkey.APIKey{Name: "ci", UserID: owner})
			if latchkey.ErrorCode(err) != latchkey.ECONFLICT || !strings.Contains(latchkey.ErrorMessage(err), "already has an API key named “ci”") &&
				!strings.Contains(latchkey.ErrorMessage(err), "already have an API key named “ci”") {
				t.Fatalf("owner %q: err=%v, want ECONFLICT naming the key", owner, err)
			}
		}
		if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys`); got != before {
			t.Fatalf("refused, yet keys went from %d to %d", before, got)
		}
		e.mustCreateKey(t, ctx, "CI", "") // names differ in case: allowed

		if err := e.keys.DeleteAPIKey(ctx, mine.ID); err != nil {
			t.Fatal(err)
		}
		e.mustCreateKey(t, ctx, "ci", "")
	})
}

// Concurrent creations of a name end with one key of that name.
func TestAPIKeyService_CreateAPIKey_DuplicateNameConcurrent(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		ctx := e.adminCtx(t)
		const n = 4
		errs := make(chan error, n)
		for range n {
			go func() {
				_, err := e.keys.CreateAPIKey(ctx, &latchkey.APIKey{Name: "race"})
				errs <- err
			}()
		}
		var ok int
		for range n {
			err := <-errs
			switch latchkey.ErrorCode(err) {
			case "":
				ok++
			case latchkey.ECONFLICT:
			default:
				t.Errorf("err=%v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d creations succeeded, want 1", ok)
		}
		if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys WHERE name = 'race'`); got != 1 {
			t.Fatalf("%d keys named race, want 1", got)
		}
	})
}
