package jwt_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// MustEd25519Key returns a deterministic Ed25519 private key.
func MustEd25519Key(tb testing.TB, seed byte) ed25519.PrivateKey {
	tb.Helper()
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed + byte(i)
	}
	return ed25519.NewKeyFromSeed(s)
}

// verifiesWith reports whether the signature of the compact JWS tok checks
// out with pub.
func verifiesWith(tb testing.TB, tok string, pub ed25519.PublicKey) bool {
	tb.Helper()
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		tb.Fatal(err)
	}
	return ed25519.Verify(pub, []byte(tok[:i]), sig)
}

func TestImportKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := MustOpenEnv(t)
	old := MustSigningKey(t, e.Store)
	oldTok := MustMint(t, e.TS, SampleClaims(e.Clock.Now()))

	priv := MustEd25519Key(t, 7)
	e.Clock.Add(time.Minute)
	kid, err := e.TS.ImportKey(ctx, priv)
	if err != nil {
		t.Fatal(err)
	}
	if kid == old.ID {
		t.Fatal("ImportKey kept the old key id")
	}

	// The imported key signs; the old one is retired but still verifies.
	tok := MustMint(t, e.TS, SampleClaims(e.Clock.Now()))
	if got := TokenKID(t, tok); got != kid {
		t.Fatalf("kid = %q, want the imported %q", got, kid)
	}
	if !verifiesWith(t, tok, priv.Public().(ed25519.PublicKey)) {
		t.Fatal("token not signed with the imported key")
	}
	MustVerify(t, e.TS, tok, false)
	MustVerify(t, e.TS, oldTok, false)
	if got := e.Store.MustKey(t, old.ID).RetiredAt; got == nil || !got.Equal(e.Clock.Now()) {
		t.Fatalf("old key retired at %v, want %v", got, e.Clock.Now())
	}
	stored := e.Store.MustKey(t, kid)
	if got, want := ed25519.PublicKey(stored.PublicKey), priv.Public().(ed25519.PublicKey); !got.Equal(want) || stored.RetiredAt != nil {
		t.Fatalf("stored key: public matches=%v retired=%v", got.Equal(want), stored.RetiredAt)
	}

	// Importing again (a restart with the same file) changes nothing.
	n := len(e.Store.Keys())
	again, err := e.TS.ImportKey(ctx, priv)
	if err != nil {
		t.Fatal(err)
	}
	if again != kid || len(e.Store.Keys()) != n {
		t.Fatalf("second import: kid %q (want %q), %d keys (want %d)", again, kid, len(e.Store.Keys()), n)
	}

	// Another replica on the same store picks the imported key up.
	other := MustOpen(t, NewTestTokenService(e.Store, e.Clock, 9))
	if got := TokenKID(t, MustMint(t, other, SampleClaims(e.Clock.Now()))); got != kid {
		t.Fatalf("replica signs with %q, want %q", got, kid)
	}

	// After a rotation, importing makes the file's key the signer again
	// under a fresh id.
	rotated, err := e.TS.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	back, err := e.TS.ImportKey(ctx, priv)
	if err != nil {
		t.Fatal(err)
	}
	if back == kid || back == rotated {
		t.Fatalf("re-import kid %q, want a new one", back)
	}
	if got := TokenKID(t, MustMint(t, e.TS, SampleClaims(e.Clock.Now()))); got != back {
		t.Fatalf("signs with %q after re-import, want %q", got, back)
	}
	if e.Store.MustKey(t, rotated).RetiredAt == nil {
		t.Fatal("rotated key not retired by the import")
	}
}

func TestImportKey_BeforeOpen(t *testing.T) {
	t.Parallel()
	// On an empty store, importing first means Open creates no random key.
	store, clock := &SigningKeyService{}, NewClock()
	ts := NewTestTokenService(store, clock, 1)
	kid, err := ts.ImportKey(context.Background(), MustEd25519Key(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	MustOpen(t, ts)
	if got := len(store.Keys()); got != 1 {
		t.Fatalf("keys = %d, want 1", got)
	}
	if got := TokenKID(t, MustMint(t, ts, SampleClaims(clock.Now()))); got != kid {
		t.Fatalf("kid = %q, want %q", got, kid)
	}
}

func TestImportKey_Invalid(t *testing.T) {
	t.Parallel()
	e := MustOpenEnv(t)
	good := MustEd25519Key(t, 3)
	bad := append(ed25519.PrivateKey(nil), good...)
	bad[40] ^= 1 // public half no longer matches the seed
	for name, priv := range map[string]ed25519.PrivateKey{
		"nil":      nil,
		"short":    good[:32],
		"mismatch": bad,
		"too long": append(append(ed25519.PrivateKey(nil), good...), 0),
	} {
		if _, err := e.TS.ImportKey(context.Background(), priv); err == nil {
			t.Errorf("%s: ImportKey succeeded", name)
		}
	}
	if got := len(e.Store.Keys()); got != 1 {
		t.Fatalf("keys = %d, want 1 (nothing imported)", got)
	}

	e.Store.SetErr(errStoreDown)
	if _, err := e.TS.ImportKey(context.Background(), good); err == nil {
		t.Fatal("ImportKey succeeded with the store down")
	}
}
