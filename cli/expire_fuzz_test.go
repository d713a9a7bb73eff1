package cli

// An internal test: parseExpire is unexported.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/client"
)

// expireFuzzBase is the day the fuzzed create-key runs on. The clock adds
// a fuzzed fraction of a second plus 500 ns, so that no parsed time (at
// most microsecond precision) ever equals now: "not in the past" and "in
// the future" then mean the same.
var expireFuzzBase = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func expireFuzzNow(micros uint32) time.Time {
	return expireFuzzBase.Add(time.Duration(micros%1_000_000)*time.Microsecond + 500*time.Nanosecond)
}

// expireSeeds are --expire texts: what the Prefect docs suggest, ISO forms,
// relative-looking words, past times (also within the last second),
// garbage and extreme values.
var expireSeeds = []string{
	"2030-01-01", "2030-01-01T00:00:00", "2030-01-01T00:00:00+00:00", "2030-01-01T00:00:00Z",
	"2030-01-01 10:00 PM PST", "2030-01-01T23:59:59.999999-12:00", "Jan 5 2031", "5 Jan", "December",
	"2030", "2030-02", "2030-13", "12:30", "23:59:59", "tomorrow", "now", "in 3 days",
	"2026-11-25", "2026-11-25T12:00:00", "2026-11-25T11:59:59.9", "2026-11-25T12:00:00.000001",
	"2026-11-25T12:00:00.999999", "2026-11-25T12:00:01", "2026-11-25T13:00:00+01:00",
	"2026-11-25T12:00:00.9-00:00", "1999-12-31T23:59:59Z", "0001-01-01", "9999-12-31T23:59:59+14:00",
	"10000-01-01", "2030-01-01T00:00:00+99:99", "", " ", "-", "--", "garbage", "\x00", "2030\n01\n01",
	"99999999999999999999", "1e9", "Mon, 02 Jan 2031 15:04:05 -0700", "2031-W01-1", "31/12/2030",
}

// FuzzParseExpire checks that parseExpire never panics, is deterministic,
// and agrees with time.Parse on canonical RFC 3339 text.
func FuzzParseExpire(f *testing.F) {
	for i, s := range expireSeeds {
		f.Add(s, uint32(i*137_731))
	}
	f.Fuzz(func(t *testing.T, text string, micros uint32) {
		now := expireFuzzNow(micros)
		got, err := parseExpire(text, now)
		again, err2 := parseExpire(text, now)
		if (err == nil) != (err2 == nil) || !got.Equal(again) {
			t.Fatalf("parseExpire(%q) not deterministic: %v %v / %v %v", text, got, err, again, err2)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "Invalid date string: ") {
				t.Fatalf("parseExpire(%q) error %q is not pendulum's", text, err)
			}
			return
		}
		if want, perr := time.Parse(time.RFC3339Nano, text); perr == nil && want.Format(time.RFC3339Nano) == text && !got.Equal(want) {
			t.Fatalf("parseExpire(%q) = %v, want %v", text, got, want)
		}
	})
}

// expireFake is a minimal GraphQL server for create-key: it answers
// auth_info with a user id and create_api_key with a key, and records the
// expires_at of every create.
type expireFake struct {
	mu      sync.Mutex
	creates []*string
}

func (e *expireFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Query     string `json:"query"`
		Variables string `json:"variables"`
	}
	_ = json.NewDecoder(r.Body).Decode(&req)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case strings.Contains(req.Query, "create_api_key"):
		var vars struct {
			Input struct {
				ExpiresAt *string `json:"expires_at"`
			} `json:"input"`
		}
		_ = json.Unmarshal([]byte(req.Variables), &vars)
		e.mu.Lock()
		e.creates = append(e.creates, vars.Input.ExpiresAt)
		e.mu.Unlock()
		_, _ = w.Write([]byte(`{"data":{"create_api_key":{"key":"lku_created"}}}`))
	case strings.Contains(req.Query, "auth_info"):
		_, _ = w.Write([]byte(`{"data":{"auth_info":{"user_id":"99999999-9999-9999-9999-999999999999"}}}`))
	default:
		_, _ = w.Write([]byte(`{"errors":[{"message":"unexpected","extensions":{"code":"BAD_USER_INPUT"}}],"data":null}`))
	}
}

func (e *expireFake) take() []*string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.creates
	e.creates = nil
	return out
}

// FuzzCreateKeyExpire runs `latchkey auth create-key -n k --expire TEXT`
// against a fake server. It must never panic; a time in the past must be
// refused before anything is sent; and whenever a key is created, the
// expiry sent is a valid time in the future.
func FuzzCreateKeyExpire(f *testing.F) {
	for i, s := range expireSeeds {
		f.Add(s, uint32(i*137_731))
	}
	f.Add("2026-11-25T12:00:00", uint32(500_000)) // half a second ago
	f.Add("2026-11-25T12:00:00.4", uint32(400_001))

	fake := &expireFake{}
	srv := httptest.NewServer(fake)
	f.Cleanup(srv.Close)
	home := f.TempDir()
	env := map[string]string{"PREFECT__CLOUD__API": srv.URL, "PREFECT__CLOUD__API_KEY": "lku_fuzz"}

	f.Fuzz(func(t *testing.T, text string, micros uint32) {
		now := expireFuzzNow(micros)
		var stdout, stderr bytes.Buffer
		code := RunAuth(context.Background(), &client.Env{
			Stdout: &stdout, Stderr: &stderr,
			Getenv:     func(k string) string { return env[k] },
			HomeDir:    home,
			Now:        func() time.Time { return now },
			HTTPClient: srv.Client(),
		}, []string{"create-key", "-n", "k", "--expire=" + text})
		creates := fake.take()

		parsed, perr := parseExpire(text, now)
		if perr == nil && parsed.Before(now) {
			if code == 0 || len(creates) != 0 {
				t.Fatalf("--expire %q = %s, %s before now (%s), was accepted: exit %d, %d create(s) sent\nstdout: %s",
					text, parsed.Format(time.RFC3339Nano), now.Sub(parsed), now.Format(time.RFC3339Nano), code, len(creates), stdout.String())
			}
			if !strings.Contains(stdout.String(), "is a time in the past") {
				t.Fatalf("--expire %q in the past: exit %d, stdout %q, stderr %q", text, code, stdout.String(), stderr.String())
			}
		}
		if code != 0 {
			if len(creates) != 0 {
				t.Fatalf("--expire %q: exit %d after sending a create", text, code)
			}
			if stdout.Len()+stderr.Len() == 0 {
				t.Fatalf("--expire %q: exit %d with no message", text, code)
			}
			return
		}
		if len(creates) != 1 || creates[0] == nil {
			t.Fatalf("--expire %q: exit 0 with creates %v", text, creates)
		}
		sent, err := time.Parse(time.RFC3339Nano, *creates[0])
		if err != nil {
			t.Fatalf("--expire %q: sent expires_at %q is not RFC 3339: %v", text, *creates[0], err)
		}
		if !sent.After(now) {
			t.Fatalf("--expire %q: sent expires_at %s, not after now %s", text, *creates[0], now.Format(time.RFC3339Nano))
		}
		if perr != nil || !sent.Equal(parsed.Truncate(time.Microsecond)) {
			t.Fatalf("--expire %q: sent %s, parsed %v (%v)", text, *creates[0], parsed, perr)
		}
	})
}
