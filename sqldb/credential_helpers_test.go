package sqldb_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// fakeTokenService is an in-memory latchkey.TokenService: a token is an
// opaque three-part string mapped to its claims. It honours expiry,
// not-before and allowExpired on the test clock.
type fakeTokenService struct {
	clock *latchkeytest.Clock

	mu     sync.Mutex
	claims map[string]latchkey.AccessClaims
	mints  int
}

func newFakeTokenService(clock *latchkeytest.Clock) *fakeTokenService {
	return &fakeTokenService{clock: clock, claims: map[string]latchkey.AccessClaims{}}
}

func (f *fakeTokenService) MintAccessToken(_ context.Context, c latchkey.AccessClaims) (string, error) {
	if c.UserID == "" || c.TenantID == "" || c.ID == "" || !c.ExpiresAt.After(c.IssuedAt) {
		return "", fmt.Errorf("fake mint: incomplete claims %+v", c)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mints++
	tok := fmt.Sprintf("eyJfake.%d.sig", f.mints)
	f.claims[tok] = c
	return tok, nil
}

func (f *fakeTokenService) VerifyAccessToken(_ context.Context, token string, allowExpired bool) (*latchkey.AccessClaims, error) {
	f.mu.Lock()
	c, ok := f.claims[token]
	f.mu.Unlock()
	now := f.clock.Now()
	switch {
	case !ok:
		return nil, latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Invalid access token.")
	case now.Before(c.NotBefore):
		return nil, latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Invalid access token.")
	case !now.Before(c.ExpiresAt) && !allowExpired:
		return nil, latchkey.Errorf(latchkey.EUNAUTHENTICATED, "Access token expired.")
	}
	return &c, nil
}

func (f *fakeTokenService) JWKS(context.Context) ([]byte, error) { return []byte(`{"keys":[]}`), nil }

// credEnv is a bootstrapped database with the credential services on it.
type credEnv struct {
	db     *sqldb.DB
	clock  *latchkeytest.Clock
	f      *latchkeytest.Fixture
	keys   *sqldb.APIKeyService
	tokens *sqldb.APITokenService
	auth   *sqldb.AuthService
	jwt    *fakeTokenService
}

// runWithCredEnv runs fn on every engine (latchkeytest.RunWithDB) with a
// credEnv made by newCredEnv.
func runWithCredEnv(t *testing.T, fn func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv)) {
	t.Helper()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		fn(t, db, clock, newCredEnv(t, db, clock))
	})
}

func newCredEnv(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) *credEnv {
	t.Helper()
	jwt := newFakeTokenService(clock)
	return &credEnv{
		db:     db,
		clock:  clock,
		f:      latchkeytest.MustBootstrap(t, db),
		keys:   sqldb.NewAPIKeyService(db),
		tokens: sqldb.NewAPITokenService(db),
		auth:   sqldb.NewAuthService(db, jwt),
		jwt:    jwt,
	}
}

// mustAuthenticate authenticates credential and returns a context carrying
// the caller.
func (e *credEnv) mustAuthenticate(tb testing.TB, credential, tenantID string) context.Context {
	tb.Helper()
	a, err := e.auth.Authenticate(context.Background(), credential, tenantID)
	if err != nil {
		tb.Fatalf("authenticate: %v", err)
	}
	return latchkey.NewContextWithAuth(context.Background(), a)
}

// mustSwitchTenant exchanges ctx's credential for an access token in
// tenantID ("" = the acting tenant).
func (e *credEnv) mustSwitchTenant(tb testing.TB, ctx context.Context, tenantID string) *latchkey.AccessToken {
	tb.Helper()
	at, err := e.auth.SwitchTenant(ctx, tenantID)
	if err != nil {
		tb.Fatalf("switch tenant %q: %v", tenantID, err)
	}
	return at
}

// adminCtx is the bootstrap admin authenticated with its key in the fixture tenant.
func (e *credEnv) adminCtx(tb testing.TB) context.Context {
	tb.Helper()
	return e.mustAuthenticate(tb, e.f.AdminKey, "")
}

// threeTenants makes tenants "two" and "three" beside the fixture tenant
// and u@example.com, a member of the fixture tenant with role1 and of "two"
// with role2 (not of "three").
func (e *credEnv) threeTenants(t *testing.T, role1, role2 latchkey.Role) (t1, t2, t3 *latchkey.Tenant, u *latchkey.User) {
	t.Helper()
	t1 = e.f.Tenant
	t2 = latchkeytest.MustCreateTenant(t, e.db, "two", nil)
	t3 = latchkeytest.MustCreateTenant(t, e.db, "three", nil)
	u = latchkeytest.MustCreateMember(t, e.db, t1.ID, "u@example.com", role1)
	latchkeytest.MustCreateMember(t, e.db, t2.ID, "u@example.com", role2)
	return t1, t2, t3, u
}

// mustCreateKey creates a key named name for userID ("" = the caller) and
// returns the key and its secret.
func (e *credEnv) mustCreateKey(tb testing.TB, ctx context.Context, name, userID string) (*latchkey.APIKey, string) {
	tb.Helper()
	k := &latchkey.APIKey{Name: name, UserID: userID}
	secret, err := e.keys.CreateAPIKey(ctx, k)
	if err != nil {
		tb.Fatalf("create api key %q: %v", name, err)
	}
	return k, secret
}

// mustCreateToken creates a legacy token with scope for the caller.
func (e *credEnv) mustCreateToken(tb testing.TB, ctx context.Context, name string, scope latchkey.TokenScope) (*latchkey.APIToken, string) {
	tb.Helper()
	tok := &latchkey.APIToken{Name: name, Scope: scope}
	secret, err := e.tokens.CreateAPIToken(ctx, tok)
	if err != nil {
		tb.Fatalf("create api token %q: %v", name, err)
	}
	return tok, secret
}

// expectCode fails unless err has code (and, if msgPart is not empty, a
// message containing it).
func expectCode(tb testing.TB, err error, code latchkey.Code, msgPart string) {
	tb.Helper()
	if got := latchkey.ErrorCode(err); got != code {
		tb.Fatalf("error code=%q (err=%v), want %q", got, err, code)
	}
	if msgPart != "" && !strings.Contains(latchkey.ErrorMessage(err), msgPart) {
		tb.Fatalf("error message=%q, want it to contain %q", latchkey.ErrorMessage(err), msgPart)
	}
}

// mistype changes one character of a secret's random body.
func mistype(secret string) string {
	b := []byte(secret)
	i := 10
	if b[i] == 'a' {
		b[i] = 'b'
	} else {
		b[i] = 'a'
	}
	return string(b)
}

// lastUsedAt reads api_keys.last_used_at (or another table's column) directly.
func lastUsedAt(tb testing.TB, db *sqldb.DB, table, column, id string) time.Time {
	tb.Helper()
	tx, err := db.BeginTx(context.Background(), false)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	var t sqldb.Time
	if err := tx.QueryRowContext(context.Background(), `SELECT `+column+` FROM `+table+` WHERE id = ?`, id).Scan(&t); err != nil {
		tb.Fatalf("read %s.%s: %v", table, column, err)
	}
	return time.Time(t)
}
