package mock

import (
	"context"

	"github.com/latchkey/latchkey"
)

var _ latchkey.ServiceAccountService = (*ServiceAccountService)(nil)

// ServiceAccountService is a mock of latchkey.ServiceAccountService.
type ServiceAccountService struct {
	FindServiceAccountsFn  func(ctx context.Context, filter latchkey.ServiceAccountFilter) ([]*latchkey.ServiceAccount, int, error)
	CreateServiceAccountFn func(ctx context.Context, sa *latchkey.ServiceAccount) error
	DeleteServiceAccountFn func(ctx context.Context, id string) error
	UpdateRoleFn           func(ctx context.Context, id string, role latchkey.Role) (*latchkey.ServiceAccount, error)
}

// UpdateServiceAccountRole calls UpdateRoleFn.
func (s *ServiceAccountService) UpdateServiceAccountRole(ctx context.Context, id string, role latchkey.Role) (*latchkey.ServiceAccount, error) {
	return s.UpdateRoleFn(ctx, id, role)
}

// FindServiceAccounts calls FindServiceAccountsFn.
func (s *ServiceAccountService) FindServiceAccounts(ctx context.Context, filter latchkey.ServiceAccountFilter) ([]*latchkey.ServiceAccount, int, error) {
	return s.FindServiceAccountsFn(ctx, filter)
}

// CreateServiceAccount calls CreateServiceAccountFn.
func (s *ServiceAccountService) CreateServiceAccount(ctx context.Context, sa *latchkey.ServiceAccount) error {
	return s.CreateServiceAccountFn(ctx, sa)
}

// DeleteServiceAccount calls DeleteServiceAccountFn.
func (s *ServiceAccountService) DeleteServiceAccount(ctx context.Context, id string) error {
	return s.DeleteServiceAccountFn(ctx, id)
}
