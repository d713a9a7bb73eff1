package latchkeytest

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/sqldb"
)

// Fixture is a bootstrapped database: one tenant, its human admin and the
// admin's personal API key.
type Fixture struct {
	DB       *sqldb.DB
	Tenant   *latchkey.Tenant
	Admin    *latchkey.User
	AdminKey string // the key's secret text
}

// MustBootstrap bootstraps db with tenant "Tenant One" (slug "tenant-one")
// and admin admin@example.com, who has no password.
func MustBootstrap(tb testing.TB, db *sqldb.DB) *Fixture {
	tb.Helper()
	res, err := sqldb.NewBootstrapService(db).Bootstrap(context.Background(), latchkey.BootstrapInput{
		Email:      "admin@example.com",
		TenantName: "Tenant One",
		TenantSlug: "tenant-one",
	})
	if err != nil {
		tb.Fatalf("bootstrap: %v", err)
	}
	return &Fixture{DB: db, Tenant: res.Tenant, Admin: res.User, AdminKey: res.Secret}
}

// AdminContext returns a context in which the fixture's admin acts in the
// fixture's tenant as TENANT_ADMIN.
func (f *Fixture) AdminContext() context.Context {
	return AuthContext(context.Background(), f.Admin, f.Tenant.ID, latchkey.RoleTenantAdmin)
}

// MustCreateTenant creates a tenant with the given slug (its name too) and
// makes admin its TENANT_ADMIN, bypassing authorization.
func MustCreateTenant(tb testing.TB, db *sqldb.DB, slug string, admin *latchkey.User) *latchkey.Tenant {
	tb.Helper()
	ctx := context.Background()
	t := &latchkey.Tenant{ID: uuid.NewString(), Slug: slug, Name: slug, CreatedAt: now(db)}
	mustTx(tb, db, func(tx *sqldb.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tenants (id, slug, name, created_at) VALUES (?, ?, ?, ?)`,
			t.ID, t.Slug, t.Name, sqldb.Time(t.CreatedAt)); err != nil {
			return err
		}
		if admin != nil {
			return insertMembership(ctx, tx, t.ID, admin.ID, latchkey.RoleTenantAdmin)
		}
		return nil
	})
	return t
}

// MustCreateMember adds the human with email to tenantID with role,
// creating the user (without a password, default tenant tenantID) if the
// email is new. It bypasses authorization.
func MustCreateMember(tb testing.TB, db *sqldb.DB, tenantID, email string, role latchkey.Role) *latchkey.User {
	tb.Helper()
	ctx := context.Background()
	email = latchkey.NormalizeEmail(email)
	var u *latchkey.User
	mustTx(tb, db, func(tx *sqldb.Tx) error {
		var id string
		var defaultTenant sql.NullString
		var created sqldb.Time
		err := tx.QueryRowContext(ctx, `SELECT id, default_tenant_id, created_at FROM users WHERE email = ?`, email).Scan(&id, &defaultTenant, &created)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			u = &latchkey.User{ID: uuid.NewString(), Kind: latchkey.UserKindHuman, Email: email, DefaultTenantID: tenantID, CreatedAt: now(db)}
			if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, kind, email, name, default_tenant_id, created_at) VALUES (?, ?, ?, '', ?, ?)`,
				u.ID, string(u.Kind), u.Email, u.DefaultTenantID, sqldb.Time(u.CreatedAt)); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			u = &latchkey.User{ID: id, Kind: latchkey.UserKindHuman, Email: email, DefaultTenantID: defaultTenant.String, CreatedAt: time.Time(created)}
		}
		return insertMembership(ctx, tx, tenantID, u.ID, role)
	})
	return u
}

// MustCreateServiceAccount creates a service account in tenantID with role,
// bypassing authorization.
func MustCreateServiceAccount(tb testing.TB, db *sqldb.DB, tenantID, name string, role latchkey.Role) *latchkey.ServiceAccount {
	tb.Helper()
	ctx := context.Background()
	sa := &latchkey.ServiceAccount{ID: uuid.NewString(), TenantID: tenantID, Name: name, Role: role, CreatedAt: now(db)}
	mustTx(tb, db, func(tx *sqldb.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, kind, email, name, tenant_id, created_at) VALUES (?, ?, NULL, ?, ?, ?)`,
			sa.ID, string(latchkey.UserKindServiceAccount), sa.Name, sa.TenantID, sqldb.Time(sa.CreatedAt)); err != nil {
			return err
		}
		return insertMembership(ctx, tx, tenantID, sa.ID, role)
	})
	return sa
}

// ServiceAccountUser returns the User row of a service account, as Auth.User
// holds it.
func ServiceAccountUser(sa *latchkey.ServiceAccount) *latchkey.User {
	return &latchkey.User{ID: sa.ID, Kind: latchkey.UserKindServiceAccount, Name: sa.Name, TenantID: sa.TenantID, CreatedAt: sa.CreatedAt}
}

// AuthContext returns ctx carrying an API-key caller: user acting in
// tenantID with role. Nothing is checked against the database.
func AuthContext(ctx context.Context, user *latchkey.User, tenantID string, role latchkey.Role) context.Context {
	return latchkey.NewContextWithAuth(ctx, &latchkey.Auth{User: user, TenantID: tenantID, Role: role, Kind: latchkey.CredentialAPIKey})
}

// TokenAuthContext returns ctx carrying a legacy-token caller with scope,
// its role capped at USER for TENANT and RUNNER scopes as Authenticate does.
func TokenAuthContext(ctx context.Context, user *latchkey.User, tenantID string, role latchkey.Role, scope latchkey.TokenScope) context.Context {
	if scope != latchkey.TokenScopeUser && role == latchkey.RoleTenantAdmin {
		role = latchkey.RoleUser
	}
	return latchkey.NewContextWithAuth(ctx, &latchkey.Auth{User: user, TenantID: tenantID, Role: role, Kind: latchkey.CredentialAPIToken, TokenScope: scope})
}

func insertMembership(ctx context.Context, tx *sqldb.Tx, tenantID, userID string, role latchkey.Role) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO memberships (id, tenant_id, user_id, role, created_at) VALUES (?, ?, ?, ?, ?)`,
		uuid.NewString(), tenantID, userID, string(role), sqldb.Time(tx.Now()))
	return err
}

func now(db *sqldb.DB) time.Time { return db.Now().UTC().Truncate(time.Microsecond) }

func mustTx(tb testing.TB, db *sqldb.DB, fn func(tx *sqldb.Tx) error) {
	tb.Helper()
	tx, err := db.BeginTx(context.Background(), true)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		tb.Fatalf("fixture: %v", err)
	}
	if err := tx.Commit(); err != nil {
		tb.Fatalf("fixture: commit: %v", err)
	}
}
