package latchkey

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"regexp"
	"strings"
)

// Secret prefixes. Every secret Latchkey issues is PREFIX + 32 random base62
// characters (190 bits) + 6 base62 characters of CRC-32 over prefix and
// body, so a mistyped or truncated secret is caught without a lookup, and
// secret scanners can recognise them.
const (
	PrefixUserKey       = "lku_" // personal API key
	PrefixServiceKey    = "lks_" // service-account API key
	PrefixAPIToken      = "lkt_" // deprecated scoped API token
	PrefixRefreshToken  = "lkr_" // refresh token
	PrefixSession       = "lkc_" // web UI session cookie
	PrefixPasswordReset = "lkp_" // one-time set-password link
	secretBodyLen       = 32
	secretChecksumLen   = 6
	secretPrefixLen     = 4
	SecretLen           = secretPrefixLen + secretBodyLen + secretChecksumLen
	base62              = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

var secretPrefixes = []string{PrefixUserKey, PrefixServiceKey, PrefixAPIToken, PrefixRefreshToken, PrefixSession, PrefixPasswordReset}

// NewSecret returns a new secret with the given prefix, drawing randomness
// from r (crypto/rand.Reader in production).
func NewSecret(r io.Reader, prefix string) (string, error) {
	if !knownPrefix(prefix) {
		return "", fmt.Errorf("new secret: unknown prefix %q", prefix)
	}
	var b strings.Builder
	b.Grow(SecretLen)
	b.WriteString(prefix)
	buf := make([]byte, 64)
	for n := 0; n < secretBodyLen; {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("new secret: %w", err)
		}
		for _, c := range buf {
			// Rejection sampling: 248 = 4*62 keeps the distribution uniform.
			if c >= 248 || n == secretBodyLen {
				continue
			}
			b.WriteByte(base62[c%62])
			n++
		}
	}
	b.WriteString(checksum(b.String()))
	return b.String(), nil
}

// ErrMalformedSecret is returned by ParseSecret for text that is not a
// Latchkey secret, or whose checksum does not match (a typo).
var ErrMalformedSecret = errors.New("malformed secret")

// ParseSecret checks the shape and checksum of s and returns its prefix. It
// reads s in constant time with respect to its content.
func ParseSecret(s string) (prefix string, err error) {
	if len(s) != SecretLen {
		return "", ErrMalformedSecret
	}
	prefix = s[:secretPrefixLen]
	if !knownPrefix(prefix) {
		return "", ErrMalformedSecret
	}
	bad := 0
	for i := secretPrefixLen; i < SecretLen; i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			bad = 1
		}
	}
	want := checksum(s[:secretPrefixLen+secretBodyLen])
	if subtle.ConstantTimeCompare([]byte(want), []byte(s[secretPrefixLen+secretBodyLen:])) != 1 || bad != 0 {
		return "", ErrMalformedSecret
	}
	return prefix, nil
}

// HashSecret returns the SHA-256 of a secret, the only form ever stored.
func HashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// EqualHash compares two hashes in constant time.
func EqualHash(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

func knownPrefix(p string) bool {
	for _, q := range secretPrefixes {
		if p == q {
			return true
		}
	}
	return false
}

func checksum(s string) string {
	v := crc32.ChecksumIEEE([]byte(s))
	var out [secretChecksumLen]byte
	for i := secretChecksumLen - 1; i >= 0; i-- {
		out[i] = base62[v%62]
		v /= 62
	}
	return string(out[:])
}

// secretRE matches Latchkey secrets and JWTs anywhere in text.
var secretRE = regexp.MustCompile(`\blk[usktrcp]_[0-9A-Za-z_-]{10,}|\beyJ[0-9A-Za-z_-]{8,}\.[0-9A-Za-z_-]+\.[0-9A-Za-z_-]*`)

// RedactSecrets replaces every Latchkey secret or JWT in s with its first
// four characters and "[REDACTED]". Logs and error paths run text through
// it as a last line of defence.
func RedactSecrets(s string) string {
	// Every secret has an underscore after its prefix and every JWT starts
	// with "eyJ": text with neither needs no regexp (most log lines).
	if !mayHoldSecret(s) {
		return s
	}
	return secretRE.ReplaceAllStringFunc(s, func(m string) string { return m[:4] + "[REDACTED]" })
}

// mayHoldSecret reports whether s could contain a secret RedactSecrets
// redacts: every secret has an underscore after its prefix and every JWT
// starts with "eyJ".
func mayHoldSecret(s string) bool {
	return strings.Contains(s, "_") || strings.Contains(s, "eyJ")
}

// SecretIdentifier returns the non-secret identifier of a credential,
// which may be shown and logged anywhere: its prefix, an ellipsis and its
// last four characters ("lku_…x9Qz"; "eyJ…AbCd" for a JWT). Text too short
// to spare four characters, or that is not a credential at all, is
// identified only by its length.
func SecretIdentifier(s string) string {
	switch {
	case len(s) >= 16 && s[3] == '_' && s[:2] == "lk":
		return s[:4] + "…" + s[len(s)-4:]
	case len(s) >= 16 && strings.HasPrefix(s, "eyJ"):
		return "eyJ…" + s[len(s)-4:]
	case s == "":
		return ""
	}
	return fmt.Sprintf("(%d characters)", len(s))
}
