package sqldb_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// mustRotate rolls key id with a grace period and returns the rotation and
// the new key's text.
func mustRotate(tb testing.TB, keys *sqldb.APIKeyService, ctx context.Context, id string, grace time.Duration) (*latchkey.APIKeyRotation, string) {
	tb.Helper()
	r := &latchkey.APIKeyRotation{OldKeyID: id, OldKeyExpiresIn: grace}
	secret, err := keys.RotateAPIKey(ctx, r)
	if err != nil {
		tb.Fatalf("rotate api key: %v", err)
	}
	return r, secret
}

// findKey returns key id as the caller in ctx sees it.
func findKey(tb testing.TB, keys *sqldb.APIKeyService, ctx context.Context, id string) *latchkey.APIKey {
	tb.Helper()
	found, n, err := keys.FindAPIKeys(ctx, latchkey.APIKeyFilter{ID: &id})
	if err != nil || n != 1 || len(found) != 1 {
		tb.Fatalf("find key %s: n=%d err=%v", id, n, err)
	}
	return found[0]
}

// A roll with a grace period: both keys work until it ends, then only the
// new one, which has the old one's owner, name and default tenant.
func TestAPIKeyService_RotateAPIKey_GracePeriod(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		adminCtx := e.adminCtx(t)
		sa := latchkeytest.MustCreateServiceAccount(t, db, e.f.Tenant.ID, "agent", latchkey.RoleUser)
		old, oldSecret := e.mustCreateKey(t, adminCtx, "agent key", sa.ID)
		clock.Add(time.Minute)

		r, secret := mustRotate(t, e.keys, adminCtx, old.ID, time.Hour)
		if prefix, err := latchkey.ParseSecret(secret); err != nil || prefix != latchkey.PrefixServiceKey {
			t.Fatalf("prefix=%q err=%v, want %s", prefix, err, latchkey.PrefixServiceKey)
		}
		k := r.NewKey
		if k == nil || k.ID == "" || k.ID == old.ID {
			t.Fatalf("new key %+v", k)
		}
		if k.Name != "agent key" || k.UserID != sa.ID || k.DefaultTenantID != e.f.Tenant.ID ||
			k.CreatedByUserID != e.f.Admin.ID || !k.CreatedAt.Equal(clock.Now()) || k.ExpiresAt != nil {
			t.Errorf("new key %+v", k)
		}
		if want := clock.Now().Add(time.Hour); !r.OldKeyExpiresAt.Equal(want) {
			t.Errorf("OldKeyExpiresAt=%v, want %v", r.OldKeyExpiresAt, want)
		}
		if got := findKey(t, e.keys, adminCtx, old.ID); got.ExpiresAt == nil || !got.ExpiresAt.Equal(r.OldKeyExpiresAt) {
			t.Errorf("stored old expiry %v, want %v", got.ExpiresAt, r.OldKeyExpiresAt)
		}
		if got := findKey(t, e.keys, adminCtx, k.ID); got.Name != k.Name || got.UserID != k.UserID || got.ExpiresAt != nil {
			t.Errorf("stored new key %+v", got)
		}

		// The overlap: both work.
		clock.Add(time.Hour - time.Second)
		e.mustAuthenticate(t, oldSecret, "")
		if a, err := e.auth.Authenticate(context.Background(), secret, ""); err != nil || a.APIKeyID != k.ID || a.User.ID != sa.ID {
			t.Fatalf("new key: auth=%+v err=%v", a, err)
		}
		// Then only the new one.
		clock.Add(time.Second)
		_, err := e.auth.Authenticate(context.Background(), oldSecret, "")
		expectCode(t, err, latchkey.EUNAUTHENTICATED, "expired")
		e.mustAuthenticate(t, secret, "")

		// An expired key cannot be rolled again; the new one can.
		_, err = e.keys.RotateAPIKey(adminCtx, &latchkey.APIKeyRotation{OldKeyID: old.ID})
		expectCode(t, err, latchkey.EINVALID, "already expired")
		mustRotate(t, e.keys, adminCtx, k.ID, 0)
	})
}

// A grace period of 0 ends the old key at once, even on a warm cache, and
// also the access tokens minted from it.
func TestAPIKeyService_RotateAPIKey_NowWithCache(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		e, c := newCachedEnv(t, db, clock)
		adminCtx := mustWarm(t, e, c, e.f.AdminKey, "")
		old, oldSecret := e.mustCreateKey(t, adminCtx, "laptop", "")
		at := e.mustSwitchTenant(t, mustWarm(t, e, c, oldSecret, ""), "")
		mustWarm(t, e, c, at.AccessToken, "")

		r, secret := mustRotate(t, e.keys, adminCtx, old.ID, 0)
		if !r.OldKeyExpiresAt.Equal(clock.Now()) {
			t.Errorf("OldKeyExpiresAt=%v, want now (%v)", r.OldKeyExpiresAt, clock.Now())
		}
		mustReject(t, e, oldSecret, "", "expired")
		mustReject(t, e, at.AccessToken, "", "")
		mustWarm(t, e, c, secret, "")
		mustWarm(t, e, c, e.f.AdminKey, "")
	})
}

// A grace period with the cache warm: the cached old key learns its new
// expiry, and is refused when it comes, without another event.
func TestAPIKeyService_RotateAPIKey_GraceWithCache(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		e, c := newCachedEnv(t, db, clock)
		adminCtx := mustWarm(t, e, c, e.f.AdminKey, "")
		old, oldSecret := e.mustCreateKey(t, adminCtx, "laptop", "")
		mustWarm(t, e, c, oldSecret, "")

		mustRotate(t, e.keys, adminCtx, old.ID, 10*time.Minute)
		mustWarm(t, e, c, oldSecret, "")
		clock.Add(10 * time.Minute)
		mustReject(t, e, oldSecret, "", "expired")
	})
}

// Rolling never lengthens a key's life, and the new key takes the expiry
// asked for (which must be in the future).
func TestAPIKeyService_RotateAPIKey_Expiry(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		ctx := e.adminCtx(t)
		soon := clock.Now().Add(10 * time.Minute)
		old := &latchkey.APIKey{Name: "short", ExpiresAt: &soon}
		if _, err := e.keys.CreateAPIKey(ctx, old); err != nil {
			t.Fatal(err)
		}

		past := clock.Now().Add(-time.Second)
		_, err := e.keys.RotateAPIKey(ctx, &latchkey.APIKeyRotation{OldKeyID: old.ID, OldKeyExpiresIn: time.Hour, ExpiresAt: &past})
		expectCode(t, err, latchkey.EINVALID, "future")
		if got := findKey(t, e.keys, ctx, old.ID); !got.ExpiresAt.Equal(soon) {
			t.Errorf("a refused roll changed the old expiry to %v", got.ExpiresAt)
		}

		later := clock.Now().Add(90 * 24 * time.Hour)
		r := &latchkey.APIKeyRotation{OldKeyID: old.ID, OldKeyExpiresIn: time.Hour, ExpiresAt: &later}
		if _, err := e.keys.RotateAPIKey(ctx, r); err != nil {
			t.Fatal(err)
		}
		if !r.OldKeyExpiresAt.Equal(soon) {
			t.Errorf("OldKeyExpiresAt=%v, want the earlier %v", r.OldKeyExpiresAt, soon)
		}
		if got := findKey(t, e.keys, ctx, old.ID); !got.ExpiresAt.Equal(soon) {
			t.Errorf("old key now expires %v, want %v", got.ExpiresAt, soon)
		}
		if got := findKey(t, e.keys, ctx, r.NewKey.ID); got.ExpiresAt == nil || !got.ExpiresAt.Equal(later) {
			t.Errorf("new key expires %v, want %v", got.ExpiresAt, later)
		}
	})
}

// Bad requests change nothing and say what is wrong.
func TestAPIKeyService_RotateAPIKey_Invalid(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		ctx := e.adminCtx(t)
		k, _ := e.mustCreateKey(t, ctx, "k", "")
		gone, _ := e.mustCreateKey(t, ctx, "gone", "")
		if err := e.keys.DeleteAPIKey(ctx, gone.ID); err != nil {
			t.Fatal(err)
		}
		before := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys`)
		for _, tt := range []struct {
			name  string
			id    string
			grace time.Duration
			code  latchkey.Code
			msg   string
		}{
			{"negative grace", k.ID, -time.Second, latchkey.EINVALID, "cannot be negative"},
			{"grace over 30 days", k.ID, latchkey.MaxAPIKeyGracePeriod + time.Second, latchkey.EINVALID, "at most 2592000 seconds"},
			{"revoked key", gone.ID, 0, latchkey.ENOTFOUND, "API key not found."},
			{"unknown key", "00000000-0000-4000-8000-000000000000", 0, latchkey.ENOTFOUND, "API key not found."},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := &latchkey.APIKeyRotation{OldKeyID: tt.id, OldKeyExpiresIn: tt.grace}
				secret, err := e.keys.RotateAPIKey(ctx, r)
				expectCode(t, err, tt.code, tt.msg)
				if secret != "" || r.NewKey != nil {
					t.Errorf("secret=%q new key=%+v returned with an error", secret, r.NewKey)
				}
			})
		}
		if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys`); got != before {
			t.Errorf("%d keys, want %d", got, before)
		}
		if got := findKey(t, e.keys, ctx, k.ID); got.ExpiresAt != nil {
			t.Errorf("a refused roll set an expiry: %v", got.ExpiresAt)
		}
		// The longest grace period is allowed.
		mustRotate(t, e.keys, ctx, k.ID, latchkey.MaxAPIKeyGracePeriod)
	})
}

// Who may roll a service account's key: who may both revoke it and create
// one for it, that is, a human TENANT_ADMIN of its tenant.
func TestAPIKeyService_RotateAPIKey_ServiceAccountKeyAuthorization(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		keys := sqldb.NewAPIKeyService(db)
		want := map[string]latchkey.Code{
			cAdmin: "", cUserToken: "", cUser: latchkey.ENOTFOUND, cReadOnly: latchkey.ENOTFOUND,
			cSA: latchkey.EFORBIDDEN, cSAAdmin: latchkey.EFORBIDDEN, cTenantToken: latchkey.EFORBIDDEN,
			cRunnerToken: latchkey.EFORBIDDEN, cAnonymous: latchkey.EUNAUTHENTICATED, cOtherTenant: latchkey.ENOTFOUND,
		}
		w.eachCaller(t, want, func(t *testing.T, name string, ctx context.Context) error {
			k := &latchkey.APIKey{Name: "agent key " + name, UserID: w.sa.ID} // names are unique per owner
			if _, err := keys.CreateAPIKey(w.ctx(cAdmin), k); err != nil {
				t.Fatal(err)
			}
			before := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys`)
			r := &latchkey.APIKeyRotation{OldKeyID: k.ID, OldKeyExpiresIn: time.Hour}
			_, err := keys.RotateAPIKey(ctx, r)
			after := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys`)
			if err == nil && (after != before+1 || r.NewKey.UserID != w.sa.ID) {
				t.Errorf("%d new keys, new key %+v", after-before, r.NewKey)
			} else if err != nil && after != before {
				t.Errorf("a refused roll made %d keys", after-before)
			}
			return err
		})
	})
}

// Who may roll a human's key: its owner, whatever the role, with an
// unscoped credential; nobody else.
func TestAPIKeyService_RotateAPIKey_HumanKeyAuthorization(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		keys := sqldb.NewAPIKeyService(db)
		for _, tt := range []struct {
			name  string
			owner string
			by    string
			code  latchkey.Code
		}{
			{"user rolls own key", cUser, cUser, ""},
			{"read-only user rolls own key", cReadOnly, cReadOnly, ""},
			{"admin rolls own key", cAdmin, cAdmin, ""},
			{"admin rolls a user's key", cUser, cAdmin, latchkey.ENOTFOUND},
			{"user rolls the admin's key", cAdmin, cUser, latchkey.ENOTFOUND},
			{"other tenant's admin rolls the admin's key", cAdmin, cOtherTenant, latchkey.ENOTFOUND},
		} {
			t.Run(tt.name, func(t *testing.T) {
				k := &latchkey.APIKey{Name: "mine " + tt.name} // names are unique per owner
				if _, err := keys.CreateAPIKey(w.ctx(tt.owner), k); err != nil {
					t.Fatal(err)
				}
				r := &latchkey.APIKeyRotation{OldKeyID: k.ID}
				_, err := keys.RotateAPIKey(w.ctx(tt.by), r)
				wantErr(t, err, tt.code)
				if err == nil && (r.NewKey.UserID != k.UserID || r.NewKey.CreatedByUserID != k.UserID) {
					t.Errorf("new key %+v for old %+v", r.NewKey, k)
				}
			})
		}

		// A key whose owner left its default tenant cannot be rolled: the
		// new key could not act there.
		k := &latchkey.APIKey{Name: "mine, left"}
		if _, err := keys.CreateAPIKey(w.ctx(cUser), k); err != nil {
			t.Fatal(err)
		}
		latchkeytest.MustExec(t, db, `DELETE FROM memberships WHERE user_id = ? AND tenant_id = ?`, w.user.ID, w.a.ID)
		_, err := keys.RotateAPIKey(w.ctx(cUser), &latchkey.APIKeyRotation{OldKeyID: k.ID})
		wantErr(t, err, latchkey.EFORBIDDEN)
	})
}

// A roll is one audit event naming both keys, and no secret; a refused or
// failed roll writes none and changes nothing.
func TestAPIKeyService_RotateAPIKey_Audit(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		clock.Add(time.Minute)
		now := clock.Now()
		keys := sqldb.NewAPIKeyService(db)
		admin := withClient(w.ctx(cAdmin))
		old := &latchkey.APIKey{Name: "agent key", UserID: w.sa.ID}
		if _, err := keys.CreateAPIKey(admin, old); err != nil {
			t.Fatal(err)
		}
		next := now.Add(48 * time.Hour)
		r := &latchkey.APIKeyRotation{OldKeyID: old.ID, OldKeyExpiresIn: time.Hour, ExpiresAt: &next}
		var secret string
		e := mustOneNewEvent(t, db, func() error {
			var err error
			secret, err = keys.RotateAPIKey(admin, r)
			return err
		})
		checkEvent(t, e, w.a.ID, w.admin, latchkey.CredentialAPIKey, latchkey.AuditAPIKeyRotate, latchkey.AuditTargetAPIKey, old.ID, testClient, now)
		if got, want := e.Details, map[string]string{
			"name": "agent key", "user_id": w.sa.ID, "new_key_id": r.NewKey.ID,
			"old_key_expires_at": now.Add(time.Hour).Format(time.RFC3339), "expires_at": next.Format(time.RFC3339),
		}; !equalMaps(got, want) {
			t.Errorf("details=%v, want %v", got, want)
		}
		for _, row := range auditRows(t, db) {
			for col, v := range row {
				if strings.Contains(v, secret) || strings.Contains(v, secret[4:]) {
					t.Errorf("audit event %s: %s holds the new key", row["id"], col)
				}
			}
		}

		// Refused: nothing written.
		before := len(auditRows(t, db))
		_, err := keys.RotateAPIKey(withClient(w.ctx(cUser)), &latchkey.APIKeyRotation{OldKeyID: r.NewKey.ID})
		wantErr(t, err, latchkey.ENOTFOUND)
		if got := len(auditRows(t, db)); got != before {
			t.Fatalf("a refused roll wrote %d audit events", got-before)
		}

		// A failed audit write undoes the roll: no new key, old expiry kept.
		keysBefore := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys`)
		failAuditAction(t, db, latchkey.AuditAPIKeyRotate)
		if _, err := keys.RotateAPIKey(admin, &latchkey.APIKeyRotation{OldKeyID: r.NewKey.ID}); err == nil {
			t.Fatal("rolled despite the trigger")
		}
		if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys`); got != keysBefore {
			t.Errorf("%d keys after a failed roll, want %d", got, keysBefore)
		}
		if got := findKey(t, keys, admin, r.NewKey.ID); got.ExpiresAt == nil || !got.ExpiresAt.Equal(next) {
			t.Errorf("a failed roll left expiry %v, want %v", got.ExpiresAt, next)
		}
	})
}

// Rolling keeps the name although the old key lives on for its grace
// period; a key of that name cannot be created meanwhile, but can once
// the old key has expired (expired keys do not hold on to their names).
func TestAPIKeyService_RotateAPIKey_KeepsUniqueNames(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		ctx := e.adminCtx(t)
		old, _ := e.mustCreateKey(t, ctx, "deploy", "")
		r, _ := mustRotate(t, e.keys, ctx, old.ID, time.Hour)
		if r.NewKey.Name != "deploy" {
			t.Fatalf("new key named %q", r.NewKey.Name)
		}
		_, err := e.keys.CreateAPIKey(ctx, &latchkey.APIKey{Name: "deploy"})
		expectCode(t, err, latchkey.ECONFLICT, "already have an API key named")
		// Rolling the new key during the old one's grace period works too.
		r2, _ := mustRotate(t, e.keys, ctx, r.NewKey.ID, time.Hour)
		clock.Add(time.Hour)
		// Both predecessors have expired; the newest still holds the name.
		_, err = e.keys.CreateAPIKey(ctx, &latchkey.APIKey{Name: "deploy"})
		expectCode(t, err, latchkey.ECONFLICT, "already have an API key named")
		if err := e.keys.DeleteAPIKey(ctx, r2.NewKey.ID); err != nil {
			t.Fatal(err)
		}
		e.mustCreateKey(t, ctx, "deploy", "")
	})
}
