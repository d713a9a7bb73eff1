package jwt

import (
	"crypto/ed25519"
	"sync"
)

// DefaultVerifyCacheSize is how many verified tokens a TokenService
// remembers when VerifyCacheSize is zero.
const DefaultVerifyCacheSize = 10000

// sigCache remembers tokens whose signature has been verified, so that a
// token presented again skips the Ed25519 verification (the dominant cost
// of VerifyAccessToken) and the decoding of its claims. Only the signature
// check is skipped: everything that depends on time or on the key ring
// (expiry, not-before, issued-at, lifetime, the key still being in the ring
// with the same public key, retirement) is checked again on every use, so a
// hit returns exactly what a full verification would.
//
// Entries are keyed by the complete token text: the same text always
// decodes to the same claims and carries the same signature. Only tokens
// that passed every check are added, so the cache holds nothing an
// attacker made up; it is bounded, and evicts a random entry when full.
// A hit costs about 9 K instructions, a full verification about 700 K: an
// access-token request costs 8 times as much without the cache
// (BENCHMARKS.md, update 5).
type sigCache struct {
	max int

	mu      sync.RWMutex
	entries map[string]*sigEntry
}

// sigEntry is a verified token's decoded claims and the key that signed it.
type sigEntry struct {
	claims Claims // read-only once stored
	kid    string
	pub    ed25519.PublicKey
}

func newSigCache(max int) *sigCache {
	if max <= 0 {
		return nil
	}
	return &sigCache{max: max, entries: make(map[string]*sigEntry, min(max, 1024))}
}

// get returns the entry for token, or nil.
func (c *sigCache) get(token string) *sigEntry {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	e := c.entries[token]
	c.mu.RUnlock()
	return e
}

// add remembers that key verified token's signature and that it decoded to
// claims.
func (c *sigCache) add(token string, claims *Claims, key *ringKey) {
	if c == nil {
		return
	}
	e := &sigEntry{claims: *claims, kid: key.id, pub: key.pub}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[token]; !ok && len(c.entries) >= c.max {
		for k := range c.entries { // map iteration starts at a random entry
			delete(c.entries, k)
			break
		}
	}
	c.entries[token] = e
}

// remove forgets token.
func (c *sigCache) remove(token string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.entries, token)
	c.mu.Unlock()
}

// len returns the number of entries.
func (c *sigCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
