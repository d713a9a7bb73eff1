package graphql

import (
	"context"

	"github.com/latchkey/latchkey"
)

// failRefresh counts a refused refresh token against the client.
func (s *Server) failRefresh(ctx context.Context, refreshToken string, err error) {
	if s.Failures != nil && latchkey.ErrorCode(err) == latchkey.EUNAUTHENTICATED {
		s.Failures.FailCredential(latchkey.ClientInfoFromContext(ctx).Addr, refreshToken)
	}
}
