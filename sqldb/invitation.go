package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/latchkey/latchkey"
)

var _ latchkey.InvitationService = (*InvitationService)(nil)

// InvitationService manages pending invitations of existing users to
// tenants (see latchkey.Invitation). CreateMembership creates them.
type InvitationService struct {
	db *DB
}

// NewInvitationService returns an InvitationService on db.
func NewInvitationService(db *DB) *InvitationService {
	return &InvitationService{db: db}
}

// maxMyInvitations caps FindMyInvitations.
const maxMyInvitations = 100

const invitationColumns = `invitations.id, invitations.tenant_id, invitations.invitee, invitations.role, invitations.invited_by_user_id, invitations.created_at`

func scanInvitation(s rowScanner, extra ...any) (*latchkey.Invitation, error) {
	var (
		inv       latchkey.Invitation
		role      string
		invitedBy sql.NullString
		createdAt Time
	)
	if err := s.Scan(append([]any{&inv.ID, &inv.TenantID, &inv.Invitee, &role, &invitedBy, &createdAt}, extra...)...); err != nil {
		return nil, err
	}
	inv.Role, inv.InvitedByUserID, inv.CreatedAt = latchkey.Role(role), invitedBy.String, time.Time(createdAt)
	return &inv, nil
}

// inviteUser creates a pending invitation of user u to in.TenantID, as
// typed by the admin a (invitee), and records it. Returns ECONFLICT if u is
// a member already or already invited.
func inviteUser(ctx context.Context, tx *Tx, a *latchkey.Auth, u *latchkey.User, in latchkey.MembershipCreate, invitee string) (*latchkey.Invitation, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM memberships WHERE tenant_id = ? AND user_id = ?`, in.TenantID, u.ID).Scan(&n); err != nil {
		return nil, fmt.Errorf("invite: %w", err)
	} else if n > 0 {
		return nil, latchkey.Errorf(latchkey.ECONFLICT, "Already a member of that tenant.")
	}
	id, err := tx.db.newID()
	if err != nil {
		return nil, err
	}
	inv := &latchkey.Invitation{ID: id, TenantID: in.TenantID, Invitee: invitee, Role: in.Role, InvitedByUserID: a.User.ID, CreatedAt: tx.Now()}
	if _, err := tx.ExecContext(ctx, `INSERT INTO invitations (id, tenant_id, user_id, invitee, role, invited_by_user_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		inv.ID, inv.TenantID, u.ID, inv.Invitee, string(inv.Role), inv.InvitedByUserID, Time(inv.CreatedAt)); err != nil {
		return nil, fmt.Errorf("invite: %w", formatError(err, "Already invited: the invitation is pending until they accept it."))
	}
	if err := recordAudit(ctx, tx, a, auditRecord{
		tenantID: inv.TenantID, action: latchkey.AuditInvitationCreate,
		targetType: latchkey.AuditTargetInvitation, targetID: inv.ID,
		details: map[string]string{"invitee": inv.Invitee, "role": string(inv.Role)},
	}); err != nil {
		return nil, err
	}
	return inv, nil
}

// FindInvitations returns the pending invitations of the caller's acting
// tenant. Human TENANT_ADMINs only (EFORBIDDEN).
func (s *InvitationService) FindInvitations(ctx context.Context, filter latchkey.InvitationFilter) ([]*latchkey.Invitation, int, error) {
	a, tx, err := s.db.beginAs(ctx, requireUnscopedHumanAdmin, false)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	cond, args := `tenant_id = ?`, []any{a.TenantID}
	if filter.ID != nil {
		cond, args = cond+` AND id = ?`, append(args, *filter.ID)
	}
	query := `SELECT ` + invitationColumns + ` FROM invitations WHERE ` + cond +
		` ORDER BY created_at, id` + formatLimitOffset(filter.Limit, filter.Offset)
	return findPage(ctx, tx, "invitations", "invitations", cond, args, query, func(rows *sql.Rows) (*latchkey.Invitation, error) { return scanInvitation(rows) })
}

// DeleteInvitation withdraws pending invitation id of the caller's acting
// tenant. Human TENANT_ADMINs only (EFORBIDDEN); ENOTFOUND otherwise.
func (s *InvitationService) DeleteInvitation(ctx context.Context, id string) error {
	a, tx, err := s.db.beginAs(ctx, requireUnscopedHumanAdmin, true)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	inv, err := scanInvitation(tx.QueryRowContext(ctx, `SELECT `+invitationColumns+` FROM invitations WHERE id = ? AND tenant_id = ?`, id, a.TenantID))
	if errors.Is(err, sql.ErrNoRows) {
		return errInvitationNotFound()
	} else if err != nil {
		return fmt.Errorf("delete invitation: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM invitations WHERE id = ?`, inv.ID); err != nil {
		return fmt.Errorf("delete invitation: %w", err)
	}
	if err := recordAudit(ctx, tx, a, auditRecord{
		tenantID: inv.TenantID, action: latchkey.AuditInvitationDelete,
		targetType: latchkey.AuditTargetInvitation, targetID: inv.ID,
		details: map[string]string{"invitee": inv.Invitee, "role": string(inv.Role)},
	}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete invitation: commit: %w", err)
	}
	return nil
}

func errInvitationNotFound() error {
	return latchkey.Errorf(latchkey.ENOTFOUND, "Invitation not found: it may have been withdrawn, accepted or declined.")
}

// FindMyInvitations returns the caller's pending invitations, at most
// limit (and never more than 100), with the tenants' names.
func (s *InvitationService) FindMyInvitations(ctx context.Context, limit int) ([]*latchkey.Invitation, error) {
	a, err := requireUnscopedHuman(ctx)
	if err != nil {
		return nil, err
	}
	if limit <= 0 || limit > maxMyInvitations {
		limit = maxMyInvitations
	}
	tx, err := s.db.BeginTx(ctx, false)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT `+invitationColumns+`, tenants.name FROM invitations JOIN tenants ON tenants.id = invitations.tenant_id
		WHERE invitations.user_id = ? ORDER BY invitations.created_at, invitations.id`+formatLimitOffset(limit, 0), a.User.ID)
	if err != nil {
		return nil, fmt.Errorf("find my invitations: %w", err)
	}
	invs, err := collect(rows, func(rows *sql.Rows) (*latchkey.Invitation, error) {
		var name string
		inv, err := scanInvitation(rows, &name)
		if err != nil {
			return nil, err
		}
		inv.TenantName = name
		return inv, nil
	})
	if err != nil {
		return nil, fmt.Errorf("find my invitations: %w", err)
	}
	return invs, nil
}

// takeMyInvitation deletes the caller's invitation id in tx and returns it.
func takeMyInvitation(ctx context.Context, tx *Tx, a *latchkey.Auth, id string) (*latchkey.Invitation, error) {
	inv, err := scanInvitation(tx.QueryRowContext(ctx, `SELECT `+invitationColumns+` FROM invitations WHERE id = ? AND user_id = ?`, id, a.User.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errInvitationNotFound()
	} else if err != nil {
		return nil, fmt.Errorf("find invitation: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM invitations WHERE id = ?`, inv.ID); err != nil {
		return nil, fmt.Errorf("delete invitation: %w", err)
	}
	return inv, nil
}

// AcceptInvitation makes the caller a member of the invitation's tenant
// with its role, records it in that tenant's audit log and tells every
// replica's caches.
func (s *InvitationService) AcceptInvitation(ctx context.Context, id string) (*latchkey.Membership, error) {
	a, tx, err := s.db.beginAs(ctx, requireUnscopedHuman, true)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	inv, err := takeMyInvitation(ctx, tx, a, id)
	if err != nil {
		return nil, err
	}
	m, err := insertMembership(ctx, tx, inv.TenantID, a.User.ID, inv.Role)
	if err != nil {
		return nil, err
	}
	u := *a.User
	if u.DefaultTenantID == "" {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET default_tenant_id = ? WHERE id = ? AND default_tenant_id IS NULL`, inv.TenantID, u.ID); err != nil {
			return nil, fmt.Errorf("set default tenant: %w", err)
		}
		u.DefaultTenantID = inv.TenantID
	}
	m.User = &u
	details := membershipDetails(m)
	details["invitation_id"] = inv.ID
	if err := recordMembershipChange(ctx, tx, a, m, latchkey.AuditInvitationAccept, details); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("accept invitation: commit: %w", err)
	}
	return m, nil
}

// DeclineInvitation deletes the caller's invitation. The tenant's audit
// log records that the invitation was declined, but neither who the user
// is nor where they were: they never joined.
func (s *InvitationService) DeclineInvitation(ctx context.Context, id string) error {
	a, tx, err := s.db.beginAs(ctx, requireUnscopedHuman, true)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	inv, err := takeMyInvitation(ctx, tx, a, id)
	if err != nil {
		return err
	}
	if err := recordAuditAs(latchkey.NewContextWithClientInfo(ctx, latchkey.ClientInfo{}), tx, auditActor{kind: latchkey.CredentialInvitee}, auditRecord{
		tenantID: inv.TenantID, action: latchkey.AuditInvitationDecline,
		targetType: latchkey.AuditTargetInvitation, targetID: inv.ID,
		details: map[string]string{"invitee": inv.Invitee, "role": string(inv.Role)},
	}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("decline invitation: commit: %w", err)
	}
	return nil
}
