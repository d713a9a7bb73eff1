package main_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	main "github.com/latchkey/latchkey/cmd/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// TestAuthFailures_Aggregated: repeated failed key authentications and
// sign-ins from one address are stored as one row per identifier and
// minute, with their count, and the key text never.
func TestAuthFailures_Aggregated(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine string) {
		s := MustRunMain(t, engine)
		const badKey = "lku_0123456789abcdefghijklmnopqrstuvwxyzABCD"
		for range 3 {
			s.Do(t, "/graphql", badKey, "", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")
		}
		for range 2 {
			// A sign-in with a wrong password (the form's CSRF check comes
			// first, so fetch the form each time).
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := c.Get(s.URL + "/ui/signin")
			if err != nil {
				t.Fatal(err)
			}
			form, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindSubmatch(form)
			if m == nil {
				t.Fatalf("no csrf token in the sign-in form")
			}
			token := string(m[1])
			resp, err = c.PostForm(s.URL+"/ui/signin", url.Values{"csrf_token": {token}, "email": {main.DefaultBootstrapEmail}, "password": {"wrong password 1"}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("wrong password: status %d", resp.StatusCode)
			}
		}
		if err := main.FlushAuthFailures(s.Main); err != nil {
			t.Fatal(err)
		}
		rows := latchkeytest.MustQueryAll(t, s.DB, `SELECT kind, identifier, client_addr, count FROM auth_failures ORDER BY kind`)
		want := []map[string]string{
			{"kind": "credential", "identifier": latchkey.SecretIdentifier(badKey), "client_addr": "127.0.0.1", "count": "3"},
			{"kind": "sign_in", "identifier": main.DefaultBootstrapEmail, "client_addr": "127.0.0.1", "count": "2"},
		}
		if len(rows) != len(want) {
			// Two rows may straddle a minute boundary; the counts still add up.
			t.Logf("rows %v", rows)
		}
		sum := map[string]int{}
		for _, r := range rows {
			if strings.Contains(r["identifier"], badKey[4:]) {
				t.Fatalf("the key text was stored: %v", r)
			}
			for _, w := range want {
				if r["kind"] == w["kind"] && (r["identifier"] != w["identifier"] || r["client_addr"] != w["client_addr"]) {
					t.Errorf("row %v, want %v", r, w)
				}
			}
			n, err := strconv.Atoi(r["count"])
			if err != nil {
				t.Fatal(err)
			}
			sum[r["kind"]] += n
		}
		if sum["credential"] != 3 || sum["sign_in"] != 2 {
			t.Errorf("counts %v (rows %v), want 3 credential and 2 sign-in failures", sum, rows)
		}
		// A second flush with nothing new changes nothing.
		if err := main.FlushAuthFailures(s.Main); err != nil {
			t.Fatal(err)
		}
		if n := latchkeytest.MustCount(t, s.DB, `SELECT COALESCE(SUM(count), 0) FROM auth_failures`); n != 5 {
			t.Errorf("after an empty flush: %d failures", n)
		}
	})
}

// TestAuthFailures_Retention: anonymous callers create the counts, so the
// server keeps them --auth-failure-retention (30 days by default) and each
// flush deletes older ones; 0 keeps them.
func TestAuthFailures_Retention(t *testing.T) {
	t.Parallel()
	s := MustRunMain(t, "sqlite")
	if s.Main.AuthFailureRetention != main.DefaultAuthFailureRetention || main.DefaultAuthFailureRetention != 30*24*time.Hour {
		t.Fatalf("default retention %s", s.Main.AuthFailureRetention)
	}
	now := time.Now().UTC()
	store := sqldb.NewAuthFailureService(s.DB)
	var fs []*latchkey.AuthFailure
	for _, age := range []time.Duration{31 * 24 * time.Hour, 29 * 24 * time.Hour, time.Hour} {
		m := now.Add(-age).Truncate(time.Minute)
		fs = append(fs, &latchkey.AuthFailure{Kind: latchkey.AuthFailureCredential, Identifier: "lku_…abcd",
			ClientAddr: "203.0.113.9", Minute: m, Count: 1, FirstAt: m, LastAt: m})
	}
	if err := store.RecordAuthFailures(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
	if err := main.FlushAuthFailures(s.Main); err != nil {
		t.Fatal(err)
	}
	if n := latchkeytest.MustCount(t, s.DB, `SELECT COUNT(*) FROM auth_failures`); n != 2 {
		t.Errorf("%d records after the flush, want 2 (the one of 31 days ago deleted)", n)
	}

	for _, bad := range []string{"-1h", "30m"} {
		if err := main.NewMain(&main.Env{Stderr: io.Discard}).ParseFlags([]string{"--auth-failure-retention", bad}, func(string) string { return "" }); err == nil {
			t.Errorf("--auth-failure-retention %s accepted", bad)
		}
	}
	m := main.NewMain(&main.Env{Stderr: io.Discard})
	if err := m.ParseFlags([]string{"--auth-failure-retention", "0"}, func(string) string { return "" }); err != nil || m.AuthFailureRetention != 0 {
		t.Errorf("--auth-failure-retention 0: %v, %s", err, m.AuthFailureRetention)
	}
}
