package html

import (
	"context"
	"net/http"

	"github.com/latchkey/latchkey"
)

// maxShownRevoked caps the revoked keys a page lists.
const maxShownRevoked = 100

// revokedKeyRow is a revoked key as a list shows it.
type revokedKeyRow struct {
	*latchkey.RevokedAPIKey
	RevokedBy string
}

// revokedKeysData is the "Revoked" view of a key list.
type revokedKeysData struct {
	Keys  []revokedKeyRow
	Total int
	Empty string // what to say when there are none
}

// keyStatus reads a key list's status filter: "active" (the default) or
// "revoked".
func keyStatus(r *http.Request) string {
	if r.URL.Query().Get("status") == "revoked" {
		return "revoked"
	}
	return "active"
}

// memberNames names the acting tenant's members and service accounts by
// user id, for "created by" and "revoked by" columns. Only admins can list
// every member; for others it names only themselves.
func (u *ui) memberNames(ctx context.Context, p *page) (map[string]string, error) {
	names := map[string]string{}
	ms, _, err := u.Memberships.FindMemberships(ctx, latchkey.MembershipFilter{TenantID: &p.Auth.TenantID})
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		switch {
		case m.User == nil:
		case m.User.IsServiceAccount():
			names[m.UserID] = "service account " + m.User.Name
		default:
			names[m.UserID] = m.User.Email
		}
	}
	return names, nil
}

// personName names user id for a list: "you", a member, or "a former
// member" when they have left the tenant.
func personName(names map[string]string, self, id string) string {
	switch {
	case id == "":
		return "an operator"
	case id == self:
		return "you"
	case names[id] != "":
		return names[id]
	}
	return "a former member"
}

// revokedKeys loads the revoked keys of owner (the caller when empty).
func (u *ui) revokedKeys(ctx context.Context, p *page, owner, empty string) (*revokedKeysData, error) {
	if u.RevokedAPIKeys == nil {
		return &revokedKeysData{Empty: empty}, nil
	}
	if owner == "" {
		owner = p.Auth.User.ID
	}
	keys, n, err := u.RevokedAPIKeys.FindRevokedAPIKeys(ctx, latchkey.RevokedAPIKeyFilter{UserID: &owner, Limit: maxShownRevoked})
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	if p.IsAdmin {
		if names, err = u.memberNames(ctx, p); err != nil {
			return nil, err
		}
	}
	d := &revokedKeysData{Total: n, Empty: empty}
	for _, k := range keys {
		d.Keys = append(d.Keys, revokedKeyRow{RevokedAPIKey: k, RevokedBy: personName(names, p.Auth.User.ID, k.RevokedByUserID)})
	}
	return d, nil
}
