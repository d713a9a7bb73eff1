package latchkey

import (
	"context"
	"time"
)

// Invitation asks an existing user to join a tenant. Adding a user who
// already has an account (in any tenant) does not make them a member: it
// creates a pending invitation, which the user accepts or declines after
// signing in. Until then the tenant's admins see only what they typed
// (Invitee) and that the invitation is pending: nothing about the user.
type Invitation struct {
	ID       string
	TenantID string

	// Invitee is what the inviting admin typed: an email or a user id.
	Invitee string
	Role    Role

	InvitedByUserID string
	CreatedAt       time.Time

	// TenantName is the tenant's name, filled in for the invitee only
	// (FindMyInvitations).
	TenantName string
}

// InvitationFilter selects the pending invitations of the acting tenant.
// Nil fields do not filter.
type InvitationFilter struct {
	ID *string

	Offset int
	Limit  int
}

// InvitationService manages pending invitations. They are created by
// MembershipService.CreateMembership.
type InvitationService interface {
	// FindInvitations returns the pending invitations of the caller's
	// acting tenant, oldest first, and their count before Offset and
	// Limit. Human TENANT_ADMINs only (EFORBIDDEN).
	FindInvitations(ctx context.Context, filter InvitationFilter) ([]*Invitation, int, error)

	// DeleteInvitation withdraws a pending invitation of the acting
	// tenant. Human TENANT_ADMINs only (EFORBIDDEN); ENOTFOUND for one of
	// another tenant.
	DeleteInvitation(ctx context.Context, id string) error

	// FindMyInvitations returns the caller's own pending invitations (at
	// most limit), oldest first, with TenantName. Humans only; TENANT and
	// RUNNER tokens get EFORBIDDEN.
	FindMyInvitations(ctx context.Context, limit int) ([]*Invitation, error)

	// AcceptInvitation makes the caller a member of the invitation's
	// tenant with its role, and deletes the invitation. ENOTFOUND unless
	// the invitation is the caller's; ECONFLICT if already a member.
	AcceptInvitation(ctx context.Context, id string) (*Membership, error)

	// DeclineInvitation deletes the caller's invitation. ENOTFOUND unless
	// it is the caller's.
	DeclineInvitation(ctx context.Context, id string) error
}
