package html

import (
	"net/http"
	"net/url"
	"time"

	"github.com/latchkey/latchkey"
)

// graceChoice is an option for when a rolled key stops working.
type graceChoice struct {
	Value string
	Label string
	Grace time.Duration
}

var graceChoices = []graceChoice{
	{"now", "Now", 0},
	{"1h", "In 1 hour", time.Hour},
	{"24h", "In 24 hours", 24 * time.Hour},
	{"7d", "In 7 days", 7 * 24 * time.Hour},
}

// defaultGrace is the choice a roll form starts with: long enough to put
// the new key in place, short enough not to forget the old one.
const defaultGrace = "1h"

// Default reports whether c is the choice a roll form starts with.
func (c graceChoice) Default() bool { return c.Value == defaultGrace }

// GraceChoices returns the options of the roll control.
func (keyRow) GraceChoices() []graceChoice { return graceChoices }

// parseGrace returns the grace period of choice value.
func parseGrace(value string) (time.Duration, bool) {
	for _, c := range graceChoices {
		if c.Value == value {
			return c.Grace, true
		}
	}
	return 0, false
}

// rollData is the roll page's data.
type rollData struct {
	Key       *latchkey.APIKey
	Owner     string // "" for the caller's own key, else the service account's name
	Action    string // URL the form POSTs to
	CancelURL string
	Grace     string // the chosen graceChoice value
	Choices   []graceChoice
}

// keyRolledData is the show-once page of a rolled key.
type keyRolledData struct {
	keyCreatedData
	OldKey          *latchkey.APIKey
	OldKeyExpiresAt time.Time
	OldKeyStopped   bool // the old key stopped working at once
}

// rollURL is where the roll control of the key whose revoke URL is
// revokeURL leads: the same path, ending in /roll instead of /revoke.
func rollURL(revokeURL string) string {
	const suffix = "/revoke"
	if len(revokeURL) < len(suffix) || revokeURL[len(revokeURL)-len(suffix):] != suffix {
		return ""
	}
	return revokeURL[:len(revokeURL)-len(suffix)] + "/roll"
}

// renderRollForm renders the roll page; d.Grace defaults to defaultGrace.
func (u *ui) renderRollForm(w http.ResponseWriter, r *http.Request, p *page, status int, d rollData) {
	if _, ok := parseGrace(d.Grace); !ok {
		d.Grace = defaultGrace
	}
	d.Choices = graceChoices
	p.Title = "Roll API key"
	p.Data = d
	u.render(w, r, status, "rollkey", p)
}

// rollKey rolls d.Key with the grace period the form chose, and answers
// with the new key's show-once page, or the form again with the error.
func (u *ui) rollKey(w http.ResponseWriter, r *http.Request, p *page, d rollData, owner, backURL, backText string) {
	d.Grace = r.PostForm.Get("grace")
	grace, ok := parseGrace(d.Grace)
	if !ok {
		p.Error = "Choose when the old key stops working."
		u.renderRollForm(w, r, p, http.StatusBadRequest, d)
		return
	}
	rot := &latchkey.APIKeyRotation{OldKeyID: d.Key.ID, OldKeyExpiresIn: grace}
	secret, err := u.APIKeys.RotateAPIKey(r.Context(), rot)
	switch code := latchkey.ErrorCode(err); {
	case err == nil:
	case code == latchkey.EINVALID:
		u.logError(r, "roll api key", err)
		p.Error = latchkey.ErrorMessage(err)
		u.renderRollForm(w, r, p, statusOf(err), d)
		return
	default:
		u.fail(w, r, p, "roll api key", err)
		return
	}
	tenantName := rot.NewKey.DefaultTenantID
	for _, t := range p.Tenants {
		if t.ID == rot.NewKey.DefaultTenantID {
			tenantName = t.Name
		}
	}
	p.Title = "API key rolled"
	p.Data = keyRolledData{
		keyCreatedData: keyCreatedData{
			Key: rot.NewKey, Secret: secret, Owner: owner, TenantName: tenantName,
			BackURL: backURL, BackText: backText,
		},
		OldKey: d.Key, OldKeyExpiresAt: rot.OldKeyExpiresAt, OldKeyStopped: !rot.OldKeyExpiresAt.After(u.Now()),
	}
	w.Header().Set("Pragma", "no-cache")
	u.render(w, r, http.StatusOK, "keyrolled", p)
}

func personalRollURL(k *latchkey.APIKey) string {
	return "/ui/keys/" + url.PathEscape(k.ID) + "/roll"
}

func (u *ui) handleRollKeyForm(w http.ResponseWriter, r *http.Request, p *page) {
	key, err := u.findOwnKey(r.Context(), p.Auth, r.PathValue("id"))
	if err != nil {
		u.fail(w, r, p, "find api key", err)
		return
	}
	p.Nav = "keys"
	u.renderRollForm(w, r, p, http.StatusOK, rollData{Key: key, Action: personalRollURL(key), CancelURL: "/ui/keys", Grace: r.URL.Query().Get("grace")})
}

func (u *ui) handleRollKey(w http.ResponseWriter, r *http.Request, p *page) {
	key, err := u.findOwnKey(r.Context(), p.Auth, r.PathValue("id"))
	if err != nil {
		u.fail(w, r, p, "find api key", err)
		return
	}
	p.Nav = "keys"
	u.rollKey(w, r, p, rollData{Key: key, Action: personalRollURL(key), CancelURL: "/ui/keys"}, "you", "/ui/keys", "Done, back to your API keys")
}

func (u *ui) handleRollServiceAccountKeyForm(w http.ResponseWriter, r *http.Request, p *page) {
	d, ok := u.serviceAccountRollData(w, r, p)
	if !ok {
		return
	}
	d.Grace = r.URL.Query().Get("grace")
	u.renderRollForm(w, r, p, http.StatusOK, d)
}

func (u *ui) handleRollServiceAccountKey(w http.ResponseWriter, r *http.Request, p *page) {
	d, ok := u.serviceAccountRollData(w, r, p)
	if !ok {
		return
	}
	u.rollKey(w, r, p, d, d.Owner, d.CancelURL, "Done, back to "+d.Owner)
}

// serviceAccountRollData finds the service account and key the request
// names; it answers the request itself when it cannot.
func (u *ui) serviceAccountRollData(w http.ResponseWriter, r *http.Request, p *page) (rollData, bool) {
	sa, err := u.findServiceAccount(r.Context(), p, r.PathValue("id"))
	if err != nil {
		u.fail(w, r, p, "find service account", err)
		return rollData{}, false
	}
	key, err := u.findServiceAccountKey(r.Context(), sa, r.PathValue("key"))
	if err != nil {
		u.fail(w, r, p, "find api key", err)
		return rollData{}, false
	}
	p.Tab = "service-accounts"
	return rollData{Key: key, Owner: sa.Name, Action: rollURL(serviceAccountKeyRevokeURL(key)), CancelURL: serviceAccountURL(sa.ID)}, true
}
