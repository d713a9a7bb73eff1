package latchkey

import (
	"context"
	"regexp"
	"time"
)

// Tenant is an isolated team: every key, token, service account and
// membership belongs to exactly one, and nothing crosses between them.
type Tenant struct {
	ID        string // UUID
	Slug      string // unique, URL-safe
	Name      string
	CreatedAt time.Time
}

var slugRE = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

// Validate returns EINVALID if the tenant's name or slug is unacceptable.
func (t *Tenant) Validate() error {
	if err := ValidateName("Tenant name", t.Name, MaxNameLength); err != nil {
		return err
	}
	if !slugRE.MatchString(t.Slug) || len(t.Slug) > 100 {
		return Errorf(EINVALID, "Invalid tenant slug %q: use lower-case letters, digits and single hyphens.", t.Slug)
	}
	return nil
}

// Slugify turns a name into a slug: lower-case letters and digits joined by
// single hyphens. It returns "" when name has no letters or digits.
func Slugify(name string) string {
	var out []byte
	dash := false
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			out = append(out, byte(r))
			dash = false
		case r >= 'A' && r <= 'Z':
			out = append(out, byte(r-'A'+'a'))
			dash = false
		default:
			if len(out) > 0 && !dash {
				out = append(out, '-')
				dash = true
			}
		}
	}
	if dash {
		out = out[:len(out)-1]
	}
	if len(out) > 100 {
		out = out[:100]
	}
	return string(out)
}

// SortOrder is a field and a direction, as Hasura's order_by gives them.
type SortOrder struct {
	Field string // e.g. "slug"
	Desc  bool
}

// TenantFilter selects tenants. Nil fields do not filter.
type TenantFilter struct {
	ID   *string
	IDs  []string // nil: no filter; empty: matches nothing
	Slug *string
	Name *string

	OrderBy []SortOrder // allowed fields: id, slug, name, created_at
	Offset  int
	Limit   int
}

// TenantService reads and creates tenants.
type TenantService interface {
	// FindTenantByID returns a tenant the caller belongs to. Returns
	// ENOTFOUND if it does not exist or the caller is not a member.
	FindTenantByID(ctx context.Context, id string) (*Tenant, error)

	// FindTenants returns the caller's tenants that match filter, and the
	// count before Offset and Limit. A service account sees its one tenant.
	FindTenants(ctx context.Context, filter TenantFilter) ([]*Tenant, int, error)

	// CreateTenant creates a tenant and makes the caller its TENANT_ADMIN.
	// Only a human TENANT_ADMIN of the acting tenant, not using a scoped
	// legacy token, may create tenants (EFORBIDDEN otherwise). An empty slug is derived from the name.
	// Returns ECONFLICT if the slug is taken.
	CreateTenant(ctx context.Context, tenant *Tenant) error
}
