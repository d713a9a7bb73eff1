package main_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	main "github.com/latchkey/latchkey/cmd/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
)

// doFrom is TestServer.Do with an X-Forwarded-For header.
func (s *TestServer) doFrom(tb testing.TB, forwardedFor, cred, query string) *gqlResponse {
	tb.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": "null"})
	req, _ := http.NewRequest("POST", s.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+cred)
	req.Header.Set("X-Forwarded-For", forwardedFor)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := &gqlResponse{raw: raw, status: resp.StatusCode}
	if err := json.Unmarshal(raw, out); err != nil {
		tb.Fatalf("non-JSON response %d: %s", resp.StatusCode, raw)
	}
	return out
}

// keyLike returns a well-formed key (valid checksum, so it is looked up)
// whose first 12 characters are those of victim: what an attacker who saw
// a victim's key prefix in a log would send.
func keyLike(tb testing.TB, victim string) string {
	tb.Helper()
	idx := make([]byte, 0, 8)
	for _, c := range victim[4:12] {
		idx = append(idx, byte(strings.IndexRune("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", c)))
	}
	k, err := latchkey.NewSecret(io.MultiReader(bytes.NewReader(idx), rand.Reader), victim[:4])
	if err != nil || k[:12] != victim[:12] || k == victim {
		tb.Fatalf("keyLike: %q, %v", k, err)
	}
	return k
}

// TestServer_NoLockout is issue 13's acceptance test for keys: while an
// attacker sends 100 bad keys a second from 10 addresses, all sharing the
// victim's key prefix, the victim's valid key keeps working — from a
// fresh address, and from one of the attacker's addresses behind the
// same proxy — and the attacker's guesses are throttled.
func TestServer_NoLockout(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine string) {
		s := MustRunMain(t, engine, func(m *main.Main) {
			m.FailedAuthPerAddr, m.FailedAuthPerKey = main.DefaultFailedAuthPerAddr, main.DefaultFailedAuthPerKey
			m.TrustedProxies, _ = latchkey.ParseTrustedProxies("127.0.0.1")
			m.AuthCacheTTL = 0 // every check of the valid key reads the database, through the gate
		})
		attackers := make([]string, 10)
		for i := range attackers {
			attackers[i] = fmt.Sprintf("198.51.100.%d", i+1)
		}
		// The attack: 100 bad keys a second for 3 seconds.
		stop := make(chan struct{})
		var sent, refusedUnchecked atomic.Int64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for i := 0; i < 300; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				r := s.doFrom(t, attackers[i%10], keyLike(t, s.AdminKey), qAuthInfoTenant)
				r.mustFail(t, "UNAUTHENTICATED")
				if strings.Contains(string(r.raw), "Too many failed attempts") {
					refusedUnchecked.Add(1)
				}
				sent.Add(1)
			}
		}()
		// The victim, meanwhile, from its own address and from an
		// attacker's.
		ok, total := 0, 0
		pace := time.NewTicker(5 * time.Millisecond)
		defer pace.Stop()
		for sent.Load() < 300 && total < 4000 {
			<-pace.C
			for _, from := range []string{"203.0.113.7", attackers[3]} {
				r := s.doFrom(t, from, s.AdminKey, qAuthInfoTenant)
				total++
				if len(r.Errors) == 0 {
					ok++
				}
			}
		}
		close(stop)
		wg.Wait()
		if total < 20 || float64(ok) < 0.99*float64(total) {
			t.Fatalf("the victim's valid key succeeded %d times of %d", ok, total)
		}
		// Every attacking address went over its budget: the limit was hit
		// and logged, with the key's identifier, never the key.
		logs := s.Logs.String()
		for _, want := range []string{"failed-authentication limit reached", `"addr":"198.51.100.4"`, `"authentication failed"`, `"credential":"lku_…`} {
			if !strings.Contains(logs, want) {
				t.Errorf("logs lack %s", want)
			}
		}
		if strings.Contains(logs, s.AdminKey[4:]) || strings.Contains(logs, s.AdminKey[:12]) {
			t.Error("logs hold the victim's key or its first 12 characters")
		}
		t.Logf("victim: %d/%d ok; attacker: %d sent, %d refused unchecked", ok, total, sent.Load(), refusedUnchecked.Load())
	})
}

// TestServer_SlowLane: an address over its budget is never refused
// unchecked: its guesses still fail, its valid key still works, every
// other client is untouched, and the log says the address is throttled.
// (What the lane refuses when it is full: ratelimit's TestGuard_Gate.)
func TestServer_SlowLane(t *testing.T) {
	t.Parallel()
	s := MustRunMain(t, "sqlite", func(m *main.Main) {
		m.FailedAuthPerAddr = 2
		m.TrustedProxies, _ = latchkey.ParseTrustedProxies("127.0.0.1")
		m.AuthCacheTTL = 0
	})
	for range 5 {
		r := s.doFrom(t, "198.51.100.1", keyLike(t, s.AdminKey), qAuthInfoTenant)
		r.mustFail(t, "UNAUTHENTICATED")
		if r.status != http.StatusOK || r.Errors[0].Message != "Invalid API key." {
			t.Fatalf("guess: %d %s", r.status, r.raw)
		}
	}
	if r := s.doFrom(t, "198.51.100.1", s.AdminKey, qAuthInfoTenant); len(r.Errors) != 0 {
		t.Fatalf("valid key from the throttled address: %s", r.raw)
	}
	if r := s.doFrom(t, "198.51.100.2", s.AdminKey, qAuthInfoTenant); len(r.Errors) != 0 {
		t.Fatalf("another client: %s", r.raw)
	}
	if logs := s.Logs.String(); !strings.Contains(logs, "share the slow lane") || !strings.Contains(logs, `"addr":"198.51.100.1"`) {
		t.Errorf("logs lack the throttled address:\n%s", logs)
	}
}

// TestServer_TrustedProxies: behind trusted proxies the client is the
// right-most untrusted hop, so a forged left-most hop neither escapes the
// limits nor forges the audit log; from an untrusted peer the header is
// ignored.
func TestServer_TrustedProxies(t *testing.T) {
	t.Parallel()
	s := MustRunMain(t, "sqlite", func(m *main.Main) {
		m.TrustedProxies, _ = latchkey.ParseTrustedProxies("127.0.0.1,10.0.0.0/8")
	})
	var key struct{ ID string }
	body, _ := json.Marshal(map[string]any{"query": `mutation { create_api_key(input: {name: "via proxy"}) { id } }`})
	req, _ := http.NewRequest("POST", s.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.AdminKey)
	req.Header.Set("X-Forwarded-For", "6.6.6.6, 203.0.113.50, 10.0.0.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out struct {
		Data struct {
			CreateAPIKey json.RawMessage `json:"create_api_key"`
		}
	}
	if err := json.Unmarshal(raw, &out); err != nil || json.Unmarshal(out.Data.CreateAPIKey, &key) != nil {
		t.Fatalf("%s", raw)
	}
	rows := latchkeytest.MustQueryAll(t, s.DB, `SELECT client_addr FROM audit_events WHERE target_id = ?`, key.ID)
	if len(rows) != 1 || rows[0]["client_addr"] != "203.0.113.50" {
		t.Fatalf("audit rows=%v", rows)
	}
	// Without trusted proxies, the header is ignored.
	s2 := MustRunMain(t, "sqlite")
	req, _ = http.NewRequest("POST", s2.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s2.AdminKey)
	req.Header.Set("X-Forwarded-For", "203.0.113.50")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(raw, &out); err != nil || json.Unmarshal(out.Data.CreateAPIKey, &key) != nil {
		t.Fatalf("%s", raw)
	}
	rows = latchkeytest.MustQueryAll(t, s2.DB, `SELECT client_addr FROM audit_events WHERE target_id = ?`, key.ID)
	if len(rows) != 1 || rows[0]["client_addr"] != "127.0.0.1" {
		t.Fatalf("audit rows=%v", rows)
	}
}

func TestServer_FailedAuthFlags(t *testing.T) {
	t.Parallel()
	m := main.NewMain(&main.Env{Stderr: io.Discard})
	if m.FailedAuthPerAddr != main.DefaultFailedAuthPerAddr || m.FailedAuthPerKey != main.DefaultFailedAuthPerKey || m.TrustedProxies != nil {
		t.Fatalf("defaults: %d %d %v", m.FailedAuthPerAddr, m.FailedAuthPerKey, m.TrustedProxies)
	}
	if err := m.ParseFlags([]string{"--failed-auth-per-addr", "50", "--failed-auth-per-key", "0", "--trusted-proxies", "10.0.0.0/8, 127.0.0.1"}, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if m.FailedAuthPerAddr != 50 || m.FailedAuthPerKey != 0 || len(m.TrustedProxies) != 2 || m.TrustedProxies[1].String() != "127.0.0.1/32" {
		t.Fatalf("flags: %d %d %v", m.FailedAuthPerAddr, m.FailedAuthPerKey, m.TrustedProxies)
	}
	for _, args := range [][]string{{"--failed-auth-per-key", "-1"}, {"--trusted-proxies", "10.0.0.0/33"}, {"--trust-proxy-headers"}} {
		if err := main.NewMain(&main.Env{Stderr: io.Discard}).ParseFlags(args, func(string) string { return "" }); err == nil {
			t.Errorf("%q was accepted", args)
		}
	}
	m = main.NewMain(&main.Env{Stderr: io.Discard})
	if err := m.ParseFlags(nil, func(k string) string {
		if k == "LATCHKEY_TRUSTED_PROXIES" {
			return "192.0.2.0/24"
		}
		return ""
	}); err != nil || len(m.TrustedProxies) != 1 {
		t.Fatalf("env: %v %v", m.TrustedProxies, err)
	}
	if m.FailedSignInsPerDevice != 5 || m.SignInChecks < 1 {
		t.Fatalf("sign-in defaults: %d %d", m.FailedSignInsPerDevice, m.SignInChecks)
	}
	if err := m.ParseFlags([]string{"--failed-signin-per-device", "3", "--signin-checks", "0"}, func(string) string { return "" }); err != nil ||
		m.FailedSignInsPerDevice != 3 || m.SignInChecks != 0 {
		t.Fatalf("sign-in flags: %v %d %d", err, m.FailedSignInsPerDevice, m.SignInChecks)
	}
	if err := main.NewMain(&main.Env{Stderr: io.Discard}).ParseFlags([]string{"--failed-signin-per-device", "-1"}, func(string) string { return "" }); err == nil {
		t.Fatal("a negative device limit was accepted")
	}
}

// TestServer_AuditLog follows changes made over GraphQL, by `latchkey admin`
// and on first start into the log, and reads it as admins do.
func TestServer_AuditLog(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine string) {
		dsn := latchkeytest.MustDSN(t, engine)
		s := MustRunMainDSN(t, dsn)
		var key struct{ ID, Key string }
		s.MustDo(t, s.AdminKey, "", `mutation { create_api_key(input: {name: "audited"}) { id key } }`, nil, "create_api_key", &key)
		var ok struct{ Success bool }
		s.MustDo(t, s.AdminKey, "", qRevokeKey, map[string]any{"input": map[string]any{"key_id": key.ID}}, "delete_api_key", &ok)

		type event struct {
			Action      string            `json:"action"`
			ActorUserID *string           `json:"actor_user_id"`
			ActorKind   string            `json:"actor_kind"`
			TargetID    string            `json:"target_id"`
			Details     map[string]string `json:"details"`
			ClientAddr  string            `json:"client_addr"`
			UserAgent   string            `json:"user_agent"`
		}
		var evs []event
		s.MustDo(t, s.AdminKey, "", `query { audit_event(order_by: {created_at: desc}) { action actor_user_id actor_kind target_id details client_addr user_agent } }`, nil, "audit_event", &evs)
		// The first start made a tenant, its admin's membership and key,
		// and a set-password link.
		if len(evs) != 6 {
			t.Fatalf("events=%+v", evs)
		}
		// Newest first: the revoke, the create, then what the first start made.
		if e := evs[0]; e.Action != "api_key.delete" || e.TargetID != key.ID || e.ActorUserID == nil || e.ActorKind != "api_key" ||
			e.ClientAddr != "127.0.0.1" || e.UserAgent != "Go-http-client/1.1" || e.Details["name"] != "audited" {
			t.Errorf("revoke event=%+v", e)
		}
		if e := evs[1]; e.Action != "api_key.create" || e.TargetID != key.ID {
			t.Errorf("create event=%+v", e)
		}
		for _, e := range evs[2:] {
			if e.ActorUserID != nil || e.ClientAddr != "local" || e.UserAgent != "latchkey server (first start)" {
				t.Errorf("first-start event=%+v", e)
			}
		}
		var filtered []event
		s.MustDo(t, s.AdminKey, "", `query($id: uuid) { audit_event(where: {target_id: {_eq: $id}, action: {_eq: "api_key.create"}}) { action target_id } }`,
			map[string]any{"id": key.ID}, "audit_event", &filtered)
		if len(filtered) != 1 || filtered[0].Action != "api_key.create" {
			t.Errorf("filtered=%+v", filtered)
		}
		if strings.Contains(latchkeytest.MustQueryAll(t, s.DB, `SELECT details FROM audit_events`)[0]["details"], key.Key[4:]) {
			t.Error("a key in the audit log")
		}

		// `latchkey admin` commands are marked as local operator actions.
		var out, errb syncBuffer
		env := &main.Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return secretEnv(dsn)[k] }, Now: time.Now}
		if code := main.Run(t.Context(), []string{"admin", "password-link", "--db", dsn, "--email", "admin@localhost"}, env); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		var resets []event
		s.MustDo(t, s.AdminKey, "", `query { audit_event(where: {action: {_eq: "password_reset.create"}}) { action actor_user_id client_addr user_agent details } }`, nil, "audit_event", &resets)
		// The first start made one too; the newest is the command's.
		if len(resets) != 2 || resets[0].ClientAddr != "local" || resets[0].UserAgent != "latchkey admin password-link" ||
			resets[0].ActorUserID != nil || resets[0].Details["email"] != "admin@localhost" {
			t.Errorf("reset events=%+v", resets)
		}
	})
}
