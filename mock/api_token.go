package mock

import (
	"context"

	"github.com/latchkey/latchkey"
)

var _ latchkey.APITokenService = (*APITokenService)(nil)

// APITokenService is a mock of latchkey.APITokenService.
type APITokenService struct {
	FindAPITokensFn  func(ctx context.Context, filter latchkey.APITokenFilter) ([]*latchkey.APIToken, int, error)
	CreateAPITokenFn func(ctx context.Context, token *latchkey.APIToken) (string, error)
	DeleteAPITokenFn func(ctx context.Context, id string) error
}

// FindAPITokens calls FindAPITokensFn.
func (s *APITokenService) FindAPITokens(ctx context.Context, filter latchkey.APITokenFilter) ([]*latchkey.APIToken, int, error) {
	return s.FindAPITokensFn(ctx, filter)
}

// CreateAPIToken calls CreateAPITokenFn.
func (s *APITokenService) CreateAPIToken(ctx context.Context, token *latchkey.APIToken) (string, error) {
	return s.CreateAPITokenFn(ctx, token)
}

// DeleteAPIToken calls DeleteAPITokenFn.
func (s *APITokenService) DeleteAPIToken(ctx context.Context, id string) error {
	return s.DeleteAPITokenFn(ctx, id)
}
