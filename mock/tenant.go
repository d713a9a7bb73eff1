package mock

import (
	"context"

	"github.com/latchkey/latchkey"
)

var _ latchkey.TenantService = (*TenantService)(nil)

// TenantService is a mock of latchkey.TenantService.
type TenantService struct {
	FindTenantByIDFn func(ctx context.Context, id string) (*latchkey.Tenant, error)
	FindTenantsFn    func(ctx context.Context, filter latchkey.TenantFilter) ([]*latchkey.Tenant, int, error)
	CreateTenantFn   func(ctx context.Context, tenant *latchkey.Tenant) error
}

// FindTenantByID calls FindTenantByIDFn.
func (s *TenantService) FindTenantByID(ctx context.Context, id string) (*latchkey.Tenant, error) {
	return s.FindTenantByIDFn(ctx, id)
}

// FindTenants calls FindTenantsFn.
func (s *TenantService) FindTenants(ctx context.Context, filter latchkey.TenantFilter) ([]*latchkey.Tenant, int, error) {
	return s.FindTenantsFn(ctx, filter)
}

// CreateTenant calls CreateTenantFn.
func (s *TenantService) CreateTenant(ctx context.Context, tenant *latchkey.Tenant) error {
	return s.CreateTenantFn(ctx, tenant)
}
