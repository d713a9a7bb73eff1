package jwt_test

import (
	"context"
	"testing"

	"github.com/latchkey/latchkey"
)

// The gate holds back only signature checks the cache cannot answer: a
// token verified before passes without it, even while it refuses.
func TestTokenService_Gate(t *testing.T) {
	t.Parallel()
	e := MustOpenEnv(t)
	seen := MustMint(t, e.TS, SampleClaims(e.Clock.Now()))
	MustVerify(t, e.TS, seen, false)

	calls := 0
	e.TS.Gate = func(context.Context) (func(), error) {
		calls++
		return nil, latchkey.Errorf(latchkey.ERATELIMIT, "Too many failed attempts; try again later.")
	}
	MustVerify(t, e.TS, seen, false)
	if calls != 0 {
		t.Fatalf("a token verified before went through the gate (%d calls)", calls)
	}
	c := SampleClaims(e.Clock.Now())
	c.ID = "jti-2"
	fresh := MustMint(t, e.TS, c)
	if _, err := e.TS.VerifyAccessToken(context.Background(), fresh, false); latchkey.ErrorCode(err) != latchkey.ERATELIMIT || calls != 1 {
		t.Fatalf("an unverified token with the gate refusing: err=%v, %d calls", err, calls)
	}
	released := 0
	e.TS.Gate = func(context.Context) (func(), error) { calls++; return func() { released++ }, nil }
	MustVerify(t, e.TS, fresh, false)
	if calls != 2 || released != 1 {
		t.Fatalf("gate calls %d, releases %d", calls, released)
	}
}
