package html

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
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
func parsePages() (map[string]*templateSet, error) {
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
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/_partials.html", name)
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

	Data any // the page's own data
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
