package latchkey

import (
	"context"
	"time"
)

// RevokedAPIKey is the record of a revoked API key. Revoking deletes the key
// itself, so it can never authenticate again, and keeps this record, which
// holds nothing secret, for the key lists' "Revoked" view.
type RevokedAPIKey struct {
	ID   string
	Name string

	// UserID is the owner, who may be gone (a deleted service account);
	// OwnerKind is its kind and OwnerName a service account's name.
	UserID    string
	OwnerKind UserKind
	OwnerName string

	DefaultTenantID string
	CreatedByUserID string
	CreatedAt       time.Time

	RevokedAt time.Time
	// RevokedByUserID is who revoked it; empty for an operator command.
	RevokedByUserID string
}

// RevokedAPIKeyFilter selects revoked keys. Nil fields do not filter.
type RevokedAPIKeyFilter struct {
	UserID *string

	// NameContains keeps keys whose name contains it, ignoring case.
	NameContains *string

	Offset int
	Limit  int
}

// RevokedAPIKeyService reads the record of revoked keys.
type RevokedAPIKeyService interface {
	// FindRevokedAPIKeys returns, newest revocation first, the caller's
	// own revoked keys and, for a human TENANT_ADMIN, those of the acting
	// tenant's service accounts (deleted ones included), and their count
	// before Offset and Limit. TENANT and RUNNER tokens get EFORBIDDEN.
	FindRevokedAPIKeys(ctx context.Context, filter RevokedAPIKeyFilter) ([]*RevokedAPIKey, int, error)
}
