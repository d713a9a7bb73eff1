// Package latchkey holds Latchkey's domain: users, tenants, memberships,
// service accounts, API keys, legacy API tokens and access tokens, the
// service interfaces that store and check them, and the error type every
// layer speaks.
//
// The root package depends on the standard library only. Adapters named
// after their technology (sqldb, jwt, graphql, http, cli, ...) implement or
// consume these interfaces, and only cmd/latchkey wires them together.
package latchkey

import (
	"runtime/debug"
	"time"
)

// Role is a member's role in a tenant.
type Role string

// Roles, from most to least privileged.
const (
	RoleTenantAdmin  Role = "TENANT_ADMIN"
	RoleUser         Role = "USER"
	RoleReadOnlyUser Role = "READ_ONLY_USER"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	switch r {
	case RoleTenantAdmin, RoleUser, RoleReadOnlyUser:
		return true
	}
	return false
}

// DefaultAccessTokenTTL is the lifetime of an access token unless configured otherwise.
const DefaultAccessTokenTTL = 10 * time.Minute

// DefaultRefreshTokenTTL is the lifetime of a refresh token unless configured otherwise.
const DefaultRefreshTokenTTL = 7 * 24 * time.Hour

// Version returns the module version the binary was built from, or "(devel)".
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
