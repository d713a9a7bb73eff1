package latchkey

import (
	"context"
	"time"
)

// ServiceAccount is a non-human principal that belongs to exactly one
// tenant, with a role there. Agents and the flow runs they start use its
// API keys; only admins of its tenant mint or revoke them.
type ServiceAccount struct {
	ID              string
	TenantID        string
	Name            string
	Role            Role
	CreatedByUserID string
	CreatedAt       time.Time
}

// Validate returns EINVALID for a bad name (see ValidateName) or role.
func (sa *ServiceAccount) Validate() error {
	if err := ValidateName("Service account name", sa.Name, MaxNameLength); err != nil {
		return err
	}
	if !sa.Role.Valid() {
		return Errorf(EINVALID, "Invalid role %q.", sa.Role)
	}
	return nil
}

// ServiceAccountFilter selects service accounts. Nil fields do not filter.
type ServiceAccountFilter struct {
	ID       *string
	TenantID *string
	Name     *string

	// NameContains keeps accounts whose name contains it, ignoring case.
	NameContains *string

	Offset int
	Limit  int
}

// ServiceAccountService manages service accounts. Every method is for human
// TENANT_ADMINs of the account's tenant only (EFORBIDDEN for other members
// and for service accounts, whatever their role). Changes are recorded in
// the tenant's audit log.
type ServiceAccountService interface {
	// FindServiceAccounts lists the service accounts of the caller's acting
	// tenant (a filter naming another tenant matches nothing).
	FindServiceAccounts(ctx context.Context, filter ServiceAccountFilter) ([]*ServiceAccount, int, error)

	// CreateServiceAccount creates a service account in the caller's acting
	// tenant (sa.TenantID, if set, must be that tenant). An empty role
	// means USER. A name another service account of the tenant has is
	// ECONFLICT.
	CreateServiceAccount(ctx context.Context, sa *ServiceAccount) error

	// DeleteServiceAccount deletes the account and revokes all its keys at once.
	DeleteServiceAccount(ctx context.Context, id string) error

	// UpdateServiceAccountRole changes the account's role in its tenant;
	// its keys act with the new role at once. EINVALID for a bad role.
	UpdateServiceAccountRole(ctx context.Context, id string, role Role) (*ServiceAccount, error)
}
