package mock

import (
	"context"

	"github.com/latchkey/latchkey"
)

var _ latchkey.MembershipService = (*MembershipService)(nil)

// MembershipService is a mock of latchkey.MembershipService.
type MembershipService struct {
	FindMembershipsFn      func(ctx context.Context, filter latchkey.MembershipFilter) ([]*latchkey.Membership, int, error)
	CreateMembershipFn     func(ctx context.Context, in latchkey.MembershipCreate) (*latchkey.Membership, *latchkey.Invitation, error)
	UpdateMembershipRoleFn func(ctx context.Context, id string, role latchkey.Role) (*latchkey.Membership, error)
	DeleteMembershipFn     func(ctx context.Context, id string) error
}

// FindMemberships calls FindMembershipsFn.
func (s *MembershipService) FindMemberships(ctx context.Context, filter latchkey.MembershipFilter) ([]*latchkey.Membership, int, error) {
	return s.FindMembershipsFn(ctx, filter)
}

// CreateMembership calls CreateMembershipFn.
func (s *MembershipService) CreateMembership(ctx context.Context, in latchkey.MembershipCreate) (*latchkey.Membership, *latchkey.Invitation, error) {
	return s.CreateMembershipFn(ctx, in)
}

// UpdateMembershipRole calls UpdateMembershipRoleFn.
func (s *MembershipService) UpdateMembershipRole(ctx context.Context, id string, role latchkey.Role) (*latchkey.Membership, error) {
	return s.UpdateMembershipRoleFn(ctx, id, role)
}

// DeleteMembership calls DeleteMembershipFn.
func (s *MembershipService) DeleteMembership(ctx context.Context, id string) error {
	return s.DeleteMembershipFn(ctx, id)
}
