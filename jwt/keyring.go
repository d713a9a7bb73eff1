package jwt

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/latchkey/latchkey"
)

// keyRing is an immutable snapshot of the signing keys.
type keyRing struct {
	keys     []*ringKey // newest first
	byID     map[string]*ringKey
	signer   *ringKey // newest unretired key with a private key; nil if none
	loadedAt time.Time
}

// ringKey is one usable key of the ring.
type ringKey struct {
	id        string
	pub       ed25519.PublicKey
	priv      ed25519.PrivateKey // nil if the store gave no private key
	createdAt time.Time
	retiredAt time.Time // zero while the key signs
}

// newRingKey checks a stored key and expands its seed.
func newRingKey(k *latchkey.SigningKey) (*ringKey, error) {
	switch {
	case k == nil:
		return nil, errors.New("nil key")
	case !validKID(k.ID):
		return nil, errors.New("malformed key id")
	case k.Algorithm != Algorithm:
		return nil, fmt.Errorf("unsupported algorithm %q", k.Algorithm)
	case len(k.PrivateKey) != 0 && len(k.PrivateKey) != ed25519.SeedSize:
		return nil, errors.New("private key is not an Ed25519 seed")
	case len(k.PrivateKey) == 0 && len(k.PublicKey) != ed25519.PublicKeySize:
		return nil, errors.New("public key is not an Ed25519 key")
	}
	rk := &ringKey{id: k.ID, createdAt: k.CreatedAt}
	if k.RetiredAt != nil {
		rk.retiredAt = *k.RetiredAt
	}
	if len(k.PrivateKey) != 0 {
		rk.priv = ed25519.NewKeyFromSeed(k.PrivateKey)
		rk.pub = rk.priv.Public().(ed25519.PublicKey)
		if len(k.PublicKey) != 0 && !bytes.Equal(rk.pub, k.PublicKey) {
			return nil, errors.New("public key does not match private key")
		}
	} else {
		rk.pub = bytes.Clone(k.PublicKey)
	}
	return rk, nil
}

// load reads the ring from the store and caches it. Callers hold s.mu.
func (s *TokenService) load(ctx context.Context, c *config) (*keyRing, error) {
	now := c.now()
	stored, err := c.keys.FindSigningKeys(ctx, now.Add(-c.retention))
	if err != nil {
		return nil, fmt.Errorf("find signing keys: %w", err)
	}
	r := &keyRing{byID: make(map[string]*ringKey, len(stored)), loadedAt: now}
	for _, k := range stored {
		rk, err := newRingKey(k)
		if err != nil {
			id := ""
			if k != nil {
				id = k.ID
			}
			c.logger.Warn("skipping unusable signing key", "kid", id, "err", err)
			continue
		}
		if r.byID[rk.id] != nil || (!rk.retiredAt.IsZero() && now.After(rk.retiredAt.Add(c.retention))) {
			continue
		}
		r.byID[rk.id] = rk
		r.keys = append(r.keys, rk)
	}
	slices.SortFunc(r.keys, func(a, b *ringKey) int {
		if n := a.createdAt.Compare(b.createdAt); n != 0 {
			return -n
		}
		return -cmp.Compare(a.id, b.id)
	})
	for _, k := range r.keys {
		if k.retiredAt.IsZero() && k.priv != nil {
			r.signer = k
			break
		}
	}
	s.ring.Store(r)
	return r, nil
}

// current returns the cached ring, loading it on first use.
func (s *TokenService) current(ctx context.Context, c *config) (*keyRing, error) {
	if r := s.ring.Load(); r != nil {
		return r, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.ring.Load(); r != nil {
		return r, nil
	}
	return s.load(ctx, c)
}

// ensureSigner loads the ring and creates a key if none can sign. Callers
// hold s.mu.
func (s *TokenService) ensureSigner(ctx context.Context, c *config) (*keyRing, error) {
	r, err := s.load(ctx, c)
	if err != nil {
		return nil, err
	}
	if r.signer != nil {
		return r, nil
	}
	if _, err := s.createKey(ctx, c); err != nil {
		return nil, err
	}
	if r, err = s.load(ctx, c); err != nil {
		return nil, err
	} else if r.signer == nil {
		return nil, errors.New("no signing key after creating one")
	}
	return r, nil
}

// createKey generates and stores a new key. Callers hold s.mu.
func (s *TokenService) createKey(ctx context.Context, c *config) (*latchkey.SigningKey, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(c.rand, seed); err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	kid, err := randomID(c.rand)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	k := &latchkey.SigningKey{
		ID:         kid,
		Algorithm:  Algorithm,
		PrivateKey: seed,
		PublicKey:  ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey),
		CreatedAt:  c.now().UTC(),
	}
	if err := c.keys.CreateSigningKey(ctx, k); err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	c.logger.Info("created signing key", "kid", kid)
	return k, nil
}

// Rotate creates a new signing key and retires every other unretired key;
// they keep verifying the tokens they signed. It returns the new key id.
// It is what `latchkey admin rotate-signing-key` runs.
func (s *TokenService) Rotate(ctx context.Context) (kid string, err error) {
	c, err := s.setup()
	if err != nil {
		return "", fmt.Errorf("rotate signing key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.load(ctx, c)
	if err != nil {
		return "", fmt.Errorf("rotate signing key: %w", err)
	}
	if kid, err = s.rotate(ctx, c, old); err != nil {
		return kid, fmt.Errorf("rotate signing key: %w", err)
	}
	return kid, nil
}

// rotate creates a key, then retires the unretired keys of old, the ring
// loaded before. A key another replica creates meanwhile is not in old, so
// replicas rotating at the same moment never retire each other's new key.
// Callers hold s.mu.
func (s *TokenService) rotate(ctx context.Context, c *config, old *keyRing) (string, error) {
	k, err := s.createKey(ctx, c)
	if err != nil {
		return "", err
	}
	at := c.now().UTC()
	for _, rk := range old.keys {
		if !rk.retiredAt.IsZero() || rk.id == k.ID {
			continue
		}
		if err := c.keys.RetireSigningKey(ctx, rk.id, at); err != nil {
			// The new key is the newest, so it signs anyway.
			_, _ = s.load(ctx, c)
			return k.ID, fmt.Errorf("retire signing key %s: %w", rk.id, err)
		}
		c.logger.Info("retired signing key", "kid", rk.id)
	}
	if _, err := s.load(ctx, c); err != nil {
		return k.ID, err
	}
	return k.ID, nil
}

// autoRotate rotates if the signing key is older than RotateAfter, after
// reloading in case another replica has rotated already. Callers hold s.mu.
func (s *TokenService) autoRotate(ctx context.Context, c *config) error {
	r, err := s.load(ctx, c)
	if err != nil {
		return err
	}
	if r.signer != nil && c.now().Sub(r.signer.createdAt) < c.rotateAfter {
		return nil
	}
	_, err = s.rotate(ctx, c, r)
	return err
}

// signingKey returns the key to sign with, creating the first key,
// reloading a stale ring and rotating an old key as needed. Periodic work
// is skipped, not waited for, while another goroutine holds s.mu.
func (s *TokenService) signingKey(ctx context.Context, c *config) (*ringKey, error) {
	if r := s.ring.Load(); r != nil && r.signer != nil {
		s.maintain(ctx, c, r)
		if r = s.ring.Load(); r.signer != nil {
			return r.signer, nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.ring.Load(); r != nil && r.signer != nil {
		return r.signer, nil
	}
	r, err := s.ensureSigner(ctx, c)
	if err != nil {
		return nil, err
	}
	return r.signer, nil
}

// maintain reloads r if it is stale and rotates its signer if it is due,
// unless another goroutine is already busy with the ring. Failures are
// logged; the cached ring stays in use and is retried after
// ReloadInterval.
func (s *TokenService) maintain(ctx context.Context, c *config, r *keyRing) {
	now := c.now()
	stale := now.Sub(r.loadedAt) >= c.reloadInterval
	due := c.rotateAfter > 0 && r.signer != nil && now.Sub(r.signer.createdAt) >= c.rotateAfter
	if !stale && !due || !s.mu.TryLock() {
		return
	}
	defer s.mu.Unlock()
	if r2 := s.ring.Load(); r2 != r {
		return // someone else reloaded meanwhile
	}
	var err error
	if due {
		err = s.autoRotate(ctx, c)
	} else {
		_, err = s.load(ctx, c)
	}
	if err != nil {
		c.logger.Error("refreshing signing keys failed", "err", err)
		if s.ring.Load() == r {
			retry := *r
			retry.loadedAt = now
			s.ring.Store(&retry)
		}
	}
}

// verificationKey is the golang-jwt key func: it finds the key named by
// the token's kid, reloading the ring (rate-limited) for an unknown kid
// that comes with plausible claims.
func (s *TokenService) verificationKey(ctx context.Context, c *config, t *gojwt.Token, claims *Claims) (*ringKey, error) {
	kid, _ := t.Header["kid"].(string)
	if !validKID(kid) {
		return nil, errors.New("missing or malformed kid")
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, errors.New("critical header extensions are not supported")
	}
	r, err := s.current(ctx, c)
	if err != nil {
		c.logger.Error("loading signing keys failed", "err", err)
		return nil, errors.New("key ring unavailable")
	}
	k := r.byID[kid]
	if k == nil {
		if claims.Issuer != c.issuer || !slices.Contains(claims.Audience, c.audience) ||
			claims.Subject == "" || claims.TenantID == "" {
			return nil, errors.New("unknown kid")
		}
		if k = s.reloadForKID(ctx, c, kid); k == nil {
			return nil, errors.New("unknown kid")
		}
	}
	if !k.retiredAt.IsZero() && c.now().After(k.retiredAt.Add(c.retention)) {
		return nil, errors.New("key retired too long ago")
	}
	return k, nil
}

// reloadForKID reloads the ring to look for kid, at most once per
// MinReloadInterval. It returns nil if kid is still unknown.
func (s *TokenService) reloadForKID(ctx context.Context, c *config, kid string) *ringKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.ring.Load().byID[kid]; k != nil {
		return k // loaded by someone else while we waited
	}
	now := c.now()
	if !s.lastKIDReload.IsZero() && now.Sub(s.lastKIDReload) < c.minReloadInterval {
		return nil
	}
	s.lastKIDReload = now
	r, err := s.load(ctx, c)
	if err != nil {
		c.logger.Error("reloading signing keys failed", "err", err)
		return nil
	}
	return r.byID[kid]
}

// JWKS returns {"keys":[...]} with the public half of the signing key and
// of retired keys whose tokens may not have expired yet, newest first:
// kty OKP, crv Ed25519, alg EdDSA, use sig, kid.
func (s *TokenService) JWKS(ctx context.Context) ([]byte, error) {
	c, err := s.setup()
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	r, err := s.current(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	s.maintain(ctx, c, r)
	r = s.ring.Load()

	now := c.now()
	set := jwkSet{Keys: []jwk{}}
	for _, k := range r.keys {
		if !k.retiredAt.IsZero() && !now.Before(k.retiredAt.Add(c.publishFor)) {
			continue
		}
		set.Keys = append(set.Keys, jwk{Use: "sig", Kty: "OKP", Kid: k.id, Crv: "Ed25519", Alg: Algorithm,
			X: base64.RawURLEncoding.EncodeToString(k.pub)})
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	return b, nil
}

// jwkSet is a JSON Web Key Set (RFC 7517) of Ed25519 public keys.
type jwkSet struct {
	Keys []jwk `json:"keys"`
}

// jwk is an Ed25519 public key as a JSON Web Key (RFC 8037, section 2).
type jwk struct {
	Use string `json:"use"`
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Crv string `json:"crv"`
	Alg string `json:"alg"`
	X   string `json:"x"`
}
