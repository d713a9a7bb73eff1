package main_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	main "github.com/latchkey/latchkey/cmd/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
)

// offsetClock is real time plus an offset a test moves.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *offsetClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

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

func TestServer_FailedAuthLimits(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		clock := &offsetClock{}
		s := MustRunMain(t, engine, func(m *main.Main) {
			m.Now = clock.Now
			m.FailedAuthPerAddr, m.FailedAuthPerKey = 6, 3
		})
		var bad []string
		for range 6 {
			k, err := latchkey.NewSecret(rand.Reader, latchkey.PrefixUserKey)
			if err != nil {
				t.Fatal(err)
			}
			bad = append(bad, k)
		}
		// The key limit: three failures with one key (a typo of the
		// admin's) and its attempts are refused unchecked, even the
		// right key, whose first 12 characters it shares.
		typo := []byte(s.AdminKey)
		typo[20] ^= 1
		for range 3 {
			s.Do(t, "/graphql", string(typo), "", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")
		}
		r := s.Do(t, "/graphql", s.AdminKey, "", qAuthInfoTenant, nil)
		r.mustFail(t, "UNAUTHENTICATED")
		if r.Errors[0].Message != "Too many failed attempts; try again later." {
			t.Fatalf("refusal: %s", r.raw)
		}
		// Successes cost nothing: other keys still work, many times.
		var other struct{ Key string }
		clock.Advance(time.Minute)
		s.MustDo(t, s.AdminKey, "", qCreateKey, map[string]any{"input": map[string]any{"name": "other"}}, "create_api_key", &other)
		for range 30 {
			s.MustDo(t, other.Key, "", qAuthInfoTenant, nil, "auth_info", nil)
		}
		// The address limit: six failures with different keys, then even
		// good keys from that address are refused, as UNAUTHENTICATED
		// with HTTP 200, never 429.
		for _, k := range bad {
			s.Do(t, "/", k, "", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")
		}
		r = s.Do(t, "/", other.Key, "", qAuthInfoTenant, nil)
		r.mustFail(t, "UNAUTHENTICATED")
		if !strings.Contains(string(r.raw), "Too many failed attempts") || r.status != http.StatusOK {
			t.Fatalf("address over the limit: %d %s", r.status, r.raw)
		}
		// Anonymous queries are no attempt and still answer.
		var hello string
		s.MustDo(t, "", "", `query { hello }`, nil, "hello", &hello)
		// A minute later the address has budget again.
		clock.Advance(time.Minute)
		s.MustDo(t, other.Key, "", qAuthInfoTenant, nil, "auth_info", nil)

		// Every limit hit is logged with the address and the key's first
		// characters, never more of a key.
		logs := s.Logs.String()
		for _, want := range []string{"failed-authentication limit reached", "failed-authentication limit: attempt refused", `"addr":"127.0.0.1"`, `"key":"` + string(typo[:12]) + `"`} {
			if !strings.Contains(logs, want) {
				t.Errorf("logs lack %s", want)
			}
		}
		for _, k := range append(bad, string(typo), s.AdminKey, other.Key) {
			if strings.Contains(logs, k[4:]) {
				t.Errorf("logs hold a key")
			}
		}
	})
}

func TestServer_FailedAuthLimits_TrustedProxy(t *testing.T) {
	s := MustRunMain(t, "sqlite", func(m *main.Main) {
		m.FailedAuthPerAddr, m.FailedAuthPerKey = 2, 100
		m.TrustProxyHeaders = true
	})
	for range 2 {
		bad, _ := latchkey.NewSecret(rand.Reader, latchkey.PrefixUserKey)
		s.doFrom(t, "198.51.100.1, 10.0.0.1", bad, qAuthInfoTenant).mustFail(t, "UNAUTHENTICATED")
	}
	if r := s.doFrom(t, "198.51.100.1", s.AdminKey, qAuthInfoTenant); !strings.Contains(string(r.raw), "Too many failed attempts") {
		t.Fatalf("client over its limit: %s", r.raw)
	}
	// Another client behind the same proxy is not affected.
	if r := s.doFrom(t, "198.51.100.2, 10.0.0.1", s.AdminKey, qAuthInfoTenant); len(r.Errors) != 0 {
		t.Fatalf("another client: %s", r.raw)
	}
	// And the audit log names the client, not the proxy.
	var key struct{ ID string }
	body, _ := json.Marshal(map[string]any{"query": `mutation { create_api_key(input: {name: "via proxy"}) { id } }`})
	req, _ := http.NewRequest("POST", s.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.AdminKey)
	req.Header.Set("X-Forwarded-For", "203.0.113.50")
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
}

func TestServer_FailedAuthFlags(t *testing.T) {
	m := main.NewMain(&main.Env{Stderr: io.Discard})
	if m.FailedAuthPerAddr != main.DefaultFailedAuthPerAddr || m.FailedAuthPerKey != main.DefaultFailedAuthPerKey || m.TrustProxyHeaders {
		t.Fatalf("defaults: %d %d %v", m.FailedAuthPerAddr, m.FailedAuthPerKey, m.TrustProxyHeaders)
	}
	if err := m.ParseFlags([]string{"--failed-auth-per-addr", "50", "--failed-auth-per-key", "0", "--trust-proxy-headers"}, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if m.FailedAuthPerAddr != 50 || m.FailedAuthPerKey != 0 || !m.TrustProxyHeaders {
		t.Fatalf("flags: %d %d %v", m.FailedAuthPerAddr, m.FailedAuthPerKey, m.TrustProxyHeaders)
	}
	if err := main.NewMain(&main.Env{Stderr: io.Discard}).ParseFlags([]string{"--failed-auth-per-key", "-1"}, func(string) string { return "" }); err == nil {
		t.Fatal("a negative limit was accepted")
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
		env := &main.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, Now: time.Now}
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
