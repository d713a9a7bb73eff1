package latchkey

import (
	"context"
	"time"
)

// Membership gives a user a role in a tenant.
type Membership struct {
	ID        string
	TenantID  string
	UserID    string
	Role      Role
	CreatedAt time.Time

	// User is the member, filled in by finds.
	User *User

	// UserCreated is set by CreateMembership when the email named no user
	// and one was created (with no password: it needs a reset link).
	UserCreated bool
}

// MembershipCreate asks for a user to be added to a tenant. Exactly one of
// UserID or Email is set; an unknown email creates a human user with no
// password, who then needs a password reset link (see UserService); an
// existing user is invited (see Invitation).
type MembershipCreate struct {
	TenantID string
	UserID   string
	Email    string
	Role     Role
}

// MembershipFilter selects memberships. Nil fields do not filter.
type MembershipFilter struct {
	ID       *string
	TenantID *string
	UserID   *string
	Role     *Role

	// EmailContains keeps members whose email contains it, ignoring case.
	EmailContains *string

	Offset int
	Limit  int
}

// MembershipService manages who belongs to which tenant with which role.
type MembershipService interface {
	// FindMemberships returns memberships of tenants the caller acts in:
	// human admins see every member of their tenant, others (service
	// accounts included) only their own membership. Returns the count
	// before Offset and Limit. Changes made through this service are
	// recorded in the tenant's audit log.
	FindMemberships(ctx context.Context, filter MembershipFilter) ([]*Membership, int, error)

	// CreateMembership adds a human user to a tenant. Only a TENANT_ADMIN
	// of that tenant may (EFORBIDDEN). An email that names no account
	// creates the user and the membership at once (the Membership is
	// returned, with UserCreated); a user who already has an account is
	// not added but invited: the pending Invitation is returned, and
	// says nothing about the user (see Invitation). Returns ECONFLICT if
	// already a member or already invited, EINVALID for a bad role or
	// email, ENOTFOUND for an unknown user id.
	CreateMembership(ctx context.Context, in MembershipCreate) (*Membership, *Invitation, error)

	// UpdateMembershipRole changes a member's role. Admins of the tenant
	// only. Returns ECONFLICT when it would leave the tenant without a
	// human TENANT_ADMIN.
	UpdateMembershipRole(ctx context.Context, id string, role Role) (*Membership, error)

	// DeleteMembership removes a member. Admins of the tenant only;
	// ECONFLICT when it would remove the last human admin. The user's keys
	// are kept, but from that moment none of their credentials (keys,
	// tokens, access tokens) authenticates in that tenant.
	DeleteMembership(ctx context.Context, id string) error
}
