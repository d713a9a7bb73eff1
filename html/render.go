package html

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// templateSet is one page's templates: the layout plus the page.
type templateSet struct {
	t *template.Template
}

// parsePages parses every page template together with layout.html and
// _partials.html, one set per page, so each page defines its own
// "content" block.
// now is the clock of the relative times pages show ("in 3 days").
func parsePages(now func() time.Time) (map[string]*templateSet, error) {
	fm := template.FuncMap{"relative": func(t time.Time) string { return relativeTime(t, now()) }}
	for k, v := range funcs {
		fm[k] = v
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*templateSet{}
	for _, name := range names {
		base := path.Base(name)
		if base == "layout.html" || strings.HasPrefix(base, "_") {
			continue
		}
		t, err := template.New(base).Funcs(fm).ParseFS(templateFS, "templates/layout.html", "templates/_partials.html", name)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", base, err)
		}
		pages[strings.TrimSuffix(base, ".html")] = &templateSet{t: t}
	}
	return pages, nil
}

// funcs are the helpers templates may call.
var funcs = template.FuncMap{
	"date":      formatDate,
	"datetime":  formatDateTime,
	"isoTime":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"roleLabel": roleLabel,
	"roles":     func() []latchkey.Role { return allRoles },
	"deref":     func(t *time.Time) time.Time { return *t },
}

var allRoles = []latchkey.Role{latchkey.RoleTenantAdmin, latchkey.RoleUser, latchkey.RoleReadOnlyUser}

func formatDate(t time.Time) string     { return t.UTC().Format("Jan 2, 2006") }
func formatDateTime(t time.Time) string { return t.UTC().Format("Jan 2, 2006 15:04 UTC") }

// relativeTime says when t is from now, in the largest whole unit that
// fits ("in 3 days", "2 hours ago", "just now"). Pages show the exact UTC
// time next to it, in the title.
func relativeTime(t, now time.Time) string {
	d := t.Sub(now)
	future := d > 0
	if !future {
		d = -d
	}
	var n int
	var unit string
	switch {
	case d < time.Minute:
		if future {
			return "in less than a minute"
		}
		return "just now"
	case d < time.Hour:
		n, unit = int(d/time.Minute), "minute"
	case d < 24*time.Hour:
		n, unit = int(math.Round(float64(d)/float64(time.Hour))), "hour"
	case d < 60*24*time.Hour:
		n, unit = int(math.Round(float64(d)/float64(24*time.Hour))), "day"
	case d < 365*24*time.Hour:
		n, unit = int(math.Round(float64(d)/float64(30*24*time.Hour))), "month"
	default:
		n, unit = int(math.Round(float64(d)/float64(365*24*time.Hour))), "year"
	}
	if unit == "hour" && n == 24 {
		n, unit = 1, "day"
	}
	if unit == "month" && n == 12 {
		n, unit = 1, "year"
	}
	text := strconv.Itoa(n) + " " + unit
	if n != 1 {
		text += "s"
	}
	if future {
		return "in " + text
	}
	return text + " ago"
}

// roleLabel names a role for people.
func roleLabel(r latchkey.Role) string {
	switch r {
	case latchkey.RoleTenantAdmin:
		return "Tenant admin"
	case latchkey.RoleUser:
		return "User"
	case latchkey.RoleReadOnlyUser:
		return "Read-only user"
	}
	return string(r)
}

// page is what every template receives.
type page struct {
	Title string
	Nav   string // "keys" or "team": the highlighted section
	Tab   string // inside Team settings: "service-accounts" or "members"

	// Set for signed-in users.
	Auth    *latchkey.Auth
	IsAdmin bool
	Tenant  *latchkey.Tenant   // the acting tenant
	Tenants []*latchkey.Tenant // every tenant of the user, for the switcher
	CSRF    string

	// Invitations are the signed-in user's pending invitations to other
	// tenants, shown on every page until accepted or declined.
	Invitations []*latchkey.Invitation

	Flash string // a notice from the previous request
	Error string // what went wrong with the submitted form

	// ErrorField names the form field Error is about ("" for the form as
	// a whole): the field is marked aria-invalid, shows the error and
	// gets the focus.
	ErrorField string
	// Form holds the values of the submitted form that failed, kept for
	// the page it was sent back to (POST, redirect, GET).
	Form url.Values

	Data any // the page's own data
}

// TopError reports whether Error shows above the page rather than at its
// field. Fields in table rows (a member's role) have no room for it: they
// point at the notice on top instead.
func (p *page) TopError() bool {
	return p.Error != "" && (p.ErrorField == "" || strings.HasPrefix(p.ErrorField, "role-"))
}

// render writes page name with status. Rendering into a buffer first means
// a template error becomes a clean 500, never half a page.
func (u *ui) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	ts, ok := u.pages[name]
	if !ok {
		u.Logger.Error("no such template", "name", name)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := ts.t.ExecuteTemplate(&buf, "layout", p); err != nil {
		u.Logger.Error("render template", "name", name, "err", err)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// message is the data of the message page: errors, 403, 404.
type message struct {
	Heading  string
	Text     string
	Link     string // where to go next
	LinkText string
}
