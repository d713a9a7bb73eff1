// Package ratelimit limits what failed authentication attempts cost: token
// buckets in memory, keyed by client address and (for password sign-ins)
// by email, which only failures drain.
//
// A successful request costs nothing while no key has failed recently, and
// one map lookup otherwise. Bearer credentials are never refused
// unchecked; clients over their budget only share a slow lane (Guard.Gate).
package ratelimit

import (
	"context"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchkey/latchkey"
)

// DefaultMaxKeys bounds the buckets a Limiter keeps.
const DefaultMaxKeys = 100_000

// sweepInterval is how often a Limiter drops buckets that have refilled.
const sweepInterval = time.Minute

// Limiter is a set of token buckets keyed by string. Each key may fail
// Burst times in a row and then PerMinute times a minute; a key with no
// budget left is Blocked until its bucket refills. Keys that have not
// failed take no memory. Create one with NewLimiter; the zero value and a
// nil *Limiter block nothing.
type Limiter struct {
	perSecond float64
	burst     float64
	maxKeys   int
	now       func() time.Time

	active atomic.Int64 // len(buckets), read without the lock

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

// bucket is a key's budget: tokens at time at (it refills from there).
type bucket struct {
	tokens float64
	at     time.Time
}

// NewLimiter returns a Limiter allowing burst failures in a row and
// perMinute a minute after that, keeping at most maxKeys buckets
// (DefaultMaxKeys if 0), on the clock now (time.Now if nil). perMinute or
// burst 0 disables it: it returns nil, which blocks nothing.
func NewLimiter(perMinute, burst, maxKeys int, now func() time.Time) *Limiter {
	if perMinute <= 0 || burst <= 0 {
		return nil
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{
		perSecond: float64(perMinute) / 60,
		burst:     float64(burst),
		maxKeys:   maxKeys,
		now:       now,
		buckets:   map[string]*bucket{},
	}
}

// NewLimiterEvery returns a Limiter allowing burst failures in a row and
// then one every every: for budgets slower than one a minute. burst or
// every 0 disables it (nil).
func NewLimiterEvery(burst int, every time.Duration, maxKeys int, now func() time.Time) *Limiter {
	if burst <= 0 || every <= 0 {
		return nil
	}
	l := NewLimiter(1, burst, maxKeys, now)
	l.perSecond = 1 / every.Seconds()
	return l
}

// level returns b's tokens at now.
func (l *Limiter) level(b *bucket, now time.Time) float64 {
	t := b.tokens + now.Sub(b.at).Seconds()*l.perSecond
	if t > l.burst {
		return l.burst
	}
	return t
}

// Blocked reports whether key has no budget left, so that an attempt with
// it must be refused without being checked. The empty key is never
// blocked.
func (l *Limiter) Blocked(key string) bool {
	if l == nil || key == "" || l.active.Load() == 0 {
		return false
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maybeSweep(now)
	b := l.buckets[key]
	return b != nil && l.level(b, now) < 1
}

// Fail takes one token from key's bucket and reports whether key is now
// out of budget (its next attempt will be Blocked). A key that is already
// blocked loses nothing more. The empty key is ignored.
func (l *Limiter) Fail(key string) (blocked bool) {
	if l == nil || key == "" {
		return false
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(key, now)
	level := l.level(b, now)
	if level >= 1 {
		level--
	}
	b.tokens, b.at = level, now
	return level < 1
}

// bucket returns key's bucket, a full one if it had none (making room for
// it), after the periodic sweep. l.mu is held.
func (l *Limiter) bucket(key string, now time.Time) *bucket {
	l.maybeSweep(now)
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.maxKeys {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		// A copy: key may be a slice of a secret, which must not be kept.
		l.buckets[strings.Clone(key)] = b
		l.active.Store(int64(len(l.buckets)))
	}
	return b
}

// Take takes one token from key's bucket and reports whether there was
// one: an attempt may go ahead only then, and spends the token up front so
// that concurrent attempts cannot overrun the budget. Refund gives it back
// when the attempt did not fail. The empty key always passes.
func (l *Limiter) Take(key string) bool {
	if l == nil || key == "" {
		return true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(key, now)
	level := l.level(b, now)
	if level < 1 {
		return false
	}
	b.tokens, b.at = level-1, now
	return true
}

// Refund gives back a token Take took, for an attempt that did not fail.
func (l *Limiter) Refund(key string) {
	if l == nil || key == "" {
		return
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buckets[key]; b != nil {
		b.tokens, b.at = min(l.level(b, now)+1, l.burst), now
	}
}

// Wait returns how long until key may be tried again: 0 unless it is
// Blocked.
func (l *Limiter) Wait(key string) time.Duration {
	if l == nil || key == "" || l.active.Load() == 0 {
		return 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return 0
	}
	level := l.level(b, now)
	if level >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - level) / l.perSecond * float64(time.Second)))
}

// Len returns the number of keys with a bucket.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	return int(l.active.Load())
}

// maybeSweep drops refilled buckets once per sweepInterval. l.mu is held.
func (l *Limiter) maybeSweep(now time.Time) {
	if now.Sub(l.lastSweep) < sweepInterval {
		return
	}
	l.lastSweep = now
	l.sweep(now)
}

// sweep drops every bucket that has refilled: it remembers nothing a new
// bucket would not. l.mu is held.
func (l *Limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if l.level(b, now) >= l.burst {
			delete(l.buckets, k)
		}
	}
	l.active.Store(int64(len(l.buckets)))
}

// evict makes room for a new bucket: refilled buckets go first; if there
// are none, the fullest of a few arbitrary ones, which restricts least.
// l.mu is held.
func (l *Limiter) evict(now time.Time) {
	l.sweep(now)
	if len(l.buckets) < l.maxKeys {
		return
	}
	var victim string
	best, n := -1.0, 0
	for k, b := range l.buckets {
		if lv := l.level(b, now); lv > best {
			victim, best = k, lv
		}
		if n++; n == 8 {
			break
		}
	}
	delete(l.buckets, victim)
	l.active.Store(int64(len(l.buckets)))
}

// Guard limits the cost of failed bearer-credential authentication. It
// never refuses a credential unchecked: a client address that used up its
// budget of failures (ByAddr) only has its uncached checks share a slow
// lane (Gate). (Password sign-ins: see SignIn.) A nil *Guard, or a nil
// ByAddr, limits nothing.
type Guard struct {
	ByAddr *Limiter

	// LaneSlots, LaneWaiters and LaneWait shape Gate's slow lane; zero
	// means DefaultLaneSlots, DefaultLaneWaiters and DefaultLaneWait.
	LaneSlots   int
	LaneWaiters int
	LaneWait    time.Duration

	// Logger is told of every refused attempt and every budget used up;
	// nil discards.
	Logger *slog.Logger

	laneOnce    sync.Once
	lane        chan struct{}
	laneWaiters int
	laneWait    time.Duration
	waiters     atomic.Int64
}

// errTooMany is the answer to an attempt over the limit. Clients see it as
// an ordinary authentication failure (GraphQL UNAUTHENTICATED), never as a
// request to retry.
func errTooMany() error {
	return latchkey.Errorf(latchkey.ERATELIMIT, "Too many failed attempts; try again later.")
}

func (g *Guard) log() *slog.Logger {
	if g.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.Logger
}

// addrKey is the bucket of a client address: the address itself, except
// that an IPv6 address counts against its /64, which one client usually
// holds whole.
func addrKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil || !ip.Is6() || ip.Is4In6() {
		return addr
	}
	p, err := ip.Prefix(64)
	if err != nil {
		return addr
	}
	return p.String()
}

// EmailKey returns the key a failed password sign-in counts against
// besides its address.
func EmailKey(email string) string {
	if email = latchkey.NormalizeEmail(email); email == "" {
		return ""
	}
	return "email:" + email
}

// FailCredential records a refused bearer credential (an API key, access
// token, legacy token or refresh token) from addr. It counts against the
// address only: keys have 190 bits, so guessing one is hopeless and only
// the cost of the guesses needs a limit (see Gate), while counting by any
// part of the credential would let anyone who knows it lock its owner out.
// The credential itself is never kept or logged, only its identifier.
func (g *Guard) FailCredential(addr, credential string) {
	if g == nil {
		return
	}
	if g.ByAddr.Fail(addrKey(addr)) {
		g.log().Warn("failed-authentication limit reached: further checks from this address share the slow lane",
			"limit", "address", "addr", addr, "credential", latchkey.SecretIdentifier(credential))
	}
}

// Defaults of the slow lane (see Gate).
const (
	DefaultLaneSlots   = 2
	DefaultLaneWaiters = 64
	DefaultLaneWait    = 2 * time.Second
)

// Gate is called before each credential check the authentication cache
// cannot answer (sqldb.AuthService.Gate). Clients whose address has used up
// its failure budget share a slow lane of LaneSlots concurrent checks:
// their checks wait for a slot (at most LaneWait, and at most LaneWaiters
// of them wait) and are refused with ERATELIMIT when none comes. So a
// client that keeps failing costs at most those slots, whatever it sends,
// while its valid credential is still checked, and succeeds. Every other
// client passes at the cost of an atomic load (a map lookup once anyone
// has failed).
func (g *Guard) Gate(ctx context.Context) (release func(), err error) {
	if g == nil || g.ByAddr.Len() == 0 {
		return noRelease, nil
	}
	addr := latchkey.ClientInfoFromContext(ctx).Addr
	if !g.ByAddr.Blocked(addrKey(addr)) {
		return noRelease, nil
	}
	g.laneOnce.Do(g.initLane)
	select {
	case g.lane <- struct{}{}:
		return g.leaveLane, nil
	default:
	}
	if g.waiters.Add(1) > int64(g.laneWaiters) {
		g.waiters.Add(-1)
		g.log().Warn("failed-authentication limit: slow lane full, check refused", "addr", addr)
		return nil, errTooMany()
	}
	defer g.waiters.Add(-1)
	t := time.NewTimer(g.laneWait)
	defer t.Stop()
	select {
	case g.lane <- struct{}{}:
		return g.leaveLane, nil
	case <-t.C:
	case <-ctx.Done():
	}
	g.log().Warn("failed-authentication limit: no slot in the slow lane, check refused", "addr", addr)
	return nil, errTooMany()
}

func noRelease() {}

func (g *Guard) leaveLane() { <-g.lane }

func (g *Guard) initLane() {
	slots, waiters, wait := g.LaneSlots, g.LaneWaiters, g.LaneWait
	if slots <= 0 {
		slots = DefaultLaneSlots
	}
	if waiters <= 0 {
		waiters = DefaultLaneWaiters
	}
	if wait <= 0 {
		wait = DefaultLaneWait
	}
	g.lane, g.laneWaiters, g.laneWait = make(chan struct{}, slots), waiters, wait
}
