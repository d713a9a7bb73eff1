package latchkey

import (
	"context"
	"net/mail"
	"strings"
	"time"
)

// UserKind tells a human user from a service account.
type UserKind string

// User kinds.
const (
	UserKindHuman          UserKind = "USER"
	UserKindServiceAccount UserKind = "SERVICE_ACCOUNT"
)

// User is a principal: a person who signs in with an email and a password,
// or a service account that only ever authenticates with its API keys.
type User struct {
	ID   string
	Kind UserKind

	// Email is set for humans and empty for service accounts. It is stored
	// lower-cased and unique.
	Email string

	// Name is a display name (a service account's name).
	Name string

	// TenantID is the one tenant a service account belongs to; empty for humans.
	TenantID string

	// DefaultTenantID is the tenant of the user's default membership: the
	// tenant a new personal key defaults to when none is chosen.
	DefaultTenantID string

	CreatedAt time.Time
}

// IsServiceAccount reports whether u is a service account.
func (u *User) IsServiceAccount() bool { return u != nil && u.Kind == UserKindServiceAccount }

// NormalizeEmail lower-cases and trims an email address.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// ValidateEmail returns EINVALID unless email is a bare address.
func ValidateEmail(email string) error {
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		return Errorf(EINVALID, "Invalid email address %q.", email)
	}
	return nil
}

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 10

// ValidatePassword returns EINVALID for passwords too short or too long to accept.
func ValidatePassword(password string) error {
	if len(password) < MinPasswordLength {
		return Errorf(EINVALID, "Password must be at least %d characters.", MinPasswordLength)
	}
	if len(password) > 1024 {
		return Errorf(EINVALID, "Password must be at most 1024 characters.")
	}
	return nil
}

// UserFilter selects users. Nil fields do not filter.
type UserFilter struct {
	ID       *string
	Email    *string
	TenantID *string // members of this tenant (humans and service accounts)

	Offset int
	Limit  int
}

// UserService reads and manages human users.
type UserService interface {
	// FindUserByID returns a user the caller can see: the caller itself, or
	// a member of a tenant the caller acts in. Returns ENOTFOUND otherwise.
	FindUserByID(ctx context.Context, id string) (*User, error)

	// FindUsers returns users the caller can see, filtered, and the total
	// count before Offset and Limit. Unauthenticated callers get
	// EUNAUTHENTICATED.
	FindUsers(ctx context.Context, filter UserFilter) ([]*User, int, error)

	// AuthenticatePassword checks an email and password and returns the
	// human user. Returns EUNAUTHENTICATED, with the same message and after
	// the same work, whether the email is unknown or the password wrong.
	AuthenticatePassword(ctx context.Context, email, password string) (*User, error)

	// SetPassword sets the calling user's own password after checking the
	// current one. Returns EUNAUTHENTICATED if current is wrong, EINVALID
	// if the new one is unacceptable.
	SetPassword(ctx context.Context, current, password string) error

	// CreatePasswordReset returns a one-time secret (shown once) with which
	// the user can set a password without the current one. The caller must
	// be a TENANT_ADMIN of the acting tenant, the user a human member of it,
	// and the caller an admin of EVERY tenant the user belongs to (else an
	// admin of tenant A could add B's admin to A and take over B):
	// EFORBIDDEN otherwise. A new reset cancels earlier unused ones.
	CreatePasswordReset(ctx context.Context, userID string) (secret string, expiresAt time.Time, err error)

	// ResetPassword consumes a secret from CreatePasswordReset and sets the
	// password. Needs no caller. Returns EUNAUTHENTICATED for an unknown,
	// used or expired secret.
	ResetPassword(ctx context.Context, secret, password string) (*User, error)
}
