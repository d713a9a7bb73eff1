package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	main "github.com/latchkey/latchkey/cmd/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// propagationBound is what issue 6 asks: a credential revoked through one
// replica is rejected by every other within a second.
const propagationBound = time.Second

// replicaRounds is how many revocations TestReplicas_RevocationPropagation
// measures; LATCHKEY_REPLICA_ROUNDS overrides it.
func replicaRounds(t *testing.T) int {
	if v := os.Getenv("LATCHKEY_REPLICA_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("LATCHKEY_REPLICA_ROUNDS=%q", v)
		}
		return n
	}
	return 20
}

// mustRunReplicas starts two servers on one fresh PostgreSQL schema, as
// two replicas behind a load balancer. The first bootstraps it.
func mustRunReplicas(t *testing.T) (a, b *TestServer) {
	t.Helper()
	dsn := latchkeytest.MustDSN(t, "postgres") // skips without LATCHKEY_TEST_POSTGRES_DSN
	a = MustRunMainDSN(t, dsn)
	b = MustRunMainDSN(t, dsn)
	if a.AdminKey == "" || b.AdminKey != "" {
		t.Fatal("the first replica should have bootstrapped the database, and only it")
	}
	if a.AuthCache == nil || b.AuthCache == nil {
		t.Fatal("replicas run without the authentication cache")
	}
	return a, b
}

// mustSwitch exchanges cred for an access token through s.
func mustSwitch(t *testing.T, s *TestServer, cred, tenantID string) string {
	t.Helper()
	var pair tokenPair
	s.MustDo(t, cred, "", qSwitchTenant, map[string]any{"input": map[string]any{"tenant_id": tenantID}}, "switch_tenant", &pair)
	return pair.AccessToken
}

// mustKeyID returns the id of the caller's key named name.
func mustKeyID(t *testing.T, s *TestServer, cred, name string) string {
	t.Helper()
	var keys []struct{ ID, Name string }
	s.MustDo(t, cred, "", qListKeys, nil, "auth_api_key", &keys)
	for _, k := range keys {
		if k.Name == name {
			return k.ID
		}
	}
	t.Fatalf("no key named %q", name)
	return ""
}

// mustWarm authenticates every credential on every server twice and checks
// that the second time each server's cache answered.
func mustWarm(t *testing.T, servers []*TestServer, creds ...string) {
	t.Helper()
	for _, s := range servers {
		for _, cred := range creds {
			s.MustDo(t, cred, "", qAuthInfoTenant, nil, "auth_info", nil)
		}
		before := s.AuthCache.Stats()
		for _, cred := range creds {
			s.MustDo(t, cred, "", qAuthInfoTenant, nil, "auth_info", nil)
		}
		if after := s.AuthCache.Stats(); after.Misses != before.Misses || after.Hits <= before.Hits {
			t.Fatalf("%s: cache not warm: before %+v, after %+v", s.URL, before, after)
		}
	}
}

// rejected reports whether s refuses cred as UNAUTHENTICATED.
func rejected(t *testing.T, s *TestServer, cred string) bool {
	t.Helper()
	r := s.Do(t, "/graphql", cred, "", qAuthInfoTenant, nil)
	switch r.code() {
	case "UNAUTHENTICATED":
		return true
	case "":
		return false
	}
	t.Fatalf("unexpected answer: %s", r.raw)
	return false
}

// awaitRejected polls s until it rejects every credential and returns how
// long that took after start and how many polls still saw one accepted.
// It fails past propagationBound.
func awaitRejected(t *testing.T, s *TestServer, start time.Time, creds ...string) (time.Duration, int) {
	t.Helper()
	for accepted := 0; ; accepted++ {
		all := true
		for _, cred := range creds {
			if !rejected(t, s, cred) {
				all = false
				break
			}
		}
		if all {
			return time.Since(start), accepted
		}
		if d := time.Since(start); d > propagationBound {
			t.Fatalf("%s still accepts a revoked credential %v after the revocation", s.URL, d)
		}
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// Two replicas on one PostgreSQL database, both caches warm with a key
// and an access token minted from it: the key is revoked through replica
// A, and replica B is polled until it rejects both. The time is measured
// from the moment A answered the revocation (committed) and, as an upper
// bound, from the moment the request was sent. Other credentials keep
// working on both replicas.
func TestReplicas_RevocationPropagation(t *testing.T) {
	t.Parallel()
	a, b := mustRunReplicas(t)
	servers := []*TestServer{a, b}
	admin := a.AdminKey
	var info authInfo
	a.MustDo(t, admin, "", qAuthInfoTenant, nil, "auth_info", &info)
	tenant := *info.TenantID
	bystander := createKey(t, a, admin, map[string]any{"name": "bystander"})
	bystanderJWT := mustSwitch(t, b, bystander, tenant)
	mustWarm(t, servers, admin, bystander, bystanderJWT)

	// When B's listener hands each key deletion to B's cache.
	var mu sync.Mutex
	heard := map[string]time.Time{}
	unsubscribe := b.Events.Subscribe(func(ev latchkey.Event) {
		if ev.Type == latchkey.EventAPIKeyDeleted {
			mu.Lock()
			heard[ev.APIKeyID] = time.Now()
			mu.Unlock()
		}
	})
	defer unsubscribe()

	rounds := replicaRounds(t)
	var sinceAnswer, sinceRequest, eventAfterRequest []time.Duration
	stale := 0 // rounds in which B accepted a revoked credential at least once after A answered
	for i := range rounds {
		name := fmt.Sprintf("victim %d", i)
		key := createKey(t, a, admin, map[string]any{"name": name})
		id := mustKeyID(t, a, admin, name)
		jwt := mustSwitch(t, a, key, tenant)
		mustWarm(t, servers, key, jwt)

		sent := time.Now()
		var ok struct{ Success bool }
		a.MustDo(t, admin, "", qRevokeKey, map[string]any{"input": map[string]any{"key_id": id}}, "delete_api_key", &ok)
		answered := time.Now()
		if !ok.Success {
			t.Fatal("revoke failed")
		}
		if _, polls := awaitRejected(t, b, answered, key, jwt); polls > 0 {
			stale++
		}
		sinceAnswer = append(sinceAnswer, time.Since(answered))
		sinceRequest = append(sinceRequest, time.Since(sent))
		mu.Lock()
		at, found := heard[id]
		mu.Unlock()
		if !found {
			t.Fatal("B rejected the key without hearing of its deletion")
		}
		eventAfterRequest = append(eventAfterRequest, at.Sub(sent))
		// The replica that revoked rejects both at once; nothing else broke.
		if !rejected(t, a, key) || !rejected(t, a, jwt) {
			t.Fatal("replica A still accepts the key it revoked")
		}
		mustWarm(t, servers, admin, bystander, bystanderJWT)
	}
	t.Logf("revocation through A rejected by B (key and JWT), %d rounds: after A answered p50 %v max %v; after the request was sent p50 %v max %v; B still accepted on its first poll in %d rounds; B's cache heard the event p50 %v max %v after the request was sent",
		rounds, percentile(sinceAnswer, 0.5), slices.Max(sinceAnswer), percentile(sinceRequest, 0.5), slices.Max(sinceRequest), stale,
		percentile(eventAfterRequest, 0.5), slices.Max(eventAfterRequest))
	for _, s := range servers {
		st := s.AuthCache.Stats()
		t.Logf("%s cache: %+v", s.URL, st)
	}
}

// The cache is really in play: a key deleted behind the services' back
// (no event) is still accepted by both warm replicas, and an event alone
// makes them reject it. This is what lets the test above fail.
func TestReplicas_CacheNeedsEvents(t *testing.T) {
	t.Parallel()
	a, b := mustRunReplicas(t)
	key := createKey(t, a, a.AdminKey, map[string]any{"name": "k"})
	id := mustKeyID(t, a, a.AdminKey, "k")
	mustWarm(t, []*TestServer{a, b}, key)

	tx, err := a.DB.BeginTx(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(context.Background(), `DELETE FROM api_keys WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*TestServer{a, b} {
		if rejected(t, s, key) {
			t.Fatalf("%s: rejected without an event: the cache was not in play", s.URL)
		}
	}
	var owner authInfo
	a.MustDo(t, a.AdminKey, "", qAuthInfoUser, nil, "auth_info", &owner)
	start := time.Now()
	if err := a.Events.Publish(context.Background(), latchkey.Event{Type: latchkey.EventAPIKeyDeleted, UserID: *owner.UserID, APIKeyID: id}); err != nil {
		t.Fatal(err)
	}
	if !rejected(t, a, key) {
		t.Fatal("A still accepts the key after its own event")
	}
	awaitRejected(t, b, start, key)
}

// Legacy tokens, service accounts and memberships revoked through A are
// rejected by B within the bound too, with the access tokens minted from
// them.
func TestReplicas_OtherRevocations(t *testing.T) {
	t.Parallel()
	a, b := mustRunReplicas(t)
	servers := []*TestServer{a, b}
	admin := a.AdminKey
	var info authInfo
	a.MustDo(t, admin, "", "query { auth_info { tenant_id user_id } }", nil, "auth_info", &info)
	tenant := *info.TenantID

	t.Run("api token", func(t *testing.T) {
		var tok struct{ ID, Token string }
		a.MustDo(t, admin, "", "mutation($input: create_api_token_input!) { create_api_token(input: $input) { id token } }",
			map[string]any{"input": map[string]any{"name": "t", "scope": "USER"}}, "create_api_token", &tok)
		jwt := mustSwitch(t, a, tok.Token, tenant)
		mustWarm(t, servers, tok.Token, jwt)
		start := time.Now()
		a.MustDo(t, admin, "", "mutation($input: delete_api_token_input!) { delete_api_token(input: $input) { success } }",
			map[string]any{"input": map[string]any{"token_id": tok.ID}}, "delete_api_token", nil)
		d, _ := awaitRejected(t, b, start, tok.Token, jwt)
		t.Logf("rejected by B %v after the request", d)
		mustWarm(t, servers, admin)
	})

	t.Run("service account", func(t *testing.T) {
		var sa struct{ ID string }
		a.MustDo(t, admin, "", `mutation { create_service_account(input: {name: "agent"}) { id } }`, nil, "create_service_account", &sa)
		key := createKey(t, a, admin, map[string]any{"name": "agent key", "user_id": sa.ID})
		jwt := mustSwitch(t, a, key, tenant)
		mustWarm(t, servers, key, jwt)
		start := time.Now()
		a.MustDo(t, admin, "", "mutation($input: delete_service_account_input!) { delete_service_account(input: $input) { success } }",
			map[string]any{"input": map[string]any{"service_account_id": sa.ID}}, "delete_service_account", nil)
		d, _ := awaitRejected(t, b, start, key, jwt)
		t.Logf("rejected by B %v after the request", d)
		mustWarm(t, servers, admin)
	})

	t.Run("membership", func(t *testing.T) {
		var created struct {
			Membership struct {
				ID     string
				UserID string `json:"user_id"`
			}
		}
		a.MustDo(t, admin, "", `mutation { create_membership(input: {email: "member@example.com"}) { membership { id user_id } } }`, nil, "create_membership", &created)
		m := created.Membership
		// The new member has no credential yet: make one in the store.
		member := &latchkey.User{ID: m.UserID, Kind: latchkey.UserKindHuman, Email: "member@example.com"}
		key, err := sqldb.NewAPIKeyService(a.DB).CreateAPIKey(
			latchkeytest.AuthContext(context.Background(), member, tenant, latchkey.RoleUser), &latchkey.APIKey{Name: "member key"})
		if err != nil {
			t.Fatal(err)
		}
		jwt := mustSwitch(t, a, key, tenant)
		mustWarm(t, servers, key, jwt)
		start := time.Now()
		a.MustDo(t, admin, "", "mutation($input: delete_membership_input!) { delete_membership(input: $input) { success } }",
			map[string]any{"input": map[string]any{"membership_id": m.ID}}, "delete_membership", nil)
		d, _ := awaitRejected(t, b, start, key, jwt)
		t.Logf("rejected by B %v after the request", d)
		mustWarm(t, servers, admin)
	})
}

// Behind a proxy that terminates TLS the server sees plain HTTP, so only
// its settings can make the UI's cookies Secure: an https --public-url (or
// --secure-cookies) does.
func TestServer_SecureCookiesBehindTLSProxy(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		opt    func(*main.Main)
		secure bool
	}{
		{"default", func(*main.Main) {}, false},
		{"https public url", func(m *main.Main) { m.PublicURL = "https://auth.example.com" }, true},
		{"secure-cookies", func(m *main.Main) { m.SecureCookies = true }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := MustRunMain(t, "sqlite", tt.opt)
			resp, err := http.Get(s.URL + "/ui/signin")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			cookies := resp.Cookies()
			if len(cookies) == 0 {
				t.Fatalf("status %d: the sign-in page set no cookie", resp.StatusCode)
			}
			for _, c := range cookies {
				if c.Secure != tt.secure {
					t.Errorf("cookie %s: Secure=%v, want %v", c.Name, c.Secure, tt.secure)
				}
			}
		})
	}
	var stderr syncBuffer
	m := main.NewMain(&main.Env{Stderr: &stderr})
	if err := m.ParseFlags([]string{"--public-url", "auth.example.com"}, func(string) string { return "" }); err == nil {
		t.Fatal("a public URL without a scheme was accepted")
	}
}

// The cache's work and, on PostgreSQL, the listener's state are exported
// at /metrics.
func TestServer_EventMetrics(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine string) {
		s := MustRunMain(t, engine)
		for range 3 {
			s.MustDo(t, s.AdminKey, "", qAuthInfoTenant, nil, "auth_info", nil)
		}
		resp, err := http.Get(s.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := []string{"latchkey_auth_cache_hits_total 4", "latchkey_auth_cache_misses_total 1", "latchkey_auth_cache_entries 2"}
		if engine == "postgres" {
			want = append(want, "latchkey_events_listener_up 1", "latchkey_events_listener_reconnects_total 0")
		}
		for _, w := range want {
			if !strings.Contains(string(b), w+"\n") {
				t.Errorf("/metrics lacks %q", w)
			}
		}
	})
}

// Replicas sign the UI's device cookies with the same key, derived from
// the database they share, so a browser trusted by one is trusted by all;
// another database has another key.
func TestReplicas_DeviceKey(t *testing.T) {
	t.Parallel()
	a, b := mustRunReplicas(t)
	ka, err := main.DeviceKey(a.Main)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := main.DeviceKey(b.Main)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := main.DeviceKey(MustRunMain(t, "sqlite").Main)
	if err != nil {
		t.Fatal(err)
	}
	if len(ka) != 32 || !bytes.Equal(ka, kb) || bytes.Equal(ka, kc) {
		t.Fatalf("device keys: replicas equal %v, other database equal %v", bytes.Equal(ka, kb), bytes.Equal(ka, kc))
	}
	// Rotating the signing key does not change it.
	if _, err := a.Tokens.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if k, err := main.DeviceKey(b.Main); err != nil || !bytes.Equal(k, ka) {
		t.Fatalf("device key changed with the signing key (err %v)", err)
	}
}
