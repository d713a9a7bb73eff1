package graphql

import (
	"context"
	"net/http"
	"strings"

	gql "github.com/99designs/gqlgen/graphql"

	"github.com/latchkey/latchkey"
)

// AuthLimiter limits failed authentication per client address and per
// credential (ratelimit.Guard implements it). CheckCredential runs before
// every credential is checked, so it must be cheap, and returns an error
// (ERATELIMIT, shown to Prefect clients as UNAUTHENTICATED) when the attempt
// must be refused unchecked; FailCredential runs after every failure.
// Neither keeps nor logs the credential.
type AuthLimiter interface {
	CheckCredential(addr, credential string) error
	FailCredential(addr, credential string)
}

// HeaderForwardedFor is the proxy header the client address is taken from
// when Server.TrustProxyHeaders is set.
const HeaderForwardedFor = "X-Forwarded-For"

// ClientAddr returns the address of the client that sent r: the host of
// r.RemoteAddr or, when trustProxy is set, the left-most X-Forwarded-For hop
// (see latchkey.ClientAddr).
func ClientAddr(r *http.Request, trustProxy bool) string {
	return latchkey.ClientAddr(r.RemoteAddr, r.Header.Get(HeaderForwardedFor), trustProxy)
}

// authenticateClient puts where r came from in its context (for the audit
// log) and authenticates it behind Server.Limiter: an attempt from an
// address or with a credential over the limit is refused unchecked, and
// every failure counts. Requests without a credential are no attempt.
func (h *handler) authenticateClient(r *http.Request, params *gql.RawParams) (context.Context, error) {
	addr := ClientAddr(r, h.s.TrustProxyHeaders)
	ctx := latchkey.NewContextWithClientInfo(r.Context(), latchkey.ClientInfo{Addr: addr, UserAgent: r.UserAgent()})
	lim := h.s.Limiter
	if lim == nil {
		return h.authenticate(ctx, r, params)
	}
	header := r.Header.Get(HeaderAuthorization)
	if strings.TrimSpace(header) == "" {
		return h.authenticate(ctx, r, params)
	}
	credential, _ := parseBearer(header)
	if err := lim.CheckCredential(addr, credential); err != nil {
		return nil, err
	}
	ctx, err := h.authenticate(ctx, r, params)
	if err != nil && latchkey.ErrorCode(err) == latchkey.EUNAUTHENTICATED {
		lim.FailCredential(addr, credential)
	}
	return ctx, err
}

// failRefresh counts a refused refresh token against the client, like a
// refused bearer credential.
func (s *Server) failRefresh(ctx context.Context, refreshToken string, err error) {
	if s.Limiter != nil && latchkey.ErrorCode(err) == latchkey.EUNAUTHENTICATED {
		s.Limiter.FailCredential(latchkey.ClientInfoFromContext(ctx).Addr, refreshToken)
	}
}
