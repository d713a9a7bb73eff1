package mock

import (
	"context"
	"time"

	"github.com/latchkey/latchkey"
)

var _ latchkey.AuthService = (*AuthService)(nil)

// AuthService is a mock of latchkey.AuthService.
type AuthService struct {
	AuthenticateFn       func(ctx context.Context, credential, tenantID string) (*latchkey.Auth, error)
	SwitchTenantFn       func(ctx context.Context, tenantID string) (*latchkey.AccessToken, error)
	RefreshAccessTokenFn func(ctx context.Context, refreshToken, accessToken string) (*latchkey.AccessToken, error)
	CreateSessionFn      func(ctx context.Context, userID string) (string, time.Time, error)
	DeleteSessionFn      func(ctx context.Context, sessionID string) error
}

// Authenticate calls AuthenticateFn.
func (s *AuthService) Authenticate(ctx context.Context, credential, tenantID string) (*latchkey.Auth, error) {
	return s.AuthenticateFn(ctx, credential, tenantID)
}

// SwitchTenant calls SwitchTenantFn.
func (s *AuthService) SwitchTenant(ctx context.Context, tenantID string) (*latchkey.AccessToken, error) {
	return s.SwitchTenantFn(ctx, tenantID)
}

// RefreshAccessToken calls RefreshAccessTokenFn.
func (s *AuthService) RefreshAccessToken(ctx context.Context, refreshToken, accessToken string) (*latchkey.AccessToken, error) {
	return s.RefreshAccessTokenFn(ctx, refreshToken, accessToken)
}

// CreateSession calls CreateSessionFn.
func (s *AuthService) CreateSession(ctx context.Context, userID string) (string, time.Time, error) {
	return s.CreateSessionFn(ctx, userID)
}

// DeleteSession calls DeleteSessionFn.
func (s *AuthService) DeleteSession(ctx context.Context, sessionID string) error {
	return s.DeleteSessionFn(ctx, sessionID)
}

var _ latchkey.TokenService = (*TokenService)(nil)

// TokenService is a mock of latchkey.TokenService.
type TokenService struct {
	MintAccessTokenFn   func(ctx context.Context, claims latchkey.AccessClaims) (string, error)
	VerifyAccessTokenFn func(ctx context.Context, token string, allowExpired bool) (*latchkey.AccessClaims, error)
	JWKSFn              func(ctx context.Context) ([]byte, error)
}

// MintAccessToken calls MintAccessTokenFn.
func (s *TokenService) MintAccessToken(ctx context.Context, claims latchkey.AccessClaims) (string, error) {
	return s.MintAccessTokenFn(ctx, claims)
}

// VerifyAccessToken calls VerifyAccessTokenFn.
func (s *TokenService) VerifyAccessToken(ctx context.Context, token string, allowExpired bool) (*latchkey.AccessClaims, error) {
	return s.VerifyAccessTokenFn(ctx, token, allowExpired)
}

// JWKS calls JWKSFn.
func (s *TokenService) JWKS(ctx context.Context) ([]byte, error) {
	return s.JWKSFn(ctx)
}

var _ latchkey.SigningKeyService = (*SigningKeyService)(nil)

// SigningKeyService is a mock of latchkey.SigningKeyService.
type SigningKeyService struct {
	FindSigningKeysFn  func(ctx context.Context, since time.Time) ([]*latchkey.SigningKey, error)
	CreateSigningKeyFn func(ctx context.Context, key *latchkey.SigningKey) error
	RetireSigningKeyFn func(ctx context.Context, id string, at time.Time) error
}

// FindSigningKeys calls FindSigningKeysFn.
func (s *SigningKeyService) FindSigningKeys(ctx context.Context, since time.Time) ([]*latchkey.SigningKey, error) {
	return s.FindSigningKeysFn(ctx, since)
}

// CreateSigningKey calls CreateSigningKeyFn.
func (s *SigningKeyService) CreateSigningKey(ctx context.Context, key *latchkey.SigningKey) error {
	return s.CreateSigningKeyFn(ctx, key)
}

// RetireSigningKey calls RetireSigningKeyFn.
func (s *SigningKeyService) RetireSigningKey(ctx context.Context, id string, at time.Time) error {
	return s.RetireSigningKeyFn(ctx, id, at)
}
