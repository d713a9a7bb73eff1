package sqldb

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MinSystemSecretLen is the least number of characters a system secret has.
const MinSystemSecretLen = 32

// sealVersion is the first byte of every sealed value: AES-256-GCM under a
// key derived from a system secret, identified by sealKeyIDLen bytes.
const (
	sealVersion  = 1
	sealKeyIDLen = 4
	sealNonceLen = 12
	sealOverhead = 1 + sealKeyIDLen + sealNonceLen + 16 // version, key id, nonce, GCM tag
)

// HKDF-SHA256 info strings: one key encrypts, another names it, a third
// signs refresh tokens.
const (
	hkdfInfoKey     = "latchkey system secret: AES-256-GCM key v1"
	hkdfInfoID      = "latchkey system secret: key id v1"
	hkdfInfoRefresh = "latchkey system secret: refresh-token HMAC-SHA256 key v1"
)

// ErrSystemSecretMismatch is wrapped by errors about stored secrets that
// none of the system secrets can decrypt.
var ErrSystemSecretMismatch = errors.New("signing keys cannot be decrypted: the system secret does not match the one they were encrypted with")

// SystemSecrets encrypts secrets the database stores (the private parts of
// the signing keys), so that a copy of the database alone (a backup, a
// dump, a replica) holds none of them. It is a list: the first secret
// encrypts, every one decrypts, so a secret can be rotated by putting a new
// one first and keeping the old one until everything is re-encrypted (DB.Open
// does that). Each secret is a string of at least MinSystemSecretLen
// characters; the AES-256 key is HKDF-SHA256 of it. A SystemSecrets is
// immutable.
type SystemSecrets struct {
	keys []systemKey
}

type systemKey struct {
	id      [sealKeyIDLen]byte
	aead    cipher.AEAD
	refresh []byte // HMAC-SHA256 key of refresh tokens
}

// NewSystemSecrets returns the system secrets in order: secrets[0] encrypts.
// It needs at least one, each at least MinSystemSecretLen characters long
// (surrounding white space is not part of a secret). Errors never contain
// a secret.
func NewSystemSecrets(secrets ...string) (*SystemSecrets, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no system secret given")
	}
	s := &SystemSecrets{}
	for i, secret := range secrets {
		secret = strings.TrimSpace(secret)
		if n := len(secret); n < MinSystemSecretLen {
			return nil, fmt.Errorf("system secret #%d is %d characters long; use at least %d (generate one with: openssl rand -base64 32)", i+1, n, MinSystemSecretLen)
		}
		key, err := hkdf.Key(sha256.New, []byte(secret), nil, hkdfInfoKey, 32)
		if err != nil {
			return nil, fmt.Errorf("system secret #%d: %w", i+1, err)
		}
		id, err := hkdf.Key(sha256.New, []byte(secret), nil, hkdfInfoID, sealKeyIDLen)
		if err != nil {
			return nil, fmt.Errorf("system secret #%d: %w", i+1, err)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("system secret #%d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("system secret #%d: %w", i+1, err)
		}
		refresh, err := hkdf.Key(sha256.New, []byte(secret), nil, hkdfInfoRefresh, 32)
		if err != nil {
			return nil, fmt.Errorf("system secret #%d: %w", i+1, err)
		}
		k := systemKey{aead: aead, refresh: refresh}
		copy(k.id[:], id)
		s.keys = append(s.keys, k)
	}
	return s, nil
}

// NewSystemSecret returns a new random system secret: 32 bytes from r,
// base64url-encoded (43 characters).
func NewSystemSecret(r io.Reader) (string, error) {
	var b [32]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("new system secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// ReadPrivateFile reads the file at path, at most 64 KiB, holding what
// (e.g. "a signing key"), and refuses one that is not a regular file or
// that group or others may access, saying how to fix it. Errors start
// with label and never contain the file's content.
func ReadPrivateFile(path, label, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %s is not a regular file", label, path)
	} else if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s: %s is accessible by group or others (mode %04o); "+
			"%s must be private to the server's user: run chmod 600 %s", label, path, perm, what, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	return data, nil
}

// ReadSystemSecretFile reads system secrets from a file, one a line, the
// first one encrypting; blank lines and lines starting with # are skipped.
// It refuses a file that group or others may access. Errors never contain
// a secret.
func ReadSystemSecretFile(path string) (*SystemSecrets, error) {
	data, err := ReadPrivateFile(path, "system secret file", "the system secret")
	if err != nil {
		return nil, err
	}
	var secrets []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if len(s) < MinSystemSecretLen {
			return nil, fmt.Errorf("system secret file: %s line %d: the secret is %d characters long; use at least %d (generate one with: openssl rand -base64 32)",
				path, line, len(s), MinSystemSecretLen)
		}
		secrets = append(secrets, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("system secret file: %s: %w", path, err)
	}
	if len(secrets) == 0 {
		return nil, fmt.Errorf("system secret file: %s holds no secret (one a line; generate one with: openssl rand -base64 32)", path)
	}
	return NewSystemSecrets(secrets...)
}

// createSystemSecretFile writes a new file holding secret, mode 0600. It
// fails if the file exists.
func createSystemSecretFile(path, secret, dbPath string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	content := "# Latchkey system secret: encrypts the signing keys in " + dbPath + ".\n" +
		"# Back it up apart from the database; without it the signing keys cannot be read.\n" +
		"# Rotate: put a new secret on a line before this one, restart, then remove this one.\n" +
		secret + "\n"
	err = f.Chmod(0o600) // whatever the umask
	if err == nil {
		_, err = f.WriteString(content)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// seal encrypts plaintext under the first secret with a random nonce from
// r, bound to aad (which must be given again to open it).
func (s *SystemSecrets) seal(r io.Reader, plaintext, aad []byte) ([]byte, error) {
	k := s.keys[0]
	out := make([]byte, 1+sealKeyIDLen+sealNonceLen, sealOverhead+len(plaintext))
	out[0] = sealVersion
	copy(out[1:], k.id[:])
	nonce := out[1+sealKeyIDLen:]
	if _, err := io.ReadFull(r, nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return k.aead.Seal(out, nonce, plaintext, aad), nil
}

// errNotSealed is returned by open for a value that is not sealed.
var errNotSealed = errors.New("not a sealed value")

// open decrypts a value seal made with any of the secrets; primary reports
// whether it was the first. It returns errNotSealed for a value that is not
// sealed, and ErrSystemSecretMismatch when no secret opens it.
func (s *SystemSecrets) open(sealed, aad []byte) (plaintext []byte, primary bool, err error) {
	if len(sealed) < sealOverhead || sealed[0] != sealVersion {
		return nil, false, errNotSealed
	}
	id := sealed[1 : 1+sealKeyIDLen]
	nonce := sealed[1+sealKeyIDLen : 1+sealKeyIDLen+sealNonceLen]
	ct := sealed[1+sealKeyIDLen+sealNonceLen:]
	for i, k := range s.keys {
		if !bytes.Equal(k.id[:], id) {
			continue
		}
		if p, err := k.aead.Open(nil, nonce, ct, aad); err == nil {
			return p, i == 0, nil
		}
	}
	return nil, false, ErrSystemSecretMismatch
}
