package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

var _ latchkey.AgentService = (*AgentService)(nil)

// AgentService records agents and when they were last seen.
type AgentService struct {
	db *DB
}

// NewAgentService returns an AgentService on db.
func NewAgentService(db *DB) *AgentService {
	return &AgentService{db: db}
}

// requireAgentWrite returns the caller if it may do what an agent and its
// flow runs do: register, poll, change run states, heartbeat and write
// logs. That needs a writing role (USER or TENANT_ADMIN, after a legacy
// token's cap); users, service accounts and RUNNER tokens alike may.
func requireAgentWrite(ctx context.Context) (*latchkey.Auth, error) {
	a, err := requireAuth(ctx)
	if err != nil {
		return nil, err
	}
	if !a.CanWrite() {
		return nil, latchkey.Errorf(latchkey.EFORBIDDEN, "Your role does not allow running agents or flow runs.")
	}
	return a, nil
}

// RegisterAgent records an agent in the caller's acting tenant, or reuses
// the one with the same name, type and labels, and sets its LastSeenAt to
// now. Needs a writing role (EFORBIDDEN); a TenantID naming another tenant
// is EFORBIDDEN; a bad type, name or labels EINVALID.
func (s *AgentService) RegisterAgent(ctx context.Context, agent *latchkey.Agent) error {
	a, err := requireAgentWrite(ctx)
	if err != nil {
		return err
	}
	if agent.TenantID != "" && agent.TenantID != a.TenantID {
		return errSwitchTenant()
	}
	if err := agent.Validate(); err != nil {
		return err
	}
	labels, err := json.Marshal(agent.Labels)
	if err != nil {
		return fmt.Errorf("register agent: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, true)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	id, err := tx.db.newID()
	if err != nil {
		return fmt.Errorf("register agent: %w", err)
	}
	now := tx.Now()
	var createdAt Time
	if err := tx.QueryRowContext(ctx, `INSERT INTO agents (id, tenant_id, name, type, labels, user_id, created_at, last_seen_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant_id, name, type, labels) DO UPDATE SET last_seen_at = excluded.last_seen_at, user_id = excluded.user_id
		RETURNING id, created_at`,
		id, a.TenantID, agent.Name, agent.Type, string(labels), a.User.ID, Time(now), Time(now)).Scan(&id, &createdAt); err != nil {
		return fmt.Errorf("register agent: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("register agent: commit: %w", err)
	}
	agent.ID, agent.TenantID, agent.UserID = id, a.TenantID, a.User.ID
	agent.CreatedAt, agent.LastSeenAt = time.Time(createdAt), now
	return nil
}

// UpdateAgentLastSeen sets the agent's LastSeenAt to now. Needs a writing
// role (EFORBIDDEN); ENOTFOUND for an agent outside the acting tenant.
func (s *AgentService) UpdateAgentLastSeen(ctx context.Context, id string) error {
	a, tx, err := s.db.beginAs(ctx, requireAgentWrite, true)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE agents SET last_seen_at = ? WHERE id = ? AND tenant_id = ?`, Time(tx.Now()), id, a.TenantID)
	if err != nil {
		return fmt.Errorf("update agent last seen: %w", err)
	} else if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update agent last seen: %w", err)
	} else if n == 0 {
		return latchkey.Errorf(latchkey.ENOTFOUND, "Agent not found.")
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update agent last seen: commit: %w", err)
	}
	return nil
}

// FindAgents returns the agents of the caller's acting tenant matching
// filter, most recently seen first, and the count before Offset and Limit.
// Any member may list them.
func (s *AgentService) FindAgents(ctx context.Context, filter latchkey.AgentFilter) ([]*latchkey.Agent, int, error) {
	a, tx, err := s.db.beginAs(ctx, requireAuth, false)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	agents, n, err := findAgents(ctx, tx, a.TenantID, filter)
	if err != nil {
		return nil, 0, err
	}
	return agents, n, tx.Commit()
}

const agentColumns = `agents.id, agents.tenant_id, agents.name, agents.type, agents.labels, agents.user_id, agents.created_at, agents.last_seen_at`

func findAgents(ctx context.Context, tx *Tx, tenantID string, filter latchkey.AgentFilter) ([]*latchkey.Agent, int, error) {
	conds, args := []string{`agents.tenant_id = ?`}, []any{tenantID}
	if v := filter.ID; v != nil {
		conds, args = append(conds, `agents.id = ?`), append(args, *v)
	}
	if filter.IDs != nil {
		if len(filter.IDs) == 0 {
			return []*latchkey.Agent{}, 0, nil
		}
		conds, args = appendIn(conds, args, `agents.id`, filter.IDs)
	}
	if v := filter.Name; v != nil {
		conds, args = append(conds, `agents.name = ?`), append(args, *v)
	}
	if v := filter.Type; v != nil {
		conds, args = append(conds, `agents.type = ?`), append(args, *v)
	}
	where := strings.Join(conds, " AND ")
	query := `SELECT ` + agentColumns + ` FROM agents WHERE ` + where +
		` ORDER BY agents.last_seen_at DESC, agents.id` + formatLimitOffset(filter.Limit, filter.Offset)
	return findPage(ctx, tx, "agents", "agents", where, args, query, func(rows *sql.Rows) (*latchkey.Agent, error) {
		var (
			ag                  latchkey.Agent
			labels              string
			userID              sql.NullString
			createdAt, lastSeen Time
		)
		if err := rows.Scan(&ag.ID, &ag.TenantID, &ag.Name, &ag.Type, &labels, &userID, &createdAt, &lastSeen); err != nil {
			return nil, fmt.Errorf("scan agent: %w", err)
		}
		if err := json.Unmarshal([]byte(labels), &ag.Labels); err != nil {
			return nil, fmt.Errorf("scan agent labels: %w", err)
		}
		ag.UserID, ag.CreatedAt, ag.LastSeenAt = userID.String, time.Time(createdAt), time.Time(lastSeen)
		return &ag, nil
	})
}
