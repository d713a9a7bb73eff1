package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
)

// This file holds the authorization checks and small query helpers shared by
// every service in the package (see .notes/AUTHZ.md for the rules).

// requireAuth returns the caller in ctx, or EUNAUTHENTICATED when anonymous.
func requireAuth(ctx context.Context) (*latchkey.Auth, error) {
	return latchkey.RequireAuth(ctx)
}

// errUnauthenticated is returned by the checks below for a nil caller.
func errUnauthenticated() error {
	return latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Unauthenticated")
}

// requireNotRunner returns EFORBIDDEN for a RUNNER-scoped caller, which may
// only do what agents do.
func requireNotRunner(a *latchkey.Auth) error {
	if a == nil || a.User == nil {
		return errUnauthenticated()
	} else if a.IsRunner() {
		return latchkey.Errorf(latchkey.EFORBIDDEN, "RUNNER tokens may only be used by agents.")
	}
	return nil
}

// requireUnscoped is requireAuth followed by requireNotScopedToken.
func requireUnscoped(ctx context.Context) (*latchkey.Auth, error) {
	a, err := requireAuth(ctx)
	if err != nil {
		return nil, err
	} else if err := requireNotScopedToken(a); err != nil {
		return nil, err
	}
	return a, nil
}

// requireUnscopedHuman is requireUnscoped for a human: the caller may act
// on its own credentials and invitations (not a service account, which owns
// none; not a TENANT or RUNNER token, which a leak must not turn against
// its owner).
func requireUnscopedHuman(ctx context.Context) (*latchkey.Auth, error) {
	a, err := requireUnscoped(ctx)
	if err != nil {
		return nil, err
	} else if err := requireHuman(a); err != nil {
		return nil, err
	}
	return a, nil
}

// requireUnscopedHumanAdmin is requireUnscopedHuman for a TENANT_ADMIN of
// the acting tenant: the caller may manage its memberships and service
// accounts and read its audit log and failed sign-ins.
func requireUnscopedHumanAdmin(ctx context.Context) (*latchkey.Auth, error) {
	a, err := requireUnscopedHuman(ctx)
	if err != nil {
		return nil, err
	} else if err := requireAdmin(a); err != nil {
		return nil, err
	}
	return a, nil
}

// requireNotScopedToken returns EFORBIDDEN for a caller holding a TENANT or
// RUNNER legacy token (or an access token minted from one): such callers may
// not mint credentials. USER-scoped tokens pass.
func requireNotScopedToken(a *latchkey.Auth) error {
	if err := requireNotRunner(a); err != nil {
		return err
	}
	if a.TokenScope == latchkey.TokenScopeTenant {
		return latchkey.Errorf(latchkey.EFORBIDDEN, "TENANT tokens may not do that; use a personal API key.")
	}
	return nil
}

// requireHuman returns EFORBIDDEN for a service account.
func requireHuman(a *latchkey.Auth) error {
	if a == nil || a.User == nil {
		return errUnauthenticated()
	} else if a.User.IsServiceAccount() {
		return latchkey.Errorf(latchkey.EFORBIDDEN, "Service accounts may not do that.")
	}
	return nil
}

// requireAdmin returns EFORBIDDEN unless the caller is a TENANT_ADMIN of its
// acting tenant (a.Role is already capped for TENANT and RUNNER tokens).
func requireAdmin(a *latchkey.Auth) error {
	if err := requireNotRunner(a); err != nil {
		return err
	}
	if !a.IsAdmin(a.TenantID) {
		return latchkey.Errorf(latchkey.EFORBIDDEN, "Only a tenant admin may do that.")
	}
	return nil
}

// requireWrite returns EFORBIDDEN unless the caller's role may change things
// in its acting tenant (not READ_ONLY_USER, not a RUNNER token).
func requireWrite(a *latchkey.Auth) error {
	if err := requireNotRunner(a); err != nil {
		return err
	}
	if !a.CanWrite() {
		return latchkey.Errorf(latchkey.EFORBIDDEN, "Your role does not allow changes.")
	}
	return nil
}

// findMembershipRole returns userID's role in tenantID, or "" (and no
// error) when the user is not a member.
func findMembershipRole(ctx context.Context, tx *Tx, userID, tenantID string) (latchkey.Role, error) {
	var role string
	err := tx.QueryRowContext(ctx, `SELECT role FROM memberships WHERE user_id = ? AND tenant_id = ?`, userID, tenantID).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("find membership role: %w", err)
	}
	return latchkey.Role(role), nil
}

// userColumns are the users columns scanUser reads, in order. The password
// hash is never among them.
const userColumns = `users.id, users.kind, users.email, users.name, users.tenant_id, users.default_tenant_id, users.created_at`

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// scanUser reads userColumns into a User.
func scanUser(s rowScanner) (*latchkey.User, error) {
	var (
		u                                latchkey.User
		kind                             string
		email, tenantID, defaultTenantID sql.NullString
		createdAt                        Time
	)
	if err := s.Scan(&u.ID, &kind, &email, &u.Name, &tenantID, &defaultTenantID, &createdAt); err != nil {
		return nil, err
	}
	u.Kind = latchkey.UserKind(kind)
	u.Email = email.String
	u.TenantID = tenantID.String
	u.DefaultTenantID = defaultTenantID.String
	u.CreatedAt = time.Time(createdAt)
	return &u, nil
}

// findUserByID returns the user (human or service account) with id, with no
// authorization check. Returns ENOTFOUND if there is none.
func findUserByID(ctx context.Context, tx *Tx, id string) (*latchkey.User, error) {
	u, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, latchkey.Errorf(latchkey.ENOTFOUND, "User not found.")
	} else if err != nil {
		return nil, fmt.Errorf("find user: %w", err)
	}
	return u, nil
}

// formatLimitOffset returns a LIMIT/OFFSET clause (with a leading space) for
// non-negative integers; both engines accept "LIMIT n OFFSET m". A zero or
// negative limit means no limit.
func formatLimitOffset(limit, offset int) string {
	var b strings.Builder
	if limit > 0 {
		fmt.Fprintf(&b, " LIMIT %d", limit)
	} else if offset > 0 {
		// Both engines need a LIMIT before OFFSET; -1 (SQLite) / ALL (PG)
		// differ, so use a very large number.
		b.WriteString(" LIMIT 9223372036854775807")
	}
	if offset > 0 {
		fmt.Fprintf(&b, " OFFSET %d", offset)
	}
	return b.String()
}

// placeholders returns "?, ?, ?" for n arguments (n > 0).
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// appendIn appends the condition "column IN (values)" to conds and values
// to args.
func appendIn[S ~string](conds []string, args []any, column string, values []S) ([]string, []any) {
	conds = append(conds, column+` IN (`+placeholders(len(values))+`)`)
	for _, v := range values {
		args = append(args, string(v))
	}
	return conds, args
}

// errNoRows reports whether err is sql.ErrNoRows.
func errNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// containsPattern returns a LIKE pattern (for ESCAPE '\') matching any
// text that contains s, lower-cased: the %, _ and \ in s match themselves.
func containsPattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(s)) + "%"
}
