package graphql

import (
	"context"

	"github.com/latchkey/latchkey"
)

// FailureCounter is told of every refused refresh token, like the
// authentication middleware is of every refused bearer credential
// (ratelimit.Guard implements it). It never keeps or logs the token.
type FailureCounter interface {
	FailCredential(addr, credential string)
}

// failRefresh counts a refused refresh token against the client.
func (s *Server) failRefresh(ctx context.Context, refreshToken string, err error) {
	if s.Failures != nil && latchkey.ErrorCode(err) == latchkey.EUNAUTHENTICATED {
		s.Failures.FailCredential(latchkey.ClientInfoFromContext(ctx).Addr, refreshToken)
	}
}
