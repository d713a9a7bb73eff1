package html

import (
	"net/http"

	"github.com/latchkey/latchkey"
)

// SignInLimiter limits failed password sign-ins per client address and
// per email (ratelimit.Guard implements it). CheckEmail runs before a
// password is checked and returns an error (ERATELIMIT) when the attempt
// must be refused unchecked; FailEmail runs after every wrong password.
type SignInLimiter interface {
	CheckEmail(addr, email string) error
	FailEmail(addr, email string)
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
