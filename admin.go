package latchkey

import "context"

// BootstrapInput describes the first tenant and its admin.
type BootstrapInput struct {
	Email      string
	Password   string // optional; without one the admin signs in to the UI after a password reset
	TenantName string
	TenantSlug string // empty: derived from TenantName
}

// BootstrapResult is what Bootstrap created. Secret is the admin's API key
// text, to be printed once.
type BootstrapResult struct {
	Tenant *Tenant
	User   *User
	APIKey *APIKey
	Secret string
}

// BootstrapService creates the first tenant, admin and key. It needs no
// caller: only `latchkey server` (on an empty database) and `latchkey admin
// init` use it, in-process.
type BootstrapService interface {
	// NeedsBootstrap reports whether the database has no users yet.
	NeedsBootstrap(ctx context.Context) (bool, error)

	// Bootstrap creates a tenant, a human user who is its TENANT_ADMIN
	// (or adds an existing user with that email as its admin) and a
	// personal API key for that user, in one transaction. Returns
	// ECONFLICT if the slug is taken, EINVALID for bad input.
	Bootstrap(ctx context.Context, in BootstrapInput) (*BootstrapResult, error)
}
