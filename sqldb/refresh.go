package sqldb

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/latchkey/latchkey"
)

// A refresh token is self-describing and signed, so that minting one
// writes nothing: "lkr_" and the unpadded base64url of
//
//	version (1) | system key id (4) | family id (16) | generation (4) |
//	source kind (1) | source id (16) | user id (16) | tenant id (16) |
//	access token id (16) | expiry, Unix seconds (8) | HMAC-SHA256 (32)
//
// The HMAC, under a key derived from the first system secret (any of them
// verifies), covers everything before it. A family needs a row only once
// one of its tokens is used: refresh_families holds its generation, which
// each refresh advances atomically; a token of an older generation is a
// reuse.
const (
	refreshVersion    = 1
	refreshPayloadLen = 1 + sealKeyIDLen + 16 + 4 + 1 + 16 + 16 + 16 + 16 + 8
	refreshTokenLen   = refreshPayloadLen + sha256.Size
)

// Source kinds in a refresh token.
const (
	refreshSourceKey   = 1
	refreshSourceToken = 2
)

// refreshClaims is what a refresh token says.
type refreshClaims struct {
	familyID      string
	generation    uint32
	apiKeyID      string // one of these two
	apiTokenID    string
	userID        string
	tenantID      string
	accessTokenID string
	expiresAt     time.Time // whole seconds
}

// errNoSecrets is returned when refresh tokens are to be signed or
// checked without system secrets.
var errNoSecrets = errors.New("refresh tokens: no system secret")

// signRefresh returns the refresh token for c, signed with the first
// secret.
func (s *SystemSecrets) signRefresh(c *refreshClaims) (string, error) {
	if s == nil || len(s.keys) == 0 {
		return "", errNoSecrets
	}
	k := s.keys[0]
	b := make([]byte, 0, refreshTokenLen)
	b = append(b, refreshVersion)
	b = append(b, k.id[:]...)
	var err error
	putUUID := func(id string) {
		if err != nil {
			return
		}
		var u uuid.UUID
		if u, err = uuid.Parse(id); err == nil {
			b = append(b, u[:]...)
		}
	}
	putUUID(c.familyID)
	b = binary.BigEndian.AppendUint32(b, c.generation)
	if c.apiKeyID != "" {
		b = append(b, refreshSourceKey)
		putUUID(c.apiKeyID)
	} else {
		b = append(b, refreshSourceToken)
		putUUID(c.apiTokenID)
	}
	putUUID(c.userID)
	putUUID(c.tenantID)
	putUUID(c.accessTokenID)
	if err != nil {
		return "", errors.New("refresh tokens: an id is not a UUID")
	}
	b = binary.BigEndian.AppendUint64(b, uint64(c.expiresAt.Unix()))
	mac := hmac.New(sha256.New, k.refresh)
	mac.Write(b)
	b = mac.Sum(b)
	return latchkey.PrefixRefreshToken + base64.RawURLEncoding.EncodeToString(b), nil
}

// parseRefresh checks a refresh token's form and signature (not its
// expiry) and returns what it says, or ok false.
func (s *SystemSecrets) parseRefresh(token string) (c *refreshClaims, ok bool) {
	if s == nil || len(token) != len(latchkey.PrefixRefreshToken)+base64.RawURLEncoding.EncodedLen(refreshTokenLen) ||
		token[:len(latchkey.PrefixRefreshToken)] != latchkey.PrefixRefreshToken {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(token[len(latchkey.PrefixRefreshToken):])
	if err != nil || len(b) != refreshTokenLen || b[0] != refreshVersion {
		return nil, false
	}
	payload, sum := b[:refreshPayloadLen], b[refreshPayloadLen:]
	var key []byte
	for _, k := range s.keys {
		if bytes.Equal(k.id[:], payload[1:1+sealKeyIDLen]) {
			key = k.refresh
		}
	}
	if key == nil {
		return nil, false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(payload)
	if !hmac.Equal(mac.Sum(nil), sum) {
		return nil, false
	}
	p := payload[1+sealKeyIDLen:]
	id := func() string {
		u := uuid.UUID(p[:16])
		p = p[16:]
		return u.String()
	}
	c = &refreshClaims{familyID: id()}
	c.generation, p = binary.BigEndian.Uint32(p), p[4:]
	kind := p[0]
	p = p[1:]
	switch kind {
	case refreshSourceKey:
		c.apiKeyID = id()
	case refreshSourceToken:
		c.apiTokenID = id()
	default:
		return nil, false
	}
	c.userID, c.tenantID, c.accessTokenID = id(), id(), id()
	c.expiresAt = time.Unix(int64(binary.BigEndian.Uint64(p)), 0).UTC()
	return c, true
}
