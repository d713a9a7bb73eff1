package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

var _ latchkey.ServiceAccountService = (*ServiceAccountService)(nil)

// ServiceAccountService manages service accounts: a users row (kind
// SERVICE_ACCOUNT) plus a membership in its one tenant holding its role.
type ServiceAccountService struct {
	db *DB
}

// NewServiceAccountService returns a ServiceAccountService on db.
func NewServiceAccountService(db *DB) *ServiceAccountService {
	return &ServiceAccountService{db: db}
}

// FindServiceAccounts lists the service accounts of the caller's acting
// tenant; a TenantID filter naming another tenant matches nothing. The
// caller must be a human TENANT_ADMIN there (EFORBIDDEN; service accounts
// never manage service accounts, whatever their role). Returns the count
// before Offset and Limit.
func (s *ServiceAccountService) FindServiceAccounts(ctx context.Context, filter latchkey.ServiceAccountFilter) ([]*latchkey.ServiceAccount, int, error) {
	a, err := requireAuth(ctx)
	if err != nil {
		return nil, 0, err
	} else if err := requireHuman(a); err != nil {
		return nil, 0, err
	} else if err := requireAdmin(a); err != nil {
		return nil, 0, err
	}
	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	return findServiceAccounts(ctx, tx, a.TenantID, filter)
}

func findServiceAccounts(ctx context.Context, tx *Tx, tenantID string, filter latchkey.ServiceAccountFilter) ([]*latchkey.ServiceAccount, int, error) {
	if filter.TenantID != nil && *filter.TenantID != tenantID {
		return []*latchkey.ServiceAccount{}, 0, nil
	}
	where := []string{`users.kind = ?`, `users.tenant_id = ?`}
	args := []any{string(latchkey.UserKindServiceAccount), tenantID}
	if v := filter.ID; v != nil {
		where, args = append(where, `users.id = ?`), append(args, *v)
	}
	if v := filter.Name; v != nil {
		where, args = append(where, `users.name = ?`), append(args, *v)
	}
	if v := filter.NameContains; v != nil && *v != "" {
		where, args = append(where, `LOWER(users.name) LIKE ? ESCAPE '\'`), append(args, containsPattern(*v))
	}
	cond := strings.Join(where, " AND ")
	from := ` FROM users JOIN memberships ON memberships.user_id = users.id AND memberships.tenant_id = users.tenant_id WHERE `

	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*)`+from+cond, args...).Scan(&n); err != nil {
		return nil, 0, fmt.Errorf("count service accounts: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT users.id, users.tenant_id, users.name, memberships.role, users.created_by_user_id, users.created_at`+from+cond+
		` ORDER BY users.created_at, users.id`+formatLimitOffset(filter.Limit, filter.Offset), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("find service accounts: %w", err)
	}
	sas, err := collect(rows, func(rows *sql.Rows) (*latchkey.ServiceAccount, error) {
		var sa latchkey.ServiceAccount
		var role string
		var createdBy sql.NullString
		var createdAt Time
		if err := rows.Scan(&sa.ID, &sa.TenantID, &sa.Name, &role, &createdBy, &createdAt); err != nil {
			return nil, fmt.Errorf("scan service account: %w", err)
		}
		sa.Role, sa.CreatedByUserID, sa.CreatedAt = latchkey.Role(role), createdBy.String, time.Time(createdAt)
		return &sa, nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("find service accounts: %w", err)
	}
	return sas, n, nil
}

// CreateServiceAccount creates a service account in the caller's acting
// tenant (sa.TenantID, if set, must be it: EFORBIDDEN otherwise) and fills
// in its ID, TenantID, CreatedByUserID and CreatedAt. The caller must be a
// human TENANT_ADMIN there, not using a TENANT or RUNNER token (EFORBIDDEN).
// An empty role means USER; a bad name or role is EINVALID.
func (s *ServiceAccountService) CreateServiceAccount(ctx context.Context, sa *latchkey.ServiceAccount) error {
	a, err := requireUnscopedHumanAdmin(ctx)
	if err != nil {
		return err
	}
	if sa.TenantID != "" && sa.TenantID != a.TenantID {
		return errSwitchTenant()
	}
	if sa.Role == "" {
		sa.Role = latchkey.RoleUser
	}
	if err := sa.Validate(); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := lockRow(ctx, tx, "tenants", a.TenantID); err != nil {
		return fmt.Errorf("create service account: %w", err)
	}
	var taken int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE kind = ? AND tenant_id = ? AND name = ?`,
		string(latchkey.UserKindServiceAccount), a.TenantID, sa.Name).Scan(&taken); err != nil {
		return fmt.Errorf("create service account: %w", err)
	} else if taken > 0 {
		return latchkey.Errorf(latchkey.ECONFLICT, "A service account named “%s” already exists in this tenant. Choose another name.", sa.Name)
	}
	id, err := tx.db.newID()
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, kind, email, name, password_hash, tenant_id, default_tenant_id, created_by_user_id, created_at)
		VALUES (?, ?, NULL, ?, NULL, ?, NULL, ?, ?)`,
		id, string(latchkey.UserKindServiceAccount), sa.Name, a.TenantID, a.User.ID, Time(tx.Now())); err != nil {
		return fmt.Errorf("create service account: %w", err)
	}
	if _, err := insertMembership(ctx, tx, a.TenantID, id, sa.Role); err != nil {
		return err
	}
	if err := recordAudit(ctx, tx, a, auditRecord{
		tenantID: a.TenantID, action: latchkey.AuditServiceAccountCreate,
		targetType: latchkey.AuditTargetServiceAccount, targetID: id,
		details: map[string]string{"name": sa.Name, "role": string(sa.Role)},
	}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create service account: commit: %w", err)
	}
	sa.ID, sa.TenantID, sa.CreatedByUserID, sa.CreatedAt = id, a.TenantID, a.User.ID, tx.Now()
	return nil
}

// DeleteServiceAccount deletes a service account of the caller's acting
// tenant, and with it its membership, keys and refresh tokens, so its
// credentials stop working at once. Same callers as CreateServiceAccount
// (EFORBIDDEN). Returns ENOTFOUND for an account of another tenant.
func (s *ServiceAccountService) DeleteServiceAccount(ctx context.Context, id string) error {
	a, tx, err := s.db.beginAs(ctx, requireUnscopedHumanAdmin, true)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Its keys go with it (ON DELETE CASCADE); keep their record.
	if err := recordRevokedAPIKeys(ctx, tx, a, `api_keys.user_id = ?`, id); err != nil {
		return err
	}
	var name string
	err = tx.QueryRowContext(ctx, `DELETE FROM users WHERE id = ? AND kind = ? AND tenant_id = ? RETURNING name`,
		id, string(latchkey.UserKindServiceAccount), a.TenantID).Scan(&name)
	if errNoRows(err) {
		return latchkey.Errorf(latchkey.ENOTFOUND, "Service account not found.")
	} else if err != nil {
		return fmt.Errorf("delete service account: %w", err)
	}
	if err := recordAudit(ctx, tx, a, auditRecord{
		tenantID: a.TenantID, action: latchkey.AuditServiceAccountDelete,
		targetType: latchkey.AuditTargetServiceAccount, targetID: id,
		details: map[string]string{"name": name},
	}); err != nil {
		return err
	}
	if err := tx.publish(ctx, latchkey.Event{Type: latchkey.EventUserDeleted, UserID: id, TenantID: a.TenantID}); err != nil {
		return fmt.Errorf("delete service account: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete service account: commit: %w", err)
	}
	return nil
}

// UpdateServiceAccountRole changes the role of a service account of the
// caller's acting tenant. Same callers as CreateServiceAccount (EFORBIDDEN).
// Returns ENOTFOUND for an account of another tenant, EINVALID for a bad
// role. The change is audited, and every replica's caches hear of it, so
// the account's keys act with the new role at once.
func (s *ServiceAccountService) UpdateServiceAccountRole(ctx context.Context, id string, role latchkey.Role) (*latchkey.ServiceAccount, error) {
	a, err := requireUnscopedHumanAdmin(ctx)
	if err != nil {
		return nil, err
	}
	if !role.Valid() {
		return nil, latchkey.Errorf(latchkey.EINVALID, "Invalid role %q.", role)
	}
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	sas, _, err := findServiceAccounts(ctx, tx, a.TenantID, latchkey.ServiceAccountFilter{ID: &id})
	if err != nil {
		return nil, err
	} else if len(sas) == 0 {
		return nil, latchkey.Errorf(latchkey.ENOTFOUND, "Service account not found.")
	}
	sa := sas[0]
	previous := sa.Role
	if _, err := tx.ExecContext(ctx, `UPDATE memberships SET role = ? WHERE user_id = ? AND tenant_id = ?`, string(role), sa.ID, sa.TenantID); err != nil {
		return nil, fmt.Errorf("update service account role: %w", err)
	}
	sa.Role = role
	if err := recordAudit(ctx, tx, a, auditRecord{
		tenantID: a.TenantID, action: latchkey.AuditServiceAccountRole,
		targetType: latchkey.AuditTargetServiceAccount, targetID: sa.ID,
		details: map[string]string{"name": sa.Name, "role": string(role), "previous_role": string(previous)},
	}); err != nil {
		return nil, err
	}
	if err := tx.publish(ctx, latchkey.Event{Type: latchkey.EventMembershipChanged, UserID: sa.ID, TenantID: sa.TenantID}); err != nil {
		return nil, fmt.Errorf("update service account role: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("update service account role: commit: %w", err)
	}
	return sa, nil
}
