package ratelimit_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/ratelimit"
)

// attempt runs one sign-in through s: refused, or checked with the
// password right or wrong.
func attempt(t *testing.T, s *ratelimit.SignIn, addr, email, device string, wrong bool) (refused bool, wait time.Duration) {
	t.Helper()
	finish, wait, err := s.StartSignIn(context.Background(), addr, email, device)
	if err != nil {
		if latchkey.ErrorCode(err) != latchkey.ERATELIMIT {
			t.Fatalf("err %v, want ERATELIMIT", err)
		}
		return true, wait
	}
	finish(wrong)
	return false, 0
}

func TestSignIn_UntrustedBudgetSparesDevice(t *testing.T) {
	t.Parallel()
	c := newClock()
	var logs bytes.Buffer
	s := ratelimit.NewSignIn(ratelimit.SignInLimits{PerAddr: 100, PerEmail: 3, PerDevice: 5},
		c.Now, slog.New(slog.NewTextHandler(&logs, nil)))
	for i := range 3 {
		if refused, _ := attempt(t, s, "192.0.2.1", "a@example.com", "", true); refused {
			t.Fatalf("attempt %d refused", i)
		}
	}
	// The email's untrusted budget is spent: untrusted attempts, even from
	// another address and with the right password, are refused unchecked.
	refused, wait := attempt(t, s, "192.0.2.2", " A@Example.com", "", false)
	if !refused || wait != 20*time.Second {
		t.Fatalf("refused=%v wait=%s, want true 20s", refused, wait)
	}
	// A browser with a device cookie for the email is not.
	if refused, _ := attempt(t, s, "192.0.2.1", "a@example.com", "dev1", false); refused {
		t.Fatal("trusted device refused")
	}
	// Another email is unaffected.
	if refused, _ := attempt(t, s, "192.0.2.2", "b@example.com", "", true); refused {
		t.Fatal("other email refused")
	}
	c.Add(20 * time.Second)
	if refused, _ := attempt(t, s, "192.0.2.2", "a@example.com", "", false); refused {
		t.Fatal("refused after the wait")
	}
	out := logs.String()
	if !strings.Contains(out, "sign-in limit reached") || !strings.Contains(out, "limit=email") || strings.Contains(out, "dev1") {
		t.Fatalf("logs:\n%s", out)
	}
}

func TestSignIn_AddressBudgetSparesDevice(t *testing.T) {
	t.Parallel()
	c := newClock()
	s := ratelimit.NewSignIn(ratelimit.SignInLimits{PerAddr: 2, PerEmail: 100, PerDevice: 5}, c.Now, nil)
	for range 2 {
		attempt(t, s, "203.0.113.9", "x@example.com", "", true)
	}
	if refused, _ := attempt(t, s, "203.0.113.9", "owner@example.com", "", false); !refused {
		t.Fatal("untrusted attempt from a spent address went ahead")
	}
	// Behind the same (proxy) address, a trusted browser still signs in.
	for range 10 {
		if refused, _ := attempt(t, s, "203.0.113.9", "owner@example.com", "dev", false); refused {
			t.Fatal("trusted device refused for its address")
		}
	}
}

func TestSignIn_DeviceBudget(t *testing.T) {
	t.Parallel()
	c := newClock()
	s := ratelimit.NewSignIn(ratelimit.SignInLimits{PerAddr: 100, PerEmail: 100, PerDevice: 3, DeviceRefill: 10 * time.Minute}, c.Now, nil)
	for range 3 {
		if refused, _ := attempt(t, s, "192.0.2.1", "a@example.com", "dev1", true); refused {
			t.Fatal("refused within budget")
		}
	}
	refused, wait := attempt(t, s, "192.0.2.1", "a@example.com", "dev1", false)
	if !refused || wait != 10*time.Minute {
		t.Fatalf("refused=%v wait=%s, want true 10m", refused, wait)
	}
	// Another device of the same user, and untrusted browsers, are not
	// refused: a device's failures count against it alone.
	if refused, _ := attempt(t, s, "192.0.2.1", "a@example.com", "dev2", false); refused {
		t.Fatal("other device refused")
	}
	if refused, _ := attempt(t, s, "192.0.2.1", "a@example.com", "", false); refused {
		t.Fatal("untrusted refused after device failures")
	}
	c.Add(10 * time.Minute)
	if refused, _ := attempt(t, s, "192.0.2.1", "a@example.com", "dev1", false); refused {
		t.Fatal("refused after the wait")
	}
}

func TestSignIn_SuccessSpendsNothing(t *testing.T) {
	t.Parallel()
	s := ratelimit.NewSignIn(ratelimit.SignInLimits{PerAddr: 2, PerEmail: 2, PerDevice: 2}, newClock().Now, nil)
	for i := range 20 {
		if refused, _ := attempt(t, s, "192.0.2.1", "a@example.com", "", false); refused {
			t.Fatalf("untrusted success %d refused", i)
		}
		if refused, _ := attempt(t, s, "192.0.2.1", "a@example.com", "dev", false); refused {
			t.Fatalf("trusted success %d refused", i)
		}
	}
}

// Budgets are taken before the check, so attempts in flight at once cannot
// overrun them.
func TestSignIn_ConcurrentAttemptsCannotOverrun(t *testing.T) {
	t.Parallel()
	s := ratelimit.NewSignIn(ratelimit.SignInLimits{PerAddr: 100, PerEmail: 3}, newClock().Now, nil)
	var (
		mu       sync.Mutex
		finishes []func(bool)
		wg       sync.WaitGroup
	)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if f, _, err := s.StartSignIn(context.Background(), "192.0.2.1", "a@example.com", ""); err == nil {
				mu.Lock()
				finishes = append(finishes, f)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(finishes) != 3 {
		t.Fatalf("%d attempts went ahead, want 3", len(finishes))
	}
	for _, f := range finishes {
		f(true)
	}
}

func TestSignIn_ChecksBoundUntrustedOnly(t *testing.T) {
	t.Parallel()
	s := ratelimit.NewSignIn(ratelimit.SignInLimits{PerAddr: 100, PerEmail: 100, PerDevice: 5, MaxUntrustedChecks: 1, CheckWait: time.Millisecond}, newClock().Now, nil)
	hold, _, err := s.StartSignIn(context.Background(), "192.0.2.1", "a@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	// The one slot is taken: another untrusted attempt is refused as busy
	// (wait 0), after waiting CheckWait, and spends no budget.
	_, wait, err := s.StartSignIn(context.Background(), "192.0.2.2", "b@example.com", "")
	if latchkey.ErrorCode(err) != latchkey.ERATELIMIT || wait != 0 || !strings.Contains(latchkey.ErrorMessage(err), "busy") {
		t.Fatalf("wait=%s err=%v", wait, err)
	}
	// A trusted device does not wait for the slot.
	if refused, _ := attempt(t, s, "192.0.2.2", "b@example.com", "dev", false); refused {
		t.Fatal("trusted attempt refused while untrusted checks are busy")
	}
	hold(false)
	if refused, _ := attempt(t, s, "192.0.2.2", "b@example.com", "", false); refused {
		t.Fatal("untrusted attempt refused after the slot was freed")
	}
	// A request that ends while it waits is refused too.
	hold, _, _ = s.StartSignIn(context.Background(), "192.0.2.1", "a@example.com", "")
	defer hold(false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.StartSignIn(ctx, "192.0.2.3", "c@example.com", ""); latchkey.ErrorCode(err) != latchkey.ERATELIMIT {
		t.Fatalf("err %v", err)
	}
}

func TestSignIn_Nil(t *testing.T) {
	t.Parallel()
	var s *ratelimit.SignIn
	finish, wait, err := s.StartSignIn(context.Background(), "192.0.2.1", "a@example.com", "")
	if err != nil || wait != 0 {
		t.Fatal(wait, err)
	}
	finish(true)
}

func TestLimiter_TakeRefundWait(t *testing.T) {
	t.Parallel()
	c := newClock()
	l := ratelimit.NewLimiterEvery(2, time.Hour, 0, c.Now)
	for range 2 {
		if !l.Take("k") {
			t.Fatal("Take refused within budget")
		}
	}
	if l.Take("k") || !l.Blocked("k") {
		t.Fatal("Take went ahead over budget")
	}
	if w := l.Wait("k"); w != time.Hour {
		t.Fatalf("Wait=%s, want 1h", w)
	}
	l.Refund("k")
	if l.Blocked("k") || l.Wait("k") != 0 || !l.Take("k") {
		t.Fatal("Refund gave nothing back")
	}
	c.Add(30 * time.Minute)
	if w := l.Wait("k"); w != 30*time.Minute {
		t.Fatalf("Wait=%s, want 30m", w)
	}
	// Refunds never exceed the burst.
	for range 5 {
		l.Refund("other")
		l.Refund("k")
	}
	taken := 0
	for l.Take("k") && taken < 10 {
		taken++
	}
	if taken != 2 {
		t.Fatalf("took %d after refunds, want the burst, 2", taken)
	}
	var none *ratelimit.Limiter
	if !none.Take("k") || none.Wait("k") != 0 || ratelimit.NewLimiterEvery(0, time.Hour, 0, nil) != nil {
		t.Fatal("nil limiter limits")
	}
	none.Refund("k")
}
