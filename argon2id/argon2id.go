// Package argon2id hashes passwords with Argon2id into PHC strings
// ($argon2id$v=19$m=19456,t=2,p=1$salt$hash), so parameters can be raised
// later without invalidating stored hashes.
package argon2id

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are Argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	SaltLen int
	KeyLen  uint32
}

// DefaultParams returns OWASP's recommendation (m=19 MiB, t=2, p=1), about
// 100 ms on a 2-core machine.
func DefaultParams() Params {
	return Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// ErrMismatch is returned by Compare when the password does not match.
var ErrMismatch = errors.New("argon2id: password does not match")

var b64 = base64.RawStdEncoding

// Hash returns the PHC string for password, with a salt read from r.
func Hash(r io.Reader, password string, p Params) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := io.ReadFull(r, salt); err != nil {
		return "", fmt.Errorf("argon2id: salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Compare checks password against a PHC string from Hash in constant time.
// It returns ErrMismatch for a wrong password and another error for a
// malformed hash.
func Compare(phc, password string) error {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return errors.New("argon2id: malformed hash")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return errors.New("argon2id: unsupported version")
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return errors.New("argon2id: malformed parameters")
	}
	if p.Memory == 0 || p.Memory > 4<<20 || p.Time == 0 || p.Time > 100 || p.Threads == 0 {
		return errors.New("argon2id: parameters out of range")
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return errors.New("argon2id: malformed salt")
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 1024 {
		return errors.New("argon2id: malformed key")
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}
