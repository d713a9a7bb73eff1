package html_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/html"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/ratelimit"
	"github.com/latchkey/latchkey/sqldb"
)

// client is a browser that talks to a UI handler in-process, from a
// made-up client address. It keeps every cookie but the session's, so
// each sign-in is a new one.
type client struct {
	h       http.Handler
	addr    string
	cookies map[string]*http.Cookie
}

func newClient(h http.Handler, addr string) *client {
	return &client{h: h, addr: addr, cookies: map[string]*http.Cookie{}}
}

func (c *client) do(method, path string, form url.Values) *httptest.ResponseRecorder {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, path, body)
	r.RemoteAddr = c.addr + ":40000"
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for _, k := range c.cookies {
		r.AddCookie(&http.Cookie{Name: k.Name, Value: k.Value})
	}
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	for _, k := range w.Result().Cookies() {
		if k.MaxAge < 0 || k.Name == html.SessionCookie {
			delete(c.cookies, k.Name)
		} else {
			c.cookies[k.Name] = k
		}
	}
	return w
}

// signIn fetches the sign-in form and posts it; it returns the status.
func (c *client) signIn(tb testing.TB, email, password string) int {
	tb.Helper()
	form := c.do("GET", "/ui/signin", nil)
	m := csrfRE.FindStringSubmatch(form.Body.String())
	if form.Code != http.StatusOK || m == nil {
		tb.Fatalf("sign-in form: status %d", form.Code)
	}
	return c.do("POST", "/ui/signin", url.Values{"csrf_token": {m[1]}, "email": {email}, "password": {password}}).Code
}

// The acceptance test of "nobody can lock a legitimate user out": while
// an attacker sends 100 wrong passwords a second from 10 addresses at the
// admin's email, the admin, in a browser they signed in from before but
// from yet another address, signs in every time, and the attacker's
// guesses beyond the email's budget are refused without a password check.
func TestSignIn_OwnerNotLockedOutDuringAttack(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		const perEmail, perAddr = 10, 20
		e := MustNewEnv(t, db, clock)
		e.Limiter = ratelimit.NewSignIn(ratelimit.SignInLimits{
			PerAddr: perAddr, PerEmail: perEmail, PerDevice: 5, MaxUntrustedChecks: 2,
		}, clock.Now, slog.New(slog.DiscardHandler))
		e = e.MustAddReplica(t)
		email := e.Fixture.Admin.Email

		owner := newClient(e.Handler, "198.51.100.7")
		if code := owner.signIn(t, email, AdminPassword); code != http.StatusSeeOther {
			t.Fatalf("first sign-in: status %d", code)
		}
		owner.addr = "203.0.113.200" // the owner moves; the browser is the same

		attackers := make([]*client, 10)
		tokens := make([]string, 10)
		for i := range attackers {
			attackers[i] = newClient(e.Handler, fmt.Sprintf("192.0.2.%d", i+1))
			tokens[i] = csrfRE.FindStringSubmatch(attackers[i].do("GET", "/ui/signin", nil).Body.String())[1]
		}

		const (
			step       = 100 * time.Millisecond // 10 attacker requests per step: 100 a second
			steps      = 1200                   // two simulated minutes
			ownerEvery = 4                      // the owner signs in every 4th step
		)
		start := e.PasswordChecks.Load()
		var ownerTries, ownerOK, ownerChecked, attackRefused, attackOther int
		for n := range steps {
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // the attacker
				defer wg.Done()
				for i, a := range attackers {
					w := a.do("POST", "/ui/signin", url.Values{"csrf_token": {tokens[i]}, "email": {email}, "password": {"guess-" + a.addr}})
					switch w.Code {
					case http.StatusTooManyRequests:
						attackRefused++
					case http.StatusUnauthorized:
					default:
						attackOther++
					}
				}
			}()
			if n%ownerEvery == 0 {
				ownerTries++
				switch owner.signIn(t, email, AdminPassword) {
				case http.StatusSeeOther:
					ownerOK++
					ownerChecked++
				case http.StatusTooManyRequests:
				default:
					ownerChecked++
				}
			}
			wg.Wait()
			clock.Add(step)
		}
		attackChecks := int(e.PasswordChecks.Load()-start) - ownerChecked
		// The email's budget: perEmail in a row, then perEmail a minute.
		budget := perEmail + perEmail*int(steps*step/time.Minute)
		t.Logf("owner: %d/%d signed in; attacker: %d attempts, %d checked, %d refused unchecked",
			ownerOK, ownerTries, 10*steps, attackChecks, attackRefused)
		if ownerOK*100 < ownerTries*99 {
			t.Errorf("owner signed in %d times of %d, want ≥ 99%%", ownerOK, ownerTries)
		}
		if attackChecks > budget || attackChecks < perEmail {
			t.Errorf("attacker's passwords checked %d times, want %d to %d", attackChecks, perEmail, budget)
		}
		if attackRefused+attackChecks != 10*steps || attackOther != 0 {
			t.Errorf("attacker: %d refused + %d checked of %d; %d other answers", attackRefused, attackChecks, 10*steps, attackOther)
		}
	})
}

// deviceCookieEnv is a UI whose untrusted sign-in budget for the admin's
// email is spent, with a helper telling whether a device cookie value
// makes a sign-in with the right password trusted.
func deviceCookieEnv(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) (e *Env, trusted func(value string) bool) {
	e = MustNewEnv(t, db, clock)
	e.Limiter = ratelimit.NewSignIn(ratelimit.SignInLimits{PerAddr: 100, PerEmail: 2, PerDevice: 5}, clock.Now, nil)
	e = e.MustAddReplica(t)
	trusted = func(value string) bool {
		t.Helper()
		attacker := newClient(e.Handler, "192.0.2.66")
		for range 3 {
			attacker.signIn(t, e.Fixture.Admin.Email, "a wrong password")
		}
		c := newClient(e.Handler, "198.51.100.1")
		c.cookies[html.DeviceCookie] = &http.Cookie{Name: html.DeviceCookie, Value: value}
		switch code := c.signIn(t, e.Fixture.Admin.Email, AdminPassword); code {
		case http.StatusSeeOther:
			return true
		case http.StatusTooManyRequests:
			return false
		default:
			t.Fatalf("status %d", code)
			return false
		}
	}
	return e, trusted
}

// deviceCookie signs in as email in a new browser and returns its device
// cookie.
func deviceCookie(t *testing.T, e *Env, email, password string) *http.Cookie {
	t.Helper()
	c := newClient(e.Handler, "198.51.100.2")
	if code := c.signIn(t, email, password); code != http.StatusSeeOther {
		t.Fatalf("sign in: status %d", code)
	}
	dc := c.cookies[html.DeviceCookie]
	if dc == nil {
		t.Fatal("no device cookie")
	}
	return dc
}

func TestDeviceCookie(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		e, trusted := deviceCookieEnv(t, db, clock)
		dc := deviceCookie(t, e, e.Fixture.Admin.Email, AdminPassword)
		if !dc.HttpOnly || dc.SameSite != http.SameSiteStrictMode || dc.Path != "/ui/" || dc.Secure ||
			dc.MaxAge != int(html.DeviceCookieTTL/time.Second) || strings.Contains(dc.Value, "admin") {
			t.Errorf("device cookie %s", dc)
		}
		// Each cookie has its own id: a new sign-in gets a new one.
		if other := deviceCookie(t, e, e.Fixture.Admin.Email, AdminPassword); other.Value == dc.Value {
			t.Error("the same device cookie twice")
		}
		if !trusted(dc.Value) {
			t.Fatal("a valid device cookie is not trusted")
		}

		parts := strings.Split(dc.Value, ".")
		flip := func(s string) string {
			if s[len(s)-1] == 'A' {
				return s[:len(s)-1] + "B"
			}
			return s[:len(s)-1] + "A"
		}
		member := latchkeytest.MustCreateMember(t, db, e.Fixture.Tenant.ID, "member@example.com", latchkey.RoleUser)
		e.MustSetPassword(t, member.Email, "member password 1")
		for name, value := range map[string]string{
			"empty":           "",
			"garbage":         "not a device cookie",
			"forged":          "v1." + strings.Repeat("x", 43) + "." + parts[2] + "." + strings.Repeat("y", 43),
			"tampered mac":    strings.Join([]string{parts[0], parts[1], parts[2], flip(parts[3])}, "."),
			"tampered nonce":  strings.Join([]string{parts[0], flip(parts[1]), parts[2], parts[3]}, "."),
			"tampered issued": strings.Join([]string{parts[0], parts[1], "9" + parts[2], parts[3]}, "."),
			"other version":   strings.Join([]string{"v2", parts[1], parts[2], parts[3]}, "."),
			"other user's":    deviceCookie(t, e, member.Email, "member password 1").Value,
		} {
			if trusted(value) {
				t.Errorf("%s device cookie trusted", name)
			}
		}

		// A cookie of a server with another key (or none shared) is not.
		o := &Env{Handler: (&html.Server{Auth: e.Auth, Users: e.Users, Tenants: sqldb.NewTenantService(db), Now: clock.Now,
			DeviceKey: []byte("another server's device key")}).Handler()}
		if trusted(deviceCookie(t, o, e.Fixture.Admin.Email, AdminPassword).Value) {
			t.Error("a cookie signed with another key is trusted")
		}

		// An expired cookie is not.
		clock.Add(html.DeviceCookieTTL + time.Hour)
		if trusted(dc.Value) {
			t.Error("an expired device cookie is trusted")
		}
	})
}
