package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// createTenant fills in the tenant's slug (from its name, when empty), id
// and creation time, validates it and inserts it. Returns ECONFLICT for a
// taken slug.
func createTenant(ctx context.Context, tx *Tx, t *latchkey.Tenant) error {
	if t.Slug == "" {
		t.Slug = latchkey.Slugify(t.Name)
	}
	if err := t.Validate(); err != nil {
		return err
	}
	id, err := tx.db.newID()
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tenants (id, slug, name, created_at) VALUES (?, ?, ?, ?)`,
		id, t.Slug, t.Name, Time(tx.Now())); err != nil {
		return fmt.Errorf("create tenant: %w", formatError(err, fmt.Sprintf("Tenant slug %q is taken.", t.Slug)))
	}
	t.ID, t.CreatedAt = id, tx.Now()
	return nil
}

var _ latchkey.TenantService = (*TenantService)(nil)

// TenantService reads and creates tenants.
type TenantService struct {
	db *DB
}

// NewTenantService returns a TenantService on db.
func NewTenantService(db *DB) *TenantService {
	return &TenantService{db: db}
}

// FindTenantByID returns a tenant the caller is a member of. Returns
// ENOTFOUND if there is none or the caller is not a member.
func (s *TenantService) FindTenantByID(ctx context.Context, id string) (*latchkey.Tenant, error) {
	a, tx, err := s.db.beginAs(ctx, requireAuth, false)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	tenants, _, err := findTenants(ctx, tx, a, latchkey.TenantFilter{ID: &id, Limit: 1})
	if err != nil {
		return nil, err
	} else if len(tenants) == 0 {
		return nil, latchkey.Errorf(latchkey.ENOTFOUND, "Tenant not found.")
	}
	return tenants[0], nil
}

// FindTenants returns the tenants the caller is a member of (a service
// account: its own; a TENANT or RUNNER token: the one it is bound to) that
// match filter, and their count before Offset and Limit. Returns EINVALID
// for an OrderBy field other than id, slug, name or created_at.
func (s *TenantService) FindTenants(ctx context.Context, filter latchkey.TenantFilter) ([]*latchkey.Tenant, int, error) {
	a, tx, err := s.db.beginAs(ctx, requireAuth, false)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	return findTenants(ctx, tx, a, filter)
}

// tenantOrderColumn whitelists the fields tenants may be ordered by.
func tenantOrderColumn(field string) (string, bool) {
	switch field {
	case "id", "slug", "name", "created_at":
		return "tenants." + field, true
	}
	return "", false
}

// formatOrderBy returns an ORDER BY clause (with a leading space) for
// orders, mapping each field to a column through column (a whitelist) and
// appending tiebreak. Returns EINVALID for a field column rejects.
func formatOrderBy(orders []latchkey.SortOrder, column func(field string) (string, bool), tiebreak string) (string, error) {
	var parts []string
	for _, o := range orders {
		col, ok := column(o.Field)
		if !ok {
			return "", latchkey.Errorf(latchkey.EINVALID, "Cannot order by %q.", o.Field)
		}
		if o.Desc {
			col += " DESC"
		}
		parts = append(parts, col)
	}
	parts = append(parts, tiebreak)
	return " ORDER BY " + strings.Join(parts, ", "), nil
}

func findTenants(ctx context.Context, tx *Tx, a *latchkey.Auth, filter latchkey.TenantFilter) ([]*latchkey.Tenant, int, error) {
	orderBy, err := formatOrderBy(filter.OrderBy, tenantOrderColumn, "tenants.created_at, tenants.id")
	if err != nil {
		return nil, 0, err
	}
	where := []string{`tenants.id IN (SELECT tenant_id FROM memberships WHERE user_id = ?)`}
	args := []any{a.User.ID}
	if a.TokenScope == latchkey.TokenScopeTenant || a.TokenScope == latchkey.TokenScopeRunner {
		where, args = append(where, `tenants.id = ?`), append(args, a.TenantID)
	}
	if v := filter.ID; v != nil {
		where, args = append(where, `tenants.id = ?`), append(args, *v)
	}
	if filter.IDs != nil {
		if len(filter.IDs) == 0 {
			return []*latchkey.Tenant{}, 0, nil
		}
		where, args = appendIn(where, args, `tenants.id`, filter.IDs)
	}
	if v := filter.Slug; v != nil {
		where, args = append(where, `tenants.slug = ?`), append(args, *v)
	}
	if v := filter.Name; v != nil {
		where, args = append(where, `tenants.name = ?`), append(args, *v)
	}
	cond := strings.Join(where, " AND ")

	query := `SELECT tenants.id, tenants.slug, tenants.name, tenants.created_at FROM tenants WHERE ` + cond +
		orderBy + formatLimitOffset(filter.Limit, filter.Offset)
	return findPage(ctx, tx, "tenants", "tenants", cond, args, query, func(rows *sql.Rows) (*latchkey.Tenant, error) {
		var t latchkey.Tenant
		var createdAt Time
		if err := rows.Scan(&t.ID, &t.Slug, &t.Name, &createdAt); err != nil {
			return nil, fmt.Errorf("scan tenant: %w", err)
		}
		t.CreatedAt = time.Time(createdAt)
		return &t, nil
	})
}

// CreateTenant creates a tenant and makes the caller its TENANT_ADMIN. The
// caller must be a human TENANT_ADMIN of its acting tenant, not using a
// TENANT or RUNNER token (EFORBIDDEN). An empty slug is derived from the
// name. Returns EINVALID for a bad name or slug and ECONFLICT for a taken
// slug.
func (s *TenantService) CreateTenant(ctx context.Context, tenant *latchkey.Tenant) error {
	a, err := requireAuth(ctx)
	if err != nil {
		return err
	}
	if err := requireHuman(a); err != nil {
		return err
	} else if err := requireNotScopedToken(a); err != nil {
		return err
	} else if err := requireAdmin(a); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := createTenant(ctx, tx, tenant); err != nil {
		return err
	}
	if _, err := insertMembership(ctx, tx, tenant.ID, a.User.ID, latchkey.RoleTenantAdmin); err != nil {
		return err
	}
	if err := recordAudit(ctx, tx, a, tenantAudit(tenant, a.User)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create tenant: commit: %w", err)
	}
	return nil
}

// tenantAudit is the audit record of creating tenant t with admin as its
// first TENANT_ADMIN. It goes in the new tenant's log: its admins are the
// ones who may read it.
func tenantAudit(t *latchkey.Tenant, admin *latchkey.User) auditRecord {
	return auditRecord{
		tenantID: t.ID, action: latchkey.AuditTenantCreate,
		targetType: latchkey.AuditTargetTenant, targetID: t.ID,
		details: map[string]string{"slug": t.Slug, "name": t.Name, "admin_user_id": admin.ID, "admin_email": admin.Email},
	}
}
