package mock

import (
	"context"

	"github.com/latchkey/latchkey"
)

var _ latchkey.InvitationService = (*InvitationService)(nil)

// InvitationService is a mock of latchkey.InvitationService.
type InvitationService struct {
	FindInvitationsFn   func(ctx context.Context, filter latchkey.InvitationFilter) ([]*latchkey.Invitation, int, error)
	DeleteInvitationFn  func(ctx context.Context, id string) error
	FindMyInvitationsFn func(ctx context.Context, limit int) ([]*latchkey.Invitation, error)
	AcceptInvitationFn  func(ctx context.Context, id string) (*latchkey.Membership, error)
	DeclineInvitationFn func(ctx context.Context, id string) error
}

// FindInvitations calls FindInvitationsFn.
func (s *InvitationService) FindInvitations(ctx context.Context, filter latchkey.InvitationFilter) ([]*latchkey.Invitation, int, error) {
	return s.FindInvitationsFn(ctx, filter)
}

// DeleteInvitation calls DeleteInvitationFn.
func (s *InvitationService) DeleteInvitation(ctx context.Context, id string) error {
	return s.DeleteInvitationFn(ctx, id)
}

// FindMyInvitations calls FindMyInvitationsFn.
func (s *InvitationService) FindMyInvitations(ctx context.Context, limit int) ([]*latchkey.Invitation, error) {
	return s.FindMyInvitationsFn(ctx, limit)
}

// AcceptInvitation calls AcceptInvitationFn.
func (s *InvitationService) AcceptInvitation(ctx context.Context, id string) (*latchkey.Membership, error) {
	return s.AcceptInvitationFn(ctx, id)
}

// DeclineInvitation calls DeclineInvitationFn.
func (s *InvitationService) DeclineInvitation(ctx context.Context, id string) error {
	return s.DeclineInvitationFn(ctx, id)
}
