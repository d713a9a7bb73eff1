package html

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// auditPageSize is how many events one page of the audit log shows.
const auditPageSize = 50

// auditActionLabels name audited actions for people.
var auditActionLabels = map[latchkey.AuditAction]string{
	latchkey.AuditAPIKeyCreate:         "Created API key",
	latchkey.AuditAPIKeyDelete:         "Revoked API key",
	latchkey.AuditAPIKeyRotate:         "Rolled API key",
	latchkey.AuditAPITokenCreate:       "Created legacy API token",
	latchkey.AuditAPITokenDelete:       "Revoked legacy API token",
	latchkey.AuditServiceAccountCreate: "Created service account",
	latchkey.AuditServiceAccountDelete: "Deleted service account",
	latchkey.AuditMembershipCreate:     "Added member",
	latchkey.AuditMembershipUpdateRole: "Changed role",
	latchkey.AuditMembershipDelete:     "Removed member",
	latchkey.AuditTenantCreate:         "Created tenant",
	latchkey.AuditPasswordResetCreate:  "Issued set-password link",
	latchkey.AuditSessionCreate:        "Signed in to the web UI",
	latchkey.AuditServiceAccountRole:   "Changed service account role",
	latchkey.AuditPasswordReset:        "Set password with a link",
	latchkey.AuditInvitationCreate:     "Invited",
	latchkey.AuditInvitationAccept:     "Accepted invitation",
	latchkey.AuditInvitationDecline:    "Invitation declined",
	latchkey.AuditInvitationDelete:     "Withdrew invitation",
}

// auditActionLabel names action for people.
func auditActionLabel(action latchkey.AuditAction) string {
	if l, ok := auditActionLabels[action]; ok {
		return l
	}
	return string(action)
}

// credentialLabel names how an actor authenticated.
func credentialLabel(k latchkey.CredentialKind) string {
	switch k {
	case latchkey.CredentialAPIKey:
		return "API key"
	case latchkey.CredentialAccessToken:
		return "access token"
	case latchkey.CredentialAPIToken:
		return "legacy API token"
	case latchkey.CredentialSession:
		return "web UI"
	case latchkey.CredentialPassword:
		return "password"
	case latchkey.CredentialPasswordLink:
		return "set-password link"
	case latchkey.CredentialInvitee:
		return ""
	}
	return string(k)
}

// auditRow is an event as the log shows it.
type auditRow struct {
	*latchkey.AuditEvent
	ActionLabel string
	Actor       string // who acted, for people
	Via         string // how they authenticated
	Target      string // what was changed, for people
	Change      string // a detail worth a line: a new role, an expiry
	Agent       string // the user agent, shortened
}

// auditOption is an entry of the action filter.
type auditOption struct {
	Value, Label string
}

// auditData is the audit log page's data.
type auditData struct {
	Events   []auditRow
	Total    int
	First    int // 1-based index of the first event shown
	Last     int
	Newer    string // link to the previous page, "" on the first
	Older    string // link to the next page, "" on the last
	Query    auditQuery
	Actions  []auditOption
	Actors   []auditOption
	Filtered bool
	CSV      string // export links for the same filter
	JSON     string

	// Failures are the latest failed sign-ins of members' emails in the
	// filter's dates, counted per email, address and minute.
	Failures      []*latchkey.AuthFailure
	FailuresTotal int
}

// maxShownFailures caps the failed sign-ins the audit page lists.
const maxShownFailures = 20

// auditQuery is the audit log's filter, read from the URL.
type auditQuery struct {
	Action string // an audited action, "" for all
	Actor  string // a user id, "" for anyone
	From   string // YYYY-MM-DD, "" for no bound
	To     string // YYYY-MM-DD (inclusive), "" for no bound
	Page   int
}

const dateLayout = "2006-01-02"

// readAuditQuery reads the filter; unknown actions and bad dates are
// dropped, not errors.
func readAuditQuery(q url.Values) auditQuery {
	aq := auditQuery{Action: q.Get("action"), Actor: q.Get("actor"), From: q.Get("from"), To: q.Get("to")}
	if _, ok := auditActionLabels[latchkey.AuditAction(aq.Action)]; !ok {
		aq.Action = ""
	}
	if len(aq.Actor) > 64 {
		aq.Actor = ""
	}
	for _, d := range []*string{&aq.From, &aq.To} {
		if _, err := time.Parse(dateLayout, *d); err != nil {
			*d = ""
		}
	}
	if pg, err := strconv.Atoi(q.Get("page")); err == nil && pg > 1 {
		aq.Page = pg
	} else {
		aq.Page = 1
	}
	return aq
}

// Filtered reports whether the query narrows the log.
func (q auditQuery) Filtered() bool {
	return q.Action != "" || q.Actor != "" || q.From != "" || q.To != ""
}

// filter returns the store filter of q (without paging).
func (q auditQuery) filter() latchkey.AuditFilter {
	var f latchkey.AuditFilter
	if q.Action != "" {
		a := latchkey.AuditAction(q.Action)
		f.Action = &a
	}
	if q.Actor != "" {
		f.ActorUserID = &q.Actor
	}
	if t, err := time.Parse(dateLayout, q.From); err == nil {
		f.CreatedFrom = &t
	}
	if t, err := time.Parse(dateLayout, q.To); err == nil {
		t = t.AddDate(0, 0, 1)
		f.CreatedBefore = &t
	}
	return f
}

// values returns q as URL parameters, with page (1 omitted).
func (q auditQuery) values(page int) url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"action": q.Action, "actor": q.Actor, "from": q.From, "to": q.To} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	return v
}

func (q auditQuery) url(path string, page int) string {
	if v := q.values(page); len(v) > 0 {
		return path + "?" + v.Encode()
	}
	return path
}

func (u *ui) handleAudit(w http.ResponseWriter, r *http.Request, p *page) {
	ctx := r.Context()
	if u.Audit == nil {
		u.fail(w, r, p, "audit log", latchkey.Errorf(latchkey.ENOTFOUND, "The audit log is not available on this server."))
		return
	}
	aq := readAuditQuery(r.URL.Query())
	f := aq.filter()
	f.Limit, f.Offset = auditPageSize, (aq.Page-1)*auditPageSize
	events, total, err := u.Audit.FindAuditEvents(ctx, f)
	if err != nil {
		u.fail(w, r, p, "find audit events", err)
		return
	}
	if len(events) == 0 && aq.Page > 1 && total > 0 {
		// Past the end (the log is newest first, so old links drift): go to the last page.
		redirect(w, r, aq.url("/ui/team/audit", (total+auditPageSize-1)/auditPageSize))
		return
	}
	names, err := u.memberNames(ctx, p)
	if err != nil {
		u.fail(w, r, p, "find memberships", err)
		return
	}

	d := auditData{Total: total, Query: aq, Filtered: aq.Filtered(),
		CSV: aq.url("/ui/team/audit/export/csv", 1), JSON: aq.url("/ui/team/audit/export/json", 1)}
	for _, a := range latchkey.AuditActions() {
		d.Actions = append(d.Actions, auditOption{Value: string(a), Label: auditActionLabel(a)})
	}
	for id, name := range names {
		d.Actors = append(d.Actors, auditOption{Value: id, Label: name})
	}
	slices.SortFunc(d.Actors, func(a, b auditOption) int { return strings.Compare(a.Label, b.Label) })
	for _, e := range events {
		d.Events = append(d.Events, describeAuditEvent(e, names, p.Auth.User.ID))
	}
	if len(events) > 0 {
		d.First, d.Last = f.Offset+1, f.Offset+len(events)
	}
	if aq.Page > 1 {
		d.Newer = aq.url("/ui/team/audit", aq.Page-1)
	}
	if f.Offset+len(events) < total {
		d.Older = aq.url("/ui/team/audit", aq.Page+1)
	}
	if u.AuthFailures != nil {
		af := latchkey.AuthFailureFilter{From: f.CreatedFrom, Before: f.CreatedBefore, Limit: maxShownFailures}
		if d.Failures, d.FailuresTotal, err = u.AuthFailures.FindAuthFailures(ctx, af); err != nil {
			u.fail(w, r, p, "find auth failures", err)
			return
		}
	}
	p.Title, p.Tab = "Audit log", "audit"
	p.Data = d
	u.render(w, r, http.StatusOK, "audit", p)
}

// describeAuditEvent turns e into a row: names[id] names the tenant's
// members and service accounts; self is the reader.
func describeAuditEvent(e *latchkey.AuditEvent, names map[string]string, self string) auditRow {
	row := auditRow{AuditEvent: e, ActionLabel: auditActionLabel(e.Action), Via: credentialLabel(e.ActorKind), Agent: shortUserAgent(e.UserAgent)}
	if e.ActorCredentialName != "" {
		// Name the acting key, not just "an API key".
		ident := e.ActorCredentialIdentifier
		if ident == "" {
			ident = shortID(e.ActorCredentialID)
		}
		key := "API key “" + e.ActorCredentialName + "” (" + ident + ")"
		switch e.ActorKind {
		case latchkey.CredentialAPIKey:
			row.Via = key
		case latchkey.CredentialAccessToken:
			row.Via = "an access token from " + key
		}
	}
	who := func(id string) string {
		switch {
		case id == "":
			return ""
		case id == self:
			return "you"
		case names[id] != "":
			return names[id]
		}
		return "a former member (" + shortID(id) + ")"
	}
	switch {
	case e.ActorUserID != "":
		row.Actor = who(e.ActorUserID)
	case e.ActorKind == latchkey.CredentialInvitee:
		row.Actor = "The invited person"
	case e.ClientAddr == "local":
		row.Actor, row.Via = "An operator", "latchkey admin on the server"
	default:
		row.Actor = "Latchkey"
	}
	d := e.Details
	quoted := func(s string) string { return "“" + s + "”" }
	switch e.TargetType {
	case latchkey.AuditTargetAPIKey:
		row.Target = "API key " + quoted(d["name"])
		if owner := d["user_id"]; owner != "" && owner != e.ActorUserID {
			row.Target += " of " + who(owner)
		}
		if exp := d["expires_at"]; exp != "" && e.Action == latchkey.AuditAPIKeyCreate {
			row.Change = "expires " + formatDetailTime(exp)
		}
	case latchkey.AuditTargetAPIToken:
		row.Target = d["scope"] + " token " + quoted(d["name"])
		if owner := d["user_id"]; owner != "" && owner != e.ActorUserID {
			row.Target += " of " + who(owner)
		}
	case latchkey.AuditTargetServiceAccount:
		row.Target = "service account " + quoted(d["name"])
		if prev := d["previous_role"]; prev != "" {
			row.Change = roleLabel(latchkey.Role(prev)) + " → " + roleLabel(latchkey.Role(d["role"]))
		} else if r := d["role"]; r != "" {
			row.Change = roleLabel(latchkey.Role(r))
		}
	case latchkey.AuditTargetMembership:
		row.Target = d["email"]
		if row.Target == "" {
			row.Target = who(d["user_id"])
		}
		switch {
		case d["previous_role"] != "":
			row.Change = roleLabel(latchkey.Role(d["previous_role"])) + " → " + roleLabel(latchkey.Role(d["role"]))
		case d["role"] != "" && e.Action == latchkey.AuditMembershipCreate:
			row.Change = "as " + roleLabel(latchkey.Role(d["role"]))
			if d["new_user"] == "true" {
				row.Change += " (new account)"
			}
		}
	case latchkey.AuditTargetTenant:
		row.Target = "tenant " + quoted(d["name"])
	case latchkey.AuditTargetUser:
		row.Target = d["email"]
		if exp := d["expires_at"]; exp != "" {
			row.Change = "valid until " + formatDetailTime(exp)
		}
	case latchkey.AuditTargetSession:
		row.Target = "web UI session"
	case latchkey.AuditTargetInvitation:
		row.Target = d["invitee"]
		if r := d["role"]; r != "" {
			row.Change = "as " + roleLabel(latchkey.Role(r))
		}
	default:
		row.Target = e.TargetType + " " + shortID(e.TargetID)
	}
	return row
}

// formatDetailTime formats an RFC 3339 time of an event's details.
func formatDetailTime(s string) string {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return s
	}
	return formatDateTime(t)
}

// shortID returns the first block of a uuid.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// shortUserAgent names a user agent in a few words: a browser and its
// system ("Chrome 126 on Windows"), or the first product of anything else
// ("prefect/1.4.1"), at most 40 characters. The full text is kept in the
// title attribute and the exports.
func shortUserAgent(ua string) string {
	if ua == "" {
		return ""
	}
	browser := ""
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"Chrome/", "Chrome"}, {"Version/", "Safari"},
	} {
		if i := strings.Index(ua, b.token); i >= 0 {
			version := ua[i+len(b.token):]
			if j := strings.IndexAny(version, ". "); j >= 0 {
				version = version[:j]
			}
			browser = b.name + " " + version
			break
		}
	}
	if browser != "" && strings.HasPrefix(ua, "Mozilla/") {
		for _, o := range []struct{ token, name string }{
			{"Android", "Android"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Windows", "Windows"},
			{"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
		} {
			if strings.Contains(ua, o.token) {
				return browser + " on " + o.name
			}
		}
		return browser
	}
	short := ua
	if i := strings.IndexByte(short, ' '); i >= 0 {
		short = short[:i]
	}
	if r := []rune(short); len(r) > 40 {
		short = string(r[:39]) + "…"
	}
	return short
}
