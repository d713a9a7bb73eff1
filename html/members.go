package html

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// memberRow is a human member as the list shows them.
type memberRow struct {
	*latchkey.Membership
	Self bool
	URL  string // base of the member's action URLs
}

// membersData is the members page's data.
type membersData struct {
	Search      memberSearch
	More        bool // more members match than the page lists
	Members     []memberRow
	Invitations []*latchkey.Invitation // pending, of this tenant
	Email       string
	Role        latchkey.Role
}

// passwordLinkData is the page that shows a one-time set-password link.
type passwordLinkData struct {
	Email     string
	Link      string
	ExpiresAt time.Time
	NewUser   bool
	Role      latchkey.Role
}

// maxShownMembers caps the members one page lists.
const maxShownMembers = 500

// memberSearch is the members list's search form.
type memberSearch struct {
	Q    string        // part of an email
	Role latchkey.Role // "" for any
}

// Active reports whether the search narrows the list.
func (s memberSearch) Active() bool { return s.Q != "" || s.Role != "" }

// readMemberSearch reads the search of a GET (a POST shows everyone).
func readMemberSearch(r *http.Request) memberSearch {
	if r.Method != http.MethodGet {
		return memberSearch{}
	}
	q := r.URL.Query()
	s := memberSearch{Q: searchText(q.Get("q"), 254)}
	if role := latchkey.Role(q.Get("role")); role.Valid() {
		s.Role = role
	}
	return s
}

// maxShownPending caps the pending invitations the members page lists.
const maxShownPending = 100

func memberURL(id string) string { return "/ui/team/members/" + url.PathEscape(id) }

// renderMembers renders the human members of the acting tenant and the
// add-member form.
func (u *ui) renderMembers(w http.ResponseWriter, r *http.Request, p *page, status int, email string, role latchkey.Role) {
	f := latchkey.MembershipFilter{TenantID: &p.Auth.TenantID, Limit: maxShownMembers}
	search := readMemberSearch(r)
	if search.Q != "" {
		f.EmailContains = &search.Q
	}
	if search.Role != "" {
		f.Role = &search.Role
	}
	ms, total, err := u.Memberships.FindMemberships(r.Context(), f)
	if err != nil {
		u.fail(w, r, p, "find memberships", err)
		return
	}
	var rows []memberRow
	for _, m := range ms {
		if m.User == nil || m.User.IsServiceAccount() {
			continue // managed on the service accounts page
		}
		rows = append(rows, memberRow{Membership: m, Self: m.UserID == p.Auth.User.ID, URL: memberURL(m.ID)})
	}
	var invs []*latchkey.Invitation
	if u.Invitations != nil {
		if invs, _, err = u.Invitations.FindInvitations(r.Context(), latchkey.InvitationFilter{Limit: maxShownPending}); err != nil {
			u.fail(w, r, p, "find invitations", err)
			return
		}
	}
	if role == "" {
		role = latchkey.RoleUser
	}
	p.Title, p.Tab = "Members", "members"
	p.Data = membersData{Members: rows, Invitations: invs, Email: email, Role: role, Search: search, More: total > len(ms)}
	u.render(w, r, status, "members", p)
}

func (u *ui) handleMembers(w http.ResponseWriter, r *http.Request, p *page) {
	u.renderMembers(w, r, p, http.StatusOK, p.Form.Get("email"), latchkey.Role(p.Form.Get("role")))
}

func (u *ui) handleAddMember(w http.ResponseWriter, r *http.Request, p *page) {
	email := strings.TrimSpace(r.PostForm.Get("email"))
	role := latchkey.Role(r.PostForm.Get("role"))
	values := map[string]string{"email": email, "role": string(role)}
	if email == "" {
		u.formError(w, r, "/ui/team/members", "Enter the new member's email address.", "email", values)
		return
	}
	m, inv, err := u.Memberships.CreateMembership(r.Context(), latchkey.MembershipCreate{Email: email, Role: role})
	if err != nil {
		u.logError(r, "add member", err)
		msg, field := latchkey.ErrorMessage(err), "email"
		switch {
		case latchkey.ErrorCode(err) == latchkey.EINTERNAL:
			msg, field = "The member could not be added. Try again in a moment.", ""
		case latchkey.ErrorCode(err) == latchkey.EFORBIDDEN:
			field = ""
		case role != "" && !role.Valid():
			field = "role"
		}
		u.formError(w, r, "/ui/team/members", msg, field, values)
		return
	}
	// A user with an account is invited: nothing about them is shown
	// until they accept. A user created just now gets a set-password link.
	if inv != nil {
		u.setFlash(w, r, "Invited "+inv.Invitee+" as "+strings.ToLower(roleLabel(inv.Role))+
			". They become a member when they sign in and accept; until then the invitation is listed as pending.")
		redirect(w, r, "/ui/team/members")
		return
	}
	u.renderPasswordLink(w, r, p, m, true)
}

// renderPasswordLink creates a set-password link for member m and shows it
// once.
func (u *ui) renderPasswordLink(w http.ResponseWriter, r *http.Request, p *page, m *latchkey.Membership, newUser bool) {
	secret, expires, err := u.Users.CreatePasswordReset(r.Context(), m.UserID)
	if err != nil {
		u.fail(w, r, p, "create password reset", err)
		return
	}
	p.Title, p.Tab = "Set-password link", "members"
	p.Data = passwordLinkData{
		Email:     m.User.Email,
		Link:      u.baseURL(r) + "/ui/reset?token=" + url.QueryEscape(secret),
		ExpiresAt: expires,
		NewUser:   newUser,
		Role:      m.Role,
	}
	w.Header().Set("Pragma", "no-cache")
	u.render(w, r, http.StatusOK, "passwordlink", p)
}

// findMember returns membership id of the acting tenant (a human), or ENOTFOUND.
func (u *ui) findMember(ctx context.Context, p *page, id string) (*latchkey.Membership, error) {
	ms, _, err := u.Memberships.FindMemberships(ctx, latchkey.MembershipFilter{ID: &id, TenantID: &p.Auth.TenantID})
	if err != nil {
		return nil, err
	} else if len(ms) == 0 || ms[0].User == nil || ms[0].User.IsServiceAccount() {
		return nil, latchkey.Errorf(latchkey.ENOTFOUND, "Member not found in this tenant.")
	}
	return ms[0], nil
}

func (u *ui) handleChangeRole(w http.ResponseWriter, r *http.Request, p *page) {
	m, err := u.findMember(r.Context(), p, r.PathValue("id"))
	if err != nil {
		u.fail(w, r, p, "find member", err)
		return
	}
	role := latchkey.Role(r.PostForm.Get("role"))
	if _, err := u.Memberships.UpdateMembershipRole(r.Context(), m.ID, role); err != nil {
		u.logError(r, "change role", err)
		u.formError(w, r, "/ui/team/members", m.User.Email+": "+latchkey.ErrorMessage(err), "role-"+m.ID, nil)
		return
	}
	u.setFlash(w, r, m.User.Email+" is now "+strings.ToLower(roleLabel(role))+".")
	if m.UserID == p.Auth.User.ID && role != latchkey.RoleTenantAdmin {
		redirect(w, r, "/ui/keys") // no longer an admin here
		return
	}
	redirect(w, r, "/ui/team/members")
}

func (u *ui) handlePasswordLink(w http.ResponseWriter, r *http.Request, p *page) {
	m, err := u.findMember(r.Context(), p, r.PathValue("id"))
	if err != nil {
		u.fail(w, r, p, "find member", err)
		return
	}
	u.renderPasswordLink(w, r, p, m, false)
}

func (u *ui) handleRemoveMemberConfirm(w http.ResponseWriter, r *http.Request, p *page) {
	m, err := u.findMember(r.Context(), p, r.PathValue("id"))
	if err != nil {
		u.fail(w, r, p, "find member", err)
		return
	}
	p.Title, p.Tab = "Remove member", "members"
	p.Data = confirmData{
		Heading: "Remove " + m.User.Email + " from " + p.Tenant.Name + "?",
		Text: "From now on none of their API keys, tokens or sessions work in this tenant. " +
			"Their account and their membership in other tenants stay.",
		Action:    memberURL(m.ID) + "/remove",
		Button:    "Remove member",
		CancelURL: "/ui/team/members",
	}
	u.render(w, r, http.StatusOK, "confirm", p)
}

func (u *ui) handleRemoveMember(w http.ResponseWriter, r *http.Request, p *page) {
	m, err := u.findMember(r.Context(), p, r.PathValue("id"))
	if err != nil {
		u.fail(w, r, p, "find member", err)
		return
	}
	if err := u.Memberships.DeleteMembership(r.Context(), m.ID); err != nil {
		u.logError(r, "remove member", err)
		u.formError(w, r, "/ui/team/members", m.User.Email+": "+latchkey.ErrorMessage(err), "", nil)
		return
	}
	u.setFlash(w, r, m.User.Email+" was removed from "+p.Tenant.Name+".")
	if m.UserID == p.Auth.User.ID {
		redirect(w, r, "/ui/keys")
		return
	}
	redirect(w, r, "/ui/team/members")
}
