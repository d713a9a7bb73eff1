package sqldb_test

import (
	"context"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// Every store that accepts a name refuses a bad one (see
// latchkey.ValidateName) and stores nothing; a name at the limit in
// multi-byte characters is accepted.
func TestStores_RefuseBadNames(t *testing.T) {
	t.Parallel()
	runWithCredEnv(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, e *credEnv) {
		ctx := e.adminCtx(t)
		tenants := sqldb.NewTenantService(db)
		accounts := sqldb.NewServiceAccountService(db)
		agents := sqldb.NewAgentService(db)

		entities := []struct {
			name   string
			table  string // whose name column must not hold the name
			create func(ctx context.Context, name string) error
		}{
			{"API key", "api_keys", func(ctx context.Context, name string) error {
				_, err := e.keys.CreateAPIKey(ctx, &latchkey.APIKey{Name: name})
				return err
			}},
			{"API token", "api_tokens", func(ctx context.Context, name string) error {
				_, err := e.tokens.CreateAPIToken(ctx, &latchkey.APIToken{Name: name, Scope: latchkey.TokenScopeUser})
				return err
			}},
			{"Service account", "users", func(ctx context.Context, name string) error {
				return accounts.CreateServiceAccount(ctx, &latchkey.ServiceAccount{Name: name})
			}},
			{"Tenant", "tenants", func(ctx context.Context, name string) error {
				return tenants.CreateTenant(ctx, &latchkey.Tenant{Name: name, Slug: "t-" + latchkey.Slugify(name)})
			}},
			{"Agent", "agents", func(ctx context.Context, name string) error {
				return agents.RegisterAgent(ctx, &latchkey.Agent{Name: name, Type: "LocalAgent"})
			}},
		}
		bad := []string{
			" ", "nul\x00", "esc\x1b[2J", "cr\rlf\n", "tab\t", "rtl\u202Egpj.exe", "iso\u2067x", "lrm\u200E",
			"zw\u200Bsp", "wj\u2060", "bom\uFEFF", strings.Repeat("é", 201),
		}
		for _, ent := range entities {
			for _, name := range bad {
				err := ent.create(ctx, name)
				if latchkey.ErrorCode(err) != latchkey.EINVALID {
					t.Errorf("%s %q: error %v, want EINVALID", ent.name, name, err)
				} else if msg := latchkey.ErrorMessage(err); !strings.HasPrefix(msg, ent.name+" name") {
					t.Errorf("%s %q: message %q does not name the field", ent.name, name, msg)
				}
				if strings.ContainsRune(name, 0) {
					continue // PostgreSQL cannot even be asked about it
				}
				if n := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM `+ent.table+` WHERE name = ?`, name); n != 0 {
					t.Errorf("%s %q: refused, yet stored %d times", ent.name, name, n)
				}
			}
			good := strings.Repeat("é", 199) + string(ent.name[0])
			if err := ent.create(ctx, good); err != nil {
				t.Errorf("%s: 200 two-byte characters refused: %v", ent.name, err)
			}
		}
	})
}
