package html

import (
	"context"
	"net/http"
	"time"

	"github.com/latchkey/latchkey"
)

// SignInLimiter limits password sign-ins (ratelimit.SignIn implements
// it). StartSignIn runs before a password is checked, with the client
// address, the email and the id of the browser's device cookie when it is
// valid for that email ("" if not). It returns an error (ERATELIMIT) when
// the attempt must be refused unchecked, with how long until the next
// attempt may go ahead (0: the server is busy, the budget is not spent).
// Otherwise the password is checked and finish is called once with whether
// it was wrong.
type SignInLimiter interface {
	StartSignIn(ctx context.Context, addr, email, device string) (finish func(failed bool), wait time.Duration, err error)
}

// clientAddr returns the address of the client that sent r (see
// latchkey.ClientAddr).
func clientAddr(r *http.Request, trustProxy bool) string {
	return latchkey.ClientAddr(r.RemoteAddr, r.Header.Get("X-Forwarded-For"), trustProxy)
}

// withClientInfo puts where each request came from in its context, for
// the audit log and the sign-in limiter.
func (u *ui) withClientInfo(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ci := latchkey.ClientInfo{Addr: clientAddr(r, u.TrustProxyHeaders), UserAgent: r.UserAgent()}
		h.ServeHTTP(w, r.WithContext(latchkey.NewContextWithClientInfo(r.Context(), ci)))
	})
}
