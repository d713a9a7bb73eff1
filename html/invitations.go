package html

import (
	"net/http"
	"strings"

	"github.com/latchkey/latchkey"
)

// maxShownInvitations caps the invitations a page shows.
const maxShownInvitations = 20

// loadInvitations fills in the signed-in user's pending invitations. They
// are a notice, not the page: an error is logged and the page still shows.
func (u *ui) loadInvitations(r *http.Request, p *page) {
	if u.Invitations == nil || p.Auth == nil || p.Auth.User.IsServiceAccount() {
		return
	}
	invs, err := u.Invitations.FindMyInvitations(r.Context(), maxShownInvitations)
	if err != nil {
		u.logError(r, "find my invitations", err)
		return
	}
	p.Invitations = invs
}

// invitedTenantName names the tenant of the caller's invitation id, as
// loaded with the page.
func invitedTenantName(p *page, id string) string {
	for _, inv := range p.Invitations {
		if inv.ID == id {
			return inv.TenantName
		}
	}
	return "the tenant"
}

func (u *ui) handleAcceptInvitation(w http.ResponseWriter, r *http.Request, p *page) {
	if u.Invitations == nil {
		u.handleNotFound(w, r)
		return
	}
	id := r.PathValue("id")
	m, err := u.Invitations.AcceptInvitation(r.Context(), id)
	if err != nil {
		u.fail(w, r, p, "accept invitation", err)
		return
	}
	// Act in the tenant just joined.
	u.setCookie(w, r, TenantCookie, m.TenantID, u.Now().AddDate(1, 0, 0))
	u.setFlash(w, r, "You joined "+invitedTenantName(p, id)+" as "+strings.ToLower(roleLabel(m.Role))+".")
	redirect(w, r, "/ui/keys")
}

func (u *ui) handleDeclineInvitation(w http.ResponseWriter, r *http.Request, p *page) {
	if u.Invitations == nil {
		u.handleNotFound(w, r)
		return
	}
	id := r.PathValue("id")
	if err := u.Invitations.DeclineInvitation(r.Context(), id); err != nil {
		u.fail(w, r, p, "decline invitation", err)
		return
	}
	u.setFlash(w, r, "You declined the invitation to "+invitedTenantName(p, id)+".")
	redirect(w, r, "/ui/keys")
}

func (u *ui) handleWithdrawInvitation(w http.ResponseWriter, r *http.Request, p *page) {
	if u.Invitations == nil {
		u.handleNotFound(w, r)
		return
	}
	id := r.PathValue("id")
	invs, _, err := u.Invitations.FindInvitations(r.Context(), latchkey.InvitationFilter{ID: &id})
	if err == nil && len(invs) == 0 {
		err = latchkey.Errorf(latchkey.ENOTFOUND, "That invitation is no longer pending.")
	}
	if err == nil {
		err = u.Invitations.DeleteInvitation(r.Context(), id)
	}
	if err != nil {
		u.logError(r, "withdraw invitation", err)
		p.Error = latchkey.ErrorMessage(err)
		u.renderMembers(w, r, p, statusOf(err), "", "")
		return
	}
	u.setFlash(w, r, "The invitation of "+invs[0].Invitee+" was withdrawn.")
	redirect(w, r, "/ui/team/members")
}
