package sqldb_test

import (
	"slices"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// The _eq conditions the GraphQL API used to check in memory, over every
// row, are answered in SQL: key, service account and run names, membership
// roles and agent types.
func TestFind_EqFilters(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		ctx := w.ctx(cAdmin)

		keys := sqldb.NewAPIKeyService(db)
		for _, name := range []string{"ci", "deploy"} {
			if _, err := keys.CreateAPIKey(ctx, &latchkey.APIKey{Name: name, UserID: w.sa.ID}); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			name string
			want int
		}{{"ci", 1}, {"deploy", 1}, {"nope", 0}} {
			got, n, err := keys.FindAPIKeys(ctx, latchkey.APIKeyFilter{Name: ptr(tc.name)})
			if err != nil || len(got) != tc.want || n != tc.want || (tc.want == 1 && got[0].Name != tc.name) {
				t.Errorf("keys named %q: %d (count %d), err %v; want %d", tc.name, len(got), n, err, tc.want)
			}
		}

		sas := sqldb.NewServiceAccountService(db)
		if got, n, err := sas.FindServiceAccounts(ctx, latchkey.ServiceAccountFilter{Name: ptr("robot admin")}); err != nil || len(got) != 1 || n != 1 || got[0].ID != w.saAdmin.ID {
			t.Errorf("service accounts named robot admin: %+v (count %d), %v", got, n, err)
		}
		if got, _, err := sas.FindServiceAccounts(ctx, latchkey.ServiceAccountFilter{Name: ptr("agent"), TenantID: &w.a.ID}); err != nil || len(got) != 1 || got[0].ID != w.sa.ID {
			t.Errorf("service accounts named agent: %+v, %v", got, err)
		}

		ms := sqldb.NewMembershipService(db)
		for role, want := range map[latchkey.Role][]string{
			latchkey.RoleReadOnlyUser: {w.readonly.ID},
			latchkey.RoleTenantAdmin:  {w.admin.ID, w.saAdmin.ID},
		} {
			got, n, err := ms.FindMemberships(ctx, latchkey.MembershipFilter{Role: ptr(role)})
			if err != nil || !slices.Equal(membershipUserIDs(got), want) || n != len(want) {
				t.Errorf("%s members: %v (count %d), %v; want %v", role, membershipUserIDs(got), n, err, want)
			}
		}

		runs := sqldb.NewFlowRunService(db)
		one := mustCreateRun(t, runs, ctx, "one")
		mustCreateRun(t, runs, ctx, "two")
		if got, n, err := runs.FindFlowRuns(w.ctx(cReadOnly), latchkey.FlowRunFilter{Name: ptr("one")}); err != nil || len(got) != 1 || n != 1 || got[0].ID != one.ID {
			t.Errorf("runs named one: %+v (count %d), %v", got, n, err)
		}

		agents := sqldb.NewAgentService(db)
		local := mustRegisterAgent(t, agents, w.ctx(cSA), "local")
		docker := &latchkey.Agent{Name: "docker", Type: "DockerAgent"}
		if err := agents.RegisterAgent(w.ctx(cSA), docker); err != nil {
			t.Fatal(err)
		}
		for typ, want := range map[string]string{"LocalAgent": local.ID, "DockerAgent": docker.ID} {
			if got, n, err := agents.FindAgents(w.ctx(cReadOnly), latchkey.AgentFilter{Type: ptr(typ)}); err != nil || len(got) != 1 || n != 1 || got[0].ID != want {
				t.Errorf("%s agents: %+v (count %d), %v", typ, got, n, err)
			}
		}
	})
}
