package mock

import (
	"context"
	"time"

	"github.com/latchkey/latchkey"
)

var _ latchkey.UserService = (*UserService)(nil)

// UserService is a mock of latchkey.UserService.
type UserService struct {
	FindUserByIDFn         func(ctx context.Context, id string) (*latchkey.User, error)
	FindUsersFn            func(ctx context.Context, filter latchkey.UserFilter) ([]*latchkey.User, int, error)
	AuthenticatePasswordFn func(ctx context.Context, email, password string) (*latchkey.User, error)
	SetPasswordFn          func(ctx context.Context, current, password string) error
	CreatePasswordResetFn  func(ctx context.Context, userID string) (string, time.Time, error)
	ResetPasswordFn        func(ctx context.Context, secret, password string) (*latchkey.User, error)
}

// FindUserByID calls FindUserByIDFn.
func (s *UserService) FindUserByID(ctx context.Context, id string) (*latchkey.User, error) {
	return s.FindUserByIDFn(ctx, id)
}

// FindUsers calls FindUsersFn.
func (s *UserService) FindUsers(ctx context.Context, filter latchkey.UserFilter) ([]*latchkey.User, int, error) {
	return s.FindUsersFn(ctx, filter)
}

// AuthenticatePassword calls AuthenticatePasswordFn.
func (s *UserService) AuthenticatePassword(ctx context.Context, email, password string) (*latchkey.User, error) {
	return s.AuthenticatePasswordFn(ctx, email, password)
}

// SetPassword calls SetPasswordFn.
func (s *UserService) SetPassword(ctx context.Context, current, password string) error {
	return s.SetPasswordFn(ctx, current, password)
}

// CreatePasswordReset calls CreatePasswordResetFn.
func (s *UserService) CreatePasswordReset(ctx context.Context, userID string) (string, time.Time, error) {
	return s.CreatePasswordResetFn(ctx, userID)
}

// ResetPassword calls ResetPasswordFn.
func (s *UserService) ResetPassword(ctx context.Context, secret, password string) (*latchkey.User, error) {
	return s.ResetPasswordFn(ctx, secret, password)
}
