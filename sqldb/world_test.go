package sqldb_test

import (
	"context"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// world is two tenants with members of every kind, and a context for each
// kind of caller acting in tenant A (plus one acting in B).
//
//	tenant A ("tenant-one"): admin (TENANT_ADMIN), user (USER), readonly
//	  (READ_ONLY_USER), service accounts sa (USER) and saAdmin (TENANT_ADMIN)
//	tenant B ("tenant-two"): adminB (TENANT_ADMIN), userB (USER), service account saB
type world struct {
	db    *sqldb.DB
	clock *latchkeytest.Clock
	f     *latchkeytest.Fixture

	a, b                  *latchkey.Tenant
	admin, user, readonly *latchkey.User
	adminB, userB         *latchkey.User
	sa, saAdmin, saB      *latchkey.ServiceAccount
	callers               []worldCaller
	ctxByName             map[string]context.Context
}

// worldCaller is a named caller context.
type worldCaller struct {
	name string
	ctx  context.Context
}

// Caller names, in the order tests see them.
const (
	cAdmin       = "admin"        // TENANT_ADMIN of A, API key
	cUserToken   = "user-token"   // the admin through a USER-scoped legacy token
	cUser        = "user"         // USER of A
	cReadOnly    = "readonly"     // READ_ONLY_USER of A
	cSA          = "sa"           // service account of A with USER
	cSAAdmin     = "sa-admin"     // service account of A with TENANT_ADMIN
	cTenantToken = "tenant-token" // the admin through a TENANT-scoped token (role capped at USER)
	cRunnerToken = "runner-token" // the admin through a RUNNER-scoped token
	cAnonymous   = "anonymous"    // no caller
	cOtherTenant = "other-tenant" // TENANT_ADMIN of B acting in B
)

// runWithWorld runs fn on every engine (latchkeytest.RunWithDB) with a
// world made by newWorld.
func runWithWorld(t *testing.T, fn func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world)) {
	t.Helper()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		fn(t, db, clock, newWorld(t, db, clock))
	})
}

func newWorld(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) *world {
	t.Helper()
	w := &world{db: db, clock: clock, f: latchkeytest.MustBootstrap(t, db)}
	w.a, w.admin = w.f.Tenant, w.f.Admin
	clock.Add(time.Second)
	w.user = latchkeytest.MustCreateMember(t, db, w.a.ID, "user@example.com", latchkey.RoleUser)
	clock.Add(time.Second)
	w.readonly = latchkeytest.MustCreateMember(t, db, w.a.ID, "readonly@example.com", latchkey.RoleReadOnlyUser)
	clock.Add(time.Second)
	w.sa = latchkeytest.MustCreateServiceAccount(t, db, w.a.ID, "agent", latchkey.RoleUser)
	clock.Add(time.Second)
	w.saAdmin = latchkeytest.MustCreateServiceAccount(t, db, w.a.ID, "robot admin", latchkey.RoleTenantAdmin)
	clock.Add(time.Second)
	w.b = latchkeytest.MustCreateTenant(t, db, "tenant-two", nil)
	clock.Add(time.Second)
	w.adminB = latchkeytest.MustCreateMember(t, db, w.b.ID, "adminb@example.com", latchkey.RoleTenantAdmin)
	clock.Add(time.Second)
	w.userB = latchkeytest.MustCreateMember(t, db, w.b.ID, "userb@example.com", latchkey.RoleUser)
	clock.Add(time.Second)
	w.saB = latchkeytest.MustCreateServiceAccount(t, db, w.b.ID, "agent b", latchkey.RoleUser)

	bg := context.Background()
	w.callers = []worldCaller{
		{cAdmin, latchkeytest.AuthContext(bg, w.admin, w.a.ID, latchkey.RoleTenantAdmin)},
		{cUserToken, latchkeytest.TokenAuthContext(bg, w.admin, w.a.ID, latchkey.RoleTenantAdmin, latchkey.TokenScopeUser)},
		{cUser, latchkeytest.AuthContext(bg, w.user, w.a.ID, latchkey.RoleUser)},
		{cReadOnly, latchkeytest.AuthContext(bg, w.readonly, w.a.ID, latchkey.RoleReadOnlyUser)},
		{cSA, latchkeytest.AuthContext(bg, latchkeytest.ServiceAccountUser(w.sa), w.a.ID, latchkey.RoleUser)},
		{cSAAdmin, latchkeytest.AuthContext(bg, latchkeytest.ServiceAccountUser(w.saAdmin), w.a.ID, latchkey.RoleTenantAdmin)},
		{cTenantToken, latchkeytest.TokenAuthContext(bg, w.admin, w.a.ID, latchkey.RoleTenantAdmin, latchkey.TokenScopeTenant)},
		{cRunnerToken, latchkeytest.TokenAuthContext(bg, w.admin, w.a.ID, latchkey.RoleTenantAdmin, latchkey.TokenScopeRunner)},
		{cAnonymous, bg},
		{cOtherTenant, latchkeytest.AuthContext(bg, w.adminB, w.b.ID, latchkey.RoleTenantAdmin)},
	}
	w.ctxByName = map[string]context.Context{}
	for _, c := range w.callers {
		w.ctxByName[c.name] = c.ctx
	}
	return w
}

// ctx returns the context of the named caller.
func (w *world) ctx(name string) context.Context { return w.ctxByName[name] }

// eachCaller runs fn for every caller, checking that want names them all
// and that fn's error has the wanted code ("" for success).
func (w *world) eachCaller(t *testing.T, want map[string]latchkey.Code, fn func(t *testing.T, name string, ctx context.Context) error) {
	t.Helper()
	if len(want) != len(w.callers) {
		t.Fatalf("want table has %d callers, world has %d", len(want), len(w.callers))
	}
	for _, c := range w.callers {
		code, ok := want[c.name]
		if !ok {
			t.Fatalf("want table lacks caller %q", c.name)
		}
		t.Run(c.name, func(t *testing.T) {
			err := fn(t, c.name, c.ctx)
			if got := latchkey.ErrorCode(err); got != code {
				t.Fatalf("%s: error code=%q (err=%v), want %q", c.name, got, err, code)
			}
		})
	}
}

// wantErr fails unless err has code.
func wantErr(tb testing.TB, err error, code latchkey.Code) {
	tb.Helper()
	if got := latchkey.ErrorCode(err); got != code {
		tb.Fatalf("error code=%q (err=%v), want %q", got, err, code)
	}
}

// onlyHumanAdmins is the expectation table for methods only a human
// TENANT_ADMIN with an unscoped credential may call (B's admin, acting in B,
// included).
func onlyHumanAdmins() map[string]latchkey.Code {
	return map[string]latchkey.Code{
		cAdmin: "", cUserToken: "", cUser: latchkey.EFORBIDDEN, cReadOnly: latchkey.EFORBIDDEN,
		cSA: latchkey.EFORBIDDEN, cSAAdmin: latchkey.EFORBIDDEN, cTenantToken: latchkey.EFORBIDDEN,
		cRunnerToken: latchkey.EFORBIDDEN, cAnonymous: latchkey.EUNAUTHENTICATED, cOtherTenant: "",
	}
}
