package mock

import (
	"context"

	"github.com/latchkey/latchkey"
)

var _ latchkey.BootstrapService = (*BootstrapService)(nil)

// BootstrapService is a mock of latchkey.BootstrapService.
type BootstrapService struct {
	NeedsBootstrapFn func(ctx context.Context) (bool, error)
	BootstrapFn      func(ctx context.Context, in latchkey.BootstrapInput) (*latchkey.BootstrapResult, error)
}

// NeedsBootstrap calls NeedsBootstrapFn.
func (s *BootstrapService) NeedsBootstrap(ctx context.Context) (bool, error) {
	return s.NeedsBootstrapFn(ctx)
}

// Bootstrap calls BootstrapFn.
func (s *BootstrapService) Bootstrap(ctx context.Context, in latchkey.BootstrapInput) (*latchkey.BootstrapResult, error) {
	return s.BootstrapFn(ctx, in)
}
