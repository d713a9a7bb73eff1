package jwt_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/jwt"
)

func TestVerifyCache_RemembersVerifiedTokens(t *testing.T) {
	t.Parallel()
	e := MustOpenEnv(t)
	tok := MustMint(t, e.TS, SampleClaims(e.Clock.Now()))
	first := MustVerify(t, e.TS, tok, false)
	if got, want := e.TS.VerifyCacheLen(), 1; got != want {
		t.Fatalf("cache len = %d, want %d", got, want)
	}
	again := MustVerify(t, e.TS, tok, false)
	if *again != *first {
		t.Fatalf("cached verify = %+v, want %+v", again, first)
	}
	// A token that fails is not remembered.
	bad := tok[:len(tok)-2] + flip(tok[len(tok)-2:])
	MustReject(t, e.TS, bad, false, jwt.MessageInvalidToken)
	if got, want := e.TS.VerifyCacheLen(), 1; got != want {
		t.Fatalf("cache len after a bad token = %d, want %d", got, want)
	}
}

// flip changes the first character of s to another base64url character.
func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

func TestVerifyCache_TimeIsCheckedOnEveryUse(t *testing.T) {
	t.Parallel()
	e := MustOpenEnv(t)
	c := SampleClaims(e.Clock.Now())
	tok := MustMint(t, e.TS, c)
	MustVerify(t, e.TS, tok, false)

	e.Clock.Add(latchkey.DefaultAccessTokenTTL + jwt.DefaultLeeway + time.Second)
	MustReject(t, e.TS, tok, false, jwt.MessageExpiredToken)
	if got := MustVerify(t, e.TS, tok, true).ID; got != c.ID {
		t.Fatalf("refresh verify jti = %q, want %q", got, c.ID)
	}
	MustVerify(t, e.TS, tok, true) // from the cache again
	MustReject(t, e.TS, tok, false, jwt.MessageExpiredToken)
}

func TestVerifyCache_KeyLeavingTheRing(t *testing.T) {
	t.Parallel()
	e := MustOpenEnv(t)
	tok := MustMint(t, e.TS, SampleClaims(e.Clock.Now()))
	MustVerify(t, e.TS, tok, true)
	if _, err := e.TS.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.Clock.Add(latchkey.DefaultRefreshTokenTTL + latchkey.DefaultAccessTokenTTL + jwt.DefaultReloadInterval + jwt.DefaultLeeway + time.Second)
	MustMint(t, e.TS, SampleClaims(e.Clock.Now())) // reloads the ring without the old key
	MustReject(t, e.TS, tok, true, jwt.MessageInvalidToken)
	if got, want := e.TS.VerifyCacheLen(), 0; got != want {
		t.Fatalf("cache len = %d, want %d", got, want)
	}
}

func TestVerifyCache_KeyReplacedUnderTheSameID(t *testing.T) {
	t.Parallel()
	e := MustOpenEnv(t)
	tok := MustMint(t, e.TS, SampleClaims(e.Clock.Now()))
	MustVerify(t, e.TS, tok, false)

	// The store now holds other key material under the same kid (it never
	// does in practice); the token's signature no longer checks out.
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = 42
	e.Store.mu.Lock()
	e.Store.keys[0].PrivateKey = seed
	e.Store.keys[0].PublicKey = ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	e.Store.mu.Unlock()
	e.Clock.Add(jwt.DefaultReloadInterval)
	MustMint(t, e.TS, SampleClaims(e.Clock.Now())) // reloads the ring
	MustReject(t, e.TS, tok, false, jwt.MessageInvalidToken)
}

func TestVerifyCache_Bounded(t *testing.T) {
	t.Parallel()
	e := &Env{Store: &SigningKeyService{}, Clock: NewClock()}
	e.TS = NewTestTokenService(e.Store, e.Clock, 1)
	e.TS.VerifyCacheSize = 3
	MustOpen(t, e.TS)
	var toks []string
	for i := range 10 {
		c := SampleClaims(e.Clock.Now())
		c.ID = fmt.Sprintf("jti-%d", i)
		toks = append(toks, MustMint(t, e.TS, c))
	}
	for round := range 2 {
		for i, tok := range toks {
			if got, want := MustVerify(t, e.TS, tok, false).ID, fmt.Sprintf("jti-%d", i); got != want {
				t.Fatalf("round %d: jti = %q, want %q", round, got, want)
			}
			if n := e.TS.VerifyCacheLen(); n > 3 {
				t.Fatalf("cache len = %d, want at most 3", n)
			}
		}
	}
}

func TestVerifyCache_Disabled(t *testing.T) {
	t.Parallel()
	e := &Env{Store: &SigningKeyService{}, Clock: NewClock()}
	e.TS = NewTestTokenService(e.Store, e.Clock, 1)
	e.TS.VerifyCacheSize = -1
	MustOpen(t, e.TS)
	tok := MustMint(t, e.TS, SampleClaims(e.Clock.Now()))
	MustVerify(t, e.TS, tok, false)
	MustVerify(t, e.TS, tok, false)
	if got := e.TS.VerifyCacheLen(); got != 0 {
		t.Fatalf("cache len = %d, want 0", got)
	}
	if strings.Count(tok, ".") != 2 {
		t.Fatal("not a JWS")
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	ts := jwt.NewTokenService(&SigningKeyService{}, testIssuer, testAudience)
	MustOpen(b, ts)
	ctx := context.Background()
	tok := MustMint(b, ts, latchkey.AccessClaims{UserID: "user-1", TenantID: "tenant-1", APIKeyID: "key-1"})
	for b.Loop() {
		if _, err := ts.VerifyAccessToken(ctx, tok, false); err != nil {
			b.Fatal(err)
		}
	}
}
