package jwt_test

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/jwt"
)

const (
	testIssuer   = "https://latchkey.test"
	testAudience = "prefect"
)

// t0 is the start time of every test clock.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// Clock is a settable clock for TokenService.Now.
type Clock = latchkeytest.Clock

// NewClock returns a clock stopped at t0.
func NewClock() *Clock { return latchkeytest.NewClockAt(t0) }

// Rand is a deterministic, concurrency-safe random source.
type Rand struct {
	mu sync.Mutex
	r  *rand.ChaCha8
}

// NewRand returns a deterministic reader seeded with seed.
func NewRand(seed byte) *Rand {
	var s [32]byte
	s[0] = seed
	return &Rand{r: rand.NewChaCha8(s)}
}

// Read fills p with pseudo-random bytes.
func (r *Rand) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.r.Read(p)
}

// SigningKeyService is an in-memory latchkey.SigningKeyService shared by
// the replicas of a test. It counts FindSigningKeys calls and can be made
// to fail.
type SigningKeyService struct {
	mu    sync.Mutex
	keys  []*latchkey.SigningKey
	finds int
	err   error
}

var _ latchkey.SigningKeyService = (*SigningKeyService)(nil)

func cloneKey(k *latchkey.SigningKey) *latchkey.SigningKey {
	c := *k
	c.PrivateKey = slices.Clone(k.PrivateKey)
	c.PublicKey = slices.Clone(k.PublicKey)
	if k.RetiredAt != nil {
		at := *k.RetiredAt
		c.RetiredAt = &at
	}
	return &c
}

// FindSigningKeys returns keys not retired before since, newest first.
func (s *SigningKeyService) FindSigningKeys(ctx context.Context, since time.Time) ([]*latchkey.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finds++
	if s.err != nil {
		return nil, s.err
	}
	var out []*latchkey.SigningKey
	for _, k := range s.keys {
		if k.RetiredAt == nil || !k.RetiredAt.Before(since) {
			out = append(out, cloneKey(k))
		}
	}
	slices.SortStableFunc(out, func(a, b *latchkey.SigningKey) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

// CreateSigningKey stores a copy of key.
func (s *SigningKeyService) CreateSigningKey(ctx context.Context, key *latchkey.SigningKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	for _, k := range s.keys {
		if k.ID == key.ID {
			return latchkey.Errorf(latchkey.ECONFLICT, "Signing key exists.")
		}
	}
	s.keys = append(s.keys, cloneKey(key))
	return nil
}

// RetireSigningKey sets the key's RetiredAt if it is not set yet.
func (s *SigningKeyService) RetireSigningKey(ctx context.Context, id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	for _, k := range s.keys {
		if k.ID == id {
			if k.RetiredAt == nil {
				k.RetiredAt = &at
			}
			return nil
		}
	}
	return latchkey.Errorf(latchkey.ENOTFOUND, "Signing key not found.")
}

// Finds returns how many times FindSigningKeys was called.
func (s *SigningKeyService) Finds() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.finds
}

// SetErr makes every method fail with err (nil: succeed again).
func (s *SigningKeyService) SetErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// Keys returns copies of all stored keys, oldest first by insertion.
func (s *SigningKeyService) Keys() []*latchkey.SigningKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*latchkey.SigningKey
	for _, k := range s.keys {
		out = append(out, cloneKey(k))
	}
	return out
}

// MustKey returns the stored key with id.
func (s *SigningKeyService) MustKey(tb testing.TB, id string) *latchkey.SigningKey {
	tb.Helper()
	for _, k := range s.Keys() {
		if k.ID == id {
			return k
		}
	}
	tb.Fatalf("no signing key %q", id)
	return nil
}

// Env is a store, a clock and one TokenService on them.
type Env struct {
	Store *SigningKeyService
	Clock *Clock
	TS    *jwt.TokenService
}

// NewTestTokenService returns an unopened TokenService on store and clock.
func NewTestTokenService(store *SigningKeyService, clock *Clock, seed byte) *jwt.TokenService {
	ts := jwt.NewTokenService(store, testIssuer, testAudience)
	ts.Now = clock.Now
	ts.Rand = NewRand(seed)
	return ts
}

// MustOpen opens ts or fails the test.
func MustOpen(tb testing.TB, ts *jwt.TokenService) *jwt.TokenService {
	tb.Helper()
	if err := ts.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return ts
}

// MustOpenEnv returns an opened TokenService on a new store and clock.
func MustOpenEnv(tb testing.TB) *Env {
	tb.Helper()
	e := &Env{Store: &SigningKeyService{}, Clock: NewClock()}
	e.TS = MustOpen(tb, NewTestTokenService(e.Store, e.Clock, 1))
	return e
}

// SampleClaims returns claims for a user in a tenant issued at now.
func SampleClaims(now time.Time) latchkey.AccessClaims {
	return latchkey.AccessClaims{
		ID:        "jti-1",
		UserID:    "user-1",
		TenantID:  "tenant-1",
		APIKeyID:  "key-1",
		IssuedAt:  now,
		ExpiresAt: now.Add(latchkey.DefaultAccessTokenTTL),
	}
}

// MustMint mints claims or fails the test.
func MustMint(tb testing.TB, ts *jwt.TokenService, c latchkey.AccessClaims) string {
	tb.Helper()
	tok, err := ts.MintAccessToken(context.Background(), c)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// MustVerify verifies tok or fails the test.
func MustVerify(tb testing.TB, ts *jwt.TokenService, tok string, allowExpired bool) *latchkey.AccessClaims {
	tb.Helper()
	c, err := ts.VerifyAccessToken(context.Background(), tok, allowExpired)
	if err != nil {
		tb.Fatalf("verify: %v", err)
	}
	return c
}

// MustReject verifies tok, wants EUNAUTHENTICATED with message msg, and
// checks that the error does not echo the token.
func MustReject(tb testing.TB, ts *jwt.TokenService, tok string, allowExpired bool, msg string) {
	tb.Helper()
	c, err := ts.VerifyAccessToken(context.Background(), tok, allowExpired)
	if err == nil {
		tb.Fatalf("token accepted: %+v", c)
	}
	if c != nil {
		tb.Errorf("claims returned with error: %+v", c)
	}
	if got, want := latchkey.ErrorCode(err), latchkey.EUNAUTHENTICATED; got != want {
		tb.Errorf("code = %q, want %q (%v)", got, want, err)
	}
	if got := latchkey.ErrorMessage(err); got != msg {
		tb.Errorf("message = %q, want %q", got, msg)
	}
	for _, part := range strings.Split(tok, ".") {
		if len(part) >= 8 && strings.Contains(err.Error(), part) {
			tb.Errorf("error %q echoes the token", err)
		}
	}
}

// TokenKID returns the kid header of tok without verifying it.
func TokenKID(tb testing.TB, tok string) string {
	tb.Helper()
	h, _, ok := strings.Cut(tok, ".")
	if !ok {
		tb.Fatal("not a JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		tb.Fatal(err)
	}
	var hdr struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(b, &hdr); err != nil {
		tb.Fatal(err)
	}
	return hdr.KID
}

// b64 is base64url without padding, as JWS uses.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// MustJSONB64 marshals v and base64url-encodes it.
func MustJSONB64(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b64(b)
}

// SignFunc signs a JWS signing input.
type SignFunc func(input []byte) []byte

// Ed25519Signer signs with the seed of a key.
func Ed25519Signer(seed []byte) SignFunc {
	priv := ed25519.NewKeyFromSeed(seed)
	return func(input []byte) []byte { return ed25519.Sign(priv, input) }
}

// MustCraft builds a compact JWS by hand, independently of golang-jwt.
func MustCraft(tb testing.TB, header, claims map[string]any, sign SignFunc) string {
	tb.Helper()
	input := MustJSONB64(tb, header) + "." + MustJSONB64(tb, claims)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + b64(sig)
}

// Header returns an EdDSA header naming kid.
func Header(kid string) map[string]any {
	return map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": kid}
}

// ClaimsAt returns valid raw claims issued at now for ten minutes.
func ClaimsAt(now time.Time) map[string]any {
	return map[string]any{
		"iss": testIssuer,
		"aud": []string{testAudience},
		"sub": "user-1",
		"tid": "tenant-1",
		"jti": "jti-crafted",
		"iat": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(),
	}
}

// With returns a copy of m with key set to v, or removed if v is nil.
func With(m map[string]any, key string, v any) map[string]any {
	c := make(map[string]any, len(m))
	for k, x := range m {
		c[k] = x
	}
	if v == nil {
		delete(c, key)
	} else {
		c[key] = v
	}
	return c
}

// MustSigningKey returns the newest unretired stored key.
func MustSigningKey(tb testing.TB, s *SigningKeyService) *latchkey.SigningKey {
	tb.Helper()
	var best *latchkey.SigningKey
	for _, k := range s.Keys() {
		if k.RetiredAt == nil && (best == nil || cmp.Compare(k.CreatedAt.UnixNano(), best.CreatedAt.UnixNano()) > 0) {
			best = k
		}
	}
	if best == nil {
		tb.Fatal("no unretired signing key")
	}
	return best
}

var errStoreDown = errors.New("store down")
