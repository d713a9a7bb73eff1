package sqldb_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

func mustNewSigningKey(tb testing.TB, db *sqldb.DB) *latchkey.SigningKey {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(db.Rand)
	if err != nil {
		tb.Fatal(err)
	}
	return &latchkey.SigningKey{PrivateKey: priv.Seed(), PublicKey: pub}
}

func TestSigningKeyService(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		ctx := context.Background()
		s := sqldb.NewSigningKeyService(db)
		if keys, err := s.FindSigningKeys(ctx, time.Time{}); err != nil || len(keys) != 0 {
			t.Fatalf("keys=%d err=%v on an empty database", len(keys), err)
		}
		k1 := mustNewSigningKey(t, db)
		if err := s.CreateSigningKey(ctx, k1); err != nil {
			t.Fatal(err)
		}
		if k1.ID == "" || k1.Algorithm != "EdDSA" || !k1.CreatedAt.Equal(clock.Now()) {
			t.Fatalf("k1=%+v", k1)
		}
		clock.Add(time.Hour)
		k2 := mustNewSigningKey(t, db)
		k2.ID = "kid-2"
		if err := s.CreateSigningKey(ctx, k2); err != nil {
			t.Fatal(err)
		}

		keys, err := s.FindSigningKeys(ctx, clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 2 || keys[0].ID != "kid-2" || keys[1].ID != k1.ID {
			t.Fatalf("keys=%v, want newest first", keys)
		}
		for i, want := range []*latchkey.SigningKey{k2, k1} {
			got := keys[i]
			if !bytes.Equal(got.PrivateKey, want.PrivateKey) || !bytes.Equal(got.PublicKey, want.PublicKey) ||
				got.Algorithm != "EdDSA" || !got.CreatedAt.Equal(want.CreatedAt) || got.RetiredAt != nil {
				t.Errorf("key %d=%+v, want %+v", i, got, want)
			}
			// The stored seed still signs for the stored public key.
			sig := ed25519.Sign(ed25519.NewKeyFromSeed(got.PrivateKey), []byte("msg"))
			if !ed25519.Verify(got.PublicKey, []byte("msg"), sig) {
				t.Errorf("key %d does not round-trip", i)
			}
		}

		retired := clock.Now().Add(time.Minute)
		if err := s.RetireSigningKey(ctx, k1.ID, retired); err != nil {
			t.Fatal(err)
		}
		// Retiring again keeps the first time.
		if err := s.RetireSigningKey(ctx, k1.ID, retired.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		keys, err = s.FindSigningKeys(ctx, retired)
		if err != nil {
			t.Fatal(err)
		} else if len(keys) != 2 || keys[1].RetiredAt == nil || !keys[1].RetiredAt.Equal(retired) {
			t.Fatalf("since=retired: keys=%+v", keys)
		}
		keys, err = s.FindSigningKeys(ctx, retired.Add(time.Microsecond))
		if err != nil {
			t.Fatal(err)
		} else if len(keys) != 1 || keys[0].ID != "kid-2" {
			t.Fatalf("since after retirement: keys=%+v", keys)
		}

		wantErr(t, s.RetireSigningKey(ctx, "no-such-kid", retired), latchkey.ENOTFOUND)
		dup := mustNewSigningKey(t, db)
		dup.ID = "kid-2"
		wantErr(t, s.CreateSigningKey(ctx, dup), latchkey.ECONFLICT)
		bad := mustNewSigningKey(t, db)
		bad.PublicKey = mustNewSigningKey(t, db).PublicKey
		wantErr(t, s.CreateSigningKey(ctx, bad), latchkey.EINVALID)
		short := mustNewSigningKey(t, db)
		short.PrivateKey = short.PrivateKey[:16]
		wantErr(t, s.CreateSigningKey(ctx, short), latchkey.EINVALID)
		rsa := mustNewSigningKey(t, db)
		rsa.Algorithm = "RS256"
		wantErr(t, s.CreateSigningKey(ctx, rsa), latchkey.EINVALID)
	})
}
