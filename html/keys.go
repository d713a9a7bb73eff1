package html

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// expirationChoice is an option of the expiration select.
type expirationChoice struct {
	Value string
	Label string
	Days  int
}

var expirationChoices = []expirationChoice{
	{"never", "No expiration", 0},
	{"7d", "7 days", 7},
	{"30d", "30 days", 30},
	{"90d", "90 days", 90},
	{"365d", "1 year", 365},
	{"custom", "On a date…", 0},
}

// keyForm is the state of a create-key form, kept when it is shown again
// with an error.
type keyForm struct {
	Name      string
	Expires   string // an expirationChoice value
	ExpiresOn string // YYYY-MM-DD, for "custom"
	TenantID  string
}

// Choices returns the expiration options.
func (keyForm) Choices() []expirationChoice { return expirationChoices }

// keyRow is a key as lists show it.
type keyRow struct {
	*latchkey.APIKey
	Expired    bool
	TenantName string
	RevokeURL  string
}

// keysData is the personal API keys page's data.
type keysData struct {
	Keys []keyRow
	Form keyForm

	Search  keySearch        // the list's filter
	Revoked *revokedKeysData // for Search.Status "revoked"
}

// keyCreatedData is the show-once page's data.
type keyCreatedData struct {
	Key        *latchkey.APIKey
	Secret     string
	Owner      string // "you" or the service account's name
	TenantName string
	BackURL    string
	BackText   string
}

// parseExpiration reads the expiration fields of a create-key form. A
// filled-in date wins over the select, so the form also works without the
// script that hides the date field.
func (u *ui) parseExpiration(f keyForm) (*time.Time, error) {
	if f.ExpiresOn != "" && (f.Expires == "custom" || f.Expires == "never" || f.Expires == "") {
		d, err := time.Parse("2006-01-02", f.ExpiresOn)
		if err != nil {
			return nil, latchkey.Errorf(latchkey.EINVALID, "Enter the expiration date as YYYY-MM-DD.")
		}
		return &d, nil
	}
	if f.Expires == "custom" {
		return nil, latchkey.Errorf(latchkey.EINVALID, "Choose the expiration date.")
	}
	for _, c := range expirationChoices {
		if c.Value == f.Expires || (f.Expires == "" && c.Value == "never") {
			if c.Days == 0 {
				return nil, nil
			}
			t := u.Now().UTC().Truncate(time.Second).AddDate(0, 0, c.Days)
			return &t, nil
		}
	}
	return nil, latchkey.Errorf(latchkey.EINVALID, "Choose an expiration from the list.")
}

func readKeyForm(v url.Values) keyForm {
	return keyForm{
		Name:      strings.TrimSpace(v.Get("name")),
		Expires:   v.Get("expires"),
		ExpiresOn: strings.TrimSpace(v.Get("expires_on")),
		TenantID:  v.Get("tenant_id"),
	}
}

// rows turns keys into list rows.
func (u *ui) rows(keys []*latchkey.APIKey, tenants []*latchkey.Tenant, revokeURL func(*latchkey.APIKey) string) []keyRow {
	names := map[string]string{}
	for _, t := range tenants {
		names[t.ID] = t.Name
	}
	now := u.Now()
	out := make([]keyRow, len(keys))
	for i, k := range keys {
		out[i] = keyRow{APIKey: k, Expired: k.Expired(now), TenantName: names[k.DefaultTenantID], RevokeURL: revokeURL(k)}
		if out[i].TenantName == "" {
			out[i].TenantName = k.DefaultTenantID
		}
	}
	return out
}

func personalRevokeURL(k *latchkey.APIKey) string {
	return "/ui/keys/" + url.PathEscape(k.ID) + "/revoke"
}

// findOwnKeys returns the caller's personal keys, newest first.
func (u *ui) findOwnKeys(ctx context.Context, a *latchkey.Auth, q string) ([]*latchkey.APIKey, error) {
	keys, _, err := u.APIKeys.FindAPIKeys(ctx, latchkey.APIKeyFilter{
		UserID:       &a.User.ID,
		NameContains: &q,
		OrderBy:      []latchkey.SortOrder{{Field: "created_at", Desc: true}},
	})
	return keys, err
}

// renderKeys renders the personal keys page, with form f and an error, if any.
func (u *ui) renderKeys(w http.ResponseWriter, r *http.Request, p *page, status int, f keyForm) {
	search := readKeySearch(r)
	keys, err := u.findOwnKeys(r.Context(), p.Auth, search.Q)
	if err != nil {
		u.fail(w, r, p, "find api keys", err)
		return
	}
	if f.TenantID == "" {
		f.TenantID = p.Auth.TenantID
	}
	p.Title, p.Nav = "API keys", "keys"
	d := keysData{Keys: u.rows(keys, p.Tenants, personalRevokeURL), Form: f, Search: search}
	if search.Status == "revoked" {
		if d.Revoked, err = u.revokedKeys(r.Context(), p, "", search.Q, "You have not revoked any API keys."); err != nil {
			u.fail(w, r, p, "find revoked api keys", err)
			return
		}
	}
	p.Data = d
	u.render(w, r, status, "keys", p)
}

func (u *ui) handleKeys(w http.ResponseWriter, r *http.Request, p *page) {
	u.renderKeys(w, r, p, http.StatusOK, keyForm{Expires: "never"})
}

func (u *ui) handleCreateKey(w http.ResponseWriter, r *http.Request, p *page) {
	f := readKeyForm(r.PostForm)
	expires, err := u.parseExpiration(f)
	if err != nil {
		p.Error = latchkey.ErrorMessage(err)
		u.renderKeys(w, r, p, statusOf(err), f)
		return
	}
	key := &latchkey.APIKey{Name: f.Name, DefaultTenantID: f.TenantID, ExpiresAt: expires}
	if key.DefaultTenantID == "" {
		key.DefaultTenantID = p.Auth.TenantID
	}
	secret, err := u.APIKeys.CreateAPIKey(r.Context(), key)
	if err != nil {
		u.logError(r, "create api key", err)
		p.Error = latchkey.ErrorMessage(err)
		if latchkey.ErrorCode(err) == latchkey.EINTERNAL {
			p.Error = "The key could not be created. Try again in a moment."
		}
		u.renderKeys(w, r, p, statusOf(err), f)
		return
	}
	tenantName := key.DefaultTenantID
	for _, t := range p.Tenants {
		if t.ID == key.DefaultTenantID {
			tenantName = t.Name
		}
	}
	u.renderKeyCreated(w, r, p, keyCreatedData{
		Key: key, Secret: secret, Owner: "you", TenantName: tenantName,
		BackURL: "/ui/keys", BackText: "Done, back to your API keys",
	})
}

// renderKeyCreated renders the show-once page of a new key. It is the
// response to the POST itself, never stored and never cached.
func (u *ui) renderKeyCreated(w http.ResponseWriter, r *http.Request, p *page, d keyCreatedData) {
	p.Title = "API key created"
	p.Data = d
	w.Header().Set("Pragma", "no-cache")
	u.render(w, r, http.StatusOK, "keycreated", p)
}

// confirmData is a confirmation page's data.
type confirmData struct {
	Heading   string
	Text      string
	Action    string // URL the form POSTs to
	Button    string
	CancelURL string
}

// findOwnKey returns the caller's personal key id, or ENOTFOUND.
func (u *ui) findOwnKey(ctx context.Context, a *latchkey.Auth, id string) (*latchkey.APIKey, error) {
	keys, _, err := u.APIKeys.FindAPIKeys(ctx, latchkey.APIKeyFilter{ID: &id, UserID: &a.User.ID})
	if err != nil {
		return nil, err
	} else if len(keys) == 0 {
		return nil, latchkey.Errorf(latchkey.ENOTFOUND, "API key not found. It may have been revoked already.")
	}
	return keys[0], nil
}

func (u *ui) handleRevokeKeyConfirm(w http.ResponseWriter, r *http.Request, p *page) {
	key, err := u.findOwnKey(r.Context(), p.Auth, r.PathValue("id"))
	if err != nil {
		u.fail(w, r, p, "find api key", err)
		return
	}
	p.Title, p.Nav = "Revoke API key", "keys"
	p.Data = confirmData{
		Heading:   "Revoke API key “" + key.Name + "”?",
		Text:      "Anything that uses this key stops working at once, including access tokens obtained with it. This cannot be undone.",
		Action:    personalRevokeURL(key),
		Button:    "Revoke key",
		CancelURL: "/ui/keys",
	}
	u.render(w, r, http.StatusOK, "confirm", p)
}

func (u *ui) handleRevokeKey(w http.ResponseWriter, r *http.Request, p *page) {
	key, err := u.findOwnKey(r.Context(), p.Auth, r.PathValue("id"))
	if err != nil {
		u.fail(w, r, p, "find api key", err)
		return
	}
	if err := u.APIKeys.DeleteAPIKey(r.Context(), key.ID); err != nil {
		u.fail(w, r, p, "revoke api key", err)
		return
	}
	u.setFlash(w, r, "API key “"+key.Name+"” revoked.")
	redirect(w, r, "/ui/keys")
}
