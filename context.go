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

// ClientInfo says where a request came from, for the audit log. Addr is the
// client's IP address (behind a trusted proxy, the left-most
// X-Forwarded-For hop), or "local" for in-process operator commands
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

// ClientAddr returns the client's address for a request that arrived from
// remoteAddr (host:port) with the given X-Forwarded-For header value: the
// host of remoteAddr or, when trustProxy is set (the server is only
// reachable through proxies that set the header), the left-most hop.
func ClientAddr(remoteAddr, forwardedFor string, trustProxy bool) string {
	if trustProxy && forwardedFor != "" {
		first, _, _ := strings.Cut(forwardedFor, ",")
		if first = strings.TrimSpace(first); first != "" {
			if ap, err := netip.ParseAddrPort(first); err == nil {
				return ap.Addr().String() // a proxy that adds the port
			}
			return strings.Trim(first, "[]")
		}
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}
