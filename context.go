package latchkey

import (
	"context"
	"net"
	"net/netip"
	"strings"
)

type contextKey int

const (
	authContextKey contextKey = iota + 1
	clientInfoContextKey
	credentialContextKey
)

// NewContextWithAuth returns a copy of ctx carrying the authenticated caller.
func NewContextWithAuth(ctx context.Context, a *Auth) context.Context {
	return context.WithValue(ctx, authContextKey, a)
}

// AuthFromContext returns the caller in ctx, or nil if anonymous.
func AuthFromContext(ctx context.Context) *Auth {
	a, _ := ctx.Value(authContextKey).(*Auth)
	return a
}

// RequireAuth returns the caller in ctx or an EUNAUTHENTICATED error.
func RequireAuth(ctx context.Context) (*Auth, error) {
	a := AuthFromContext(ctx)
	if a == nil || a.User == nil {
		return nil, Errorf(EUNAUTHENTICATED, "Unauthenticated")
	}
	return a, nil
}

// CredentialSource says where a request's credential came from.
type CredentialSource uint8

// Credential sources.
const (
	SourceNone   CredentialSource = iota // no credential: an anonymous request
	SourceBearer                         // an Authorization: Bearer header
	SourceCookie                         // the web UI's session cookie
)

// RequestCredential is what the authentication middleware made of a
// request's credential, once, before any handler runs: the caller it
// stands for (also in the context, see AuthFromContext), or why it was
// refused. Handlers present Err in their own way (a GraphQL error, a
// sign-in redirect) and never check a credential themselves.
type RequestCredential struct {
	Source CredentialSource

	// Err is why the credential was refused: EUNAUTHENTICATED,
	// ERATELIMIT, or an internal error when it could not be checked.
	Err error

	// RefreshToken is set when the bearer credential is a refresh token
	// (lkr_…): it authenticates nothing by itself, and only the
	// refresh_token mutation uses it.
	RefreshToken string

	// TenantFallback is set when the tenant the session cookie's owner
	// chose is no longer theirs, and the request acts in their default
	// tenant instead (the UI then forgets the choice).
	TenantFallback bool
}

// NewContextWithCredential returns a copy of ctx carrying what the
// middleware made of the request's credential.
func NewContextWithCredential(ctx context.Context, c *RequestCredential) context.Context {
	return context.WithValue(ctx, credentialContextKey, c)
}

// CredentialFromContext returns what the middleware made of the request's
// credential; a zero RequestCredential (anonymous) if it did not run.
func CredentialFromContext(ctx context.Context) *RequestCredential {
	if c, _ := ctx.Value(credentialContextKey).(*RequestCredential); c != nil {
		return c
	}
	return &RequestCredential{}
}

// ClientInfo says where a request came from, for the audit log. Addr is the
// client's IP address (behind trusted proxies, see ClientAddr), or "local" for in-process operator commands
// (`latchkey admin`); UserAgent is the User-Agent header, truncated.
type ClientInfo struct {
	Addr      string
	UserAgent string
}

// NewContextWithClientInfo returns a copy of ctx carrying where the request
// came from.
func NewContextWithClientInfo(ctx context.Context, ci ClientInfo) context.Context {
	return context.WithValue(ctx, clientInfoContextKey, ci)
}

// ClientInfoFromContext returns where the request in ctx came from; the
// zero ClientInfo if nobody said.
func ClientInfoFromContext(ctx context.Context) ClientInfo {
	ci, _ := ctx.Value(clientInfoContextKey).(ClientInfo)
	return ci
}

// ClientAddr returns the address of the client of a request that arrived
// from remoteAddr (host:port) with the given X-Forwarded-For header value.
// Without trusted proxies it is the host of remoteAddr: the header is
// ignored. When the connection comes from a trusted proxy (an address in
// one of the trusted prefixes), the header is read from the right, the
// end each proxy appends to: the first hop that is not itself a trusted
// proxy is the client. The left-most hop, which the client writes, is
// never believed unless every hop after it is a trusted proxy. A hop that
// is not an IP address (with or without a port) ends the walk: the last
// trusted hop before it is the client.
func ClientAddr(remoteAddr, forwardedFor string, trusted []netip.Prefix) string {
	client := hostOf(remoteAddr)
	if len(trusted) == 0 || forwardedFor == "" {
		return client
	}
	ip, err := netip.ParseAddr(client)
	if err != nil || !trustedAddr(ip, trusted) {
		return client
	}
	for rest := forwardedFor; rest != ""; {
		var hop string
		if i := strings.LastIndexByte(rest, ','); i >= 0 {
			hop, rest = rest[i+1:], rest[:i]
		} else {
			hop, rest = rest, ""
		}
		addr, ok := parseHop(strings.TrimSpace(hop))
		if !ok {
			return client
		}
		client = addr.String()
		if !trustedAddr(addr, trusted) {
			return client
		}
	}
	return client
}

// ParseTrustedProxies parses a comma-separated list of CIDR prefixes and
// plain IP addresses (a /32 or /128), e.g. "10.0.0.0/8,127.0.0.1".
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(f)
		if err != nil {
			return nil, Errorf(EINVALID, "Invalid trusted proxy %q: want an IP address or a CIDR prefix such as 10.0.0.0/8.", f)
		}
		out = append(out, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
	}
	return out, nil
}

func trustedAddr(ip netip.Addr, trusted []netip.Prefix) bool {
	ip = ip.Unmap()
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// parseHop parses one X-Forwarded-For hop: an IP address, optionally with
// a port ("203.0.113.9:4711", "[2001:db8::1]:4711") or in brackets.
func parseHop(hop string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(hop); err == nil {
		return ap.Addr().Unmap(), true
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(hop, "["), "]"))
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}

func hostOf(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}
