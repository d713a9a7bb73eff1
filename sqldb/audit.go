package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey"
)

// Limits on what an audit event stores of the request it came from.
const (
	maxAuditAddr      = 64
	maxAuditUserAgent = 256
	maxAuditDetail    = 256 // bytes per details value
)

// auditActor is who an audit event says acted.
type auditActor struct {
	userID       string
	kind         latchkey.CredentialKind
	credentialID string
}

// actorOf returns the caller a as an audit actor; the zero actor (an
// in-process operator command) for nil.
func actorOf(a *latchkey.Auth) auditActor {
	if a == nil || a.User == nil {
		return auditActor{}
	}
	act := auditActor{userID: a.User.ID, kind: a.Kind}
	switch {
	case a.Kind == latchkey.CredentialSession:
		act.credentialID = a.SessionID
	case a.APIKeyID != "":
		act.credentialID = a.APIKeyID
	case a.APITokenID != "":
		act.credentialID = a.APITokenID
	}
	return act
}

// auditRecord is an event a store method records: what happened to which
// target, in which tenant.
type auditRecord struct {
	tenantID   string
	action     latchkey.AuditAction
	targetType string
	targetID   string
	details    map[string]string
}

// recordAudit writes r to the audit log in tx, with the caller a (nil for
// an operator command) as the actor and the client in ctx. It must run in
// the transaction that makes the change, so that the event commits or
// rolls back with it.
func recordAudit(ctx context.Context, tx *Tx, a *latchkey.Auth, r auditRecord) error {
	return recordAuditAs(ctx, tx, actorOf(a), r)
}

// recordAuditAs is recordAudit with an explicit actor.
func recordAuditAs(ctx context.Context, tx *Tx, act auditActor, r auditRecord) error {
	id, err := tx.db.newID()
	if err != nil {
		return fmt.Errorf("record audit event: %w", err)
	}
	details, err := encodeAuditDetails(r.details)
	if err != nil {
		return fmt.Errorf("record audit event: %w", err)
	}
	ci := latchkey.ClientInfoFromContext(ctx)
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_events (id, tenant_id, actor_user_id, actor_kind, actor_credential_id, action, target_type, target_id, details, client_addr, user_agent, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, r.tenantID, nullString(act.userID), string(act.kind), nullString(act.credentialID),
		string(r.action), r.targetType, r.targetID, details,
		truncateUTF8(ci.Addr, maxAuditAddr), truncateUTF8(ci.UserAgent, maxAuditUserAgent), Time(tx.Now())); err != nil {
		return fmt.Errorf("record audit event: %w", err)
	}
	return nil
}

// recordAuditInUserTenants records r once in every tenant userID belongs
// to: for changes to an account as a whole (a sign-in, a password reset),
// which every tenant of the account's admins should see.
func recordAuditInUserTenants(ctx context.Context, tx *Tx, act auditActor, userID string, r auditRecord) error {
	rows, err := tx.QueryContext(ctx, `SELECT tenant_id FROM memberships WHERE user_id = ? ORDER BY created_at, id`, userID)
	if err != nil {
		return fmt.Errorf("record audit event: %w", err)
	}
	tenants, err := collect(rows, func(rows *sql.Rows) (string, error) {
		var id string
		return id, rows.Scan(&id)
	})
	if err != nil {
		return fmt.Errorf("record audit event: %w", err)
	}
	for _, t := range tenants {
		r.tenantID = t
		if err := recordAuditAs(ctx, tx, act, r); err != nil {
			return err
		}
	}
	return nil
}

// encodeAuditDetails returns details as a JSON object. Values are
// truncated and passed through latchkey.RedactSecrets, a backstop: callers
// never put secrets there.
func encodeAuditDetails(details map[string]string) (string, error) {
	if len(details) == 0 {
		return "{}", nil
	}
	clean := make(map[string]string, len(details))
	for k, v := range details {
		if v == "" {
			continue
		}
		clean[k] = latchkey.RedactSecrets(truncateUTF8(v, maxAuditDetail))
	}
	b, err := json.Marshal(clean)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a character,
// and replaces invalid UTF-8.
func truncateUTF8(s string, n int) string {
	if len(s) > n {
		s = s[:n]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// formatAuditTime formats a time for details.
func formatAuditTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

var _ latchkey.AuditService = (*AuditService)(nil)

// AuditService reads the audit log the other services write.
type AuditService struct {
	db *DB
}

// NewAuditService returns an AuditService on db.
func NewAuditService(db *DB) *AuditService {
	return &AuditService{db: db}
}

// FindAuditEvents returns the events of the caller's acting tenant that
// match filter, newest first by default, and their count before Offset and
// Limit. Only a human TENANT_ADMIN of the acting tenant, not using a TENANT
// or RUNNER token, may read them (EFORBIDDEN).
func (s *AuditService) FindAuditEvents(ctx context.Context, filter latchkey.AuditFilter) ([]*latchkey.AuditEvent, int, error) {
	a, tx, err := s.db.beginAs(ctx, requireUnscopedHumanAdmin, false)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	return findAuditEvents(ctx, tx, a.TenantID, filter)
}

func findAuditEvents(ctx context.Context, tx *Tx, tenantID string, filter latchkey.AuditFilter) ([]*latchkey.AuditEvent, int, error) {
	desc := true
	for _, o := range filter.OrderBy {
		if o.Field != "created_at" {
			return nil, 0, latchkey.Errorf(latchkey.EINVALID, "Cannot order audit events by %q.", o.Field)
		}
		desc = o.Desc
	}
	where := []string{`tenant_id = ?`}
	args := []any{tenantID}
	for _, c := range []struct {
		col string
		v   *string
	}{
		{"id", filter.ID},
		{"target_type", filter.TargetType},
		{"target_id", filter.TargetID},
		{"actor_user_id", filter.ActorUserID},
	} {
		if c.v != nil {
			where, args = append(where, c.col+` = ?`), append(args, *c.v)
		}
	}
	if filter.Action != nil {
		where, args = append(where, `action = ?`), append(args, string(*filter.Action))
	}
	if filter.CreatedFrom != nil {
		where, args = append(where, `created_at >= ?`), append(args, Time(*filter.CreatedFrom))
	}
	if filter.CreatedBefore != nil {
		where, args = append(where, `created_at < ?`), append(args, Time(*filter.CreatedBefore))
	}
	cond := strings.Join(where, " AND ")
	order := ` ORDER BY created_at, seq`
	if desc {
		order = ` ORDER BY created_at DESC, seq DESC`
	}

	// The acting key's name and identifier: from api_keys, or from
	// revoked_api_keys once revoked (ids are unique across both).
	query := `SELECT id, tenant_id, actor_user_id, actor_kind, actor_credential_id, action, target_type, target_id, details, client_addr, user_agent, created_at,
		COALESCE((SELECT api_keys.name FROM api_keys WHERE api_keys.id = audit_events.actor_credential_id),
			(SELECT revoked_api_keys.name FROM revoked_api_keys WHERE revoked_api_keys.id = audit_events.actor_credential_id), ''),
		COALESCE((SELECT api_keys.identifier FROM api_keys WHERE api_keys.id = audit_events.actor_credential_id),
			(SELECT revoked_api_keys.identifier FROM revoked_api_keys WHERE revoked_api_keys.id = audit_events.actor_credential_id), '')
		FROM audit_events WHERE ` + cond + order + formatLimitOffset(filter.Limit, filter.Offset)
	return findPage(ctx, tx, "audit events", "audit_events", cond, args, query, func(rows *sql.Rows) (*latchkey.AuditEvent, error) {
		var (
			e                     latchkey.AuditEvent
			actor, credential     sql.NullString
			kind, action, details string
			createdAt             Time
		)
		if err := rows.Scan(&e.ID, &e.TenantID, &actor, &kind, &credential, &action, &e.TargetType, &e.TargetID,
			&details, &e.ClientAddr, &e.UserAgent, &createdAt, &e.ActorCredentialName, &e.ActorCredentialIdentifier); err != nil {
			return nil, fmt.Errorf("scan audit event: %w", err)
		}
		e.ActorUserID, e.ActorCredentialID = actor.String, credential.String
		e.ActorKind, e.Action, e.CreatedAt = latchkey.CredentialKind(kind), latchkey.AuditAction(action), time.Time(createdAt)
		if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
			return nil, fmt.Errorf("scan audit event %s: details: %w", e.ID, err)
		}
		return &e, nil
	})
}
