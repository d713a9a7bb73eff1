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

// expirationChoices are the expiration options, as GitHub offers them:
// 30 days by default, and no expiration only when chosen, with a warning.
var expirationChoices = []expirationChoice{
	{"7d", "7 days", 7},
	{"30d", "30 days", 30},
	{"90d", "90 days", 90},
	{"365d", "1 year", 365},
	{"custom", "On a date…", 0},
	{"never", "No expiration", 0},
}

// defaultExpiration is the expiration choice a new form starts with.
const defaultExpiration = "30d"

// expiresSoon is how close to its expiry a key is marked "Expires soon".
const expiresSoon = 7 * 24 * time.Hour

// keyForm is the state of a create-key form, kept when it is shown again
// with an error.
type keyForm struct {
	Name      string
	Expires   string // an expirationChoice value
	ExpiresOn string // YYYY-MM-DD, for "custom"
	TenantID  string

	// The error of the last submission, and the field it is about.
	Error      string
	ErrorField string
}

// values returns the form's fields for formError.
func (f keyForm) values() map[string]string {
	return map[string]string{"name": f.Name, "expires": f.Expires, "expires_on": f.ExpiresOn, "tenant_id": f.TenantID}
}

// keyFormOf returns the create-key form of page p: the values and error of
// a submission that failed, or an empty form.
func keyFormOf(p *page) keyForm {
	if p.Form == nil {
		return keyForm{Expires: defaultExpiration}
	}
	f := readKeyForm(p.Form)
	f.Error, f.ErrorField = p.Error, p.ErrorField
	return f
}

// Choices returns the expiration options.
func (keyForm) Choices() []expirationChoice { return expirationChoices }

// keyRow is a key as lists show it.
type keyRow struct {
	*latchkey.APIKey
	Expired     bool
	ExpiresSoon bool // within expiresSoon, not yet expired
	New         bool // just created: highlighted
	TenantName  string
	RevokeURL   string
	RollURL     string // see keyroll.go
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

	// For a service-account key: how to start an agent with it.
	AgentCommand        string // latchkey agent local start …
	PrefectAgentCommand string // PREFECT__CLOUD__AGENT__AUTH_TOKEN=… prefect agent local start
}

// parseExpiration reads the expiration fields of a create-key form. A
// filled-in date wins over the select, so the form also works without the
// script that hides the date field. An error names the field it is about.
func (u *ui) parseExpiration(f keyForm) (*time.Time, string, error) {
	if f.ExpiresOn != "" {
		d, err := time.Parse("2006-01-02", f.ExpiresOn)
		if err != nil {
			return nil, "expires_on", latchkey.Errorf(latchkey.EINVALID, "Enter the expiration date as YYYY-MM-DD.")
		} else if !d.After(u.Now()) {
			return nil, "expires_on", latchkey.Errorf(latchkey.EINVALID, "The expiration date must be in the future: choose a later day.")
		}
		return &d, "", nil
	}
	if f.Expires == "custom" {
		return nil, "expires_on", latchkey.Errorf(latchkey.EINVALID, "Choose the expiration date.")
	}
	if f.Expires == "" {
		f.Expires = defaultExpiration
	}
	for _, c := range expirationChoices {
		if c.Value == f.Expires {
			if c.Days == 0 {
				return nil, "", nil
			}
			t := u.Now().UTC().Truncate(time.Second).AddDate(0, 0, c.Days)
			return &t, "", nil
		}
	}
	return nil, "expires", latchkey.Errorf(latchkey.EINVALID, "Choose an expiration from the list.")
}

// createKeyError answers a create-key form whose key could not be
// created: back to the form's page with the error at its field.
func (u *ui) createKeyError(w http.ResponseWriter, r *http.Request, path string, f keyForm, field string, err error) {
	u.logError(r, "create api key", err)
	msg := latchkey.ErrorMessage(err)
	switch latchkey.ErrorCode(err) {
	case latchkey.EINTERNAL:
		msg, field = "The key could not be created. Try again in a moment.", ""
	case latchkey.ECONFLICT:
		field = "name" // the owner has a key of that name
	}
	u.formError(w, r, path, msg, field, f.values())
}

func readKeyForm(v url.Values) keyForm {
	return keyForm{
		Name:      strings.TrimSpace(v.Get("name")),
		Expires:   v.Get("expires"),
		ExpiresOn: strings.TrimSpace(v.Get("expires_on")),
		TenantID:  v.Get("tenant_id"),
	}
}

// rows turns keys into list rows; the key with id created, if any, is
// highlighted as new.
func (u *ui) rows(keys []*latchkey.APIKey, tenants []*latchkey.Tenant, revokeURL func(*latchkey.APIKey) string, created string) []keyRow {
	names := map[string]string{}
	for _, t := range tenants {
		names[t.ID] = t.Name
	}
	now := u.Now()
	out := make([]keyRow, len(keys))
	for i, k := range keys {
		out[i] = keyRow{
			APIKey: k, Expired: k.Expired(now), TenantName: names[k.DefaultTenantID], RevokeURL: revokeURL(k),
			ExpiresSoon: !k.Expired(now) && k.ExpiresAt != nil && k.ExpiresAt.Sub(now) <= expiresSoon,
			New:         created != "" && k.ID == created,
		}
		out[i].RollURL = rollURL(out[i].RevokeURL)
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

func (u *ui) handleKeys(w http.ResponseWriter, r *http.Request, p *page) {
	search := readKeySearch(r)
	keys, err := u.findOwnKeys(r.Context(), p.Auth, search.Q)
	if err != nil {
		u.fail(w, r, p, "find api keys", err)
		return
	}
	f := keyFormOf(p)
	if f.TenantID == "" {
		f.TenantID = p.Auth.TenantID
	}
	p.Title, p.Nav = "API keys", "keys"
	d := keysData{Keys: u.rows(keys, p.Tenants, personalRevokeURL, r.URL.Query().Get("created")), Form: f, Search: search}
	if search.Status == "revoked" {
		if d.Revoked, err = u.revokedKeys(r.Context(), p, "", search.Q, "You have not revoked any API keys."); err != nil {
			u.fail(w, r, p, "find revoked api keys", err)
			return
		}
	}
	p.Data = d
	u.render(w, r, http.StatusOK, "keys", p)
}

func (u *ui) handleCreateKey(w http.ResponseWriter, r *http.Request, p *page) {
	f := readKeyForm(r.PostForm)
	key := &latchkey.APIKey{Name: f.Name, DefaultTenantID: f.TenantID}
	if err := key.Validate(); err != nil {
		u.createKeyError(w, r, "/ui/keys", f, "name", err)
		return
	}
	expires, field, err := u.parseExpiration(f)
	if err != nil {
		u.createKeyError(w, r, "/ui/keys", f, field, err)
		return
	}
	key.ExpiresAt = expires
	if key.DefaultTenantID == "" {
		key.DefaultTenantID = p.Auth.TenantID
	}
	secret, err := u.APIKeys.CreateAPIKey(r.Context(), key)
	if err != nil {
		u.createKeyError(w, r, "/ui/keys", f, "tenant_id", err)
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
		BackURL: createdURL("/ui/keys", key), BackText: "Done, back to your API keys",
	})
}

// createdURL is the list at path with key highlighted as new.
func createdURL(path string, key *latchkey.APIKey) string {
	return path + "?created=" + url.QueryEscape(key.ID) + "#key-" + url.PathEscape(key.ID)
}

// renderKeyCreated renders the show-once page of a new key. It is the
// response to the POST itself, never stored and never cached. The list
// the page leads back to greets the user with a notice about the new key.
func (u *ui) renderKeyCreated(w http.ResponseWriter, r *http.Request, p *page, d keyCreatedData) {
	p.Title = "API key created"
	p.Data = d
	w.Header().Set("Pragma", "no-cache")
	u.setFlash(w, r, "API key “"+d.Key.Name+"” ("+d.Key.Identifier+") created. It is highlighted below.")
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
