package mock

import (
	"context"
	"time"

	"github.com/latchkey/latchkey"
)

var _ latchkey.FlowRunService = (*FlowRunService)(nil)

// FlowRunService is a mock of latchkey.FlowRunService.
type FlowRunService struct {
	FindFlowRunByIDFn     func(ctx context.Context, id string) (*latchkey.FlowRun, error)
	FindFlowRunsFn        func(ctx context.Context, filter latchkey.FlowRunFilter) ([]*latchkey.FlowRun, int, error)
	CreateFlowRunFn       func(ctx context.Context, run *latchkey.FlowRun) error
	FindFlowRunsInQueueFn func(ctx context.Context, q latchkey.FlowRunQueue) ([]string, error)
	SetFlowRunStatesFn    func(ctx context.Context, updates []*latchkey.FlowRunStateUpdate) ([]*latchkey.FlowRun, error)
	HeartbeatFlowRunFn    func(ctx context.Context, id string) (bool, error)
	WriteRunLogsFn        func(ctx context.Context, logs []*latchkey.RunLog) error
	FindRunLogsFn         func(ctx context.Context, filter latchkey.RunLogFilter) ([]*latchkey.RunLog, int, error)
	MarkLostFlowRunsFn    func(ctx context.Context, timeout time.Duration) (int, error)
}

// FindFlowRunByID calls FindFlowRunByIDFn.
func (s *FlowRunService) FindFlowRunByID(ctx context.Context, id string) (*latchkey.FlowRun, error) {
	return s.FindFlowRunByIDFn(ctx, id)
}

// FindFlowRuns calls FindFlowRunsFn.
func (s *FlowRunService) FindFlowRuns(ctx context.Context, filter latchkey.FlowRunFilter) ([]*latchkey.FlowRun, int, error) {
	return s.FindFlowRunsFn(ctx, filter)
}

// CreateFlowRun calls CreateFlowRunFn.
func (s *FlowRunService) CreateFlowRun(ctx context.Context, run *latchkey.FlowRun) error {
	return s.CreateFlowRunFn(ctx, run)
}

// FindFlowRunsInQueue calls FindFlowRunsInQueueFn.
func (s *FlowRunService) FindFlowRunsInQueue(ctx context.Context, q latchkey.FlowRunQueue) ([]string, error) {
	return s.FindFlowRunsInQueueFn(ctx, q)
}

// SetFlowRunStates calls SetFlowRunStatesFn.
func (s *FlowRunService) SetFlowRunStates(ctx context.Context, updates []*latchkey.FlowRunStateUpdate) ([]*latchkey.FlowRun, error) {
	return s.SetFlowRunStatesFn(ctx, updates)
}

// HeartbeatFlowRun calls HeartbeatFlowRunFn.
func (s *FlowRunService) HeartbeatFlowRun(ctx context.Context, id string) (bool, error) {
	return s.HeartbeatFlowRunFn(ctx, id)
}

// WriteRunLogs calls WriteRunLogsFn.
func (s *FlowRunService) WriteRunLogs(ctx context.Context, logs []*latchkey.RunLog) error {
	return s.WriteRunLogsFn(ctx, logs)
}

// FindRunLogs calls FindRunLogsFn.
func (s *FlowRunService) FindRunLogs(ctx context.Context, filter latchkey.RunLogFilter) ([]*latchkey.RunLog, int, error) {
	return s.FindRunLogsFn(ctx, filter)
}

// MarkLostFlowRuns calls MarkLostFlowRunsFn.
func (s *FlowRunService) MarkLostFlowRuns(ctx context.Context, timeout time.Duration) (int, error) {
	return s.MarkLostFlowRunsFn(ctx, timeout)
}
