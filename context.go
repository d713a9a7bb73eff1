package latchkey

import "context"

type contextKey int

const authContextKey contextKey = iota + 1

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
