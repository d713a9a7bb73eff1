// Package jwt implements latchkey.TokenService: short-lived access tokens
// signed with Ed25519 (JWS alg "EdDSA") through golang-jwt, a key ring
// loaded from a latchkey.SigningKeyService with key ids and rotation, and
// the JSON Web Key Set that publishes the public keys.
//
// The library is imported as gojwt because this package is also named jwt.
package jwt

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/latchkey/latchkey"
)

// Algorithm is the only JWS algorithm this package signs with or accepts.
const Algorithm = "EdDSA"

// MaxTokenLength is the longest token text VerifyAccessToken looks at.
// Tokens minted here are about 400 characters.
const MaxTokenLength = 4096

// Defaults for the zero values of TokenService's tuning fields.
const (
	DefaultLeeway            = 5 * time.Second
	DefaultReloadInterval    = time.Minute
	DefaultMinReloadInterval = time.Second
)

// Messages of the EUNAUTHENTICATED errors VerifyAccessToken returns. They
// never contain the token.
const (
	MessageInvalidToken = "Invalid access token."
	MessageExpiredToken = "Access token expired."
)

// Claims is the payload of an access token: the registered claims (iss,
// sub = user id, aud, exp, nbf, iat, jti) plus Latchkey's own.
type Claims struct {
	gojwt.RegisteredClaims

	// TenantID is the tenant the token acts in.
	TenantID string `json:"tid"`

	// APIKeyID is the API key the token was minted from, if any.
	APIKeyID string `json:"akid,omitempty"`

	// APITokenID is the legacy API token the token was minted from, if any.
	APITokenID string `json:"atid,omitempty"`

	// FamilyID is the refresh-token family the token was minted in, if
	// any: revoking the family revokes the token.
	FamilyID string `json:"fid,omitempty"`
}

// TokenService signs access tokens with the newest unretired Ed25519 key of
// a key ring and verifies them with any key of the ring. The ring is loaded
// from Keys, cached in memory, reloaded every ReloadInterval, and reloaded
// at once (at most every MinReloadInterval) when a token names a key id the
// cache does not know, so keys created by another replica are picked up.
//
// Set the exported fields before the first method call (NewTokenService
// fills in the required ones); they are read once and must not change
// afterwards. Open is optional but recommended at start-up: it surfaces
// configuration and storage errors and creates the first key. A
// TokenService is safe for concurrent use.
type TokenService struct {
	// Keys stores the signing keys. Required.
	Keys latchkey.SigningKeyService

	// Issuer and Audience are the iss and aud claims minted and required.
	// Required.
	Issuer   string
	Audience string

	// MaxTokenLifetime is the longest exp - iat MintAccessToken accepts and
	// VerifyAccessToken tolerates. It is also the default lifetime when
	// AccessClaims.ExpiresAt is zero. Zero means
	// latchkey.DefaultAccessTokenTTL.
	MaxTokenLifetime time.Duration

	// RefreshWindow is how long after its expiry VerifyAccessToken with
	// allowExpired still accepts a token; it should be at least the refresh
	// token lifetime. Zero means latchkey.DefaultRefreshTokenTTL.
	RefreshWindow time.Duration

	// Leeway is the allowed clock skew for exp, nbf and iat. Zero means
	// DefaultLeeway.
	Leeway time.Duration

	// RotateAfter is the age at which MintAccessToken rotates the signing
	// key by itself. Zero means never (rotate with Rotate).
	RotateAfter time.Duration

	// ReloadInterval is how often the cached key ring is refreshed from
	// Keys, so that every replica signs with the newest key and notices
	// retirements. A retired key still signs tokens accepted for this long
	// after its retirement. Zero means DefaultReloadInterval.
	ReloadInterval time.Duration

	// MinReloadInterval rate-limits reloads caused by tokens with an
	// unknown key id. Zero means DefaultMinReloadInterval.
	MinReloadInterval time.Duration

	// VerifyCacheSize is how many verified tokens VerifyAccessToken
	// remembers, so that a token presented again skips the signature
	// check; every other check runs on each use. Zero means
	// DefaultVerifyCacheSize; negative disables the cache.
	VerifyCacheSize int

	// Now returns the current time. Nil means time.Now.
	Now func() time.Time

	// Rand is the source of key material and token ids; it must be safe for
	// concurrent use. Nil means crypto/rand.Reader.
	Rand io.Reader

	// Logger receives key events and verification failures (never key
	// material or tokens). Nil discards.
	Logger *slog.Logger

	// Gate, if set, is called before a signature is checked that the cache
	// of verified tokens does not hold, and may make it wait or refuse it
	// (ERATELIMIT); release is called when the check is done. It is
	// ratelimit.Guard.Gate: clients over their failure budget share a few
	// slots for the expensive checks, while tokens verified before cost
	// nothing and are never held back. Nil: nothing waits.
	Gate func(ctx context.Context) (release func(), err error)

	setupOnce sync.Once
	cfg       *config
	cfgErr    error

	// mu serializes loads of the ring from Keys and writes to Keys, and
	// guards lastKIDReload. Readers of the ring do not take it.
	mu            sync.Mutex
	lastKIDReload time.Time
	ring          atomic.Pointer[keyRing]
}

var _ latchkey.TokenService = (*TokenService)(nil)

// NewTokenService returns a TokenService over keys that mints and requires
// the given issuer and audience, with defaults for everything else.
func NewTokenService(keys latchkey.SigningKeyService, issuer, audience string) *TokenService {
	return &TokenService{Keys: keys, Issuer: issuer, Audience: audience}
}

// config is the frozen, defaulted copy of TokenService's fields.
type config struct {
	keys              latchkey.SigningKeyService
	issuer, audience  string
	maxLifetime       time.Duration
	refreshWindow     time.Duration
	leeway            time.Duration
	rotateAfter       time.Duration
	reloadInterval    time.Duration
	minReloadInterval time.Duration
	now               func() time.Time
	rand              io.Reader
	logger            *slog.Logger

	// publishFor is how long after retirement a key is still in the JWKS:
	// until the last token it may have signed expires.
	publishFor time.Duration
	// retention is how long after retirement a key is kept to verify
	// expired tokens presented for refresh.
	retention time.Duration

	cache          *sigCache // nil if disabled
	parser         *gojwt.Parser
	validator      *gojwt.Validator // exp required
	validatorNoExp *gojwt.Validator // for telling "only expired" from other failures
}

func (s *TokenService) setup() (*config, error) {
	s.setupOnce.Do(func() {
		c := &config{
			keys:              s.Keys,
			issuer:            s.Issuer,
			audience:          s.Audience,
			maxLifetime:       orDefault(s.MaxTokenLifetime, latchkey.DefaultAccessTokenTTL),
			refreshWindow:     orDefault(s.RefreshWindow, latchkey.DefaultRefreshTokenTTL),
			leeway:            orDefault(s.Leeway, DefaultLeeway),
			rotateAfter:       s.RotateAfter,
			reloadInterval:    orDefault(s.ReloadInterval, DefaultReloadInterval),
			minReloadInterval: orDefault(s.MinReloadInterval, DefaultMinReloadInterval),
			now:               s.Now,
			rand:              s.Rand,
			logger:            s.Logger,
		}
		if c.now == nil {
			c.now = time.Now
		}
		if c.rand == nil {
			c.rand = rand.Reader
		}
		if c.logger == nil {
			c.logger = slog.New(slog.DiscardHandler)
		}
		switch {
		case c.keys == nil:
			s.cfgErr = errors.New("jwt: TokenService.Keys is required")
		case c.issuer == "":
			s.cfgErr = errors.New("jwt: TokenService.Issuer is required")
		case c.audience == "":
			s.cfgErr = errors.New("jwt: TokenService.Audience is required")
		case c.maxLifetime < 0 || c.refreshWindow < 0 || c.leeway < 0 || c.rotateAfter < 0 ||
			c.reloadInterval < 0 || c.minReloadInterval < 0:
			s.cfgErr = errors.New("jwt: TokenService durations must not be negative")
		}
		c.publishFor = c.reloadInterval + c.maxLifetime + c.leeway
		if s.VerifyCacheSize == 0 {
			c.cache = newSigCache(DefaultVerifyCacheSize)
		} else {
			c.cache = newSigCache(s.VerifyCacheSize)
		}
		c.retention = c.publishFor + c.refreshWindow

		c.parser = gojwt.NewParser(
			gojwt.WithValidMethods([]string{Algorithm}),
			gojwt.WithStrictDecoding(),
			// Claims are checked after the signature, by the validators
			// below, so that an expired token can be told apart.
			gojwt.WithoutClaimsValidation(),
		)
		common := []gojwt.ParserOption{
			gojwt.WithIssuer(c.issuer),
			gojwt.WithAudience(c.audience),
			gojwt.WithIssuedAt(),
			gojwt.WithLeeway(c.leeway),
			gojwt.WithTimeFunc(c.now),
		}
		c.validator = gojwt.NewValidator(append(common, gojwt.WithExpirationRequired())...)
		c.validatorNoExp = gojwt.NewValidator(common...)
		s.cfg = c
	})
	return s.cfg, s.cfgErr
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Open checks the configuration, loads the key ring and, if no unretired
// key exists, creates one. Calling it more than once reloads the ring.
func (s *TokenService) Open(ctx context.Context) error {
	c, err := s.setup()
	if err != nil {
		return fmt.Errorf("open token service: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.ensureSigner(ctx, c); err != nil {
		return fmt.Errorf("open token service: %w", err)
	}
	return nil
}

// MintAccessToken signs claims with the current signing key. A zero ID gets
// a random one, a zero IssuedAt is now, a zero ExpiresAt is IssuedAt plus
// MaxTokenLifetime, and a zero NotBefore is left out. Times are truncated
// to whole seconds.
//
// Returns EINVALID if UserID or TenantID is empty or the lifetime is not
// positive or exceeds MaxTokenLifetime.
func (s *TokenService) MintAccessToken(ctx context.Context, ac latchkey.AccessClaims) (string, error) {
	c, err := s.setup()
	if err != nil {
		return "", fmt.Errorf("mint access token: %w", err)
	}
	if ac.UserID == "" || ac.TenantID == "" {
		return "", latchkey.Errorf(latchkey.EINVALID, "An access token needs a user and a tenant.")
	}
	now := c.now()
	iat := ac.IssuedAt
	if iat.IsZero() {
		iat = now
	}
	exp := ac.ExpiresAt
	if exp.IsZero() {
		exp = iat.Add(c.maxLifetime)
	}
	if !exp.After(iat) {
		return "", latchkey.Errorf(latchkey.EINVALID, "An access token must expire after it is issued.")
	} else if exp.Sub(iat) > c.maxLifetime {
		return "", latchkey.Errorf(latchkey.EINVALID, "An access token may live at most %s.", c.maxLifetime)
	}
	id := ac.ID
	if id == "" {
		if id, err = randomID(c.rand); err != nil {
			return "", fmt.Errorf("mint access token: %w", err)
		}
	}

	key, err := s.signingKey(ctx, c)
	if err != nil {
		return "", fmt.Errorf("mint access token: %w", err)
	}

	claims := Claims{
		RegisteredClaims: gojwt.RegisteredClaims{
			Issuer:    c.issuer,
			Subject:   ac.UserID,
			Audience:  gojwt.ClaimStrings{c.audience},
			ExpiresAt: gojwt.NewNumericDate(exp),
			IssuedAt:  gojwt.NewNumericDate(iat),
			ID:        id,
		},
		TenantID:   ac.TenantID,
		APIKeyID:   ac.APIKeyID,
		APITokenID: ac.APITokenID,
		FamilyID:   ac.FamilyID,
	}
	if !ac.NotBefore.IsZero() {
		claims.NotBefore = gojwt.NewNumericDate(ac.NotBefore)
	}
	tok := gojwt.NewWithClaims(gojwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = key.id
	signed, err := tok.SignedString(key.priv)
	if err != nil {
		return "", fmt.Errorf("mint access token: %w", err)
	}
	return signed, nil
}

// VerifyAccessToken checks the token's shape, algorithm (EdDSA only), key
// id, signature, issuer, audience, expiry (required), not-before and
// issued-at (with Leeway), lifetime, and that it names a user and a
// tenant. With allowExpired, a token that is valid except for having
// expired less than RefreshWindow ago is accepted.
//
// Every failure is EUNAUTHENTICATED with MessageExpiredToken or
// MessageInvalidToken; neither contains the token.
func (s *TokenService) VerifyAccessToken(ctx context.Context, token string, allowExpired bool) (*latchkey.AccessClaims, error) {
	c, err := s.setup()
	if err != nil {
		return nil, s.reject(nil, "misconfigured", err)
	}
	// Cheap shape checks first, so garbage never reaches the parser or the
	// store. Only the base64url alphabet is allowed: Go's decoder skips
	// newlines, which would let many strings carry the same signature.
	if !wellFormed(token) {
		return nil, s.reject(c, "malformed", nil)
	}

	var claims Claims
	var key *ringKey
	cached := c.cache.get(token)
	if cached != nil {
		// Verified before: skip the signature, check the rest again.
		if key = s.cachedKey(ctx, c, cached); key != nil {
			claims = cached.claims
		} else {
			c.cache.remove(token)
			cached = nil
		}
	}
	if cached == nil {
		if s.Gate != nil {
			release, err := s.Gate(ctx)
			if err != nil {
				return nil, err
			}
			defer release()
		}
		_, err = c.parser.ParseWithClaims(token, &claims, func(t *gojwt.Token) (any, error) {
			k, err := s.verificationKey(ctx, c, t, &claims)
			if err != nil {
				return nil, err
			}
			key = k
			return k.pub, nil
		})
		if err != nil {
			return nil, s.reject(c, "signature", err)
		}
	}

	rc := &claims.RegisteredClaims
	now := c.now()
	if reason, err := s.checkClaims(c, &claims, key, now, allowExpired); reason != "" {
		if cached != nil {
			c.cache.remove(token)
		}
		return nil, s.reject(c, reason, err)
	}
	if cached == nil {
		c.cache.add(token, &claims, key)
	}

	ac := &latchkey.AccessClaims{
		ID:         rc.ID,
		UserID:     rc.Subject,
		TenantID:   claims.TenantID,
		APIKeyID:   claims.APIKeyID,
		APITokenID: claims.APITokenID,
		FamilyID:   claims.FamilyID,
		IssuedAt:   rc.IssuedAt.UTC(),
		ExpiresAt:  rc.ExpiresAt.UTC(),
	}
	if rc.NotBefore != nil {
		ac.NotBefore = rc.NotBefore.UTC()
	}
	return ac, nil
}

// checkClaims runs every check of VerifyAccessToken that comes after the
// signature, and returns why claims fail, or "".
func (s *TokenService) checkClaims(c *config, claims *Claims, key *ringKey, now time.Time, allowExpired bool) (reason string, err error) {
	rc := &claims.RegisteredClaims
	if err := c.validator.Validate(rc); err != nil {
		// Expired and nothing else wrong?
		noExp := *rc
		noExp.ExpiresAt = nil
		if !errors.Is(err, gojwt.ErrTokenExpired) || c.validatorNoExp.Validate(&noExp) != nil {
			return "claims", err
		} else if !allowExpired || now.After(rc.ExpiresAt.Add(c.refreshWindow)) {
			return "expired", nil
		}
	}
	switch {
	case rc.Subject == "":
		return "missing sub", nil
	case claims.TenantID == "":
		return "missing tid", nil
	case rc.ID == "":
		return "missing jti", nil
	case rc.IssuedAt == nil:
		return "missing iat", nil
	case rc.ExpiresAt.Sub(rc.IssuedAt.Time) > c.maxLifetime+c.leeway:
		return "lifetime too long", nil
	case !key.retiredAt.IsZero() && rc.IssuedAt.After(key.retiredAt.Add(c.reloadInterval+c.leeway)):
		// A retired key signs nothing new once every replica has reloaded.
		return "issued after key retirement", nil
	}
	return "", nil
}

// cachedKey returns the ring key a cached token was verified with if the
// current ring still holds it, with the same public key, and it is not
// retired too long ago (what verificationKey requires); else nil, and the
// token is verified again in full.
func (s *TokenService) cachedKey(ctx context.Context, c *config, e *sigEntry) *ringKey {
	r, err := s.current(ctx, c)
	if err != nil {
		return nil
	}
	k := r.byID[e.kid]
	if k == nil || !k.pub.Equal(e.pub) || (!k.retiredAt.IsZero() && c.now().After(k.retiredAt.Add(c.retention))) {
		return nil
	}
	return k
}

// reject logs why a token was refused (never the token) and returns the
// EUNAUTHENTICATED error shown to the caller.
func (s *TokenService) reject(c *config, reason string, err error) error {
	msg := MessageInvalidToken
	if reason == "expired" {
		msg = MessageExpiredToken
	}
	if c != nil {
		attrs := []any{"reason", reason}
		if err != nil {
			// golang-jwt errors describe, not quote, the input; redact anyway.
			attrs = append(attrs, "err", latchkey.RedactSecrets(err.Error()))
		}
		c.logger.Debug("access token rejected", attrs...)
	} else if s.Logger != nil && err != nil {
		s.Logger.Error("token service misconfigured", "err", err)
	}
	return latchkey.Errorf(latchkey.EUNAUTHENTICATED, "%s", msg)
}

// wellFormed reports whether token could be a compact JWS: not too long,
// three base64url segments.
func wellFormed(token string) bool {
	if len(token) == 0 || len(token) > MaxTokenLength {
		return false
	}
	dots := 0
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case c == '.':
			dots++
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return dots == 2
}

// validKID reports whether kid looks like a key id: 1 to 64 base64url
// characters.
func validKID(kid string) bool {
	if len(kid) == 0 || len(kid) > 64 {
		return false
	}
	for i := 0; i < len(kid); i++ {
		switch c := kid[i]; {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// randomID returns 128 random bits, base64url-encoded (22 characters).
func randomID(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
