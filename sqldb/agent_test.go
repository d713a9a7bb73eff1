package sqldb_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// agentWriters is the expectation table for agent-side writes: any caller
// with a writing role, RUNNER tokens included; not READ_ONLY_USER.
func agentWriters() map[string]latchkey.Code {
	return map[string]latchkey.Code{
		cAdmin: "", cUserToken: "", cUser: "", cReadOnly: latchkey.EFORBIDDEN,
		cSA: "", cSAAdmin: "", cTenantToken: "", cRunnerToken: "",
		cAnonymous: latchkey.EUNAUTHENTICATED, cOtherTenant: "",
	}
}

// everyMember is the expectation table for reads open to every member.
func everyMember() map[string]latchkey.Code {
	return map[string]latchkey.Code{
		cAdmin: "", cUserToken: "", cUser: "", cReadOnly: "",
		cSA: "", cSAAdmin: "", cTenantToken: "", cRunnerToken: "",
		cAnonymous: latchkey.EUNAUTHENTICATED, cOtherTenant: "",
	}
}

// mustRegisterAgent registers an agent as the named world caller.
func mustRegisterAgent(tb testing.TB, s *sqldb.AgentService, ctx context.Context, name string, labels ...string) *latchkey.Agent {
	tb.Helper()
	ag := &latchkey.Agent{Name: name, Type: "LocalAgent", Labels: labels}
	if err := s.RegisterAgent(ctx, ag); err != nil {
		tb.Fatalf("register agent %q: %v", name, err)
	}
	return ag
}

func TestAgentService_RegisterAgent(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewAgentService(db)
		w.eachCaller(t, agentWriters(), func(t *testing.T, name string, ctx context.Context) error {
			before := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM agents`)
			ag := &latchkey.Agent{Name: "agent " + name, Type: "LocalAgent", Labels: []string{"vm", "foo", "vm"}}
			if err := s.RegisterAgent(ctx, ag); err != nil {
				if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM agents`); got != before {
					t.Errorf("denied, yet agents went from %d to %d", before, got)
				}
				return err
			}
			a := latchkey.AuthFromContext(ctx)
			if ag.ID == "" || ag.TenantID != a.TenantID || ag.UserID != a.User.ID || !ag.CreatedAt.Equal(clock.Now()) || !ag.LastSeenAt.Equal(clock.Now()) {
				t.Errorf("agent=%+v", ag)
			}
			if got, want := ag.Labels, []string{"foo", "vm"}; !slices.Equal(got, want) {
				t.Errorf("labels=%v, want %v", got, want)
			}
			return nil
		})

		ctx := w.ctx(cSA)
		first := mustRegisterAgent(t, s, ctx, "agent", "b", "a")
		created := clock.Now()
		clock.Add(time.Minute)
		again := mustRegisterAgent(t, s, ctx, "agent", "a", "b")
		if again.ID != first.ID || !again.CreatedAt.Equal(created) || !again.LastSeenAt.Equal(clock.Now()) {
			t.Errorf("re-registration: %+v, want id %s created %s seen %s", again, first.ID, created, clock.Now())
		}
		if other := mustRegisterAgent(t, s, ctx, "agent", "a"); other.ID == first.ID {
			t.Error("different labels reused the agent")
		}
		// The same settings in another tenant are another agent.
		if b := mustRegisterAgent(t, s, w.ctx(cOtherTenant), "agent", "a", "b"); b.ID == first.ID || b.TenantID != w.b.ID {
			t.Errorf("tenant B agent=%+v", b)
		}
		// An empty name is Prefect's default.
		if ag := mustRegisterAgent(t, s, ctx, ""); ag.Name != "agent" {
			t.Errorf("name=%q", ag.Name)
		}

		for _, tt := range []struct {
			name  string
			agent latchkey.Agent
			code  latchkey.Code
		}{
			{"another tenant", latchkey.Agent{Type: "LocalAgent", TenantID: w.b.ID}, latchkey.EFORBIDDEN},
			{"no type", latchkey.Agent{Name: "x"}, latchkey.EINVALID},
			{"empty label", latchkey.Agent{Type: "LocalAgent", Labels: []string{""}}, latchkey.EINVALID},
		} {
			ag := tt.agent
			wantErr(t, s.RegisterAgent(ctx, &ag), tt.code)
		}
	})
}

func TestAgentService_UpdateAgentLastSeen(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewAgentService(db)
		agA := mustRegisterAgent(t, s, w.ctx(cSA), "a")
		agB := mustRegisterAgent(t, s, w.ctx(cOtherTenant), "b")
		w.eachCaller(t, agentWriters(), func(t *testing.T, name string, ctx context.Context) error {
			clock.Add(time.Second)
			id := agA.ID
			if name == cOtherTenant {
				id = agB.ID
			}
			if err := s.UpdateAgentLastSeen(ctx, id); err != nil {
				return err
			}
			agents, _, err := s.FindAgents(ctx, latchkey.AgentFilter{ID: &id})
			if err != nil {
				t.Fatal(err)
			} else if len(agents) != 1 || !agents[0].LastSeenAt.Equal(clock.Now()) {
				t.Errorf("agents=%+v, want last seen %v", agents, clock.Now())
			}
			return nil
		})
		wantErr(t, s.UpdateAgentLastSeen(w.ctx(cAdmin), agB.ID), latchkey.ENOTFOUND)
		wantErr(t, s.UpdateAgentLastSeen(w.ctx(cAdmin), "no-such-agent"), latchkey.ENOTFOUND)
	})
}

func TestAgentService_FindAgents(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewAgentService(db)
		old := mustRegisterAgent(t, s, w.ctx(cSA), "old", "x")
		clock.Add(time.Minute)
		recent := mustRegisterAgent(t, s, w.ctx(cRunnerToken), "recent")
		agB := mustRegisterAgent(t, s, w.ctx(cOtherTenant), "b")
		w.eachCaller(t, everyMember(), func(t *testing.T, name string, ctx context.Context) error {
			agents, n, err := s.FindAgents(ctx, latchkey.AgentFilter{})
			if err != nil {
				return err
			}
			want := []string{recent.ID, old.ID} // most recently seen first
			if name == cOtherTenant {
				want = []string{agB.ID}
			}
			var got []string
			for _, ag := range agents {
				got = append(got, ag.ID)
			}
			if !slices.Equal(got, want) || n != len(want) {
				t.Errorf("agents=%v (count %d), want %v", got, n, want)
			}
			return nil
		})
		ctx := w.ctx(cReadOnly)
		agents, n, err := s.FindAgents(ctx, latchkey.AgentFilter{Name: ptr("old")})
		if err != nil {
			t.Fatal(err)
		} else if len(agents) != 1 || n != 1 {
			t.Fatalf("agents=%v n=%d", agents, n)
		}
		if ag := agents[0]; ag.ID != old.ID || ag.Type != "LocalAgent" || !slices.Equal(ag.Labels, []string{"x"}) ||
			ag.UserID != w.sa.ID || !ag.LastSeenAt.Equal(old.LastSeenAt) || ag.TenantID != w.a.ID {
			t.Errorf("agent=%+v", ag)
		}
		if agents, _, err := s.FindAgents(ctx, latchkey.AgentFilter{IDs: []string{agB.ID, recent.ID}}); err != nil || len(agents) != 1 || agents[0].ID != recent.ID {
			t.Errorf("by ids: %v, %v", agents, err)
		}
		if agents, n, err := s.FindAgents(ctx, latchkey.AgentFilter{Offset: 1, Limit: 1}); err != nil || len(agents) != 1 || agents[0].ID != old.ID || n != 2 {
			t.Errorf("page: %v (count %d), %v", agents, n, err)
		}
	})
}

func ptr[T any](v T) *T { return &v }
