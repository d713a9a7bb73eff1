package html

import (
	"context"
	"net/http"
	"strings"

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

// keySearch is a key list's filter: Active or Revoked keys, and part of
// a name.
type keySearch struct {
	Status string // "active" (the default) or "revoked"
	Q      string
}

// readKeySearch reads a key list's filter from a GET (a POST shows all
// active keys).
func readKeySearch(r *http.Request) keySearch {
	s := keySearch{Status: "active"}
	if r.Method != http.MethodGet {
		return s
	}
	q := r.URL.Query()
	if q.Get("status") == "revoked" {
		s.Status = "revoked"
	}
	s.Q = searchText(q.Get("q"), latchkey.MaxNameLength)
	return s
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
func (u *ui) revokedKeys(ctx context.Context, p *page, owner, q, empty string) (*revokedKeysData, error) {
	if u.RevokedAPIKeys == nil {
		return &revokedKeysData{Empty: empty}, nil
	}
	if owner == "" {
		owner = p.Auth.User.ID
	}
	keys, n, err := u.RevokedAPIKeys.FindRevokedAPIKeys(ctx, latchkey.RevokedAPIKeyFilter{UserID: &owner, NameContains: &q, Limit: maxShownRevoked})
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	if p.IsAdmin {
		if names, err = u.memberNames(ctx, p); err != nil {
			return nil, err
		}
	}
	if q != "" {
		empty = "No revoked key matches this search."
	}
	d := &revokedKeysData{Total: n, Empty: empty}
	for _, k := range keys {
		d.Keys = append(d.Keys, revokedKeyRow{RevokedAPIKey: k, RevokedBy: personName(names, p.Auth.User.ID, k.RevokedByUserID)})
	}
	return d, nil
}

// searchText cleans a search box's text: trimmed, valid UTF-8, at most n
// characters.
func searchText(s string, n int) string {
	s = strings.ToValidUTF8(strings.TrimSpace(s), "")
	if r := []rune(s); len(r) > n {
		s = string(r[:n])
	}
	return s
}
