package html

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/latchkey/latchkey"
)

// serviceAccountRow is a service account as the list shows it.
type serviceAccountRow struct {
	*latchkey.ServiceAccount
	URL         string
	Keys        int
	Expired     int // keys that have expired
	ExpiresSoon int // keys that expire within expiresSoon
	CreatedBy   string
}

// serviceAccountsData is the service accounts page's data.
type serviceAccountsData struct {
	Accounts []serviceAccountRow
	Q        string // the search: part of a name
	Name     string
	Role     latchkey.Role
}

// serviceAccountData is one service account's page data.
type serviceAccountData struct {
	Account   *latchkey.ServiceAccount
	URL       string
	Keys      []keyRow
	Form      keyForm
	DeleteURL string
	API       string // the server's URL, for the agent command

	CreatedBy map[string]string // who created the account and each key, by id
	Search    keySearch         // the key list's filter
	Revoked   *revokedKeysData  // for Search.Status "revoked"
}

func serviceAccountURL(id string) string { return "/ui/team/service-accounts/" + url.PathEscape(id) }

func (u *ui) handleTeam(w http.ResponseWriter, r *http.Request, p *page) {
	http.Redirect(w, r, "/ui/team/service-accounts", http.StatusSeeOther)
}

// renderServiceAccounts renders the list with the create form.
func (u *ui) renderServiceAccounts(w http.ResponseWriter, r *http.Request, p *page, status int, name string, role latchkey.Role) {
	ctx := r.Context()
	f := latchkey.ServiceAccountFilter{TenantID: &p.Auth.TenantID}
	var q string
	if r.Method == http.MethodGet {
		q = searchText(r.URL.Query().Get("q"), latchkey.MaxNameLength)
	}
	if q != "" {
		f.NameContains = &q
	}
	accounts, _, err := u.ServiceAccounts.FindServiceAccounts(ctx, f)
	if err != nil {
		u.fail(w, r, p, "find service accounts", err)
		return
	}
	names, err := u.memberNames(ctx, p)
	if err != nil {
		u.fail(w, r, p, "find memberships", err)
		return
	}
	// One query for every key an admin sees, counted per account.
	keys, _, err := u.APIKeys.FindAPIKeys(ctx, latchkey.APIKeyFilter{})
	if err != nil {
		u.fail(w, r, p, "find api keys", err)
		return
	}
	type counts struct{ all, expired, soon int }
	count := map[string]*counts{}
	for _, row := range u.rows(keys, nil, func(*latchkey.APIKey) string { return "" }, "") {
		c := count[row.UserID]
		if c == nil {
			c = &counts{}
			count[row.UserID] = c
		}
		c.all++
		if row.Expired {
			c.expired++
		} else if row.ExpiresSoon {
			c.soon++
		}
	}
	rows := make([]serviceAccountRow, len(accounts))
	for i, sa := range accounts {
		rows[i] = serviceAccountRow{ServiceAccount: sa, URL: serviceAccountURL(sa.ID),
			CreatedBy: personName(names, p.Auth.User.ID, sa.CreatedByUserID)}
		if c := count[sa.ID]; c != nil {
			rows[i].Keys, rows[i].Expired, rows[i].ExpiresSoon = c.all, c.expired, c.soon
		}
	}
	if role == "" {
		role = latchkey.RoleUser
	}
	p.Title, p.Tab = "Service accounts", "service-accounts"
	p.Data = serviceAccountsData{Accounts: rows, Q: q, Name: name, Role: role}
	u.render(w, r, status, "serviceaccounts", p)
}

func (u *ui) handleServiceAccounts(w http.ResponseWriter, r *http.Request, p *page) {
	u.renderServiceAccounts(w, r, p, http.StatusOK, p.Form.Get("name"), latchkey.Role(p.Form.Get("role")))
}

func (u *ui) handleCreateServiceAccount(w http.ResponseWriter, r *http.Request, p *page) {
	sa := &latchkey.ServiceAccount{
		Name: strings.TrimSpace(r.PostForm.Get("name")),
		Role: latchkey.Role(r.PostForm.Get("role")),
	}
	if sa.Role == "" {
		sa.Role = latchkey.RoleUser
	}
	if err := u.ServiceAccounts.CreateServiceAccount(r.Context(), sa); err != nil {
		u.logError(r, "create service account", err)
		field := "name"
		if latchkey.ErrorCode(err) == latchkey.EINTERNAL || latchkey.ErrorCode(err) == latchkey.EFORBIDDEN {
			field = ""
		} else if !sa.Role.Valid() {
			field = "role"
		}
		msg := latchkey.ErrorMessage(err)
		if latchkey.ErrorCode(err) == latchkey.EINTERNAL {
			msg = "The service account could not be created. Try again in a moment."
		}
		u.formError(w, r, "/ui/team/service-accounts", msg, field, map[string]string{"name": sa.Name, "role": string(sa.Role)})
		return
	}
	u.setFlash(w, r, "Service account “"+sa.Name+"” created. Create an API key for it below.")
	redirect(w, r, serviceAccountURL(sa.ID))
}

// findServiceAccount returns service account id of the acting tenant, or ENOTFOUND.
func (u *ui) findServiceAccount(ctx context.Context, p *page, id string) (*latchkey.ServiceAccount, error) {
	accounts, _, err := u.ServiceAccounts.FindServiceAccounts(ctx, latchkey.ServiceAccountFilter{ID: &id, TenantID: &p.Auth.TenantID})
	if err != nil {
		return nil, err
	} else if len(accounts) == 0 {
		return nil, latchkey.Errorf(latchkey.ENOTFOUND, "Service account not found in this tenant.")
	}
	return accounts[0], nil
}

func serviceAccountKeyRevokeURL(k *latchkey.APIKey) string {
	return serviceAccountURL(k.UserID) + "/keys/" + url.PathEscape(k.ID) + "/revoke"
}

// renderServiceAccount renders one account with its keys and the
// create-key form.
func (u *ui) renderServiceAccount(w http.ResponseWriter, r *http.Request, p *page, status int, sa *latchkey.ServiceAccount, f keyForm) {
	search := readKeySearch(r)
	keys, _, err := u.APIKeys.FindAPIKeys(r.Context(), latchkey.APIKeyFilter{
		UserID:       &sa.ID,
		NameContains: &search.Q,
		OrderBy:      []latchkey.SortOrder{{Field: "created_at", Desc: true}},
	})
	if err != nil {
		u.fail(w, r, p, "find api keys", err)
		return
	}
	names, err := u.memberNames(r.Context(), p)
	if err != nil {
		u.fail(w, r, p, "find memberships", err)
		return
	}
	d := serviceAccountData{
		Account: sa, URL: serviceAccountURL(sa.ID),
		Keys: u.rows(keys, p.Tenants, serviceAccountKeyRevokeURL, r.URL.Query().Get("created")),
		Form: f, DeleteURL: serviceAccountURL(sa.ID) + "/delete",
		API:       u.baseURL(r),
		CreatedBy: map[string]string{sa.ID: personName(names, p.Auth.User.ID, sa.CreatedByUserID)},
		Search:    search,
	}
	for _, k := range keys {
		d.CreatedBy[k.ID] = personName(names, p.Auth.User.ID, k.CreatedByUserID)
	}
	if search.Status == "revoked" {
		if d.Revoked, err = u.revokedKeys(r.Context(), p, sa.ID, search.Q, "No key of this service account has been revoked."); err != nil {
			u.fail(w, r, p, "find revoked api keys", err)
			return
		}
	}
	p.Title, p.Tab = sa.Name+" · Service accounts", "service-accounts"
	p.Data = d
	u.render(w, r, status, "serviceaccount", p)
}

func (u *ui) handleServiceAccount(w http.ResponseWriter, r *http.Request, p *page) {
	sa, err := u.findServiceAccount(r.Context(), p, r.PathValue("id"))
	if err != nil {
		u.fail(w, r, p, "find service account", err)
		return
	}
	u.renderServiceAccount(w, r, p, http.StatusOK, sa, keyFormOf(p))
}

func (u *ui) handleCreateServiceAccountKey(w http.ResponseWriter, r *http.Request, p *page) {
	sa, err := u.findServiceAccount(r.Context(), p, r.PathValue("id"))
	if err != nil {
		u.fail(w, r, p, "find service account", err)
		return
	}
	back := serviceAccountURL(sa.ID)
	f := readKeyForm(r.PostForm)
	key := &latchkey.APIKey{Name: f.Name, UserID: sa.ID}
	if err := key.Validate(); err != nil {
		u.createKeyError(w, r, back, f, "name", err)
		return
	}
	expires, field, err := u.parseExpiration(f)
	if err != nil {
		u.createKeyError(w, r, back, f, field, err)
		return
	}
	key.ExpiresAt = expires
	secret, err := u.APIKeys.CreateAPIKey(r.Context(), key)
	if err != nil {
		u.createKeyError(w, r, back, f, "", err)
		return
	}
	p.Tab = "service-accounts"
	api := u.baseURL(r)
	u.renderKeyCreated(w, r, p, keyCreatedData{
		Key: key, Secret: secret, Owner: sa.Name, TenantName: p.Tenant.Name,
		BackURL: createdURL(back, key), BackText: "Done, back to " + sa.Name,
		AgentCommand:        "latchkey agent local start --api " + api + " -t " + secret,
		PrefectAgentCommand: "PREFECT__CLOUD__API=" + api + " PREFECT__CLOUD__AGENT__AUTH_TOKEN=" + secret + " prefect agent local start",
	})
}

// findServiceAccountKey returns key keyID of service account sa, or ENOTFOUND.
func (u *ui) findServiceAccountKey(ctx context.Context, sa *latchkey.ServiceAccount, keyID string) (*latchkey.APIKey, error) {
	keys, _, err := u.APIKeys.FindAPIKeys(ctx, latchkey.APIKeyFilter{ID: &keyID, UserID: &sa.ID})
	if err != nil {
		return nil, err
	} else if len(keys) == 0 {
		return nil, latchkey.Errorf(latchkey.ENOTFOUND, "API key not found. It may have been revoked already.")
	}
	return keys[0], nil
}

func (u *ui) handleRevokeServiceAccountKeyConfirm(w http.ResponseWriter, r *http.Request, p *page) {
	sa, err := u.findServiceAccount(r.Context(), p, r.PathValue("id"))
	if err != nil {
		u.fail(w, r, p, "find service account", err)
		return
	}
	key, err := u.findServiceAccountKey(r.Context(), sa, r.PathValue("key"))
	if err != nil {
		u.fail(w, r, p, "find api key", err)
		return
	}
	p.Title, p.Tab = "Revoke API key", "service-accounts"
	p.Data = confirmData{
		Heading:   "Revoke API key “" + key.Name + "” of " + sa.Name + "?",
		Text:      "Agents and flows that use this key stop working at once, including access tokens obtained with it. This cannot be undone.",
		Action:    serviceAccountKeyRevokeURL(key),
		Button:    "Revoke key",
		CancelURL: serviceAccountURL(sa.ID),
	}
	u.render(w, r, http.StatusOK, "confirm", p)
}

func (u *ui) handleRevokeServiceAccountKey(w http.ResponseWriter, r *http.Request, p *page) {
	sa, err := u.findServiceAccount(r.Context(), p, r.PathValue("id"))
	if err != nil {
		u.fail(w, r, p, "find service account", err)
		return
	}
	key, err := u.findServiceAccountKey(r.Context(), sa, r.PathValue("key"))
	if err != nil {
		u.fail(w, r, p, "find api key", err)
		return
	}
	if err := u.APIKeys.DeleteAPIKey(r.Context(), key.ID); err != nil {
		u.fail(w, r, p, "revoke api key", err)
		return
	}
	u.setFlash(w, r, "API key “"+key.Name+"” of "+sa.Name+" revoked.")
	redirect(w, r, serviceAccountURL(sa.ID))
}

func (u *ui) handleDeleteServiceAccountConfirm(w http.ResponseWriter, r *http.Request, p *page) {
	sa, err := u.findServiceAccount(r.Context(), p, r.PathValue("id"))
	if err != nil {
		u.fail(w, r, p, "find service account", err)
		return
	}
	p.Title, p.Tab = "Delete service account", "service-accounts"
	p.Data = confirmData{
		Heading:   "Delete service account “" + sa.Name + "”?",
		Text:      "All of its API keys are revoked at once, and agents using them stop working. This cannot be undone.",
		Action:    serviceAccountURL(sa.ID) + "/delete",
		Button:    "Delete service account",
		CancelURL: serviceAccountURL(sa.ID),
	}
	u.render(w, r, http.StatusOK, "confirm", p)
}

func (u *ui) handleDeleteServiceAccount(w http.ResponseWriter, r *http.Request, p *page) {
	sa, err := u.findServiceAccount(r.Context(), p, r.PathValue("id"))
	if err != nil {
		u.fail(w, r, p, "find service account", err)
		return
	}
	if err := u.ServiceAccounts.DeleteServiceAccount(r.Context(), sa.ID); err != nil {
		u.fail(w, r, p, "delete service account", err)
		return
	}
	u.setFlash(w, r, "Service account “"+sa.Name+"” deleted and its keys revoked.")
	redirect(w, r, "/ui/team/service-accounts")
}

func (u *ui) handleServiceAccountRole(w http.ResponseWriter, r *http.Request, p *page) {
	sa, err := u.findServiceAccount(r.Context(), p, r.PathValue("id"))
	if err != nil {
		u.fail(w, r, p, "find service account", err)
		return
	}
	role := latchkey.Role(r.PostForm.Get("role"))
	if _, err := u.ServiceAccounts.UpdateServiceAccountRole(r.Context(), sa.ID, role); err != nil {
		u.logError(r, "change service account role", err)
		p.Error = latchkey.ErrorMessage(err)
		u.renderServiceAccount(w, r, p, statusOf(err), sa, keyForm{Expires: "never"})
		return
	}
	u.setFlash(w, r, "Service account “"+sa.Name+"” is now "+strings.ToLower(roleLabel(role))+"; its keys act with this role at once.")
	redirect(w, r, serviceAccountURL(sa.ID))
}
