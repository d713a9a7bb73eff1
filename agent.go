package latchkey

import (
	"context"
	"time"
)

// Agent is a process that polls a tenant for flow runs and runs them, as
// register_agent records it. An agent that registers again with the same
// name, type and labels keeps its id.
type Agent struct {
	ID       string
	TenantID string
	Name     string
	Type     string // e.g. "LocalAgent"

	// Labels are the agent's labels, sorted, without duplicates.
	Labels []string

	// UserID is the user or service account that last registered it.
	UserID string

	CreatedAt time.Time

	// LastSeenAt is the last registration, or the last poll that carried
	// the agent's id (X-PREFECT-AGENT-ID).
	LastSeenAt time.Time
}

// Validate returns EINVALID for a missing type or bad name or labels. An
// empty name becomes "agent", Prefect's default. It normalizes Labels.
func (a *Agent) Validate() error {
	if a.Type == "" {
		return Errorf(EINVALID, "An agent needs a type, e.g. LocalAgent.")
	} else if len(a.Type) > maxAgentTypeLength {
		return Errorf(EINVALID, "Agent type must be at most %d characters.", maxAgentTypeLength)
	}
	if a.Name == "" {
		a.Name = "agent"
	} else if err := ValidateName("Agent name", a.Name, maxNameLength); err != nil {
		return err
	}
	labels, err := NormalizeLabels(a.Labels)
	if err != nil {
		return err
	}
	a.Labels = labels
	return nil
}

// AgentFilter selects agents of the caller's acting tenant. Nil fields do
// not filter.
type AgentFilter struct {
	ID   *string
	IDs  []string // nil: no filter; empty: matches nothing
	Name *string
	Type *string

	Offset int
	Limit  int
}

// AgentService records agents and when they were last seen. Every method
// works only in the caller's acting tenant.
//
// Who may call: registering and recording polls need a writing role (USER
// or TENANT_ADMIN) and are open to users, service accounts and RUNNER
// tokens. Listing is open to every member.
type AgentService interface {
	// RegisterAgent records an agent in the acting tenant, or, if one with
	// the same name, type and labels exists, reuses it; either way its
	// LastSeenAt becomes now and agent is filled in (ID, TenantID, UserID,
	// CreatedAt, LastSeenAt). A TenantID other than the acting tenant is
	// EFORBIDDEN; a bad type, name or labels EINVALID.
	RegisterAgent(ctx context.Context, agent *Agent) error

	// UpdateAgentLastSeen records that the agent polled now. ENOTFOUND for
	// an agent outside the acting tenant.
	UpdateAgentLastSeen(ctx context.Context, id string) error

	// FindAgents returns the acting tenant's agents matching filter, most
	// recently seen first, and the count before Offset and Limit.
	FindAgents(ctx context.Context, filter AgentFilter) ([]*Agent, int, error)
}
