package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/internal/latchkeytest"
)

// clock is a settable fake clock.
type clock = latchkeytest.Clock

// newClock returns a clock stopped at 2026-11-25 12:00 UTC.
func newClock() *clock {
	return latchkeytest.NewClockAt(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
}

// tokenServer mints access tokens for the key "lku_key" and renews them
// with refresh tokens, counting each exchange.
type tokenServer struct {
	*recorder
	clock *clock
	ttl   time.Duration

	mu           sync.Mutex
	switches     int
	minted       int
	refreshes    int
	refresh      map[string]string // refresh -> access
	valid        map[string]bool   // live access tokens
	failRefresh  bool
	failSwitch   bool
	beforeSwitch func() // if set, runs before switch_tenant is answered (a slow server)
	lastSwitchIn string // switch_tenant variables
}

func MustTokenServer(t *testing.T, clk *clock) *tokenServer {
	t.Helper()
	ts := &tokenServer{clock: clk, ttl: 10 * time.Minute, refresh: map[string]string{}, valid: map[string]bool{}}
	ts.recorder = MustRecorder(t, ts.respond)
	return ts
}

func (ts *tokenServer) mint() string {
	ts.switches++ // caller holds mu; counts every mint, adjusted below
	ts.minted++
	access := fmt.Sprintf("eyJaccess.%d.sig", ts.minted)
	refresh := fmt.Sprintf("lkr_refresh%d", ts.minted)
	ts.valid[access] = true
	ts.refresh[refresh] = access
	b, _ := json.Marshal(map[string]string{
		"access_token":  access,
		"expires_at":    ts.clock.Now().Add(ts.ttl).Format(time.RFC3339),
		"refresh_token": refresh,
	})
	return string(b)
}

func (ts *tokenServer) respond(_ int, r request) (int, string) {
	var body struct{ Query, Variables string }
	_ = json.Unmarshal([]byte(r.Body), &body)
	bearer := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	unauth := `{"data": null, "errors": [{"message": "Unauthenticated", "extensions": {"code": "UNAUTHENTICATED"}}]}`
	switch body.Query {
	case client.MutationSwitchTenant:
		if ts.beforeSwitch != nil {
			ts.beforeSwitch()
		}
		ts.mu.Lock()
		defer ts.mu.Unlock()
		if bearer != "lku_key" || ts.failSwitch {
			return 200, unauth
		}
		ts.lastSwitchIn = body.Variables
		return 200, `{"data": {"switch_tenant": ` + ts.mint() + `}}`
	case client.MutationRefreshToken:
		ts.mu.Lock()
		defer ts.mu.Unlock()
		var v struct {
			Input struct {
				AccessToken string `json:"access_token"`
			} `json:"input"`
		}
		_ = json.Unmarshal([]byte(body.Variables), &v)
		if ts.failRefresh || ts.refresh[bearer] == "" || ts.refresh[bearer] != v.Input.AccessToken || r.Header.Get("X-Prefect-Tenant-Id") != "" {
			return 200, unauth
		}
		delete(ts.refresh, bearer)
		delete(ts.valid, v.Input.AccessToken)
		ts.refreshes++
		ts.switches-- // mint counts switches; this one is a refresh
		return 200, `{"data": {"refresh_token": ` + ts.mint() + `}}`
	default:
		ts.mu.Lock()
		defer ts.mu.Unlock()
		if !ts.valid[bearer] {
			return 200, unauth
		}
		return 200, `{"data": {"hello": "` + bearer + `"}}`
	}
}

func (ts *tokenServer) counts() (switches, refreshes int) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.switches, ts.refreshes
}

func (ts *tokenServer) revokeAll() {
	ts.mu.Lock()
	ts.valid = map[string]bool{}
	ts.mu.Unlock()
}

func newTokenClient(ts *tokenServer, clk *clock) (*client.Client, *client.TokenSource) {
	c := &client.Client{URL: ts.srv.URL, APIKey: "lku_key", TenantID: "t-1", Now: clk.Now}
	src := client.NewTokenSource(c, "")
	c.TokenSource = src
	return c, src
}

func TestTokenSourceRefreshBeforeExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := newClock()
	ts := MustTokenServer(t, clk)
	c, src := newTokenClient(ts, clk)

	first, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ts.lastSwitchIn, `{"input": {"tenant_id": "t-1"}}`; got != want {
		t.Errorf("switch_tenant variables=%s, want %s", got, want)
	}
	// The exchange used the key and the tenant header.
	sw := ts.requests()[0]
	if got, want := sw.Header.Get("Authorization"), "Bearer lku_key"; got != want {
		t.Errorf("switch bearer=%q, want %q", got, want)
	}
	if got, want := sw.Header.Get("X-Prefect-Tenant-Id"), "t-1"; got != want {
		t.Errorf("switch tenant header=%q, want %q", got, want)
	}

	// Well before the 30 s margin: cached.
	clk.Add(9 * time.Minute)
	again, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Errorf("token renewed %v before expiry", 10*time.Minute-9*time.Minute)
	}
	if s, r := ts.counts(); s != 1 || r != 0 {
		t.Fatalf("switches=%d refreshes=%d, want 1 0", s, r)
	}

	// Inside the margin (25 s left): refreshed with the refresh token.
	clk.Add(35 * time.Second)
	renewed, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if renewed == first {
		t.Error("token not renewed inside the margin")
	}
	if s, r := ts.counts(); s != 1 || r != 1 {
		t.Fatalf("switches=%d refreshes=%d, want 1 1", s, r)
	}
	reqs := ts.requests()
	ref := reqs[len(reqs)-1]
	if got, want := ref.Header.Get("Authorization"), "Bearer lkr_refresh1"; got != want {
		t.Errorf("refresh bearer=%q, want %q", got, want)
	}
	if _, ok := ref.Header["X-Prefect-Tenant-Id"]; ok {
		t.Error("refresh sent a tenant header")
	}
	if !strings.Contains(ref.Body, `\"access_token\": \"`+first+`\"`) {
		t.Errorf("refresh body=%s, want the old access token", ref.Body)
	}

	// Requests through the client use the access token, not the key.
	hello, err := c.Hello(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if hello != renewed {
		t.Errorf("request authenticated with %q, want %q", hello, renewed)
	}
	reqs = ts.requests()
	if _, ok := reqs[len(reqs)-1].Header["X-Prefect-Tenant-Id"]; ok {
		t.Error("tenant header sent with an access token")
	}
}

func TestTokenSourceFallsBackToSwitch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := newClock()
	ts := MustTokenServer(t, clk)
	_, src := newTokenClient(ts, clk)
	if _, err := src.Token(ctx); err != nil {
		t.Fatal(err)
	}
	ts.mu.Lock()
	ts.failRefresh = true
	ts.mu.Unlock()
	clk.Add(11 * time.Minute) // expired
	if _, err := src.Token(ctx); err != nil {
		t.Fatal(err)
	}
	if s, r := ts.counts(); s != 2 || r != 0 {
		t.Errorf("switches=%d refreshes=%d, want 2 0", s, r)
	}

	// Both fail: the error is returned, not a stale token.
	ts.mu.Lock()
	ts.failSwitch = true
	ts.mu.Unlock()
	clk.Add(11 * time.Minute)
	_, err := src.Token(ctx)
	var authErr *client.AuthorizationError
	if !errors.As(err, &authErr) {
		t.Errorf("err=%v, want *AuthorizationError", err)
	}
}

func TestTokenSourceShortLifetimeMargin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := newClock()
	ts := MustTokenServer(t, clk)
	ts.ttl = 60 * time.Second // margin: 10% = 6 s
	_, src := newTokenClient(ts, clk)
	if _, err := src.Token(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Add(53 * time.Second)
	if _, err := src.Token(ctx); err != nil {
		t.Fatal(err)
	}
	if _, r := ts.counts(); r != 0 {
		t.Errorf("renewed with 7 s left of 60 s")
	}
	clk.Add(2 * time.Second)
	if _, err := src.Token(ctx); err != nil {
		t.Fatal(err)
	}
	if _, r := ts.counts(); r != 1 {
		t.Errorf("not renewed with 5 s left of 60 s")
	}
}

func TestTokenSourceConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := newClock()
	ts := MustTokenServer(t, clk)
	ts.beforeSwitch = func() { time.Sleep(20 * time.Millisecond) }
	c, _ := newTokenClient(ts, clk)

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 4; j++ {
				if i == 0 && j == 2 {
					clk.Add(9*time.Minute + 45*time.Second) // into the margin
				}
				if _, err := c.Hello(ctx); err != nil {
					errs <- err
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s, r := ts.counts()
	if s != 1 {
		t.Errorf("switch_tenant called %d times, want 1", s)
	}
	if r > 1 {
		t.Errorf("refresh_token called %d times, want at most 1", r)
	}
}

func TestTokenSourceRetriesRejectedToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := newClock()
	ts := MustTokenServer(t, clk)
	c, _ := newTokenClient(ts, clk)
	if _, err := c.Hello(ctx); err != nil {
		t.Fatal(err)
	}
	ts.revokeAll() // e.g. the server restarted with a new signing key
	if _, err := c.Hello(ctx); err != nil {
		t.Fatalf("not recovered: %v", err)
	}
	if s, _ := ts.counts(); s != 2 {
		t.Errorf("switches=%d, want 2", s)
	}
}

func TestTokenSourceContextCancelledWhileWaiting(t *testing.T) {
	t.Parallel()
	clk := newClock()
	ts := MustTokenServer(t, clk)
	// The first exchange is answered only once the test is done with it.
	inExchange, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	ts.beforeSwitch = func() {
		once.Do(func() { close(inExchange) })
		<-release
	}
	defer close(release)
	_, src := newTokenClient(ts, clk)
	go src.Token(context.Background()) // holds the lock during a slow exchange
	<-inExchange
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := src.Token(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err=%v, want deadline exceeded", err)
	}
}
