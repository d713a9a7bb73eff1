package graphql

import (
	"github.com/latchkey/latchkey"
)

// resolver is gqlgen's resolver root. Resolvers only translate between the
// schema and the latchkey services; the services enforce permissions.
type resolver struct{ s *Server }

// deleted turns the result of a delete into a success_payload: a thing that
// does not exist, or that the caller may not see, is success: false with no
// error (the Prefect CLI then says "Unable to revoke key"). Every other
// error stays an error.
func deleted(err error) (*SuccessPayload, error) {
	switch latchkey.ErrorCode(err) {
	case "":
		return &SuccessPayload{Success: true}, nil
	case latchkey.ENOTFOUND:
		return &SuccessPayload{Success: false}, nil
	default:
		return nil, err
	}
}

// parseRole returns the role named by s, def when s is null or empty, and
// EINVALID for an unknown role.
func parseRole(s *string, def latchkey.Role) (latchkey.Role, error) {
	if s == nil || *s == "" {
		return def, nil
	}
	if role := latchkey.Role(*s); role.Valid() {
		return role, nil
	}
	return "", latchkey.Errorf(latchkey.EINVALID, "Invalid role %q: use TENANT_ADMIN, USER or READ_ONLY_USER.", truncate(*s, 64))
}

// deref returns *p, or the zero value for nil.
func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }
