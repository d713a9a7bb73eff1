package ratelimit

import (
	"context"
	"log/slog"
	"time"

	"github.com/latchkey/latchkey"
)

// Default sign-in limits (see SignInLimits).
const (
	DefaultFailedSignInsPerDevice = 5
	DefaultDeviceRefill           = 12 * time.Minute
	DefaultCheckWait              = 5 * time.Second
)

// SignInLimits configures a SignIn.
type SignInLimits struct {
	// PerAddr and PerEmail are how many failed sign-ins from untrusted
	// browsers (no device cookie for the email) a client address and an
	// email may have in a row, then per minute; 0: no limit.
	PerAddr  int
	PerEmail int

	// PerDevice is how many failed sign-ins a browser with a device
	// cookie may have in a row; then one every DeviceRefill
	// (DefaultDeviceRefill if 0). 0: no limit.
	PerDevice    int
	DeviceRefill time.Duration

	// MaxUntrustedChecks bounds the password checks of untrusted attempts
	// running at once (each holds an Argon2id hash's memory and a core);
	// 0: no bound. Trusted-device attempts never wait for it. An
	// untrusted attempt waits up to CheckWait (DefaultCheckWait if 0) for
	// a slot, then is refused.
	MaxUntrustedChecks int
	CheckWait          time.Duration
}

// SignIn limits password sign-ins to the web UI with OWASP's "device
// cookie" scheme: a browser that once signed in as a user presents a
// device id (from a signed cookie) for that user's email, and its failures
// count only against that device, so no one elsewhere can lock it out.
// Every other attempt is untrusted and counts against its client address
// and the email; once either is used up, untrusted attempts are refused
// without checking the password, which caps the hashing an attacker can
// cause. Budgets are spent before the check and refunded when the password
// was right, so concurrent attempts cannot overrun them and only failures
// cost anything. A nil *SignIn limits nothing.
type SignIn struct {
	byAddr, byEmail, byDevice *Limiter
	checks                    chan struct{} // nil: no bound
	checkWait                 time.Duration
	logger                    *slog.Logger
}

// NewSignIn returns a SignIn with limits l on the clock now (time.Now if
// nil), logging refusals to logger (nil discards).
func NewSignIn(l SignInLimits, now func() time.Time, logger *slog.Logger) *SignIn {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	refill := l.DeviceRefill
	if refill <= 0 {
		refill = DefaultDeviceRefill
	}
	s := &SignIn{
		byAddr:    NewLimiter(l.PerAddr, l.PerAddr, 0, now),
		byEmail:   NewLimiter(l.PerEmail, l.PerEmail, 0, now),
		byDevice:  NewLimiterEvery(l.PerDevice, refill, 0, now),
		checkWait: l.CheckWait,
		logger:    logger,
	}
	if s.checkWait <= 0 {
		s.checkWait = DefaultCheckWait
	}
	if l.MaxUntrustedChecks > 0 {
		s.checks = make(chan struct{}, l.MaxUntrustedChecks)
	}
	return s
}

// errBusy refuses an untrusted attempt that found no free password check.
func errBusy() error {
	return latchkey.Errorf(latchkey.ERATELIMIT, "Latchkey is busy checking other sign-ins. Wait a few seconds, then try again.")
}

// StartSignIn is called before the password of a sign-in is checked, with
// the client address, the email and the id of the browser's device cookie
// if it is valid for that email ("" if not). It returns an ERATELIMIT
// error when the attempt must be refused unchecked, with how long until
// the next attempt may go ahead (0 when the server is busy rather than the
// budget spent). Otherwise the caller checks the password and then calls
// finish exactly once with whether the password was wrong. The device id
// is never logged.
func (s *SignIn) StartSignIn(ctx context.Context, addr, email, device string) (finish func(failed bool), wait time.Duration, err error) {
	if s == nil {
		return func(bool) {}, 0, nil
	}
	email = latchkey.NormalizeEmail(email)
	if device != "" {
		return s.startTrusted(addr, email, "device:"+device)
	}
	return s.startUntrusted(ctx, addr, email)
}

func (s *SignIn) startTrusted(addr, email, key string) (func(bool), time.Duration, error) {
	if !s.byDevice.Take(key) {
		s.logger.Warn("sign-in limit: attempt refused", "limit", "device", "addr", addr, "email", email)
		return nil, s.byDevice.Wait(key), errTooMany()
	}
	return func(failed bool) {
		if !failed {
			s.byDevice.Refund(key)
		} else if s.byDevice.Blocked(key) {
			s.logger.Warn("sign-in limit reached", "limit", "device", "addr", addr, "email", email)
		}
	}, 0, nil
}

func (s *SignIn) startUntrusted(ctx context.Context, addr, email string) (func(bool), time.Duration, error) {
	a, e := addrKey(addr), EmailKey(email)
	if !s.byAddr.Take(a) {
		s.logger.Warn("sign-in limit: attempt refused", "limit", "address", "addr", addr, "email", email)
		return nil, s.byAddr.Wait(a), errTooMany()
	}
	if !s.byEmail.Take(e) {
		s.byAddr.Refund(a)
		s.logger.Warn("sign-in limit: attempt refused", "limit", "email", "addr", addr, "email", email)
		return nil, s.byEmail.Wait(e), errTooMany()
	}
	if s.checks != nil {
		t := time.NewTimer(s.checkWait)
		defer t.Stop()
		select {
		case s.checks <- struct{}{}:
		case <-t.C:
			s.byAddr.Refund(a)
			s.byEmail.Refund(e)
			s.logger.Warn("sign-in limit: attempt refused", "limit", "concurrent checks", "addr", addr, "email", email)
			return nil, 0, errBusy()
		case <-ctx.Done():
			s.byAddr.Refund(a)
			s.byEmail.Refund(e)
			return nil, 0, errBusy()
		}
	}
	return func(failed bool) {
		if s.checks != nil {
			<-s.checks
		}
		if !failed {
			s.byAddr.Refund(a)
			s.byEmail.Refund(e)
			return
		}
		if s.byAddr.Blocked(a) {
			s.logger.Warn("sign-in limit reached", "limit", "address", "addr", addr, "email", email)
		}
		if s.byEmail.Blocked(e) {
			s.logger.Warn("sign-in limit reached", "limit", "email", "addr", addr, "email", email)
		}
	}, 0, nil
}
