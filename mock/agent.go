package mock

import (
	"context"

	"github.com/latchkey/latchkey"
)

var _ latchkey.AgentService = (*AgentService)(nil)

// AgentService is a mock of latchkey.AgentService.
type AgentService struct {
	RegisterAgentFn       func(ctx context.Context, agent *latchkey.Agent) error
	UpdateAgentLastSeenFn func(ctx context.Context, id string) error
	FindAgentsFn          func(ctx context.Context, filter latchkey.AgentFilter) ([]*latchkey.Agent, int, error)
}

// RegisterAgent calls RegisterAgentFn.
func (s *AgentService) RegisterAgent(ctx context.Context, agent *latchkey.Agent) error {
	return s.RegisterAgentFn(ctx, agent)
}

// UpdateAgentLastSeen calls UpdateAgentLastSeenFn.
func (s *AgentService) UpdateAgentLastSeen(ctx context.Context, id string) error {
	return s.UpdateAgentLastSeenFn(ctx, id)
}

// FindAgents calls FindAgentsFn.
func (s *AgentService) FindAgents(ctx context.Context, filter latchkey.AgentFilter) ([]*latchkey.Agent, int, error) {
	return s.FindAgentsFn(ctx, filter)
}
