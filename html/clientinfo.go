package html

import (
	"context"
	"time"
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
