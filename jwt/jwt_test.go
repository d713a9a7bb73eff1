package jwt_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/jwt"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func TestMintVerify_RoundTrip(t *testing.T) {
	t.Parallel()
	e := MustOpenEnv(t)
	now := e.Clock.Now()
	in := latchkey.AccessClaims{
		ID:         "jti-42",
		UserID:     "user-7",
		TenantID:   "tenant-9",
		APIKeyID:   "key-3",
		APITokenID: "legacy-5",
		IssuedAt:   now.Add(-30*time.Second + 400*time.Millisecond),
		NotBefore:  now.Add(-30 * time.Second),
		ExpiresAt:  now.Add(5*time.Minute + 700*time.Millisecond),
	}
	tok := MustMint(t, e.TS, in)

	got := MustVerify(t, e.TS, tok, false)
	want := in
	want.IssuedAt = in.IssuedAt.Truncate(time.Second)
	want.ExpiresAt = in.ExpiresAt.Truncate(time.Second)
	if *got != want {
		t.Fatalf("claims = %+v, want %+v", *got, want)
	}
	if got, want := got.ExpiresAt.Location(), time.UTC; got != want {
		t.Errorf("location = %v, want %v", got, want)
	}
	if got, want := TokenKID(t, tok), MustSigningKey(t, e.Store).ID; got != want {
		t.Errorf("kid = %q, want %q", got, want)
	}
}

func TestMintAccessToken_Defaults(t *testing.T) {
	t.Parallel()
	e := MustOpenEnv(t)
	now := e.Clock.Now()
	c := latchkey.AccessClaims{UserID: "user-1", TenantID: "tenant-1"}
	a := MustVerify(t, e.TS, MustMint(t, e.TS, c), false)
	b := MustVerify(t, e.TS, MustMint(t, e.TS, c), false)
	if len(a.ID) != 22 || a.ID == b.ID {
		t.Errorf("jti = %q and %q, want two distinct random ids", a.ID, b.ID)
	}
	if !a.IssuedAt.Equal(now) {
		t.Errorf("iat = %v, want %v", a.IssuedAt, now)
	}
	if got, want := a.ExpiresAt, now.Add(latchkey.DefaultAccessTokenTTL); !got.Equal(want) {
		t.Errorf("exp = %v, want %v", got, want)
	}
	if !a.NotBefore.IsZero() {
		t.Errorf("nbf = %v, want zero", a.NotBefore)
	}
	if a.APIKeyID != "" || a.APITokenID != "" {
		t.Errorf("source ids = %q, %q, want empty", a.APIKeyID, a.APITokenID)
	}
}

func TestMintAccessToken_Invalid(t *testing.T) {
	t.Parallel()
	e := MustOpenEnv(t)
	now := e.Clock.Now()
	for name, c := range map[string]latchkey.AccessClaims{
		"no user":           {TenantID: "t", ExpiresAt: now.Add(time.Minute)},
		"no tenant":         {UserID: "u", ExpiresAt: now.Add(time.Minute)},
		"exp before iat":    {UserID: "u", TenantID: "t", IssuedAt: now, ExpiresAt: now.Add(-time.Second)},
		"exp equals iat":    {UserID: "u", TenantID: "t", IssuedAt: now, ExpiresAt: now},
		"lifetime too long": {UserID: "u", TenantID: "t", IssuedAt: now, ExpiresAt: now.Add(latchkey.DefaultAccessTokenTTL + time.Second)},
	} {
		t.Run(name, func(t *testing.T) {
			tok, err := e.TS.MintAccessToken(context.Background(), c)
			if got, want := latchkey.ErrorCode(err), latchkey.EINVALID; got != want {
				t.Fatalf("code = %q, want %q (token %q)", got, want, tok)
			}
		})
	}
}

func TestVerifyAccessToken_Rejects(t *testing.T) {
	t.Parallel()
	e := MustOpenEnv(t)
	now := e.Clock.Now()
	key := MustSigningKey(t, e.Store)
	ring := Ed25519Signer(key.PrivateKey)
	_, foreignPriv, err := ed25519.GenerateKey(NewRand(99))
	if err != nil {
		t.Fatal(err)
	}
	foreign := Ed25519Signer(foreignPriv.Seed())
	valid := ClaimsAt(now)
	hs256 := func(secret []byte) SignFunc {
		return func(input []byte) []byte {
			m := hmac.New(sha256.New, secret)
			m.Write(input)
			return m.Sum(nil)
		}
	}
	pkix, err := x509.MarshalPKIXPublicKey(ed25519.PublicKey(key.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	hsHeader := map[string]any{"alg": "HS256", "typ": "JWT", "kid": key.ID}

	// The hand-crafted baseline must pass, or the cases below prove nothing.
	baseline := MustCraft(t, Header(key.ID), valid, ring)
	if got := MustVerify(t, e.TS, baseline, false); got.ID != "jti-crafted" || got.UserID != "user-1" {
		t.Fatalf("baseline claims = %+v", got)
	}
	minted := MustMint(t, e.TS, SampleClaims(now))
	parts := strings.Split(minted, ".")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}

	for name, tok := range map[string]string{
		"empty":             "",
		"garbage":           "not a token",
		"one segment":       "eyJhbGciOiJFZERTQSJ9",
		"two segments":      parts[0] + "." + parts[1],
		"four segments":     minted + ".AAAA",
		"dots only":         "..",
		"bad base64":        "eyJ$.eyJ$.AAAA",
		"json garbage":      b64([]byte("{")) + "." + b64([]byte("{")) + ".AAAA",
		"too long":          minted + strings.Repeat("A", jwt.MaxTokenLength),
		"newline in sig":    parts[0] + "." + parts[1] + "." + parts[2][:10] + "\n" + parts[2][10:],
		"padded sig":        minted + "==",
		"space prefix":      " " + minted,
		"alg none":          MustCraft(t, map[string]any{"alg": "none", "typ": "JWT", "kid": key.ID}, valid, nil),
		"alg none with sig": MustCraft(t, map[string]any{"alg": "none", "typ": "JWT", "kid": key.ID}, valid, ring),
		"alg missing":       MustCraft(t, map[string]any{"typ": "JWT", "kid": key.ID}, valid, ring),
		"alg lowercase":     MustCraft(t, map[string]any{"alg": "eddsa", "kid": key.ID}, valid, ring),
		"HS256 raw pubkey":  MustCraft(t, hsHeader, valid, hs256(key.PublicKey)),
		"HS256 PEM pubkey":  MustCraft(t, hsHeader, valid, hs256(pubPEM)),
		"HS256 x pubkey":    MustCraft(t, hsHeader, valid, hs256([]byte(b64(key.PublicKey)))),
		"kid missing":       MustCraft(t, map[string]any{"alg": "EdDSA", "typ": "JWT"}, valid, ring),
		"kid unknown":       MustCraft(t, Header("unknownkid123"), valid, ring),
		"kid number":        MustCraft(t, map[string]any{"alg": "EdDSA", "kid": 7}, valid, ring),
		"kid traversal":     MustCraft(t, Header("../"+key.ID), valid, ring),
		"kid too long":      MustCraft(t, Header(strings.Repeat("k", 65)), valid, ring),
		"crit header":       MustCraft(t, map[string]any{"alg": "EdDSA", "kid": key.ID, "crit": []string{"exp"}, "exp": 1}, valid, ring),
		"foreign key":       MustCraft(t, Header(key.ID), valid, foreign),
		"sig flipped":       parts[0] + "." + parts[1] + "." + flip(parts[2], 5),
		"sig truncated":     parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-4],
		"sig empty":         parts[0] + "." + parts[1] + ".",
		"payload swapped":   parts[0] + "." + MustJSONB64(t, With(valid, "tid", "tenant-2")) + "." + parts[2],
		"header swapped":    MustJSONB64(t, map[string]any{"alg": "EdDSA", "kid": key.ID, "typ": "at+jwt"}) + "." + parts[1] + "." + parts[2],
		"not yet valid":     MustCraft(t, Header(key.ID), With(valid, "nbf", now.Add(time.Minute).Unix()), ring),
		"issued in future":  MustCraft(t, Header(key.ID), With(With(valid, "iat", now.Add(time.Minute).Unix()), "exp", now.Add(5*time.Minute).Unix()), ring),
		"wrong issuer":      MustCraft(t, Header(key.ID), With(valid, "iss", "https://evil.test"), ring),
		"missing issuer":    MustCraft(t, Header(key.ID), With(valid, "iss", nil), ring),
		"wrong audience":    MustCraft(t, Header(key.ID), With(valid, "aud", "other"), ring),
		"other audiences":   MustCraft(t, Header(key.ID), With(valid, "aud", []string{"a", "b"}), ring),
		"missing audience":  MustCraft(t, Header(key.ID), With(valid, "aud", nil), ring),
		"missing sub":       MustCraft(t, Header(key.ID), With(valid, "sub", nil), ring),
		"empty sub":         MustCraft(t, Header(key.ID), With(valid, "sub", ""), ring),
		"missing tid":       MustCraft(t, Header(key.ID), With(valid, "tid", nil), ring),
		"empty tid":         MustCraft(t, Header(key.ID), With(valid, "tid", ""), ring),
		"tid not a string":  MustCraft(t, Header(key.ID), With(valid, "tid", 5), ring),
		"missing jti":       MustCraft(t, Header(key.ID), With(valid, "jti", nil), ring),
		"missing exp":       MustCraft(t, Header(key.ID), With(valid, "exp", nil), ring),
		"exp not a number":  MustCraft(t, Header(key.ID), With(valid, "exp", "tomorrow"), ring),
		"missing iat":       MustCraft(t, Header(key.ID), With(valid, "iat", nil), ring),
		"lifetime too long": MustCraft(t, Header(key.ID), With(valid, "exp", now.Add(24*time.Hour).Unix()), ring),
		"claims not object": MustJSONB64(t, Header(key.ID)) + "." + b64([]byte(`[1,2]`)) + "." + parts[2],
	} {
		t.Run(name, func(t *testing.T) {
			MustReject(t, e.TS, tok, false, jwt.MessageInvalidToken)
			MustReject(t, e.TS, tok, true, jwt.MessageInvalidToken)
		})
	}

	t.Run("expired", func(t *testing.T) {
		tok := MustCraft(t, Header(key.ID), With(With(valid, "iat", now.Add(-20*time.Minute).Unix()), "exp", now.Add(-10*time.Minute).Unix()), ring)
		MustReject(t, e.TS, tok, false, jwt.MessageExpiredToken)
		if got := MustVerify(t, e.TS, tok, true); got.ID != "jti-crafted" {
			t.Fatalf("allowExpired claims = %+v", got)
		}
	})
	t.Run("expired and wrong audience", func(t *testing.T) {
		tok := MustCraft(t, Header(key.ID), With(With(With(valid, "iat", now.Add(-20*time.Minute).Unix()), "exp", now.Add(-10*time.Minute).Unix()), "aud", "other"), ring)
		MustReject(t, e.TS, tok, true, jwt.MessageInvalidToken)
	})
}

func TestVerifyAccessToken_GarbageSkipsStore(t *testing.T) {
	t.Parallel()
	e := MustOpenEnv(t)
	now := e.Clock.Now()
	_, foreignPriv, err := ed25519.GenerateKey(NewRand(99))
	if err != nil {
		t.Fatal(err)
	}
	foreign := Ed25519Signer(foreignPriv.Seed())
	before := e.Store.Finds()
	for _, tok := range []string{
		"", "garbage", "a.b.c", strings.Repeat("A", 10000),
		MustCraft(t, Header("unknown-kid"), With(ClaimsAt(now), "iss", "https://evil.test"), foreign),
		MustCraft(t, Header("unknown-kid"), With(ClaimsAt(now), "aud", "other"), foreign),
		MustCraft(t, Header("unknown-kid"), With(ClaimsAt(now), "tid", nil), foreign),
		MustCraft(t, map[string]any{"alg": "HS256", "kid": "unknown-kid"}, ClaimsAt(now), nil),
		MustCraft(t, map[string]any{"alg": "EdDSA", "kid": "bad kid!"}, ClaimsAt(now), foreign),
	} {
		MustReject(t, e.TS, tok, false, jwt.MessageInvalidToken)
	}
	if got, want := e.Store.Finds(), before; got != want {
		t.Fatalf("FindSigningKeys calls = %d, want %d", got, want)
	}
}

func TestVerifyAccessToken_UnknownKIDReloadIsRateLimited(t *testing.T) {
	t.Parallel()
	e := MustOpenEnv(t)
	_, foreignPriv, err := ed25519.GenerateKey(NewRand(99))
	if err != nil {
		t.Fatal(err)
	}
	tok := MustCraft(t, Header("unknown-kid"), ClaimsAt(e.Clock.Now()), Ed25519Signer(foreignPriv.Seed()))
	before := e.Store.Finds()
	for range 5 {
		MustReject(t, e.TS, tok, false, jwt.MessageInvalidToken)
	}
	if got, want := e.Store.Finds(), before+1; got != want {
		t.Fatalf("FindSigningKeys calls = %d, want %d", got, want)
	}
	e.Clock.Add(jwt.DefaultMinReloadInterval)
	MustReject(t, e.TS, tok, false, jwt.MessageInvalidToken)
	MustReject(t, e.TS, tok, false, jwt.MessageInvalidToken)
	if got, want := e.Store.Finds(), before+2; got != want {
		t.Fatalf("FindSigningKeys calls after a second = %d, want %d", got, want)
	}
}

func TestVerifyAccessToken_Expiry(t *testing.T) {
	t.Parallel()
	e := MustOpenEnv(t)
	tok := MustMint(t, e.TS, SampleClaims(e.Clock.Now()))

	e.Clock.Add(latchkey.DefaultAccessTokenTTL - time.Second)
	MustVerify(t, e.TS, tok, false)

	e.Clock.Add(time.Second + jwt.DefaultLeeway - time.Second) // inside the leeway
	MustVerify(t, e.TS, tok, false)

	e.Clock.Add(2 * time.Second)
	MustReject(t, e.TS, tok, false, jwt.MessageExpiredToken)
	if got, want := MustVerify(t, e.TS, tok, true).ID, "jti-1"; got != want {
		t.Fatalf("allowExpired jti = %q, want %q", got, want)
	}

	// Refreshable until RefreshWindow past expiry, then not at all.
	e.Clock.Add(latchkey.DefaultRefreshTokenTTL - jwt.DefaultLeeway - 2*time.Second)
	MustVerify(t, e.TS, tok, true)
	e.Clock.Add(2 * time.Second)
	MustReject(t, e.TS, tok, true, jwt.MessageExpiredToken)
	MustReject(t, e.TS, tok, false, jwt.MessageExpiredToken)
}

func TestVerifyAccessToken_NotBefore(t *testing.T) {
	t.Parallel()
	e := MustOpenEnv(t)
	c := SampleClaims(e.Clock.Now())
	c.NotBefore = c.IssuedAt.Add(time.Minute)
	tok := MustMint(t, e.TS, c)
	MustReject(t, e.TS, tok, false, jwt.MessageInvalidToken)
	MustReject(t, e.TS, tok, true, jwt.MessageInvalidToken)
	e.Clock.Add(time.Minute - jwt.DefaultLeeway)
	if got := MustVerify(t, e.TS, tok, false).NotBefore; !got.Equal(c.NotBefore) {
		t.Fatalf("nbf = %v, want %v", got, c.NotBefore)
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	t.Run("creates the first key", func(t *testing.T) {
		e := MustOpenEnv(t)
		keys := e.Store.Keys()
		if got, want := len(keys), 1; got != want {
			t.Fatalf("keys = %d, want %d", got, want)
		}
		k := keys[0]
		if k.Algorithm != jwt.Algorithm || len(k.PrivateKey) != ed25519.SeedSize || k.RetiredAt != nil || !k.CreatedAt.Equal(t0) {
			t.Fatalf("key = %s %d-byte seed retired=%v created=%v", k.Algorithm, len(k.PrivateKey), k.RetiredAt, k.CreatedAt)
		}
		if got, want := k.PublicKey, ed25519.NewKeyFromSeed(k.PrivateKey).Public().(ed25519.PublicKey); !bytes.Equal(got, want) {
			t.Fatal("public key does not match the seed")
		}
	})
	t.Run("reuses an unretired key", func(t *testing.T) {
		e := MustOpenEnv(t)
		MustOpen(t, NewTestTokenService(e.Store, e.Clock, 2))
		MustOpen(t, e.TS)
		if got, want := len(e.Store.Keys()), 1; got != want {
			t.Fatalf("keys = %d, want %d", got, want)
		}
	})
	t.Run("replaces retired keys", func(t *testing.T) {
		e := MustOpenEnv(t)
		old := MustSigningKey(t, e.Store)
		if err := e.Store.RetireSigningKey(context.Background(), old.ID, e.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		MustOpen(t, e.TS)
		if got := MustSigningKey(t, e.Store).ID; got == old.ID {
			t.Fatal("no new key")
		}
	})
	t.Run("skips unusable keys", func(t *testing.T) {
		store, clock := &SigningKeyService{}, NewClock()
		for _, k := range []*latchkey.SigningKey{
			{ID: "rsa", Algorithm: "RS256", PrivateKey: make([]byte, 32), CreatedAt: t0},
			{ID: "short", Algorithm: "EdDSA", PrivateKey: make([]byte, 7), CreatedAt: t0},
			{ID: "mismatch", Algorithm: "EdDSA", PrivateKey: make([]byte, 32), PublicKey: make([]byte, 32), CreatedAt: t0},
		} {
			if err := store.CreateSigningKey(context.Background(), k); err != nil {
				t.Fatal(err)
			}
		}
		ts := MustOpen(t, NewTestTokenService(store, clock, 1))
		tok := MustMint(t, ts, SampleClaims(clock.Now()))
		if kid := TokenKID(t, tok); kid == "rsa" || kid == "short" || kid == "mismatch" {
			t.Fatalf("signed with unusable key %q", kid)
		}
		if got, want := len(store.Keys()), 4; got != want {
			t.Fatalf("keys = %d, want %d", got, want)
		}
	})
	t.Run("configuration errors", func(t *testing.T) {
		store := &SigningKeyService{}
		for name, ts := range map[string]*jwt.TokenService{
			"no keys":     jwt.NewTokenService(nil, testIssuer, testAudience),
			"no issuer":   jwt.NewTokenService(store, "", testAudience),
			"no audience": jwt.NewTokenService(store, testIssuer, ""),
			"negative":    {Keys: store, Issuer: testIssuer, Audience: testAudience, Leeway: -time.Second},
		} {
			if err := ts.Open(context.Background()); err == nil {
				t.Errorf("%s: Open succeeded", name)
			}
			MustReject(t, ts, "a.b.c", false, jwt.MessageInvalidToken)
		}
	})
	t.Run("store errors", func(t *testing.T) {
		store, clock := &SigningKeyService{}, NewClock()
		store.SetErr(errStoreDown)
		ts := NewTestTokenService(store, clock, 1)
		if err := ts.Open(context.Background()); err == nil {
			t.Fatal("Open succeeded with the store down")
		}
		_, err := ts.MintAccessToken(context.Background(), SampleClaims(clock.Now()))
		if got, want := latchkey.ErrorCode(err), latchkey.EINTERNAL; got != want {
			t.Fatalf("mint code = %q, want %q", got, want)
		}
		if _, err := ts.JWKS(context.Background()); err == nil {
			t.Fatal("JWKS succeeded with the store down")
		}
		store.SetErr(nil)
		MustVerify(t, ts, MustMint(t, ts, SampleClaims(clock.Now())), false) // recovers lazily
	})
}

func TestRotate(t *testing.T) {
	t.Parallel()
	e := MustOpenEnv(t)
	ctx := context.Background()
	oldKID := MustSigningKey(t, e.Store).ID
	tok1 := MustMint(t, e.TS, SampleClaims(e.Clock.Now()))

	e.Clock.Add(time.Minute)
	newKID, err := e.TS.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if newKID == oldKID {
		t.Fatal("Rotate kept the key")
	}
	if got := e.Store.MustKey(t, oldKID).RetiredAt; got == nil || !got.Equal(e.Clock.Now()) {
		t.Fatalf("old key retired at %v, want %v", got, e.Clock.Now())
	}
	if got := e.Store.MustKey(t, newKID).RetiredAt; got != nil {
		t.Fatalf("new key retired at %v", got)
	}

	MustVerify(t, e.TS, tok1, false)
	tok2 := MustMint(t, e.TS, SampleClaims(e.Clock.Now()))
	if got, want := TokenKID(t, tok2), newKID; got != want {
		t.Fatalf("kid after rotation = %q, want %q", got, want)
	}
	MustVerify(t, e.TS, tok2, false)

	// A second rotation at the same instant still leaves exactly one signer.
	thirdKID, err := e.TS.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := TokenKID(t, MustMint(t, e.TS, SampleClaims(e.Clock.Now()))), thirdKID; got != want {
		t.Fatalf("kid after second rotation = %q, want %q", got, want)
	}
	MustVerify(t, e.TS, tok1, false)
	MustVerify(t, e.TS, tok2, false)
	if got, want := MustSigningKey(t, e.Store).ID, thirdKID; got != want {
		t.Fatalf("unretired key = %q, want %q", got, want)
	}
}

func TestRotate_RetiredKeyStopsSigning(t *testing.T) {
	t.Parallel()
	e := MustOpenEnv(t)
	old := MustSigningKey(t, e.Store)
	if _, err := e.TS.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	sign := Ed25519Signer(old.PrivateKey)

	// A lagging replica may sign with the retired key until it reloads.
	MustVerify(t, e.TS, MustCraft(t, Header(old.ID), ClaimsAt(e.Clock.Now()), sign), false)

	e.Clock.Add(jwt.DefaultReloadInterval + jwt.DefaultLeeway + time.Second)
	late := MustCraft(t, Header(old.ID), ClaimsAt(e.Clock.Now()), sign)
	MustReject(t, e.TS, late, false, jwt.MessageInvalidToken)
}

func TestRotate_RetiredKeyRetention(t *testing.T) {
	t.Parallel()
	e := MustOpenEnv(t)
	tok := MustMint(t, e.TS, SampleClaims(e.Clock.Now()))
	if _, err := e.TS.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Past expiry, but within the refresh window: refreshable.
	e.Clock.Add(latchkey.DefaultRefreshTokenTTL)
	MustVerify(t, e.TS, tok, true)
	MustMint(t, e.TS, SampleClaims(e.Clock.Now())) // reloads the ring

	// Past the refresh window: the key is gone, whatever the token says.
	e.Clock.Add(latchkey.DefaultAccessTokenTTL + jwt.DefaultReloadInterval + jwt.DefaultLeeway + time.Second)
	MustMint(t, e.TS, SampleClaims(e.Clock.Now()))
	MustReject(t, e.TS, tok, true, jwt.MessageInvalidToken)
}

func TestAutoRotate(t *testing.T) {
	t.Parallel()
	store, clock := &SigningKeyService{}, NewClock()
	newTS := func(seed byte) *jwt.TokenService {
		ts := NewTestTokenService(store, clock, seed)
		ts.RotateAfter = time.Hour
		return MustOpen(t, ts)
	}
	a, b := newTS(1), newTS(2)
	kid1 := TokenKID(t, MustMint(t, a, SampleClaims(clock.Now())))
	old := MustMint(t, b, SampleClaims(clock.Now()))

	clock.Add(59 * time.Minute)
	if got := TokenKID(t, MustMint(t, a, SampleClaims(clock.Now()))); got != kid1 {
		t.Fatalf("rotated early: kid %q, want %q", got, kid1)
	}

	clock.Add(2 * time.Minute)
	kid2 := TokenKID(t, MustMint(t, a, SampleClaims(clock.Now())))
	if kid2 == kid1 {
		t.Fatal("did not rotate after RotateAfter")
	}
	if store.MustKey(t, kid1).RetiredAt == nil {
		t.Fatal("old key not retired")
	}
	// The other replica adopts the new key instead of rotating again.
	if got := TokenKID(t, MustMint(t, b, SampleClaims(clock.Now()))); got != kid2 {
		t.Fatalf("replica b signs with %q, want %q", got, kid2)
	}
	if got, want := len(store.Keys()), 2; got != want {
		t.Fatalf("keys = %d, want %d", got, want)
	}
	MustVerify(t, a, old, true)
}

func TestMultiReplica(t *testing.T) {
	t.Parallel()
	store, clock := &SigningKeyService{}, NewClock()
	s1 := MustOpen(t, NewTestTokenService(store, clock, 1))
	s2 := MustOpen(t, NewTestTokenService(store, clock, 2))
	if got, want := len(store.Keys()), 1; got != want {
		t.Fatalf("keys = %d, want %d", got, want)
	}
	tok1 := MustMint(t, s1, SampleClaims(clock.Now()))
	MustVerify(t, s2, tok1, false)
	MustVerify(t, s1, MustMint(t, s2, SampleClaims(clock.Now())), false)

	newKID, err := s1.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tok2 := MustMint(t, s1, SampleClaims(clock.Now()))
	if got := TokenKID(t, tok2); got != newKID {
		t.Fatalf("s1 kid = %q, want %q", got, newKID)
	}
	MustVerify(t, s2, tok2, false) // unknown kid: s2 reloads
	MustVerify(t, s2, tok1, false)

	// s2 has the new key now; a fresh replica never saw the old one signing.
	s3 := NewTestTokenService(store, clock, 3)
	MustVerify(t, s3, tok1, false)
	MustVerify(t, s3, tok2, false)
	if got := TokenKID(t, MustMint(t, s3, SampleClaims(clock.Now()))); got != newKID {
		t.Fatalf("s3 kid = %q, want %q", got, newKID)
	}
	if got := TokenKID(t, MustMint(t, s2, SampleClaims(clock.Now()))); got != newKID {
		t.Fatalf("s2 kid = %q, want %q", got, newKID)
	}
}

func TestMultiReplica_LaggingReplicaCatchesUp(t *testing.T) {
	t.Parallel()
	store, clock := &SigningKeyService{}, NewClock()
	s1 := MustOpen(t, NewTestTokenService(store, clock, 1))
	s2 := MustOpen(t, NewTestTokenService(store, clock, 2))
	oldKID := MustSigningKey(t, store).ID
	newKID, err := s1.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// s2 has not reloaded: it still signs with the retired key, and s1
	// accepts that.
	lag := MustMint(t, s2, SampleClaims(clock.Now()))
	if got := TokenKID(t, lag); got != oldKID {
		t.Fatalf("s2 kid before reload = %q, want %q", got, oldKID)
	}
	MustVerify(t, s1, lag, false)

	clock.Add(jwt.DefaultReloadInterval)
	tok := MustMint(t, s2, SampleClaims(clock.Now()))
	if got := TokenKID(t, tok); got != newKID {
		t.Fatalf("s2 kid after reload = %q, want %q", got, newKID)
	}
	MustVerify(t, s1, tok, false)
	MustVerify(t, s1, lag, false)
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	e := MustOpenEnv(t)
	ctx := context.Background()
	tok := MustMint(t, e.TS, SampleClaims(e.Clock.Now()))

	raw, err := e.TS.JWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	MustGolden(t, "jwks.golden", raw)

	var plain struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(raw, &plain); err != nil {
		t.Fatal(err)
	}
	if got, want := len(plain.Keys), 1; got != want {
		t.Fatalf("keys = %d, want %d", got, want)
	}
	k := plain.Keys[0]
	for field, want := range map[string]string{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": TokenKID(t, tok)} {
		if got := k[field]; got != want {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	if _, ok := k["d"]; ok {
		t.Fatal("JWKS leaks the private key")
	}
	MustVerifyWithJWKS(t, raw, tok)

	// After rotation both keys are published, newest first, until the old
	// key's last token has expired.
	e.Clock.Add(time.Minute)
	newKID, err := e.TS.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok2 := MustMint(t, e.TS, SampleClaims(e.Clock.Now()))
	if raw, err = e.TS.JWKS(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := JWKSKids(t, raw), []string{newKID, TokenKID(t, tok)}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("kids = %v, want %v", got, want)
	}
	MustVerifyWithJWKS(t, raw, tok)
	MustVerifyWithJWKS(t, raw, tok2)

	e.Clock.Add(jwt.DefaultReloadInterval + latchkey.DefaultAccessTokenTTL + jwt.DefaultLeeway)
	if raw, err = e.TS.JWKS(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := JWKSKids(t, raw), []string{newKID}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("kids after expiry = %v, want %v", got, want)
	}
}

// testJWK is a JWK as RFC 7517 and 8037 define it, parsed here without the
// package's own types, so that the tests check the published document.
type testJWK struct {
	Use, Kty, Kid, Crv, Alg, X string
}

func parseJWKS(tb testing.TB, raw []byte) []testJWK {
	tb.Helper()
	var set struct{ Keys []testJWK }
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&set); err != nil {
		tb.Fatal(err)
	}
	return set.Keys
}

// JWKSKids parses a JWKS and returns its key ids in order.
func JWKSKids(tb testing.TB, raw []byte) []string {
	tb.Helper()
	var kids []string
	for _, k := range parseJWKS(tb, raw) {
		kids = append(kids, k.Kid)
	}
	return kids
}

// MustVerifyWithJWKS verifies tok as RFC 7515 says, with crypto/ed25519
// and the key of the JWKS it names, and checks the payload.
func MustVerifyWithJWKS(tb testing.TB, raw []byte, tok string) {
	tb.Helper()
	var key *testJWK
	kid := TokenKID(tb, tok)
	for _, k := range parseJWKS(tb, raw) {
		if k.Kid == kid {
			if key != nil {
				tb.Fatal("JWKS has two keys for the token's kid")
			}
			key = &k
		}
	}
	if key == nil {
		tb.Fatal("JWKS has no key for the token's kid")
	}
	pub, err := base64.RawURLEncoding.DecodeString(key.X)
	if err != nil || len(pub) != ed25519.PublicKeySize || key.Kty != "OKP" || key.Crv != "Ed25519" || key.Alg != "EdDSA" || key.Use != "sig" {
		tb.Fatalf("key %+v is not an Ed25519 signing key", key)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		tb.Fatalf("token has %d parts", len(parts))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !ed25519.Verify(ed25519.PublicKey(pub), []byte(parts[0]+"."+parts[1]), sig) {
		tb.Fatal("the signature does not verify with the published key")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatal(err)
	}
	var claims jwt.Claims
	if err := json.Unmarshal(payload, &claims); err != nil {
		tb.Fatal(err)
	}
	if claims.Subject != "user-1" || claims.TenantID != "tenant-1" || claims.Issuer != testIssuer {
		tb.Fatalf("payload = %s", payload)
	}
}

// MustGolden compares got with testdata/name, rewriting it with -update.
func MustGolden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		tb.Fatalf("%s mismatch:\n got %s\nwant %s", path, got, want)
	}
}

func TestConcurrentMintVerifyRotate(t *testing.T) {
	t.Parallel()
	store, clock := &SigningKeyService{}, NewClock()
	s1 := MustOpen(t, NewTestTokenService(store, clock, 1))
	s2 := MustOpen(t, NewTestTokenService(store, clock, 2))
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 4 {
		wg.Go(func() {
			mint, verify := s1, s2
			if i%2 == 1 {
				mint, verify = s2, s1
			}
			for range 50 {
				tok, err := mint.MintAccessToken(ctx, SampleClaims(clock.Now()))
				if err != nil {
					errs <- err
					return
				}
				if _, err := verify.VerifyAccessToken(ctx, tok, false); err != nil {
					// A kid unknown to the verifier is found by the
					// rate-limited reload at most once per second.
					clock.Add(jwt.DefaultMinReloadInterval)
					if _, err := verify.VerifyAccessToken(ctx, tok, false); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if _, err := s1.Rotate(ctx); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkMint(b *testing.B) {
	ts := jwt.NewTokenService(&SigningKeyService{}, testIssuer, testAudience)
	MustOpen(b, ts)
	ctx := context.Background()
	c := latchkey.AccessClaims{UserID: "user-1", TenantID: "tenant-1", APIKeyID: "key-1"}
	for b.Loop() {
		if _, err := ts.MintAccessToken(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	ts := jwt.NewTokenService(&SigningKeyService{}, testIssuer, testAudience)
	ts.VerifyCacheSize = -1 // the full check every time; see BenchmarkVerifyCached
	MustOpen(b, ts)
	ctx := context.Background()
	tok := MustMint(b, ts, latchkey.AccessClaims{UserID: "user-1", TenantID: "tenant-1", APIKeyID: "key-1"})
	for b.Loop() {
		if _, err := ts.VerifyAccessToken(ctx, tok, false); err != nil {
			b.Fatal(err)
		}
	}
}
