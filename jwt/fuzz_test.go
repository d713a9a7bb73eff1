package jwt_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/jwt"
)

// FuzzVerifyAccessToken feeds mutations of valid tokens to
// VerifyAccessToken. It must never panic, must fail only with
// EUNAUTHENTICATED and a fixed message, and may accept only a token minted
// by the ring, byte for byte, with the claims it was minted with.
func FuzzVerifyAccessToken(f *testing.F) {
	store, clock := &SigningKeyService{}, NewClock()
	ts := MustOpen(f, NewTestTokenService(store, clock, 1))
	key := MustSigningKey(f, store)
	now := clock.Now()

	minted := map[string]latchkey.AccessClaims{}
	for i, c := range []latchkey.AccessClaims{
		SampleClaims(now),
		{ID: "j2", UserID: "u2", TenantID: "t2", APITokenID: "lt", IssuedAt: now, ExpiresAt: now.Add(time.Minute)},
		{ID: "j3", UserID: "u3", TenantID: "t3", IssuedAt: now.Add(-20 * time.Minute), ExpiresAt: now.Add(-15 * time.Minute)}, // expired
		{ID: "j4", UserID: "u4", TenantID: "t4", IssuedAt: now, NotBefore: now.Add(time.Hour), ExpiresAt: now.Add(10 * time.Minute)},
	} {
		tok := MustMint(f, ts, c)
		c.IssuedAt = c.IssuedAt.Truncate(time.Second)
		c.ExpiresAt = c.ExpiresAt.Truncate(time.Second)
		minted[tok] = c
		f.Add(tok, i%2 == 0)
		parts := strings.Split(tok, ".")
		f.Add(parts[0]+"."+parts[1]+".", true)
		f.Add(parts[0]+"."+parts[1]+"."+parts[2][1:], true)
		f.Add(tok+"A", false)
		f.Add(strings.ToUpper(tok), true)
		f.Add(parts[1]+"."+parts[0]+"."+parts[2], true)
	}
	hs := func(input []byte) []byte {
		m := hmac.New(sha256.New, key.PublicKey)
		m.Write(input)
		return m.Sum(nil)
	}
	f.Add(MustCraft(f, map[string]any{"alg": "none", "kid": key.ID}, ClaimsAt(now), nil), false)
	f.Add(MustCraft(f, map[string]any{"alg": "HS256", "kid": key.ID}, ClaimsAt(now), hs), false)
	f.Add(MustCraft(f, Header(key.ID), With(ClaimsAt(now), "exp", 1e300), nil), true)
	f.Add(MustCraft(f, Header(key.ID), With(ClaimsAt(now), "iat", -1e300), nil), true)
	f.Add(MustCraft(f, Header("other"), ClaimsAt(now), nil), true)
	f.Add("", false)
	f.Add("..", true)
	f.Add("e30.e30.", true)

	ctx := context.Background()
	f.Fuzz(func(t *testing.T, tok string, allowExpired bool) {
		got, err := ts.VerifyAccessToken(ctx, tok, allowExpired)
		if err != nil {
			if got != nil {
				t.Fatalf("claims %+v returned with error %v", got, err)
			}
			if code := latchkey.ErrorCode(err); code != latchkey.EUNAUTHENTICATED {
				t.Fatalf("code = %q, want %q", code, latchkey.EUNAUTHENTICATED)
			}
			if msg := latchkey.ErrorMessage(err); msg != jwt.MessageInvalidToken && msg != jwt.MessageExpiredToken {
				t.Fatalf("message = %q", msg)
			}
			return
		}
		want, ok := minted[tok]
		if !ok {
			t.Fatalf("accepted a token the ring did not mint: %q", tok)
		}
		if *got != want {
			t.Fatalf("claims = %+v, want %+v", *got, want)
		}
	})
}
