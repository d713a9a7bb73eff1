package ratelimit_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/ratelimit"
)

// clock is a settable clock.
type clock = latchkeytest.Clock

func newClock() *clock { return latchkeytest.NewClockAt(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) }

func TestLimiter_BurstThenRate(t *testing.T) {
	t.Parallel()
	c := newClock()
	l := ratelimit.NewLimiter(6, 3, 0, c.Now) // 3 in a row, then one every 10 s
	for i := range 3 {
		if l.Blocked("k") {
			t.Fatalf("blocked before failure %d", i+1)
		}
		if got, want := l.Fail("k"), i == 2; got != want {
			t.Fatalf("failure %d: out of budget=%v, want %v", i+1, got, want)
		}
	}
	if !l.Blocked("k") {
		t.Fatal("not blocked after the burst")
	}
	if l.Blocked("other") || l.Blocked("") {
		t.Fatal("another key is blocked")
	}
	c.Add(9 * time.Second)
	if !l.Blocked("k") {
		t.Fatal("unblocked before a token refilled")
	}
	c.Add(time.Second)
	if l.Blocked("k") {
		t.Fatal("still blocked after a token refilled")
	}
	if !l.Fail("k") || !l.Blocked("k") {
		t.Fatal("the refilled token did not run out")
	}
	// Failing while blocked takes nothing more: 10 s later it may try again.
	l.Fail("k")
	c.Add(10 * time.Second)
	if l.Blocked("k") {
		t.Fatal("failures while blocked kept it blocked")
	}
	// A minute later the bucket is full and swept away.
	c.Add(time.Minute)
	l.Blocked("k")
	if l.Len() != 0 {
		t.Fatalf("%d buckets after everything refilled", l.Len())
	}
}

func TestLimiter_DisabledAndNil(t *testing.T) {
	t.Parallel()
	if l := ratelimit.NewLimiter(0, 10, 0, nil); l != nil {
		t.Fatal("perMinute 0 did not disable")
	}
	var l *ratelimit.Limiter
	for range 100 {
		l.Fail("k")
	}
	if l.Blocked("k") || l.Len() != 0 {
		t.Fatal("a nil limiter blocked")
	}
	var g *ratelimit.Guard
	g.FailCredential("1.2.3.4", "k")
	if release, err := g.Gate(context.Background()); err != nil {
		t.Fatal(err)
	} else {
		release()
	}
}

func TestLimiter_Bounded(t *testing.T) {
	t.Parallel()
	c := newClock()
	l := ratelimit.NewLimiter(1, 2, 100, c.Now)
	for i := range 1000 {
		l.Fail(fmt.Sprint("k", i))
	}
	if l.Len() > 100 {
		t.Fatalf("%d buckets, limit 100", l.Len())
	}
	// Out-of-budget keys survive eviction while half-used ones exist.
	for range 2 {
		l.Fail("hot")
	}
	for i := range 50 {
		l.Fail(fmt.Sprint("x", i))
	}
	if !l.Blocked("hot") {
		t.Fatal("an exhausted key was evicted before half-used ones")
	}
}

// TestGuard_FailCredential: failures count against the address (an IPv6
// client against its /64), never against the credential; the budget used
// up is logged with the credential's identifier only.
func TestGuard_FailCredential(t *testing.T) {
	t.Parallel()
	c := newClock()
	var logs bytes.Buffer
	g := &ratelimit.Guard{ByAddr: ratelimit.NewLimiter(3, 3, 0, c.Now), Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	secret := "lku_AbCdEfGh" + strings.Repeat("x", 30)
	for range 3 {
		g.FailCredential("192.0.2.1", secret)
	}
	if !g.ByAddr.Blocked("192.0.2.1") || g.ByAddr.Blocked("192.0.2.2") || g.ByAddr.Len() != 1 {
		t.Fatalf("address budget: len %d", g.ByAddr.Len())
	}
	for i := range 3 {
		g.FailCredential(fmt.Sprintf("2001:db8:1:2::%x", i+1), "")
	}
	if !g.ByAddr.Blocked("2001:db8:1:2::/64") {
		t.Error("an IPv6 client does not count against its /64")
	}
	out := logs.String()
	if !strings.Contains(out, "limit reached") || !strings.Contains(out, "addr=192.0.2.1") || !strings.Contains(out, "credential=lku_…xxxx") {
		t.Errorf("logs:\n%s", out)
	}
	if strings.Contains(out, secret[4:12]) {
		t.Errorf("logs hold part of the secret:\n%s", out)
	}
	c.Add(time.Minute)
	if g.ByAddr.Blocked("192.0.2.1") {
		t.Error("still blocked a minute later")
	}
}

func TestEmailKey(t *testing.T) {
	t.Parallel()
	if got := ratelimit.EmailKey(" Admin@Example.COM "); got != "email:admin@example.com" {
		t.Errorf("EmailKey=%q", got)
	}
}

// BenchmarkGuard_Gate measures what a successful request pays: nothing
// but an atomic load while no one has failed, a map lookup after.
func BenchmarkGuard_Gate(b *testing.B) {
	g := &ratelimit.Guard{ByAddr: ratelimit.NewLimiter(20, 20, 0, nil)}
	ctx := latchkey.NewContextWithClientInfo(context.Background(), latchkey.ClientInfo{Addr: "192.0.2.1"})
	b.Run("idle", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			release, _ := g.Gate(ctx)
			release()
		}
	})
	g.FailCredential("198.51.100.1", "lku_ZZZZZZZZ")
	b.Run("after-a-failure", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			release, _ := g.Gate(ctx)
			release()
		}
	})
}

// TestGuard_Gate: addresses within their budget pass at once; one over it
// shares the slow lane: a check waits for a free slot, at most
// LaneWaiters wait, and a wait longer than LaneWait is refused.
func TestGuard_Gate(t *testing.T) {
	t.Parallel()
	c := newClock()
	g := &ratelimit.Guard{ByAddr: ratelimit.NewLimiter(2, 2, 0, c.Now), LaneSlots: 1, LaneWaiters: 1, LaneWait: 50 * time.Millisecond}
	ctxFrom := func(addr string) context.Context {
		return latchkey.NewContextWithClientInfo(context.Background(), latchkey.ClientInfo{Addr: addr})
	}
	// Nobody has failed: nothing to wait for.
	release, err := g.Gate(ctxFrom("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	release()
	for range 2 {
		g.FailCredential("192.0.2.1", "lku_whatever")
	}
	// Another address still passes without touching the lane.
	for range 5 {
		release, err := g.Gate(ctxFrom("192.0.2.2"))
		if err != nil {
			t.Fatal(err)
		}
		defer release()
	}
	// The throttled address takes the lane's only slot ...
	hold, err := g.Gate(ctxFrom("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	// ... the next check waits for it and gets it when it is released ...
	got := make(chan error, 1)
	go func() {
		release, err := g.Gate(ctxFrom("192.0.2.1"))
		if err == nil {
			release()
		}
		got <- err
	}()
	// ... while one more finds the waiting room full and is refused at once.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := g.Gate(ctxFrom("192.0.2.1"))
		if latchkey.ErrorCode(err) == latchkey.ERATELIMIT {
			break
		}
		if err == nil || time.Now().After(deadline) {
			t.Fatalf("third check: %v", err)
		}
	}
	hold()
	if err := <-got; err != nil && latchkey.ErrorCode(err) != latchkey.ERATELIMIT {
		t.Fatalf("waiting check: %v", err)
	}
	// A check that cannot get the slot within LaneWait is refused.
	hold, err = g.Gate(ctxFrom("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Gate(ctxFrom("192.0.2.1")); latchkey.ErrorCode(err) != latchkey.ERATELIMIT {
		t.Fatalf("check past LaneWait: %v", err)
	}
	hold()
	// A minute later the address has budget again: no lane.
	c.Add(time.Minute)
	for range 3 {
		release, err := g.Gate(ctxFrom("192.0.2.1"))
		if err != nil {
			t.Fatal(err)
		}
		defer release()
	}
}
