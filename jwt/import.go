package jwt

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/latchkey/latchkey"
)

// ImportKey makes priv the key that signs access tokens, for a server
// configured with a signing key file. Unless the ring's signing key already
// is priv (a restart with the same file), it stores priv in Keys under a new
// key id and retires every other unretired key; like after Rotate, the
// retired keys keep verifying the tokens they signed until those expire. It
// returns the id of the key that holds priv.
//
// A later Rotate (`latchkey admin rotate-signing-key`) replaces the imported
// key until the next ImportKey; replicas that share a database must import
// the same key.
func (s *TokenService) ImportKey(ctx context.Context, priv ed25519.PrivateKey) (kid string, err error) {
	c, err := s.setup()
	if err != nil {
		return "", fmt.Errorf("import signing key: %w", err)
	}
	if len(priv) != ed25519.PrivateKeySize {
		return "", errors.New("import signing key: not an Ed25519 private key")
	}
	seed := priv.Seed()
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	if !pub.Equal(priv.Public()) {
		return "", errors.New("import signing key: the public half does not match the private key")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.load(ctx, c)
	if err != nil {
		return "", fmt.Errorf("import signing key: %w", err)
	}
	if old.signer != nil && old.signer.pub.Equal(pub) {
		return old.signer.id, nil
	}

	if kid, err = randomID(c.rand); err != nil {
		return "", fmt.Errorf("import signing key: %w", err)
	}
	k := &latchkey.SigningKey{
		ID:         kid,
		Algorithm:  Algorithm,
		PrivateKey: seed,
		PublicKey:  pub,
		CreatedAt:  c.now().UTC(),
	}
	if err := c.keys.CreateSigningKey(ctx, k); err != nil {
		return "", fmt.Errorf("import signing key: %w", err)
	}
	c.logger.Info("imported signing key", "kid", kid, "fingerprint", Fingerprint(pub))
	at := c.now().UTC()
	for _, rk := range old.keys {
		if !rk.retiredAt.IsZero() || rk.id == kid {
			continue
		}
		if err := c.keys.RetireSigningKey(ctx, rk.id, at); err != nil {
			_, _ = s.load(ctx, c)
			return kid, fmt.Errorf("import signing key: retire signing key %s: %w", rk.id, err)
		}
		c.logger.Info("retired signing key", "kid", rk.id)
	}
	r, err := s.load(ctx, c)
	if err != nil {
		return kid, fmt.Errorf("import signing key: %w", err)
	} else if r.signer == nil || !r.signer.pub.Equal(pub) {
		return kid, errors.New("import signing key: the imported key is not the signing key after import")
	}
	return r.signer.id, nil
}

// Fingerprint returns the first 16 hexadecimal digits of the SHA-256 of an
// Ed25519 public key: public, and short enough for a log line.
func Fingerprint(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}
