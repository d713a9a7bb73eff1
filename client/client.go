// Package client is a GraphQL-over-HTTP client for Latchkey (and Prefect
// Cloud 1.x) that puts on the wire exactly what the Prefect 1.x Python
// client does: a POST whose JSON body is {"query": …, "variables": "<JSON
// text>"}, variables encoded as a string ("null" when there are none),
// Authorization: Bearer, X-PREFECT-TENANT-ID only when both an API key and a
// tenant are known, and X-PREFECT-CORE-VERSION on every request.
//
// Errors are classified as Prefect classifies them: *AuthorizationError,
// *ClientError, *HTTPError, and plain (wrapped) errors for transport
// failures. No error string ever contains a credential.
//
// It also reads what a Prefect client reads on disk (LoadConfig for the
// config files and the environment, ReadAuthFile for auth.toml) and holds
// Env, the outside world of the latchkey commands.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultURL is the API URL used when none is configured.
const DefaultURL = "http://127.0.0.1:4200"

// DefaultCoreVersion is the X-PREFECT-CORE-VERSION sent when
// Client.CoreVersion is empty: the Prefect release whose client this
// package mirrors.
const DefaultCoreVersion = "1.0.0"

// DefaultTimeout is the request timeout of the default HTTP client, as
// Prefect's cloud.request_timeout.
const DefaultTimeout = 15 * time.Second

// maxBody caps how much of a response is read.
const maxBody = 16 << 20

// Client sends GraphQL requests. Its fields are configuration: set them
// before use and do not change them while requests are in flight. A Client
// holds no other state, so it may be copied (to send with a different
// credential, say) and used from several goroutines at once.
type Client struct {
	// URL is the GraphQL endpoint. Trailing slashes are dropped, as Prefect
	// does with urljoin(server, "").rstrip("/"). Empty means DefaultURL.
	URL string

	// APIKey is sent as "Authorization: Bearer <APIKey>".
	APIKey string

	// TenantID is sent as X-PREFECT-TENANT-ID, but only with an APIKey.
	TenantID string

	// Token, used only when APIKey is empty, is sent as the bearer instead:
	// a deprecated API token, or an access token. No tenant header goes
	// with it ("API tokens cannot and do not need this header").
	Token string

	// TokenSource, if set, supplies the bearer for every request: an access
	// token minted from APIKey (see TokenSource). An access token is bound
	// to its tenant, so no X-PREFECT-TENANT-ID goes with it. A request the
	// server rejects as unauthenticated is retried once with a freshly
	// minted token.
	TokenSource *TokenSource

	// HTTP is the HTTP client. Nil means one with DefaultTimeout.
	HTTP *http.Client

	// CoreVersion is the X-PREFECT-CORE-VERSION value. Empty means
	// DefaultCoreVersion.
	CoreVersion string

	// Header holds extra headers for every request, e.g. X-PREFECT-AGENT-ID.
	// They are set last and so override the ones above.
	Header http.Header

	// Now is the clock a TokenSource built on this client uses when it has
	// none of its own. Nil means time.Now.
	Now func() time.Time
}

// Response is a decoded GraphQL answer that carried no errors.
type Response struct {
	// Data is the "data" member verbatim; nil if absent.
	Data json.RawMessage

	// Body is the whole response body.
	Body json.RawMessage
}

// credential is what authenticates one request.
type credential struct {
	bearer string
	tenant string // sent only when non-empty
}

func (c *Client) url() string {
	u := c.URL
	if u == "" {
		u = DefaultURL
	}
	return strings.TrimRight(u, "/")
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// staticCredential is the credential from APIKey, TenantID and Token.
func (c *Client) staticCredential() credential {
	if c.APIKey != "" {
		cr := credential{bearer: c.APIKey}
		if c.TenantID != "" {
			cr.tenant = c.TenantID
		}
		return cr
	}
	return credential{bearer: c.Token}
}

// Do sends query with variables and decodes the response's data member
// into out (if out is not nil). variables is encoded with encoding/json (use
// structs to fix the key order, as Python's dicts do) and then sent as a
// string; nil is sent as "null".
//
// Returns *AuthorizationError, *ClientError (also when data is missing or
// null), *HTTPError, or a wrapped transport error.
func (c *Client) Do(ctx context.Context, query string, variables any, out any) error {
	resp, err := c.Send(ctx, query, variables)
	if err != nil {
		return err
	}
	return resp.decodeData(out)
}

func (r *Response) decodeData(out any) error {
	if len(r.Data) == 0 || string(r.Data) == "null" {
		return &ClientError{Message: "Unexpected response from the API: no data", StatusCode: http.StatusOK, Response: r.Body, Err: ErrNoData}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(r.Data, out); err != nil {
		return &ClientError{Message: fmt.Sprintf("Unexpected response from the API: %v", err), StatusCode: http.StatusOK, Response: r.Body}
	}
	return nil
}

// Send is Do without decoding: it returns the response of a request that
// carried no errors, whose data member may still be missing or null.
func (c *Client) Send(ctx context.Context, query string, variables any) (*Response, error) {
	if c.TokenSource == nil {
		return c.send(ctx, c.staticCredential(), query, variables)
	}
	token, err := c.TokenSource.Token(ctx)
	if err != nil {
		return nil, err
	}
	cr := credential{bearer: token}
	resp, err := c.send(ctx, cr, query, variables)
	var authErr *AuthorizationError
	if errors.As(err, &authErr) && authErr.Errors != nil {
		// The token may have been revoked or may have expired early (clock
		// skew): mint a fresh one and try once more.
		c.TokenSource.invalidate(token)
		if token, err = c.TokenSource.Token(ctx); err != nil {
			return nil, err
		}
		cr.bearer = token
		return c.send(ctx, cr, query, variables)
	}
	return resp, err
}

// requestBody is the POST body, with its fields in Prefect's order.
type requestBody struct {
	Query     string `json:"query"`
	Variables string `json:"variables"`
}

// apiErrorRetries is how often a response mentioning API_ERROR is re-sent.
const apiErrorRetries = 6

func (c *Client) send(ctx context.Context, cr credential, query string, variables any) (*Response, error) {
	vars, err := pyDumps(variables)
	if err != nil {
		return nil, fmt.Errorf("encode variables: %w", err)
	}
	body, err := pyDumps(requestBody{Query: query, Variables: vars})
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}

	parsed, err := c.post(ctx, cr, body)
	for retry := 1; err == nil && parsed.apiError() && retry <= apiErrorRetries; retry++ {
		// Prefect re-sends while "API_ERROR" appears in errors, backing
		// off 0.25·2^(n-1) s.
		if err := sleep(ctx, time.Duration(float64(250*time.Millisecond)*float64(int(1)<<(retry-1)))); err != nil {
			return nil, err
		}
		parsed, err = c.post(ctx, cr, body)
	}
	if err != nil {
		return nil, err
	}
	return parsed.result()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// parsedResponse is a 2xx JSON object answer.
type parsedResponse struct {
	body    []byte
	members map[string]json.RawMessage
}

func (p *parsedResponse) apiError() bool {
	errs, ok := p.members["errors"]
	return ok && bytes.Contains(errs, []byte("API_ERROR"))
}

// result classifies the answer as Prefect's Client.graphql does.
func (p *parsedResponse) result() (*Response, error) {
	if errs, ok := p.members["errors"]; ok {
		switch {
		case bytes.Contains(errs, []byte("UNAUTHENTICATED")),
			bytes.Contains(errs, []byte("Malformed Authorization header")):
			return nil, &AuthorizationError{Errors: errs}
		case string(errs) == "[]":
			return nil, &ClientError{Message: "Unexpected response from the API: empty errors list", Errors: errs, StatusCode: http.StatusOK, Response: p.body}
		}
		return nil, &ClientError{Errors: errs, StatusCode: http.StatusOK}
	}
	return &Response{Data: p.members["data"], Body: p.body}, nil
}

func (c *Client) post(ctx context.Context, cr credential, body string) (*parsedResponse, error) {
	u := c.url()
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return nil, &ConnectionError{URL: u, Err: ErrBadURL}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return nil, &ConnectionError{URL: u, Err: fmt.Errorf("%w: %w", ErrBadURL, err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "*/*")
	if cr.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+cr.bearer)
	}
	if cr.tenant != "" {
		req.Header.Set("X-PREFECT-TENANT-ID", cr.tenant)
	}
	version := c.CoreVersion
	if version == "" {
		version = DefaultCoreVersion
	}
	req.Header.Set("X-PREFECT-CORE-VERSION", version)
	for k, vs := range c.Header {
		req.Header.Del(k)
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}

	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &ConnectionError{URL: u, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("graphql response: %w", err)
	}

	if resp.StatusCode >= 400 {
		reason := strings.TrimSpace(strings.TrimPrefix(resp.Status, strconv.Itoa(resp.StatusCode)))
		if reason == "" {
			reason = http.StatusText(resp.StatusCode)
		}
		httpErr := &HTTPError{StatusCode: resp.StatusCode, Reason: reason, URL: u}
		if resp.StatusCode == http.StatusBadRequest {
			// GraphQL servers answer malformed queries with 400; Prefect
			// reports those as ClientError, even for UNAUTHENTICATED.
			ce := &ClientError{Message: format400(httpErr, data), StatusCode: resp.StatusCode}
			var content struct {
				Errors json.RawMessage `json:"errors"`
			}
			if json.Unmarshal(data, &content) == nil {
				ce.Errors = content.Errors
			}
			return nil, ce
		}
		return nil, httpErr
	}

	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil || members == nil {
		if cr.bearer == "" {
			return nil, &AuthorizationError{Message: "Malformed response received from Cloud - please ensure that you are authenticated. See `latchkey auth login --help`."}
		}
		return nil, &ClientError{Message: "Malformed response received from API.", StatusCode: resp.StatusCode}
	}
	return &parsedResponse{body: data, members: members}, nil
}
