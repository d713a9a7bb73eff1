package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The query texts below are byte for byte what Prefect's parse_graphql
// produces for the same operations (4-space indent, one field per line).

// QueryAuthInfoTenant is `_get_auth_tenant`'s query.
const QueryAuthInfoTenant = "query {\n    auth_info {\n        tenant_id\n    }\n}"

// QueryTenants is get_available_tenants' query.
const QueryTenants = "query {\n    tenant(order_by: {slug: asc}) {\n        id\n        slug\n        name\n    }\n}"

// QueryTenantBySlug is switch_tenant's query, with variables {"slug": …}.
const QueryTenantBySlug = "query($slug: String) {\n    tenant(where: {slug: { _eq: $slug } }) {\n        id\n    }\n}"

// QueryLoginTenant is 0.15's login_to_tenant query, with variables
// {"slug": …, "id": …}.
const QueryLoginTenant = "query($slug: String, $id: uuid) {\n    tenant(where: {slug: { _eq: $slug }, id: { _eq: $id } }) {\n        id\n    }\n}"

// QueryAnyTenant is 0.15's fallback tenant lookup for TENANT and RUNNER tokens.
const QueryAnyTenant = "query {\n    tenant {\n        id\n    }\n}"

// QueryUserDefaultTenant is 0.15's token login query.
const QueryUserDefaultTenant = "query {\n    user {\n        default_membership {\n            tenant_id\n        }\n    }\n}"

// MutationCreateAPIKey is `prefect auth create-key`'s mutation.
const MutationCreateAPIKey = "mutation($input: create_api_key_input!) {\n    create_api_key(input: $input) {\n        key\n    }\n}"

// QueryAPIKeys is `prefect auth list-keys`' query, with Latchkey's
// identifier (the key's prefix and last four characters) added.
const QueryAPIKeys = "query {\n    auth_api_key {\n        id\n        name\n        identifier\n        expires_at\n    }\n}"

// MutationDeleteAPIKey is `prefect auth revoke-key`'s mutation.
const MutationDeleteAPIKey = "mutation($input: delete_api_key_input!) {\n    delete_api_key(input: $input) {\n        success\n    }\n}"

// MutationRotateAPIKey is `latchkey auth rotate-key`'s mutation.
const MutationRotateAPIKey = "mutation($input: rotate_api_key_input!) {\n    rotate_api_key(input: $input) {\n        id\n        key\n        old_key_expires_at\n    }\n}"

// MutationSwitchTenant mints an access token (0.15 login_to_tenant).
const MutationSwitchTenant = "mutation($input: switch_tenant_input!) {\n    switch_tenant(input: $input) {\n        access_token\n        expires_at\n        refresh_token\n    }\n}"

// MutationRefreshToken renews an access token; the bearer is the refresh token.
const MutationRefreshToken = "mutation($input: refresh_token_input!) {\n    refresh_token(input: $input) {\n        access_token\n        expires_at\n        refresh_token\n    }\n}"

// MutationCreateAPIToken is 0.15's `prefect auth create-token` mutation.
const MutationCreateAPIToken = "mutation($input: create_api_token_input!) {\n    create_api_token(input: $input) {\n        token\n    }\n}"

// QueryAPITokens is 0.15's `prefect auth list-tokens` query.
const QueryAPITokens = "query {\n    api_token {\n        id\n        name\n    }\n}"

// MutationDeleteAPIToken is 0.15's `prefect auth revoke-token` mutation.
const MutationDeleteAPIToken = "mutation($input: delete_api_token_input!) {\n    delete_api_token(input: $input) {\n        success\n    }\n}"

// QueryHello is the agent's connectivity check, sent as this literal text.
const QueryHello = "query { hello }"

// ErrNoData is wrapped by the *ClientError returned when a response's data
// member is missing, null or empty, which Prefect's `not output.get("data")`
// treats as failure.
var ErrNoData = errors.New("response has no data")

// QueryTenantByID is TenantView.from_tenant_id's query, with the id inlined
// as a literal as Prefect's with_args does.
func QueryTenantByID(id string) string {
	return "query {\n    tenant(where: { id: { _eq: " + pyJSONString(id) + " } }) {\n        id\n        slug\n        name\n    }\n}"
}

// QueryAuthInfo selects the given auth_info fields, one per line, in order.
func QueryAuthInfo(fields ...string) string {
	return "query {\n    auth_info {\n        " + strings.Join(fields, "\n        ") + "\n    }\n}"
}

// object decodes the data member as a JSON object.
func dataObject(resp *Response) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if len(resp.Data) == 0 || json.Unmarshal(resp.Data, &obj) != nil || len(obj) == 0 {
		return nil, &ClientError{Message: "Unexpected response from the API: no data", StatusCode: http.StatusOK, Response: resp.Body, Err: ErrNoData}
	}
	return obj, nil
}

func unexpected(resp *Response, format string, args ...any) *ClientError {
	return &ClientError{Message: "Unexpected response from the API: " + fmt.Sprintf(format, args...), StatusCode: http.StatusOK, Response: resp.Body}
}

// field decodes data.<name> into out. A missing or null field is a
// *ClientError; so is a field of the wrong shape.
func (c *Client) field(ctx context.Context, cr *credential, query string, variables any, name string, out any) (*Response, error) {
	var resp *Response
	var err error
	if cr != nil {
		resp, err = c.send(ctx, *cr, query, variables)
	} else {
		resp, err = c.Send(ctx, query, variables)
	}
	if err != nil {
		return nil, err
	}
	obj, err := dataObject(resp)
	if err != nil {
		return nil, err
	}
	raw, ok := obj[name]
	if !ok || string(raw) == "null" {
		return nil, unexpected(resp, "%s is missing or null", name)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, unexpected(resp, "%s: %v", name, err)
	}
	return resp, nil
}

// AuthInfo is the auth_info object. A nil field was null or not selected.
type AuthInfo struct {
	TenantID      *string `json:"tenant_id"`
	UserID        *string `json:"user_id"`
	APITokenScope *string `json:"api_token_scope"`
	Role          *string `json:"role"`
}

// AuthInfo queries auth_info with the given fields (all four if none).
func (c *Client) AuthInfo(ctx context.Context, fields ...string) (*AuthInfo, error) {
	if len(fields) == 0 {
		fields = []string{"tenant_id", "user_id", "api_token_scope", "role"}
	}
	var info AuthInfo
	if _, err := c.field(ctx, nil, QueryAuthInfo(fields...), nil, "auth_info", &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// DefaultTenant returns the tenant the credential acts in, as Prefect's
// _get_auth_tenant: `auth_info { tenant_id }`. Without a tenant header that
// is the key's default tenant; with one, the query checks membership. A null
// tenant_id (an API token used as a key) is an *AuthorizationError; a
// missing one a *ClientError.
func (c *Client) DefaultTenant(ctx context.Context) (string, error) {
	resp, err := c.Send(ctx, QueryAuthInfoTenant, nil)
	if err != nil {
		return "", err
	}
	var data struct {
		AuthInfo map[string]json.RawMessage `json:"auth_info"`
	}
	if len(resp.Data) > 0 {
		_ = json.Unmarshal(resp.Data, &data)
	}
	raw, ok := data.AuthInfo["tenant_id"]
	switch {
	case !ok:
		return "", &ClientError{Message: "Unexpected response from the API while querying for the default tenant: " + PythonJSON(resp.Body, 4), StatusCode: http.StatusOK, Response: resp.Body}
	case string(raw) == "null":
		return "", &AuthorizationError{Message: "An API token was used as an API key. There is no tenant associated with API tokens. Use an API key for authentication."}
	}
	var id string
	if err := json.Unmarshal(raw, &id); err != nil || id == "" {
		return "", unexpected(resp, "auth_info.tenant_id is not a string")
	}
	return id, nil
}

// Tenant is a tenant row.
type Tenant struct {
	ID   string `json:"id"`
	Slug string `json:"slug"`
	Name string `json:"name"`
}

// Tenants lists the caller's tenants ordered by slug.
func (c *Client) Tenants(ctx context.Context) ([]Tenant, error) {
	var ts []Tenant
	if _, err := c.field(ctx, nil, QueryTenants, nil, "tenant", &ts); err != nil {
		return nil, err
	}
	return ts, nil
}

// TenantByID returns the tenants whose id is id (zero or one row).
func (c *Client) TenantByID(ctx context.Context, id string) ([]Tenant, error) {
	var ts []Tenant
	if _, err := c.field(ctx, nil, QueryTenantByID(id), nil, "tenant", &ts); err != nil {
		return nil, err
	}
	return ts, nil
}

type idRow struct {
	ID string `json:"id"`
}

func ids(rows []idRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.ID
	}
	return out
}

// TenantIDsBySlug returns the ids of the tenants with the given slug.
func (c *Client) TenantIDsBySlug(ctx context.Context, slug string) ([]string, error) {
	var rows []idRow
	vars := struct {
		Slug string `json:"slug"`
	}{slug}
	if _, err := c.field(ctx, nil, QueryTenantBySlug, vars, "tenant", &rows); err != nil {
		return nil, err
	}
	return ids(rows), nil
}

// LoginTenantIDs is 0.15's login_to_tenant lookup: the ids of tenants
// matching slug and id, where nil matches anything.
func (c *Client) LoginTenantIDs(ctx context.Context, slug, id *string) ([]string, error) {
	var rows []idRow
	vars := struct {
		Slug *string `json:"slug"`
		ID   *string `json:"id"`
	}{slug, id}
	if _, err := c.field(ctx, nil, QueryLoginTenant, vars, "tenant", &rows); err != nil {
		return nil, err
	}
	return ids(rows), nil
}

// AnyTenantIDs is `query { tenant { id } }`: every tenant the credential sees.
func (c *Client) AnyTenantIDs(ctx context.Context) ([]string, error) {
	var rows []idRow
	if _, err := c.field(ctx, nil, QueryAnyTenant, nil, "tenant", &rows); err != nil {
		return nil, err
	}
	return ids(rows), nil
}

// UserDefaultTenant returns the tenant of the caller's default membership,
// as 0.15's token login reads data.user[0].default_membership.tenant_id.
func (c *Client) UserDefaultTenant(ctx context.Context) (string, error) {
	resp, err := c.Send(ctx, QueryUserDefaultTenant, nil)
	if err != nil {
		return "", err
	}
	var data struct {
		User []struct {
			DefaultMembership *struct {
				TenantID *string `json:"tenant_id"`
			} `json:"default_membership"`
		} `json:"user"`
	}
	if len(resp.Data) == 0 || json.Unmarshal(resp.Data, &data) != nil {
		return "", unexpected(resp, "no user")
	}
	if len(data.User) == 0 || data.User[0].DefaultMembership == nil || data.User[0].DefaultMembership.TenantID == nil {
		return "", unexpected(resp, "user[0].default_membership.tenant_id is missing")
	}
	return *data.User[0].DefaultMembership.TenantID, nil
}

// CreateAPIKeyInput is create_api_key_input with Prefect's field order.
// Prefect sends name, user_id and expires_at, with nulls; DefaultTenantID is
// a Latchkey extension, left out when empty.
type CreateAPIKeyInput struct {
	Name      string  `json:"name"`
	UserID    *string `json:"user_id"`
	ExpiresAt *string `json:"expires_at"` // ISO 8601 with offset; nil: never

	DefaultTenantID string `json:"default_tenant_id,omitempty"`
}

// CreateAPIKey creates a key and returns its text, shown only this once.
func (c *Client) CreateAPIKey(ctx context.Context, in CreateAPIKeyInput) (string, error) {
	vars := struct {
		Input CreateAPIKeyInput `json:"input"`
	}{in}
	var out struct {
		Key *string `json:"key"`
	}
	resp, err := c.field(ctx, nil, MutationCreateAPIKey, vars, "create_api_key", &out)
	if err != nil {
		return "", err
	}
	if out.Key == nil {
		return "", unexpected(resp, "no key")
	}
	return *out.Key, nil
}

// APIKey is a row of auth_api_key as list-keys selects it.
type APIKey struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	Identifier *string `json:"identifier"` // "lku_…x9Qz"; nil: stored without one
	ExpiresAt  *string `json:"expires_at"` // as the server formats it; nil: never
}

// APIKeys lists the caller's keys (and, for admins, service-account keys).
func (c *Client) APIKeys(ctx context.Context) ([]APIKey, error) {
	var keys []APIKey
	if _, err := c.field(ctx, nil, QueryAPIKeys, nil, "auth_api_key", &keys); err != nil {
		return nil, err
	}
	return keys, nil
}

type successPayload struct {
	Success bool `json:"success"`
}

// DeleteAPIKey revokes a key. It returns false when the server reports no
// such key.
func (c *Client) DeleteAPIKey(ctx context.Context, id string) (bool, error) {
	vars := struct {
		Input struct {
			KeyID string `json:"key_id"`
		} `json:"input"`
	}{}
	vars.Input.KeyID = id
	var out successPayload
	if _, err := c.field(ctx, nil, MutationDeleteAPIKey, vars, "delete_api_key", &out); err != nil {
		return false, err
	}
	return out.Success, nil
}

// RotatedAPIKey is what rotate_api_key answers: the new key, shown once,
// and when the old key stops working (as the server formats it).
type RotatedAPIKey struct {
	ID              string `json:"id"`
	Key             string `json:"key"`
	OldKeyExpiresAt string `json:"old_key_expires_at"`
}

// RotateAPIKey rolls key id: the server mints a new key for the same owner
// and name, and the old key expires oldKeyExpiresInSeconds from now.
func (c *Client) RotateAPIKey(ctx context.Context, id string, oldKeyExpiresInSeconds int) (*RotatedAPIKey, error) {
	vars := struct {
		Input struct {
			KeyID                  string `json:"key_id"`
			OldKeyExpiresInSeconds int    `json:"old_key_expires_in_seconds"`
		} `json:"input"`
	}{}
	vars.Input.KeyID = id
	vars.Input.OldKeyExpiresInSeconds = oldKeyExpiresInSeconds
	var out *RotatedAPIKey
	resp, err := c.field(ctx, nil, MutationRotateAPIKey, vars, "rotate_api_key", &out)
	if err != nil {
		return nil, err
	}
	if out == nil || out.Key == "" {
		return nil, unexpected(resp, "no key")
	}
	return out, nil
}

type accessTokenPayload struct {
	AccessToken  string `json:"access_token"`
	ExpiresAt    string `json:"expires_at"`
	RefreshToken string `json:"refresh_token"`
}

func (c *Client) accessToken(ctx context.Context, cr credential, query string, variables any, name string) (*AccessToken, error) {
	var p accessTokenPayload
	if _, err := c.field(ctx, &cr, query, variables, name, &p); err != nil {
		return nil, err
	}
	exp, err := parseTimestamp(p.ExpiresAt)
	if err != nil || p.AccessToken == "" {
		return nil, &ClientError{Message: fmt.Sprintf("Unexpected response from the API: %s has no usable access token or expiry", name), StatusCode: http.StatusOK}
	}
	return &AccessToken{AccessToken: p.AccessToken, ExpiresAt: exp, RefreshToken: p.RefreshToken, IssuedAt: c.now()}, nil
}

// parseTimestamp reads an ISO 8601 timestamp as pendulum.parse would for
// the forms servers send.
func parseTimestamp(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad timestamp %q", s)
}

// SwitchTenant exchanges the client's own credential (APIKey, else Token;
// never a TokenSource) for an access token acting in tenantID (empty: the
// credential's current tenant, sent as null).
func (c *Client) SwitchTenant(ctx context.Context, tenantID string) (*AccessToken, error) {
	var in struct {
		Input struct {
			TenantID *string `json:"tenant_id"`
		} `json:"input"`
	}
	if tenantID != "" {
		in.Input.TenantID = &tenantID
	}
	return c.accessToken(ctx, c.staticCredential(), MutationSwitchTenant, in, "switch_tenant")
}

// Refresh exchanges a refresh token (sent as the bearer, with no tenant
// header) and the access token it came with for a new pair.
func (c *Client) Refresh(ctx context.Context, refreshToken, accessToken string) (*AccessToken, error) {
	var in struct {
		Input struct {
			AccessToken string `json:"access_token"`
		} `json:"input"`
	}
	in.Input.AccessToken = accessToken
	return c.accessToken(ctx, credential{bearer: refreshToken}, MutationRefreshToken, in, "refresh_token")
}

// CreateAPIToken creates a deprecated API token with the given scope (USER,
// TENANT or RUNNER) and returns its text, shown only this once.
func (c *Client) CreateAPIToken(ctx context.Context, name, scope string) (string, error) {
	vars := struct {
		Input struct {
			Name  string `json:"name"`
			Scope string `json:"scope"`
		} `json:"input"`
	}{}
	vars.Input.Name, vars.Input.Scope = name, scope
	var out struct {
		Token *string `json:"token"`
	}
	resp, err := c.field(ctx, nil, MutationCreateAPIToken, vars, "create_api_token", &out)
	if err != nil {
		return "", err
	}
	if out.Token == nil {
		return "", unexpected(resp, "no token")
	}
	return *out.Token, nil
}

// APIToken is a row of api_token as list-tokens selects it.
type APIToken struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// APITokens lists the caller's deprecated API tokens.
func (c *Client) APITokens(ctx context.Context) ([]APIToken, error) {
	var ts []APIToken
	if _, err := c.field(ctx, nil, QueryAPITokens, nil, "api_token", &ts); err != nil {
		return nil, err
	}
	return ts, nil
}

// DeleteAPIToken revokes a deprecated API token. It returns false when the
// server reports no such token.
func (c *Client) DeleteAPIToken(ctx context.Context, id string) (bool, error) {
	vars := struct {
		Input struct {
			TokenID string `json:"token_id"`
		} `json:"input"`
	}{}
	vars.Input.TokenID = id
	var out successPayload
	if _, err := c.field(ctx, nil, MutationDeleteAPIToken, vars, "delete_api_token", &out); err != nil {
		return false, err
	}
	return out.Success, nil
}

// Hello sends `query { hello }` and returns the greeting.
func (c *Client) Hello(ctx context.Context) (string, error) {
	var s string
	if _, err := c.field(ctx, nil, QueryHello, nil, "hello", &s); err != nil {
		return "", err
	}
	return s, nil
}

// QueryWhoAmI is `latchkey auth status`'s question: who the caller is, in
// which tenant (inlined, as QueryTenantByID), with which role.
func QueryWhoAmI(tenantID string) string {
	return "query {\n    auth_info {\n        tenant_id\n        user_id\n        role\n    }\n    user {\n        id\n        email\n        name\n    }\n    tenant(where: { id: { _eq: " + pyJSONString(tenantID) + " } }) {\n        id\n        slug\n        name\n    }\n}"
}

// QueryAPIKeyIdentifiers lists the caller's keys with their non-secret
// identifiers (latchkey.SecretIdentifier), on servers whose auth_api_key
// has that field.
const QueryAPIKeyIdentifiers = "query {\n    auth_api_key {\n        id\n        name\n        expires_at\n        identifier\n    }\n}"

// WhoAmI is the answer to QueryWhoAmI. Tenant is nil if the tenant was not
// found; User's fields may be empty (a service account has no email).
type WhoAmI struct {
	TenantID string
	UserID   string
	Role     string
	User     struct {
		ID    string
		Email string
		Name  string
	}
	Tenant *Tenant
}

// WhoAmI asks the server who the credential is, acting in tenantID.
func (c *Client) WhoAmI(ctx context.Context, tenantID string) (*WhoAmI, error) {
	resp, err := c.Send(ctx, QueryWhoAmI(tenantID), nil)
	if err != nil {
		return nil, err
	}
	var data struct {
		AuthInfo *struct {
			TenantID *string `json:"tenant_id"`
			UserID   *string `json:"user_id"`
			Role     *string `json:"role"`
		} `json:"auth_info"`
		User []struct {
			ID    string  `json:"id"`
			Email *string `json:"email"`
			Name  *string `json:"name"`
		} `json:"user"`
		Tenant []Tenant `json:"tenant"`
	}
	if len(resp.Data) == 0 || json.Unmarshal(resp.Data, &data) != nil || data.AuthInfo == nil {
		return nil, unexpected(resp, "auth_info is missing")
	}
	w := &WhoAmI{}
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	w.TenantID, w.UserID, w.Role = deref(data.AuthInfo.TenantID), deref(data.AuthInfo.UserID), deref(data.AuthInfo.Role)
	if len(data.User) > 0 {
		w.User.ID, w.User.Email, w.User.Name = data.User[0].ID, deref(data.User[0].Email), deref(data.User[0].Name)
	}
	for i := range data.Tenant {
		if data.Tenant[i].ID == tenantID {
			w.Tenant = &data.Tenant[i]
		}
	}
	return w, nil
}

// ErrNoIdentifiers is returned by APIKeysWithIdentifiers when the server's
// auth_api_key has no identifier field.
var ErrNoIdentifiers = errors.New("the server does not report API key identifiers")

// APIKeysWithIdentifiers lists the caller's keys with their identifiers,
// or returns ErrNoIdentifiers if the server does not have that field.
func (c *Client) APIKeysWithIdentifiers(ctx context.Context) ([]APIKey, error) {
	var keys []APIKey
	_, err := c.field(ctx, nil, QueryAPIKeyIdentifiers, nil, "auth_api_key", &keys)
	var ce *ClientError
	if errors.As(err, &ce) && slices.Contains(ce.Codes(), "GRAPHQL_VALIDATION_FAILED") && strings.Contains(string(ce.Errors), "identifier") {
		return nil, ErrNoIdentifiers
	} else if err != nil {
		return nil, err
	}
	return keys, nil
}
