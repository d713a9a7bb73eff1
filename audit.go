package latchkey

import (
	"context"
	"time"
)

// AuditAction names what an audit event records: "<thing>.<verb>".
type AuditAction string

// Audited actions. Each is recorded by the store in the same transaction as
// the change it describes, so a change that rolls back leaves no event and
// a committed one always has one.
const (
	AuditAPIKeyCreate         AuditAction = "api_key.create"
	AuditAPIKeyDelete         AuditAction = "api_key.delete"
	AuditAPIKeyRotate         AuditAction = "api_key.rotate"
	AuditAPITokenCreate       AuditAction = "api_token.create"
	AuditAPITokenDelete       AuditAction = "api_token.delete"
	AuditServiceAccountCreate AuditAction = "service_account.create"
	AuditServiceAccountDelete AuditAction = "service_account.delete"
	AuditServiceAccountRole   AuditAction = "service_account.update_role"
	AuditPasswordReset        AuditAction = "password.reset"
	AuditMembershipCreate     AuditAction = "membership.create"
	AuditMembershipUpdateRole AuditAction = "membership.update_role"
	AuditMembershipDelete     AuditAction = "membership.delete"
	AuditTenantCreate         AuditAction = "tenant.create"
	AuditPasswordResetCreate  AuditAction = "password_reset.create"
	AuditSessionCreate        AuditAction = "session.create"
	AuditInvitationCreate     AuditAction = "invitation.create"
	AuditInvitationAccept     AuditAction = "invitation.accept"
	AuditInvitationDecline    AuditAction = "invitation.decline"
	AuditInvitationDelete     AuditAction = "invitation.delete"
)

// AuditActions returns every audited action, in a new slice.
func AuditActions() []AuditAction {
	return []AuditAction{
		AuditAPIKeyCreate, AuditAPIKeyDelete, AuditAPIKeyRotate, AuditAPITokenCreate, AuditAPITokenDelete,
		AuditServiceAccountCreate, AuditServiceAccountDelete, AuditServiceAccountRole,
		AuditMembershipCreate, AuditMembershipUpdateRole, AuditMembershipDelete,
		AuditTenantCreate, AuditPasswordResetCreate, AuditPasswordReset, AuditSessionCreate,
		AuditInvitationCreate, AuditInvitationAccept, AuditInvitationDecline, AuditInvitationDelete,
	}
}

// CredentialPassword is the ActorKind of an audit event whose actor proved
// who they are with an email and password (a web UI sign-in).
const CredentialPassword CredentialKind = "password"

// CredentialPasswordLink is the ActorKind of an event whose actor used a
// one-time set-password link.
const CredentialPasswordLink CredentialKind = "password_link"

// CredentialInvitee is the ActorKind of an event whose actor is a user who
// is not a member of the event's tenant and must stay unnamed there: the
// invitee who declined an invitation. Such events carry no actor id and no
// client address.
const CredentialInvitee CredentialKind = "invitee"

// Audit target types.
const (
	AuditTargetAPIKey         = "api_key"
	AuditTargetAPIToken       = "api_token"
	AuditTargetServiceAccount = "service_account"
	AuditTargetMembership     = "membership"
	AuditTargetTenant         = "tenant"
	AuditTargetUser           = "user"
	AuditTargetSession        = "session"
	AuditTargetInvitation     = "invitation"
)

// AuditEvent records who did what, when and from where, in one tenant.
type AuditEvent struct {
	ID       string
	TenantID string // the tenant whose admins see the event

	// ActorUserID is the user or service account that acted; empty for
	// an in-process operator command (`latchkey admin`, first start).
	ActorUserID string
	// ActorKind is how the actor authenticated; empty for operator commands.
	ActorKind CredentialKind
	// ActorCredentialID is the key, legacy token or session the actor
	// used (for an access token, the key or token it was minted from).
	ActorCredentialID string
	// ActorCredentialName is the name of that credential when it is an
	// API key (revoked ones included), filled in by finds; empty otherwise.
	ActorCredentialName string
	// ActorCredentialIdentifier is that key's non-secret identifier
	// ("lku_…x9Qz"), where it was stored (keys created before identifiers
	// were have none); empty otherwise.
	ActorCredentialIdentifier string

	Action     AuditAction
	TargetType string // one of the AuditTarget* constants
	TargetID   string

	// Details are a few facts about the target (its name, role, scope,
	// owner, expiry). They never hold a secret.
	Details map[string]string

	// ClientAddr and UserAgent are where the request came from (see
	// ClientInfo); ClientAddr is "local" for operator commands.
	ClientAddr string
	UserAgent  string

	CreatedAt time.Time
}

// AuditFilter selects audit events of the caller's acting tenant. Nil
// fields do not filter.
type AuditFilter struct {
	ID          *string
	Action      *AuditAction
	TargetType  *string
	TargetID    *string
	ActorUserID *string

	// CreatedFrom and CreatedBefore keep events at or after From and
	// strictly before Before.
	CreatedFrom   *time.Time
	CreatedBefore *time.Time

	// OrderBy allows created_at only; the default is newest first.
	OrderBy []SortOrder
	Offset  int
	Limit   int
}

// AuditService reads the audit log. Events are written by the services
// that make the changes, never through this interface.
type AuditService interface {
	// FindAuditEvents returns the events of the caller's acting tenant
	// that match filter, newest first unless OrderBy says otherwise, and
	// their count before Offset and Limit. Only a human TENANT_ADMIN of
	// the acting tenant, not using a TENANT or RUNNER token, may read them
	// (EFORBIDDEN); EINVALID for an unknown OrderBy field.
	FindAuditEvents(ctx context.Context, filter AuditFilter) ([]*AuditEvent, int, error)
}
