package html

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// handlerFunc is a page handler with the page scaffold already filled in.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p *page)

// authenticate returns the caller the authentication middleware found
// for the session cookie (http.Authenticator's UI). It returns nil, nil
// when there is no valid session (the cookie is then cleared) and an error
// only when the check itself failed (e.g. the database is down).
func (u *ui) authenticate(w http.ResponseWriter, r *http.Request) (*latchkey.Auth, error) {
	c := latchkey.CredentialFromContext(r.Context())
	if c.Source != latchkey.SourceCookie {
		return nil, nil
	}
	switch latchkey.ErrorCode(c.Err) {
	case "":
	case latchkey.EUNAUTHENTICATED:
		u.clearCookie(w, r, SessionCookie)
		return nil, nil
	default:
		return nil, c.Err
	}
	if c.TenantFallback {
		// The chosen tenant is gone (membership removed): forget it.
		u.clearCookie(w, r, TenantCookie)
	}
	return latchkey.AuthFromContext(r.Context()), nil
}

// session wraps h for signed-in users: it authenticates the cookie, puts
// the Auth in the request context, checks the CSRF token of POSTs, and
// fills in the page scaffold (tenants, flash). Anonymous requests are sent
// to the sign-in page.
func (u *ui) session(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, err := u.authenticate(w, r)
		if err != nil {
			u.fail(w, r, &page{}, "authenticate session", err)
			return
		} else if a == nil {
			next := "/ui/keys"
			if r.Method == http.MethodGet {
				next = r.URL.RequestURI()
			}
			redirect(w, r, "/ui/signin?next="+url.QueryEscape(next))
			return
		}
		c, _ := r.Cookie(SessionCookie) // authenticate succeeded, so it is there
		p := &page{Auth: a, IsAdmin: a.IsAdmin(a.TenantID), CSRF: u.csrfToken(c.Value)}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				u.renderMessage(w, r, http.StatusBadRequest, p, "Bad request", "The form could not be read. Go back and try again.")
				return
			}
			if !validToken(r.PostForm.Get(csrfField), p.CSRF) {
				u.Logger.Warn("csrf token rejected", "path", r.URL.Path)
				u.renderMessage(w, r, http.StatusForbidden, p, "Form expired",
					"This form is no longer valid (you may have signed in again in another tab). Go back, reload the page and try again.")
				return
			}
		} else {
			p.Flash = u.takeFlash(w, r)
			u.takeFormState(w, r, p)
		}
		if err := u.loadTenants(r.Context(), p); err != nil {
			u.fail(w, r, p, "load tenants", err)
			return
		}
		u.loadInvitations(r, p)
		h(w, r, p)
	}
}

// admin wraps h for TENANT_ADMINs of the acting tenant. Everyone else gets
// a 403 page and nothing of the admin page is loaded.
func (u *ui) admin(h handlerFunc) http.HandlerFunc {
	return u.session(func(w http.ResponseWriter, r *http.Request, p *page) {
		if !p.IsAdmin {
			u.forbidden(w, r, p)
			return
		}
		p.Nav = "team"
		h(w, r, p)
	})
}

// loadTenants fills in the user's tenants and the acting one.
func (u *ui) loadTenants(ctx context.Context, p *page) error {
	tenants, _, err := u.Tenants.FindTenants(ctx, latchkey.TenantFilter{OrderBy: []latchkey.SortOrder{{Field: "name"}}})
	if err != nil {
		return err
	}
	p.Tenants = tenants
	for _, t := range tenants {
		if t.ID == p.Auth.TenantID {
			p.Tenant = t
		}
	}
	if p.Tenant == nil {
		p.Tenant = &latchkey.Tenant{ID: p.Auth.TenantID, Name: p.Auth.TenantID}
	}
	return nil
}

// anonForm wraps the POST handlers of the sign-in and set-password forms:
// their CSRF token is bound to the pre-session cookie.
func (u *ui) anonForm(h func(w http.ResponseWriter, r *http.Request, p *page)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := &page{}
		if err := r.ParseForm(); err != nil {
			u.renderMessage(w, r, http.StatusBadRequest, p, "Bad request", "The form could not be read. Go back and try again.")
			return
		}
		c, err := r.Cookie(preCookie)
		if err != nil || !validToken(r.PostForm.Get(csrfField), u.anonCSRFToken(c.Value)) {
			u.Logger.Warn("csrf token rejected", "path", r.URL.Path)
			u.renderMessage(w, r, http.StatusForbidden, p, "Form expired",
				"This form is no longer valid. Go back, reload the page and try again. (The sign-in form needs cookies.)")
			return
		}
		p.CSRF = u.anonCSRFToken(c.Value)
		h(w, r, p)
	}
}

// anonPage prepares the scaffold of an anonymous form page: it makes sure
// the pre-session cookie exists and derives the form's CSRF token from it.
func (u *ui) anonPage(w http.ResponseWriter, r *http.Request) (*page, error) {
	pre := ""
	if c, err := r.Cookie(preCookie); err == nil && len(c.Value) >= 32 && len(c.Value) <= 64 {
		pre = c.Value
	} else {
		var err error
		if pre, err = u.randomToken(); err != nil {
			return nil, err
		}
		u.setCookie(w, r, preCookie, pre, u.Now().Add(12*time.Hour))
	}
	return &page{CSRF: u.anonCSRFToken(pre), Flash: u.takeFlash(w, r)}, nil
}

// safeNext returns next if it is a path inside the UI, else /ui/keys.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") ||
		strings.HasPrefix(next, "/ui/signin") || strings.HasPrefix(next, "/ui/reset") {
		return "/ui/keys"
	}
	return next
}

// signInData is the sign-in page's data.
type signInData struct {
	Email string
	Next  string
}

func (u *ui) handleIndex(w http.ResponseWriter, r *http.Request) {
	redirect(w, r, "/ui/keys")
}

func (u *ui) handleSignInForm(w http.ResponseWriter, r *http.Request) {
	if a, err := u.authenticate(w, r); err == nil && a != nil {
		redirect(w, r, safeNext(r.URL.Query().Get("next")))
		return
	}
	p, err := u.anonPage(w, r)
	if err != nil {
		u.fail(w, r, &page{}, "sign-in form", err)
		return
	}
	p.Title = "Sign in"
	p.Data = signInData{Next: safeNext(r.URL.Query().Get("next"))}
	u.render(w, r, http.StatusOK, "signin", p)
}

func (u *ui) handleSignIn(w http.ResponseWriter, r *http.Request, p *page) {
	email := strings.TrimSpace(r.PostForm.Get("email"))
	password := r.PostForm.Get("password")
	next := safeNext(r.PostForm.Get("next"))
	p.Title = "Sign in"
	p.Data = signInData{Email: email, Next: next}
	if email == "" || password == "" {
		p.Error = "Enter your email and password."
		u.render(w, r, http.StatusBadRequest, "signin", p)
		return
	}
	addr := latchkey.ClientInfoFromContext(r.Context()).Addr
	device := u.deviceID(r, email)
	finish := func(bool) {}
	if u.Limiter != nil {
		f, wait, err := u.Limiter.StartSignIn(r.Context(), addr, email, device)
		if err != nil {
			u.refuseSignIn(w, r, p, device != "", wait, err)
			return
		}
		finish = f
	}
	user, err := u.Users.AuthenticatePassword(r.Context(), email, password)
	finish(latchkey.ErrorCode(err) == latchkey.EUNAUTHENTICATED)
	if latchkey.ErrorCode(err) == latchkey.EUNAUTHENTICATED && u.SignInFailures != nil {
		u.SignInFailures.FailSignIn(addr, email)
	}
	if err != nil {
		u.logError(r, "sign in", err)
		p.Error = latchkey.ErrorMessage(err)
		u.render(w, r, statusOf(err), "signin", p)
		return
	}
	// The password is right: this browser is now one the user signed in
	// from, and no failure elsewhere will lock it out.
	if err := u.setDeviceCookie(w, r, email); err != nil {
		u.logError(r, "device cookie", err)
	}
	secret, expires, err := u.Auth.CreateSession(r.Context(), user.ID)
	if err != nil {
		u.logError(r, "create session", err)
		p.Error = latchkey.ErrorMessage(err)
		u.render(w, r, statusOf(err), "signin", p)
		return
	}
	// A user who belongs to no tenant has nothing to manage yet.
	if _, err := u.Auth.Authenticate(r.Context(), secret, ""); err != nil {
		u.logError(r, "authenticate new session", err)
		p.Error = "Your account is not a member of any tenant. Ask a tenant admin to add you."
		if latchkey.ErrorCode(err) == latchkey.EINTERNAL {
			p.Error = latchkey.ErrorMessage(err)
		}
		u.render(w, r, statusOf(err), "signin", p)
		return
	}
	u.setCookie(w, r, SessionCookie, secret, expires)
	u.clearCookie(w, r, TenantCookie)
	u.clearCookie(w, r, preCookie)
	redirect(w, r, next)
}

// refuseSignIn answers a sign-in the limiter refused unchecked, saying
// what to do.
func (u *ui) refuseSignIn(w http.ResponseWriter, r *http.Request, p *page, trusted bool, wait time.Duration, err error) {
	secs := int((wait + time.Second - 1) / time.Second)
	const forgot = " (If you forgot your password, ask a tenant admin for a set-password link.)"
	switch {
	case wait <= 0:
		secs = 5
		p.Error = latchkey.ErrorMessage(err)
	case trusted:
		p.Error = "Too many wrong passwords in this browser. Wait " + waitText(wait) + ", then try again." + forgot
	default:
		p.Error = "Too many failed sign-in attempts for this account from browsers it has not signed in from. " +
			"Sign in from a browser you have used before, or wait " + waitText(wait) + " and try again." + forgot
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	u.render(w, r, statusOf(err), "signin", p)
}

// waitText says how long wait is, in whole minutes or seconds (rounded up).
func waitText(wait time.Duration) string {
	if wait > time.Minute {
		m := int((wait + time.Minute - 1) / time.Minute)
		return strconv.Itoa(m) + " minutes"
	}
	s := int((wait + time.Second - 1) / time.Second)
	if s <= 1 {
		return "a second"
	}
	return strconv.Itoa(s) + " seconds"
}

func (u *ui) handleSignOut(w http.ResponseWriter, r *http.Request, p *page) {
	if err := u.Auth.DeleteSession(r.Context(), p.Auth.SessionID); err != nil && latchkey.ErrorCode(err) != latchkey.ENOTFOUND {
		u.fail(w, r, p, "sign out", err)
		return
	}
	u.clearCookie(w, r, SessionCookie)
	u.clearCookie(w, r, TenantCookie)
	u.setFlash(w, r, "You are signed out.")
	redirect(w, r, "/ui/signin")
}

// resetData is the set-password page's data.
type resetData struct {
	Token string
}

func (u *ui) handleResetForm(w http.ResponseWriter, r *http.Request) {
	p, err := u.anonPage(w, r)
	if err != nil {
		u.fail(w, r, &page{}, "set-password form", err)
		return
	}
	token := r.URL.Query().Get("token")
	if token == "" {
		u.renderMessage(w, r, http.StatusBadRequest, p, "Incomplete link",
			"This set-password link has no token. Copy the whole link you were given, or ask a tenant admin for a new one.")
		return
	}
	p.Title = "Set your password"
	p.Data = resetData{Token: token}
	u.render(w, r, http.StatusOK, "reset", p)
}

func (u *ui) handleReset(w http.ResponseWriter, r *http.Request, p *page) {
	token := r.PostForm.Get("token")
	password, confirm := r.PostForm.Get("password"), r.PostForm.Get("confirm")
	p.Title = "Set your password"
	p.Data = resetData{Token: token}
	if password != confirm {
		p.Error = "The two passwords do not match."
		u.render(w, r, http.StatusBadRequest, "reset", p)
		return
	}
	if _, err := u.Users.ResetPassword(r.Context(), token, password); err != nil {
		u.logError(r, "reset password", err)
		p.Error = latchkey.ErrorMessage(err)
		if latchkey.ErrorCode(err) == latchkey.EUNAUTHENTICATED {
			p.Error += " Ask a tenant admin for a new link."
		}
		u.render(w, r, statusOf(err), "reset", p)
		return
	}
	// Signing in with the new password proves the user knows it; every
	// old session was ended by the reset.
	u.clearCookie(w, r, SessionCookie)
	u.setFlash(w, r, "Your password is set. Sign in with your email and the new password.")
	redirect(w, r, "/ui/signin")
}

func (u *ui) handleSwitchTenant(w http.ResponseWriter, r *http.Request, p *page) {
	id := r.PostForm.Get("tenant_id")
	var to *latchkey.Tenant
	for _, t := range p.Tenants {
		if t.ID == id {
			to = t
		}
	}
	if to == nil {
		u.renderMessage(w, r, http.StatusNotFound, p, "Tenant not found", "You are not a member of that tenant.")
		return
	}
	u.setCookie(w, r, TenantCookie, to.ID, u.Now().AddDate(1, 0, 0))
	u.setFlash(w, r, "You are now working in "+to.Name+".")
	next := safeNext(r.PostForm.Get("next"))
	if strings.HasPrefix(next, "/ui/team/") {
		// Pages of the old tenant's accounts do not exist in the new one.
		next = "/ui/team/service-accounts"
	} else {
		next = "/ui/keys"
	}
	redirect(w, r, next)
}

// renderMessage renders a page with a heading and an explanation.
func (u *ui) renderMessage(w http.ResponseWriter, r *http.Request, status int, p *page, heading, text string) {
	p.Title = heading
	link, linkText := "/ui/keys", "Back to your API keys"
	if p.Auth == nil {
		link, linkText = "/ui/signin", "Go to sign in"
	}
	p.Data = message{Heading: heading, Text: text, Link: link, LinkText: linkText}
	u.render(w, r, status, "message", p)
}

// forbidden renders the 403 page of admin-only pages.
func (u *ui) forbidden(w http.ResponseWriter, r *http.Request, p *page) {
	p.Nav = "team"
	name := p.Auth.TenantID
	if p.Tenant != nil {
		name = p.Tenant.Name
	}
	u.renderMessage(w, r, http.StatusForbidden, p, "Team settings are for tenant admins",
		"You are a "+strings.ToLower(roleLabel(p.Auth.Role))+" in "+name+". Only its tenant admins can manage service accounts and members; ask one of them if you need a change.")
}

// fail renders a service error: its message when it has a code, a generic
// one (and a log line) when it is internal.
func (u *ui) fail(w http.ResponseWriter, r *http.Request, p *page, what string, err error) {
	u.logError(r, what, err)
	status := statusOf(err)
	heading := "Something went wrong"
	switch status {
	case http.StatusNotFound:
		heading = "Not found"
	case http.StatusForbidden:
		heading = "Not allowed"
	case http.StatusInternalServerError:
		u.renderMessage(w, r, status, p, heading, "Latchkey could not complete the request. Try again in a moment; if it keeps failing, tell your administrator.")
		return
	}
	u.renderMessage(w, r, status, p, heading, latchkey.ErrorMessage(err))
}

// handleNotFound answers every unknown path. A signed-in user keeps the
// navigation (and the tenant switcher), so they are not stranded.
func (u *ui) handleNotFound(w http.ResponseWriter, r *http.Request) {
	p := &page{}
	if a, err := u.authenticate(w, r); err == nil && a != nil {
		c, _ := r.Cookie(SessionCookie)
		p = &page{Auth: a, IsAdmin: a.IsAdmin(a.TenantID), CSRF: u.csrfToken(c.Value)}
		if err := u.loadTenants(r.Context(), p); err != nil {
			u.logError(r, "load tenants", err)
			p = &page{} // still a 404, without navigation
		}
	}
	u.renderMessage(w, r, http.StatusNotFound, p, "Page not found", "There is no page at this address. Check the link, or start again from the menu.")
}

func (u *ui) handleCrossOrigin(w http.ResponseWriter, r *http.Request) {
	u.Logger.Warn("cross-origin request rejected", "path", r.URL.Path)
	u.renderMessage(w, r, http.StatusForbidden, &page{}, "Request blocked",
		"This form was sent from another site, so Latchkey refused it. Open Latchkey directly and try again.")
}
