package mock

import (
	"context"

	"github.com/latchkey/latchkey"
)

var _ latchkey.AuditService = (*AuditService)(nil)

// AuditService is a mock of latchkey.AuditService.
type AuditService struct {
	FindAuditEventsFn func(ctx context.Context, filter latchkey.AuditFilter) ([]*latchkey.AuditEvent, int, error)
}

// FindAuditEvents calls FindAuditEventsFn.
func (s *AuditService) FindAuditEvents(ctx context.Context, filter latchkey.AuditFilter) ([]*latchkey.AuditEvent, int, error) {
	return s.FindAuditEventsFn(ctx, filter)
}
