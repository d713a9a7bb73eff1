package client

import (
	"context"
	"errors"
	"time"
)

// AccessToken is a short-lived, tenant-scoped JWT with the refresh token
// that renews it, as switch_tenant and refresh_token return them.
type AccessToken struct {
	AccessToken  string
	ExpiresAt    time.Time
	RefreshToken string

	// IssuedAt is when this client received the token (by its clock).
	IssuedAt time.Time
}

// DefaultRefreshMargin caps how long before expiry a TokenSource renews a
// token; it renews earlier only for tokens whose whole life is shorter than
// ten margins (then at 10% of the lifetime before expiry).
const DefaultRefreshMargin = 30 * time.Second

// TokenSource exchanges an API key for access tokens and keeps one fresh. It
// mints the first with switch_tenant (bearer: the key), renews it with
// refresh_token (bearer: the refresh token) a margin before it expires, and
// falls back to a new switch_tenant when a refresh fails. It is safe for
// concurrent use: concurrent callers wait for one exchange instead of each
// starting their own. Create it with NewTokenSource.
type TokenSource struct {
	// Client authenticates the switch_tenant exchange with its APIKey (or,
	// without one, its Token) and the usual tenant header. Its TokenSource
	// field is ignored for the exchange, so it may point back here.
	Client *Client

	// TenantID is the tenant to act in. Empty means Client.TenantID, and
	// if that is empty too, the credential's default tenant.
	TenantID string

	// Margin is how long before expiry a token is renewed. Zero means
	// min(DefaultRefreshMargin, 10% of the token's lifetime).
	Margin time.Duration

	// Now is the clock. Nil means Client.Now, then time.Now.
	Now func() time.Time

	sem chan struct{} // a lock that waits with a context
	tok *AccessToken
}

// NewTokenSource returns a TokenSource that exchanges c's credential for
// access tokens in tenantID (empty: as TokenSource.TenantID describes).
func NewTokenSource(c *Client, tenantID string) *TokenSource {
	return &TokenSource{Client: c, TenantID: tenantID, sem: make(chan struct{}, 1)}
}

func (ts *TokenSource) now() time.Time {
	if ts.Now != nil {
		return ts.Now()
	}
	return ts.Client.now()
}

func (ts *TokenSource) lock(ctx context.Context) error {
	if ts.sem == nil {
		panic("client: TokenSource not created with NewTokenSource")
	}
	select {
	case ts.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (ts *TokenSource) unlock() { <-ts.sem }

// margin is how long before tok expires it is renewed.
func (ts *TokenSource) margin(tok *AccessToken) time.Duration {
	if ts.Margin > 0 {
		return ts.Margin
	}
	m := tok.ExpiresAt.Sub(tok.IssuedAt) / 10
	if m > DefaultRefreshMargin {
		m = DefaultRefreshMargin
	}
	return m
}

// Token returns a valid access token, minting or renewing one if the cached
// token is missing or within the margin of its expiry.
func (ts *TokenSource) Token(ctx context.Context) (string, error) {
	tok, err := ts.AccessToken(ctx)
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// AccessToken is Token returning the whole token. Callers must not modify it.
func (ts *TokenSource) AccessToken(ctx context.Context) (*AccessToken, error) {
	if err := ts.lock(ctx); err != nil {
		return nil, err
	}
	defer ts.unlock()

	now := ts.now()
	cur := ts.tok
	if cur != nil && now.Before(cur.ExpiresAt.Add(-ts.margin(cur))) {
		return cur, nil
	}
	if cur != nil && cur.RefreshToken != "" {
		tok, err := ts.Client.Refresh(ctx, cur.RefreshToken, cur.AccessToken)
		if err == nil {
			tok.IssuedAt = ts.now()
			ts.tok = tok
			return tok, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// The refresh token may have been used or revoked: start over.
	}
	tok, err := ts.Client.SwitchTenant(ctx, ts.tenantID())
	if err != nil {
		var authErr *AuthorizationError
		if cur != nil && now.Before(cur.ExpiresAt) && !errors.As(err, &authErr) {
			// A transient failure while the old token is still valid.
			return cur, nil
		}
		ts.tok = nil
		return nil, err
	}
	tok.IssuedAt = ts.now()
	ts.tok = tok
	return tok, nil
}

func (ts *TokenSource) tenantID() string {
	if ts.TenantID != "" {
		return ts.TenantID
	}
	return ts.Client.TenantID
}

// Invalidate drops the cached token so that the next Token mints a new one.
func (ts *TokenSource) Invalidate() {
	ts.sem <- struct{}{}
	ts.tok = nil
	<-ts.sem
}

// invalidate drops the cached token if it is still the given one.
func (ts *TokenSource) invalidate(access string) {
	ts.sem <- struct{}{}
	if ts.tok != nil && ts.tok.AccessToken == access {
		ts.tok = nil
	}
	<-ts.sem
}
