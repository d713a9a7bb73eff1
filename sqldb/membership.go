package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// insertMembership inserts a membership row, with no authorization check.
// Returns ECONFLICT if the user is already a member.
func insertMembership(ctx context.Context, tx *Tx, tenantID, userID string, role latchkey.Role) (*latchkey.Membership, error) {
	if !role.Valid() {
		return nil, latchkey.Errorf(latchkey.EINVALID, "Invalid role %q.", role)
	}
	id, err := tx.db.newID()
	if err != nil {
		return nil, err
	}
	m := &latchkey.Membership{ID: id, TenantID: tenantID, UserID: userID, Role: role, CreatedAt: tx.Now()}
	if _, err := tx.ExecContext(ctx, `INSERT INTO memberships (id, tenant_id, user_id, role, created_at) VALUES (?, ?, ?, ?, ?)`,
		m.ID, m.TenantID, m.UserID, string(m.Role), Time(m.CreatedAt)); err != nil {
		return nil, fmt.Errorf("create membership: %w", formatError(err, "Already a member of that tenant."))
	}
	return m, nil
}

var _ latchkey.MembershipService = (*MembershipService)(nil)

// MembershipService manages who belongs to which tenant with which role.
type MembershipService struct {
	db *DB
}

// NewMembershipService returns a MembershipService on db.
func NewMembershipService(db *DB) *MembershipService {
	return &MembershipService{db: db}
}

// errSwitchTenant is the answer to a write naming a tenant other than the
// acting one.
func errSwitchTenant() error {
	return latchkey.Errorf(latchkey.EFORBIDDEN, "Switch to that tenant first.")
}

// FindMemberships returns memberships of the caller's acting tenant, with
// User filled in: a human TENANT_ADMIN sees every member (humans and
// service accounts), anyone else (service accounts included) only their own
// membership. A TenantID filter
// naming another tenant matches nothing. Returns the count before Offset
// and Limit. RUNNER tokens get EFORBIDDEN.
func (s *MembershipService) FindMemberships(ctx context.Context, filter latchkey.MembershipFilter) ([]*latchkey.Membership, int, error) {
	a, err := requireAuth(ctx)
	if err != nil {
		return nil, 0, err
	} else if err := requireNotRunner(a); err != nil {
		return nil, 0, err
	}
	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	return findMemberships(ctx, tx, a, filter)
}

const membershipColumns = `memberships.id, memberships.tenant_id, memberships.user_id, memberships.role, memberships.created_at, ` + userColumns

func scanMembership(s rowScanner) (*latchkey.Membership, error) {
	var (
		m                                latchkey.Membership
		u                                latchkey.User
		role, kind                       string
		email, tenantID, defaultTenantID sql.NullString
		createdAt, userCreatedAt         Time
	)
	if err := s.Scan(&m.ID, &m.TenantID, &m.UserID, &role, &createdAt,
		&u.ID, &kind, &email, &u.Name, &tenantID, &defaultTenantID, &userCreatedAt); err != nil {
		return nil, err
	}
	m.Role, m.CreatedAt = latchkey.Role(role), time.Time(createdAt)
	u.Kind, u.Email, u.TenantID, u.DefaultTenantID, u.CreatedAt = latchkey.UserKind(kind), email.String, tenantID.String, defaultTenantID.String, time.Time(userCreatedAt)
	m.User = &u
	return &m, nil
}

func findMemberships(ctx context.Context, tx *Tx, a *latchkey.Auth, filter latchkey.MembershipFilter) ([]*latchkey.Membership, int, error) {
	if filter.TenantID != nil && *filter.TenantID != a.TenantID {
		return []*latchkey.Membership{}, 0, nil
	}
	where := []string{`memberships.tenant_id = ?`}
	args := []any{a.TenantID}
	if !a.IsAdmin(a.TenantID) || a.User.IsServiceAccount() {
		// Service accounts never manage members, whatever their role.
		where, args = append(where, `memberships.user_id = ?`), append(args, a.User.ID)
	}
	if v := filter.ID; v != nil {
		where, args = append(where, `memberships.id = ?`), append(args, *v)
	}
	if v := filter.UserID; v != nil {
		where, args = append(where, `memberships.user_id = ?`), append(args, *v)
	}
	if v := filter.Role; v != nil {
		where, args = append(where, `memberships.role = ?`), append(args, string(*v))
	}
	if v := filter.EmailContains; v != nil && *v != "" {
		where, args = append(where, `LOWER(users.email) LIKE ? ESCAPE '\'`), append(args, containsPattern(*v))
	}
	cond := strings.Join(where, " AND ")

	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM memberships JOIN users ON users.id = memberships.user_id WHERE `+cond, args...).Scan(&n); err != nil {
		return nil, 0, fmt.Errorf("count memberships: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+membershipColumns+` FROM memberships JOIN users ON users.id = memberships.user_id WHERE `+cond+
		` ORDER BY memberships.created_at, memberships.id`+formatLimitOffset(filter.Limit, filter.Offset), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("find memberships: %w", err)
	}
	ms, err := collect(rows, func(rows *sql.Rows) (*latchkey.Membership, error) {
		m, err := scanMembership(rows)
		if err != nil {
			return nil, fmt.Errorf("scan membership: %w", err)
		}
		return m, nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("find memberships: %w", err)
	}
	return ms, n, nil
}

// findMembershipInTenant returns membership id of tenantID with its user, or
// ENOTFOUND.
func findMembershipInTenant(ctx context.Context, tx *Tx, id, tenantID string) (*latchkey.Membership, error) {
	m, err := scanMembership(tx.QueryRowContext(ctx, `SELECT `+membershipColumns+` FROM memberships JOIN users ON users.id = memberships.user_id
		WHERE memberships.id = ? AND memberships.tenant_id = ?`, id, tenantID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, latchkey.Errorf(latchkey.ENOTFOUND, "Membership not found.")
	} else if err != nil {
		return nil, fmt.Errorf("find membership: %w", err)
	}
	return m, nil
}

// lockTenant serializes transactions that change a tenant's admins, so two
// concurrent demotions cannot both see another admin left. (SQLite
// transactions are serialized already; PostgreSQL takes the row lock.)
func lockTenant(ctx context.Context, tx *Tx, tenantID string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE tenants SET slug = slug WHERE id = ?`, tenantID); err != nil {
		return fmt.Errorf("lock tenant: %w", err)
	}
	return nil
}

// countHumanAdmins returns the number of human TENANT_ADMINs of tenantID.
func countHumanAdmins(ctx context.Context, tx *Tx, tenantID string) (int, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM memberships JOIN users ON users.id = memberships.user_id
		WHERE memberships.tenant_id = ? AND memberships.role = ? AND users.kind = ?`,
		tenantID, string(latchkey.RoleTenantAdmin), string(latchkey.UserKindHuman)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count admins: %w", err)
	}
	return n, nil
}

// errLastAdmin is the answer to removing a tenant's last human admin.
func errLastAdmin() error {
	return latchkey.Errorf(latchkey.ECONFLICT, "A tenant needs at least one admin.")
}

// errServiceAccountMembership is the answer to managing a service account
// through memberships.
func errServiceAccountMembership() error {
	return latchkey.Errorf(latchkey.EINVALID, "Service accounts are managed as service accounts, not memberships.")
}

// CreateMembership adds a human to the caller's acting tenant (in.TenantID,
// if set, must be it: EFORBIDDEN otherwise). The caller must be a human
// TENANT_ADMIN there, not using a TENANT or RUNNER token (EFORBIDDEN). An
// unknown email creates a user with no password and adds them; a user who
// already has an account is invited instead (the Invitation is returned,
// the Membership is nil). An empty role means USER. Returns EINVALID for a
// bad role or email, for neither or both of UserID and Email, or for a
// service account; ENOTFOUND for an unknown user id; ECONFLICT if already a
// member or invited.
func (s *MembershipService) CreateMembership(ctx context.Context, in latchkey.MembershipCreate) (*latchkey.Membership, *latchkey.Invitation, error) {
	a, err := requireUnscopedHumanAdmin(ctx)
	if err != nil {
		return nil, nil, err
	}
	if in.TenantID == "" {
		in.TenantID = a.TenantID
	} else if in.TenantID != a.TenantID {
		return nil, nil, errSwitchTenant()
	}
	if in.Role == "" {
		in.Role = latchkey.RoleUser
	} else if !in.Role.Valid() {
		return nil, nil, latchkey.Errorf(latchkey.EINVALID, "Invalid role %q.", in.Role)
	}
	if (in.UserID == "") == (in.Email == "") {
		return nil, nil, latchkey.Errorf(latchkey.EINVALID, "Give either a user id or an email.")
	}
	if in.Email != "" {
		in.Email = latchkey.NormalizeEmail(in.Email)
		if err := latchkey.ValidateEmail(in.Email); err != nil {
			return nil, nil, err
		}
	}

	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback()
	m, inv, err := createMembership(ctx, tx, a, in)
	if err != nil {
		return nil, nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, nil, fmt.Errorf("create membership: commit: %w", err)
	}
	return m, inv, nil
}

func createMembership(ctx context.Context, tx *Tx, a *latchkey.Auth, in latchkey.MembershipCreate) (*latchkey.Membership, *latchkey.Invitation, error) {
	var u *latchkey.User
	var err error
	if in.UserID != "" {
		if u, err = findUserByID(ctx, tx, in.UserID); err != nil {
			return nil, nil, err
		}
	} else if u, err = findUserByEmail(ctx, tx, in.Email); err != nil {
		return nil, nil, err
	}
	if u != nil {
		if u.IsServiceAccount() {
			return nil, nil, errServiceAccountMembership()
		}
		// An existing account: the user decides whether to join.
		invitee := in.Email
		if invitee == "" {
			invitee = in.UserID
		}
		inv, err := inviteUser(ctx, tx, a, u, in, invitee)
		return nil, inv, err
	}
	if u, err = createHumanUser(ctx, tx, in.Email, "", in.TenantID, a.User.ID); err != nil {
		return nil, nil, err
	}
	m, err := insertMembership(ctx, tx, in.TenantID, u.ID, in.Role)
	if err != nil {
		return nil, nil, err
	}
	m.User, m.UserCreated = u, true
	details := membershipDetails(m)
	details["new_user"] = "true"
	// Caches hold the user with its default tenant.
	if err := recordMembershipChange(ctx, tx, a, m, latchkey.AuditMembershipCreate, details); err != nil {
		return nil, nil, err
	}
	return m, nil, nil
}

// recordMembershipChange writes the audit event of a change to membership
// m (action, details) and publishes it, so that every replica's cache
// drops the member's roles; both in tx.
func recordMembershipChange(ctx context.Context, tx *Tx, a *latchkey.Auth, m *latchkey.Membership, action latchkey.AuditAction, details map[string]string) error {
	if err := recordAudit(ctx, tx, a, auditRecord{
		tenantID: m.TenantID, action: action,
		targetType: latchkey.AuditTargetMembership, targetID: m.ID, details: details,
	}); err != nil {
		return err
	}
	if err := tx.publish(ctx, latchkey.Event{Type: latchkey.EventMembershipChanged, UserID: m.UserID, TenantID: m.TenantID}); err != nil {
		return fmt.Errorf("membership change: %w", err)
	}
	return nil
}

// membershipDetails are the audit details of membership m (User filled in).
func membershipDetails(m *latchkey.Membership) map[string]string {
	d := map[string]string{"user_id": m.UserID, "role": string(m.Role)}
	if m.User != nil {
		d["email"] = m.User.Email
	}
	return d
}

// UpdateMembershipRole changes the role of membership id of the caller's
// acting tenant. Same callers as CreateMembership (EFORBIDDEN). Returns
// ENOTFOUND for a membership of another tenant, EINVALID for a bad role or
// a service account's membership, and ECONFLICT when it would leave the
// tenant without a human TENANT_ADMIN.
func (s *MembershipService) UpdateMembershipRole(ctx context.Context, id string, role latchkey.Role) (*latchkey.Membership, error) {
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
	if err := lockTenant(ctx, tx, a.TenantID); err != nil {
		return nil, err
	}
	m, err := findMembershipInTenant(ctx, tx, id, a.TenantID)
	if err != nil {
		return nil, err
	} else if m.User.IsServiceAccount() {
		return nil, errServiceAccountMembership()
	}
	if m.Role == latchkey.RoleTenantAdmin && role != latchkey.RoleTenantAdmin {
		if n, err := countHumanAdmins(ctx, tx, a.TenantID); err != nil {
			return nil, err
		} else if n <= 1 {
			return nil, errLastAdmin()
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE memberships SET role = ? WHERE id = ?`, string(role), m.ID); err != nil {
		return nil, fmt.Errorf("update membership role: %w", err)
	}
	previous := m.Role
	m.Role = role
	details := membershipDetails(m)
	details["previous_role"] = string(previous)
	if err := recordMembershipChange(ctx, tx, a, m, latchkey.AuditMembershipUpdateRole, details); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("update membership role: commit: %w", err)
	}
	return m, nil
}

// DeleteMembership removes membership id from the caller's acting tenant.
// Same callers as CreateMembership (EFORBIDDEN). Returns ENOTFOUND for a
// membership of another tenant, EINVALID for a service account's and
// ECONFLICT for the last human TENANT_ADMIN's. If the tenant was the
// user's default, the user is left without one.
func (s *MembershipService) DeleteMembership(ctx context.Context, id string) error {
	a, tx, err := s.db.beginAs(ctx, requireUnscopedHumanAdmin, true)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := lockTenant(ctx, tx, a.TenantID); err != nil {
		return err
	}
	m, err := findMembershipInTenant(ctx, tx, id, a.TenantID)
	if err != nil {
		return err
	} else if m.User.IsServiceAccount() {
		return errServiceAccountMembership()
	}
	if m.Role == latchkey.RoleTenantAdmin {
		if n, err := countHumanAdmins(ctx, tx, a.TenantID); err != nil {
			return err
		} else if n <= 1 {
			return errLastAdmin()
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM memberships WHERE id = ?`, m.ID); err != nil {
		return fmt.Errorf("delete membership: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE users SET default_tenant_id = NULL WHERE id = ? AND default_tenant_id = ?`, m.UserID, a.TenantID); err != nil {
		return fmt.Errorf("delete membership: clear default tenant: %w", err)
	}
	if err := recordMembershipChange(ctx, tx, a, m, latchkey.AuditMembershipDelete, membershipDetails(m)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete membership: commit: %w", err)
	}
	return nil
}
