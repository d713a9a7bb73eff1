package mock

import (
	"context"

	"github.com/latchkey/latchkey"
)

var _ latchkey.APIKeyService = (*APIKeyService)(nil)

// APIKeyService is a mock of latchkey.APIKeyService.
type APIKeyService struct {
	FindAPIKeysFn  func(ctx context.Context, filter latchkey.APIKeyFilter) ([]*latchkey.APIKey, int, error)
	CreateAPIKeyFn func(ctx context.Context, key *latchkey.APIKey) (string, error)
	DeleteAPIKeyFn func(ctx context.Context, id string) error
	RotateAPIKeyFn func(ctx context.Context, r *latchkey.APIKeyRotation) (string, error)
}

// FindAPIKeys calls FindAPIKeysFn.
func (s *APIKeyService) FindAPIKeys(ctx context.Context, filter latchkey.APIKeyFilter) ([]*latchkey.APIKey, int, error) {
	return s.FindAPIKeysFn(ctx, filter)
}

// CreateAPIKey calls CreateAPIKeyFn.
func (s *APIKeyService) CreateAPIKey(ctx context.Context, key *latchkey.APIKey) (string, error) {
	return s.CreateAPIKeyFn(ctx, key)
}

// DeleteAPIKey calls DeleteAPIKeyFn.
func (s *APIKeyService) DeleteAPIKey(ctx context.Context, id string) error {
	return s.DeleteAPIKeyFn(ctx, id)
}

// RotateAPIKey calls RotateAPIKeyFn.
func (s *APIKeyService) RotateAPIKey(ctx context.Context, r *latchkey.APIKeyRotation) (string, error) {
	return s.RotateAPIKeyFn(ctx, r)
}
