package html

import (
	"net/http"
	"net/url"
	"strconv"
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
	Action   string // the action filter, "" for all
	Actions  []auditOption
	Filtered bool
}

func auditURL(action string, page int) string {
	q := url.Values{}
	if action != "" {
		q.Set("action", action)
	}
	if page > 1 {
		q.Set("page", strconv.Itoa(page))
	}
	if len(q) == 0 {
		return "/ui/team/audit"
	}
	return "/ui/team/audit?" + q.Encode()
}

func (u *ui) handleAudit(w http.ResponseWriter, r *http.Request, p *page) {
	ctx := r.Context()
	if u.Audit == nil {
		u.fail(w, r, p, "audit log", latchkey.Errorf(latchkey.ENOTFOUND, "The audit log is not available on this server."))
		return
	}
	q := r.URL.Query()
	pg, err := strconv.Atoi(q.Get("page"))
	if err != nil || pg < 1 {
		pg = 1
	}
	f := latchkey.AuditFilter{Limit: auditPageSize, Offset: (pg - 1) * auditPageSize}
	action := q.Get("action")
	if _, ok := auditActionLabels[latchkey.AuditAction(action)]; ok {
		f.Action = (*latchkey.AuditAction)(&action)
	} else {
		action = ""
	}
	events, total, err := u.Audit.FindAuditEvents(ctx, f)
	if err != nil {
		u.fail(w, r, p, "find audit events", err)
		return
	}
	if len(events) == 0 && pg > 1 && total > 0 {
		// Past the end (the log is newest first, so old links drift): go to the last page.
		redirect(w, r, auditURL(action, (total+auditPageSize-1)/auditPageSize))
		return
	}

	// Members and service accounts of the tenant, to name actors.
	names := map[string]string{}
	ms, _, err := u.Memberships.FindMemberships(ctx, latchkey.MembershipFilter{TenantID: &p.Auth.TenantID})
	if err != nil {
		u.fail(w, r, p, "find memberships", err)
		return
	}
	for _, m := range ms {
		if m.User == nil {
			continue
		}
		if m.User.IsServiceAccount() {
			names[m.UserID] = "service account " + m.User.Name
		} else {
			names[m.UserID] = m.User.Email
		}
	}

	d := auditData{Total: total, Action: action, Filtered: action != ""}
	for _, a := range latchkey.AuditActions {
		d.Actions = append(d.Actions, auditOption{Value: string(a), Label: auditActionLabel(a)})
	}
	for _, e := range events {
		d.Events = append(d.Events, describeAuditEvent(e, names, p.Auth.User.ID))
	}
	if len(events) > 0 {
		d.First, d.Last = f.Offset+1, f.Offset+len(events)
	}
	if pg > 1 {
		d.Newer = auditURL(action, pg-1)
	}
	if f.Offset+len(events) < total {
		d.Older = auditURL(action, pg+1)
	}
	p.Title, p.Tab = "Audit log", "audit"
	p.Data = d
	u.render(w, r, http.StatusOK, "audit", p)
}

// describeAuditEvent turns e into a row: names[id] names the tenant's
// members and service accounts; self is the reader.
func describeAuditEvent(e *latchkey.AuditEvent, names map[string]string, self string) auditRow {
	row := auditRow{AuditEvent: e, ActionLabel: auditActionLabel(e.Action), Via: credentialLabel(e.ActorKind)}
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
		if r := d["role"]; r != "" {
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
