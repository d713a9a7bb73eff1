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

func TestAPIKeyService_FindRevokedAPIKeys(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		keys := sqldb.NewAPIKeyService(db)
		mustKey := func(ctx context.Context, k *latchkey.APIKey) (*latchkey.APIKey, string) {
			t.Helper()
			secret, err := keys.CreateAPIKey(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			return k, secret
		}
		admin := w.ctx(cAdmin)
		userKey, userSecret := mustKey(w.ctx(cUser), &latchkey.APIKey{Name: "laptop"})
		saKey, _ := mustKey(admin, &latchkey.APIKey{Name: "agent key", UserID: w.sa.ID})
		saAdminKey, _ := mustKey(admin, &latchkey.APIKey{Name: "robot key", UserID: w.saAdmin.ID})
		kept, _ := mustKey(admin, &latchkey.APIKey{Name: "kept", UserID: w.sa.ID})
		saBKey, _ := mustKey(w.ctx(cOtherTenant), &latchkey.APIKey{Name: "b key", UserID: w.saB.ID})
		created := clock.Now()

		clock.Add(time.Hour)
		if err := keys.DeleteAPIKey(w.ctx(cUser), userKey.ID); err != nil {
			t.Fatal(err)
		}
		clock.Add(time.Hour)
		if err := keys.DeleteAPIKey(admin, saKey.ID); err != nil {
			t.Fatal(err)
		}
		clock.Add(time.Hour)
		// Deleting a service account revokes its keys: they are kept too.
		if err := sqldb.NewServiceAccountService(db).DeleteServiceAccount(admin, w.saAdmin.ID); err != nil {
			t.Fatal(err)
		}
		if err := keys.DeleteAPIKey(w.ctx(cOtherTenant), saBKey.ID); err != nil {
			t.Fatal(err)
		}
		// A refused revocation keeps no record.
		wantErr(t, keys.DeleteAPIKey(w.ctx(cUser), kept.ID), latchkey.ENOTFOUND)

		// Revoked keys are gone from api_keys, so they cannot authenticate.
		if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM api_keys WHERE id IN (?, ?, ?, ?)`, userKey.ID, saKey.ID, saAdminKey.ID, saBKey.ID); n != 0 {
			t.Fatalf("%d revoked keys still in api_keys", n)
		}
		if _, err := sqldb.NewAuthService(db, newFakeTokenService(clock)).Authenticate(context.Background(), userSecret, ""); latchkey.ErrorCode(err) != latchkey.EUNAUTHENTICATED {
			t.Fatalf("revoked key authenticates: err=%v", err)
		}

		ids := func(ks []*latchkey.RevokedAPIKey) []string {
			var out []string
			for _, k := range ks {
				out = append(out, k.ID)
			}
			return out
		}
		for _, tt := range []struct {
			caller string
			want   []string
			code   latchkey.Code
		}{
			{cAdmin, []string{saAdminKey.ID, saKey.ID}, ""}, // service accounts' keys of A, newest first
			{cUser, []string{userKey.ID}, ""},
			{cReadOnly, nil, ""},
			{cSA, []string{saKey.ID}, ""},
			{cOtherTenant, []string{saBKey.ID}, ""},
			{cTenantToken, nil, latchkey.EFORBIDDEN},
			{cRunnerToken, nil, latchkey.EFORBIDDEN},
			{cAnonymous, nil, latchkey.EUNAUTHENTICATED},
		} {
			got, n, err := keys.FindRevokedAPIKeys(w.ctx(tt.caller), latchkey.RevokedAPIKeyFilter{})
			if latchkey.ErrorCode(err) != tt.code {
				t.Errorf("%s: err=%v, want %q", tt.caller, err, tt.code)
				continue
			}
			if !slices.Equal(ids(got), tt.want) || n != len(tt.want) {
				t.Errorf("%s: got %v (count %d), want %v", tt.caller, ids(got), n, tt.want)
			}
		}

		got, n, err := keys.FindRevokedAPIKeys(admin, latchkey.RevokedAPIKeyFilter{UserID: &w.sa.ID, Limit: 1})
		if err != nil || n != 1 || len(got) != 1 {
			t.Fatalf("filtered: %v (count %d), err=%v", got, n, err)
		}
		want := latchkey.RevokedAPIKey{
			ID: saKey.ID, Name: "agent key", UserID: w.sa.ID, OwnerKind: latchkey.UserKindServiceAccount, OwnerName: "agent",
			DefaultTenantID: w.a.ID, CreatedByUserID: w.admin.ID, CreatedAt: created.UTC(),
			RevokedAt: created.Add(2 * time.Hour).UTC(), RevokedByUserID: w.admin.ID,
		}
		k := *got[0]
		k.CreatedAt, k.RevokedAt = k.CreatedAt.UTC(), k.RevokedAt.UTC()
		if k != want {
			t.Errorf("revoked key\n got %+v\nwant %+v", k, want)
		}
	})
}
