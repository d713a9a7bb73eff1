package sqldb_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

// mustCreateRun creates a run as ctx's caller.
func mustCreateRun(tb testing.TB, s *sqldb.FlowRunService, ctx context.Context, name string, labels ...string) *latchkey.FlowRun {
	tb.Helper()
	run := &latchkey.FlowRun{Name: name, Command: []string{"sh", "-c", "echo " + name}, Labels: labels}
	if err := s.CreateFlowRun(ctx, run); err != nil {
		tb.Fatalf("create flow run %q: %v", name, err)
	}
	return run
}

// mustFindRun reads a run as ctx's caller.
func mustFindRun(tb testing.TB, s *sqldb.FlowRunService, ctx context.Context, id string) *latchkey.FlowRun {
	tb.Helper()
	run, err := s.FindFlowRunByID(ctx, id)
	if err != nil {
		tb.Fatalf("find flow run: %v", err)
	}
	return run
}

func mustSetState(tb testing.TB, s *sqldb.FlowRunService, ctx context.Context, run *latchkey.FlowRun, state latchkey.FlowRunState, msg string) *latchkey.FlowRun {
	tb.Helper()
	runs, err := s.SetFlowRunStates(ctx, []*latchkey.FlowRunStateUpdate{{FlowRunID: run.ID, Version: &run.Version, State: state, Message: msg}})
	if err != nil {
		tb.Fatalf("set %s: %v", state, err)
	}
	return runs[0]
}

func runIDs(runs []*latchkey.FlowRun) []string {
	ids := []string{}
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	return ids
}

func TestFlowRunService_CreateFlowRun(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewFlowRunService(db)
		want := agentWriters()
		want[cRunnerToken] = latchkey.EFORBIDDEN // RUNNER tokens may only do what agents do
		w.eachCaller(t, want, func(t *testing.T, name string, ctx context.Context) error {
			before := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM flow_runs`)
			run := &latchkey.FlowRun{Command: []string{"sh", "-c", "echo hi"}, Labels: []string{"b", "a", "b"}}
			if err := s.CreateFlowRun(ctx, run); err != nil {
				if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM flow_runs`); got != before {
					t.Errorf("denied, yet runs went from %d to %d", before, got)
				}
				return err
			}
			a := latchkey.AuthFromContext(ctx)
			if run.ID == "" || run.TenantID != a.TenantID || run.State != latchkey.FlowRunScheduled || run.Version != 1 ||
				run.Name != "flow-run-"+run.ID[:8] || run.CreatedByUserID != a.User.ID || !run.CreatedAt.Equal(clock.Now()) ||
				!run.ScheduledStartTime.Equal(clock.Now()) || run.StartTime != nil || run.EndTime != nil || run.HeartbeatAt != nil {
				t.Errorf("run=%+v", run)
			}
			if !slices.Equal(run.Labels, []string{"a", "b"}) {
				t.Errorf("labels=%v", run.Labels)
			}
			got := mustFindRun(t, s, ctx, run.ID)
			if !slices.Equal(got.Command, []string{"sh", "-c", "echo hi"}) || !slices.Equal(got.Labels, run.Labels) || got.Name != run.Name || got.State != latchkey.FlowRunScheduled {
				t.Errorf("stored run=%+v", got)
			}
			return nil
		})

		ctx := w.ctx(cUser)
		at := clock.Now().Add(time.Hour)
		run := &latchkey.FlowRun{Name: "nightly", Command: []string{"true"}, ScheduledStartTime: at.In(time.FixedZone("x", 3600))}
		if err := s.CreateFlowRun(ctx, run); err != nil {
			t.Fatal(err)
		} else if !run.ScheduledStartTime.Equal(at) || run.Name != "nightly" || len(run.Labels) != 0 {
			t.Errorf("run=%+v", run)
		}
		for _, tt := range []struct {
			name string
			run  latchkey.FlowRun
			code latchkey.Code
		}{
			{"another tenant", latchkey.FlowRun{Command: []string{"true"}, TenantID: w.b.ID}, latchkey.EFORBIDDEN},
			{"no command", latchkey.FlowRun{}, latchkey.EINVALID},
			{"empty program", latchkey.FlowRun{Command: []string{""}}, latchkey.EINVALID},
			{"NUL byte", latchkey.FlowRun{Command: []string{"echo", "a\x00b"}}, latchkey.EINVALID},
			{"huge command", latchkey.FlowRun{Command: []string{"echo", strings.Repeat("x", latchkey.MaxCommandBytes)}}, latchkey.EINVALID},
			{"long name", latchkey.FlowRun{Name: strings.Repeat("n", 201), Command: []string{"true"}}, latchkey.EINVALID},
			{"empty label", latchkey.FlowRun{Command: []string{"true"}, Labels: []string{""}}, latchkey.EINVALID},
		} {
			r := tt.run
			wantErr(t, s.CreateFlowRun(ctx, &r), tt.code)
		}
	})
}

func TestFlowRunService_FindFlowRuns(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewFlowRunService(db)
		r1 := mustCreateRun(t, s, w.ctx(cUser), "b-first")
		clock.Add(time.Second)
		r2 := mustCreateRun(t, s, w.ctx(cSA), "a-second")
		rB := mustCreateRun(t, s, w.ctx(cOtherTenant), "b")
		w.eachCaller(t, everyMember(), func(t *testing.T, name string, ctx context.Context) error {
			runs, n, err := s.FindFlowRuns(ctx, latchkey.FlowRunFilter{})
			if err != nil {
				return err
			}
			want := []string{r1.ID, r2.ID}
			if name == cOtherTenant {
				want = []string{rB.ID}
			}
			if got := runIDs(runs); !slices.Equal(got, want) || n != len(want) {
				t.Errorf("runs=%v (count %d), want %v", got, n, want)
			}
			return nil
		})
		ctx := w.ctx(cReadOnly)
		mustSetState(t, s, w.ctx(cSA), r2, latchkey.FlowRunSubmitted, "")
		for _, tt := range []struct {
			name   string
			filter latchkey.FlowRunFilter
			want   []string
			count  int
		}{
			{"by id", latchkey.FlowRunFilter{ID: &r2.ID}, []string{r2.ID}, 1},
			{"by id of B", latchkey.FlowRunFilter{ID: &rB.ID}, []string{}, 0},
			{"by ids", latchkey.FlowRunFilter{IDs: []string{r1.ID, rB.ID}}, []string{r1.ID}, 1},
			{"no ids", latchkey.FlowRunFilter{IDs: []string{}}, []string{}, 0},
			{"by state", latchkey.FlowRunFilter{States: []latchkey.FlowRunState{latchkey.FlowRunSubmitted}}, []string{r2.ID}, 1},
			{"by name", latchkey.FlowRunFilter{OrderBy: []latchkey.SortOrder{{Field: "name"}}}, []string{r2.ID, r1.ID}, 2},
			{"newest first, paged", latchkey.FlowRunFilter{OrderBy: []latchkey.SortOrder{{Field: "created_at", Desc: true}}, Limit: 1}, []string{r2.ID}, 2},
			{"offset", latchkey.FlowRunFilter{Offset: 1}, []string{r2.ID}, 2},
		} {
			runs, n, err := s.FindFlowRuns(ctx, tt.filter)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if got := runIDs(runs); !slices.Equal(got, tt.want) || n != tt.count {
				t.Errorf("%s: runs=%v (count %d), want %v (count %d)", tt.name, got, n, tt.want, tt.count)
			}
		}
		_, _, err := s.FindFlowRuns(ctx, latchkey.FlowRunFilter{OrderBy: []latchkey.SortOrder{{Field: "command"}}})
		wantErr(t, err, latchkey.EINVALID)
		_, err = s.FindFlowRunByID(ctx, rB.ID)
		wantErr(t, err, latchkey.ENOTFOUND)
	})
}

func TestFlowRunService_FindFlowRunsInQueue(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewFlowRunService(db)
		ctx := w.ctx(cUser)
		noLabels := mustCreateRun(t, s, ctx, "no labels")
		clock.Add(time.Second)
		foo := mustCreateRun(t, s, ctx, "foo", "foo")
		clock.Add(time.Second)
		fooBar := mustCreateRun(t, s, ctx, "foo bar", "foo", "bar")
		clock.Add(time.Second)
		later := &latchkey.FlowRun{Command: []string{"true"}, ScheduledStartTime: clock.Now().Add(time.Hour)}
		if err := s.CreateFlowRun(ctx, later); err != nil {
			t.Fatal(err)
		}
		submitted := mustCreateRun(t, s, ctx, "submitted")
		mustSetState(t, s, ctx, submitted, latchkey.FlowRunSubmitted, "")
		runB := mustCreateRun(t, s, w.ctx(cOtherTenant), "b")

		w.eachCaller(t, agentWriters(), func(t *testing.T, name string, ctx context.Context) error {
			ids, err := s.FindFlowRunsInQueue(ctx, latchkey.FlowRunQueue{Labels: []string{"foo"}})
			if err != nil {
				return err
			}
			want := []string{noLabels.ID, foo.ID}
			if name == cOtherTenant {
				want = []string{runB.ID}
			}
			if !slices.Equal(ids, want) {
				t.Errorf("ids=%v, want %v", ids, want)
			}
			return nil
		})
		for _, tt := range []struct {
			name string
			q    latchkey.FlowRunQueue
			want []string
		}{
			{"no labels", latchkey.FlowRunQueue{}, []string{noLabels.ID}},
			{"all labels", latchkey.FlowRunQueue{Labels: []string{"bar", "foo", "vm"}, TenantID: w.a.ID}, []string{noLabels.ID, foo.ID, fooBar.ID}},
			{"only bar", latchkey.FlowRunQueue{Labels: []string{"bar"}}, []string{noLabels.ID}},
			{"due within the hour", latchkey.FlowRunQueue{Before: clock.Now().Add(time.Hour)}, []string{noLabels.ID, later.ID}},
			{"before anything", latchkey.FlowRunQueue{Before: clock.Now().Add(-time.Hour)}, []string{}},
		} {
			ids, err := s.FindFlowRunsInQueue(w.ctx(cSA), tt.q)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			} else if !slices.Equal(ids, tt.want) {
				t.Errorf("%s: ids=%v, want %v", tt.name, ids, tt.want)
			}
		}
		_, err := s.FindFlowRunsInQueue(w.ctx(cSA), latchkey.FlowRunQueue{TenantID: w.b.ID})
		wantErr(t, err, latchkey.EFORBIDDEN)
	})
}

func TestFlowRunService_SetFlowRunStates(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewFlowRunService(db)
		agents := sqldb.NewAgentService(db)
		ag := mustRegisterAgent(t, agents, w.ctx(cSA), "agent")
		agB := mustRegisterAgent(t, agents, w.ctx(cOtherTenant), "agent")

		w.eachCaller(t, agentWriters(), func(t *testing.T, name string, ctx context.Context) error {
			runCtx := w.ctx(cUser)
			if name == cOtherTenant {
				runCtx = ctx
			}
			run := mustCreateRun(t, s, runCtx, "run "+name)
			_, err := s.SetFlowRunStates(ctx, []*latchkey.FlowRunStateUpdate{{FlowRunID: run.ID, Version: &run.Version, State: latchkey.FlowRunSubmitted, Message: "Submitted for execution"}})
			if err != nil {
				if got := mustFindRun(t, s, runCtx, run.ID); got.State != latchkey.FlowRunScheduled || got.Version != 1 {
					t.Errorf("denied, yet run=%+v", got)
				}
				return err
			}
			if got := mustFindRun(t, s, runCtx, run.ID); got.State != latchkey.FlowRunSubmitted || got.Version != 2 || got.StateMessage != "Submitted for execution" {
				t.Errorf("run=%+v", got)
			}
			return nil
		})

		ctx := w.ctx(cSA)
		run := mustCreateRun(t, s, w.ctx(cUser), "lifecycle")
		clock.Add(time.Second)
		runs, err := s.SetFlowRunStates(ctx, []*latchkey.FlowRunStateUpdate{{FlowRunID: run.ID, Version: ptr(1), State: latchkey.FlowRunSubmitted, AgentID: ag.ID}})
		if err != nil {
			t.Fatal(err)
		}
		submittedAt := clock.Now()
		if r := runs[0]; r.State != latchkey.FlowRunSubmitted || r.Version != 2 || r.AgentID != ag.ID || r.HeartbeatAt == nil || !r.HeartbeatAt.Equal(submittedAt) || r.StartTime != nil {
			t.Errorf("submitted=%+v", r)
		}
		// A second agent racing for the same run loses.
		_, err = s.SetFlowRunStates(ctx, []*latchkey.FlowRunStateUpdate{{FlowRunID: run.ID, Version: ptr(1), State: latchkey.FlowRunSubmitted}})
		wantErr(t, err, latchkey.EVERSIONLOCK)
		clock.Add(time.Second)
		r := mustSetState(t, s, ctx, runs[0], latchkey.FlowRunRunning, "")
		startedAt := clock.Now()
		if r.StartTime == nil || !r.StartTime.Equal(startedAt) || r.Version != 3 || !r.HeartbeatAt.Equal(startedAt) {
			t.Errorf("running=%+v", r)
		}
		clock.Add(time.Second)
		// No version: no lock check (Prefect sends null when it has none).
		_, err = s.SetFlowRunStates(ctx, []*latchkey.FlowRunStateUpdate{{FlowRunID: run.ID, State: latchkey.FlowRunSuccess, Message: "All done"}})
		if err != nil {
			t.Fatal(err)
		}
		got := mustFindRun(t, s, w.ctx(cReadOnly), run.ID)
		if got.State != latchkey.FlowRunSuccess || got.Version != 4 || got.StateMessage != "All done" || got.AgentID != ag.ID ||
			!got.StartTime.Equal(startedAt) || got.EndTime == nil || !got.EndTime.Equal(clock.Now()) || got.LostContact() {
			t.Errorf("finished=%+v", got)
		}
		// Finished runs are final.
		_, err = s.SetFlowRunStates(ctx, []*latchkey.FlowRunStateUpdate{{FlowRunID: run.ID, State: latchkey.FlowRunRunning}})
		wantErr(t, err, latchkey.EVERSIONLOCK)

		// All or nothing.
		a := mustCreateRun(t, s, w.ctx(cUser), "a")
		b := &latchkey.FlowRun{Name: "b", Command: []string{"true"}, VersionLocking: true}
		if err := s.CreateFlowRun(w.ctx(cUser), b); err != nil {
			t.Fatal(err)
		}
		runB := mustCreateRun(t, s, w.ctx(cOtherTenant), "b")
		for _, tt := range []struct {
			name    string
			updates []*latchkey.FlowRunStateUpdate
			code    latchkey.Code
		}{
			{"stale version", []*latchkey.FlowRunStateUpdate{
				{FlowRunID: a.ID, Version: ptr(1), State: latchkey.FlowRunSubmitted},
				{FlowRunID: b.ID, Version: ptr(7), State: latchkey.FlowRunSubmitted},
			}, latchkey.EVERSIONLOCK},
			{"run of another tenant", []*latchkey.FlowRunStateUpdate{
				{FlowRunID: a.ID, State: latchkey.FlowRunSubmitted},
				{FlowRunID: runB.ID, State: latchkey.FlowRunSubmitted},
			}, latchkey.ENOTFOUND},
			{"agent of another tenant", []*latchkey.FlowRunStateUpdate{{FlowRunID: a.ID, State: latchkey.FlowRunSubmitted, AgentID: agB.ID}}, latchkey.EINVALID},
			{"bad state", []*latchkey.FlowRunStateUpdate{{FlowRunID: a.ID, State: "Paused"}}, latchkey.EINVALID},
			{"no run", []*latchkey.FlowRunStateUpdate{{State: latchkey.FlowRunRunning}}, latchkey.EINVALID},
		} {
			_, err := s.SetFlowRunStates(ctx, tt.updates)
			if got := latchkey.ErrorCode(err); got != tt.code {
				t.Errorf("%s: err=%v, want %s", tt.name, err, tt.code)
			}
			if got := mustFindRun(t, s, ctx, a.ID); got.State != latchkey.FlowRunScheduled || got.Version != 1 {
				t.Errorf("%s: run a changed: %+v", tt.name, got)
			}
		}
		if got := mustFindRun(t, s, w.ctx(cOtherTenant), runB.ID); got.Version != 1 {
			t.Errorf("B's run changed: %+v", got)
		}
	})
}

// TestFlowRunService_VersionLocking: locking is opt-in per run. Without it
// a stale version is applied: the Prefect 1.x agent marks a run Submitted
// (version 1 to 2) and, when deploying it fails, sends Failed with the
// version it read before (1); the run must end Failed with the agent's
// message, not wait Submitted for the lost-contact sweep. With it, the
// stale version is refused. Either way a finished run never changes and
// a run is submitted once.
func TestFlowRunService_VersionLocking(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewFlowRunService(db)
		ctx := w.ctx(cSA)
		create := func(locking bool) *latchkey.FlowRun {
			run := &latchkey.FlowRun{Command: []string{"true"}, VersionLocking: locking}
			if err := s.CreateFlowRun(w.ctx(cUser), run); err != nil {
				t.Fatal(err)
			}
			if got := mustFindRun(t, s, ctx, run.ID); got.VersionLocking != locking || run.VersionLocking != locking {
				t.Fatalf("VersionLocking: created %v, stored %v, want %v", run.VersionLocking, got.VersionLocking, locking)
			}
			return run
		}
		if run := mustCreateRun(t, s, w.ctx(cUser), "default"); run.VersionLocking {
			t.Error("version locking is on by default")
		}
		set := func(run *latchkey.FlowRun, version int, state latchkey.FlowRunState, msg string) error {
			_, err := s.SetFlowRunStates(ctx, []*latchkey.FlowRunStateUpdate{{FlowRunID: run.ID, Version: &version, State: state, Message: msg}})
			return err
		}
		const agentMsg = "Failed to deploy flow run: image not found"

		// Off: the agent's sequence ends Failed with its message.
		run := create(false)
		if err := set(run, 1, latchkey.FlowRunSubmitted, "Submitted for execution"); err != nil {
			t.Fatal(err)
		}
		if err := set(run, 1, latchkey.FlowRunFailed, agentMsg); err != nil {
			t.Fatalf("Failed with the stale version: %v", err)
		}
		if got := mustFindRun(t, s, ctx, run.ID); got.State != latchkey.FlowRunFailed || got.StateMessage != agentMsg || got.Version != 3 || got.EndTime == nil || got.LostContact() {
			t.Errorf("run=%+v", got)
		}
		// A finished run stays finished, whatever version is sent.
		wantErr(t, set(run, 3, latchkey.FlowRunRunning, ""), latchkey.EVERSIONLOCK)

		// Off: a second agent still cannot submit a run already taken.
		run = create(false)
		if err := set(run, 1, latchkey.FlowRunSubmitted, ""); err != nil {
			t.Fatal(err)
		}
		wantErr(t, set(run, 1, latchkey.FlowRunSubmitted, ""), latchkey.EVERSIONLOCK)
		_, err := s.SetFlowRunStates(ctx, []*latchkey.FlowRunStateUpdate{{FlowRunID: run.ID, State: latchkey.FlowRunSubmitted}})
		wantErr(t, err, latchkey.EVERSIONLOCK)
		if got := mustFindRun(t, s, ctx, run.ID); got.State != latchkey.FlowRunSubmitted || got.Version != 2 {
			t.Errorf("run=%+v", got)
		}

		// On: the stale version is refused and changes nothing.
		run = create(true)
		if err := set(run, 1, latchkey.FlowRunSubmitted, "Submitted for execution"); err != nil {
			t.Fatal(err)
		}
		wantErr(t, set(run, 1, latchkey.FlowRunFailed, agentMsg), latchkey.EVERSIONLOCK)
		if got := mustFindRun(t, s, ctx, run.ID); got.State != latchkey.FlowRunSubmitted || got.Version != 2 {
			t.Errorf("run=%+v", got)
		}
		if err := set(run, 2, latchkey.FlowRunFailed, agentMsg); err != nil {
			t.Fatal(err)
		}
		if got := mustFindRun(t, s, ctx, run.ID); got.State != latchkey.FlowRunFailed || got.Version != 3 {
			t.Errorf("run=%+v", got)
		}
	})
}

func TestFlowRunService_HeartbeatFlowRun(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewFlowRunService(db)
		runA := mustSetState(t, s, w.ctx(cUser), mustCreateRun(t, s, w.ctx(cUser), "a"), latchkey.FlowRunRunning, "")
		runB := mustSetState(t, s, w.ctx(cOtherTenant), mustCreateRun(t, s, w.ctx(cOtherTenant), "b"), latchkey.FlowRunRunning, "")
		w.eachCaller(t, agentWriters(), func(t *testing.T, name string, ctx context.Context) error {
			clock.Add(time.Second)
			id := runA.ID
			if name == cOtherTenant {
				id = runB.ID
			}
			ok, err := s.HeartbeatFlowRun(ctx, id)
			if err != nil {
				return err
			} else if !ok {
				t.Error("heartbeat of a running run returned false")
			}
			if got := mustFindRun(t, s, ctx, id); got.HeartbeatAt == nil || !got.HeartbeatAt.Equal(clock.Now()) || got.Version != 2 {
				t.Errorf("run=%+v, want heartbeat at %v and no version change", got, clock.Now())
			}
			return nil
		})
		ctx := w.ctx(cSA)
		_, err := s.HeartbeatFlowRun(ctx, runB.ID)
		wantErr(t, err, latchkey.ENOTFOUND)
		cancelled := mustSetState(t, s, ctx, mustFindRun(t, s, ctx, runA.ID), latchkey.FlowRunCancelled, "Cancelled by a user")
		clock.Add(time.Second)
		if ok, err := s.HeartbeatFlowRun(ctx, runA.ID); err != nil || ok {
			t.Errorf("heartbeat of a cancelled run: ok=%v err=%v, want false", ok, err)
		}
		if got := mustFindRun(t, s, ctx, runA.ID); !got.HeartbeatAt.Equal(*cancelled.HeartbeatAt) {
			t.Errorf("a finished run's heartbeat moved: %v", got.HeartbeatAt)
		}
	})
}

func TestFlowRunService_RunLogs(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewFlowRunService(db)
		runA := mustCreateRun(t, s, w.ctx(cUser), "a")
		runB := mustCreateRun(t, s, w.ctx(cOtherTenant), "b")
		w.eachCaller(t, agentWriters(), func(t *testing.T, name string, ctx context.Context) error {
			id := runA.ID
			if name == cOtherTenant {
				id = runB.ID
			}
			return s.WriteRunLogs(ctx, []*latchkey.RunLog{{FlowRunID: id, Name: "caller", Message: name}})
		})
		w.eachCaller(t, everyMember(), func(t *testing.T, name string, ctx context.Context) error {
			logs, n, err := s.FindRunLogs(ctx, latchkey.RunLogFilter{})
			if err != nil {
				return err
			}
			var got []string
			for _, l := range logs {
				got = append(got, l.Message)
			}
			want := []string{cAdmin, cUserToken, cUser, cSA, cSAAdmin, cTenantToken, cRunnerToken}
			if name == cOtherTenant {
				want = []string{cOtherTenant}
			}
			if !slices.Equal(got, want) || n != len(want) {
				t.Errorf("logs=%v (count %d), want %v", got, n, want)
			}
			return nil
		})

		ctx := w.ctx(cSA)
		runA2 := mustCreateRun(t, s, w.ctx(cUser), "a2")
		t0 := clock.Now().Add(-time.Minute)
		if err := s.WriteRunLogs(ctx, []*latchkey.RunLog{
			{FlowRunID: runA2.ID, Name: "flow_run.stdout", Message: "second", Timestamp: t0.Add(time.Second), Level: "info"},
			{FlowRunID: runA2.ID, Name: "flow_run.stdout", Message: "first", Timestamp: t0, Level: "WARN"},
			{FlowRunID: runA2.ID, Name: "flow_run.stderr", Message: "third, same time", Timestamp: t0.Add(time.Second), Level: "ERROR"},
			{FlowRunID: runA2.ID, Name: "agent", Message: "now"},
		}); err != nil {
			t.Fatal(err)
		}
		logs, n, err := s.FindRunLogs(w.ctx(cReadOnly), latchkey.RunLogFilter{FlowRunID: &runA2.ID})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range logs {
			got = append(got, fmt.Sprintf("%s %s %s %s", l.Timestamp.Sub(t0), l.Level, l.Name, l.Message))
		}
		want := []string{"0s WARNING flow_run.stdout first", "1s INFO flow_run.stdout second", "1s ERROR flow_run.stderr third, same time", "1m0s INFO agent now"}
		if !slices.Equal(got, want) || n != 4 {
			t.Errorf("logs=%q (count %d),\nwant %q", got, n, want)
		}
		if logs[0].FlowRunID != runA2.ID || logs[0].TenantID != w.a.ID || !logs[0].CreatedAt.Equal(clock.Now()) {
			t.Errorf("log=%+v", logs[0])
		}
		if page, n, err := s.FindRunLogs(ctx, latchkey.RunLogFilter{FlowRunID: &runA2.ID, Offset: 3, Limit: 5}); err != nil || len(page) != 1 || page[0].Message != "now" || n != 4 {
			t.Errorf("page=%v n=%d err=%v", page, n, err)
		}

		before := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM flow_run_logs`)
		many := make([]*latchkey.RunLog, latchkey.MaxRunLogsPerWrite+1)
		for i := range many {
			many[i] = &latchkey.RunLog{FlowRunID: runA.ID, Message: "x"}
		}
		for _, tt := range []struct {
			name string
			logs []*latchkey.RunLog
			code latchkey.Code
		}{
			{"a run of another tenant", []*latchkey.RunLog{{FlowRunID: runA.ID, Message: "ok"}, {FlowRunID: runB.ID, Message: "sneaky"}}, latchkey.ENOTFOUND},
			{"unknown run", []*latchkey.RunLog{{FlowRunID: "nope", Message: "x"}}, latchkey.ENOTFOUND},
			{"bad level", []*latchkey.RunLog{{FlowRunID: runA.ID, Message: "x", Level: "LOUD"}}, latchkey.EINVALID},
			{"huge message", []*latchkey.RunLog{{FlowRunID: runA.ID, Message: strings.Repeat("x", latchkey.MaxRunLogMessage+1)}}, latchkey.EINVALID},
			{"too many", many, latchkey.EINVALID},
		} {
			wantErr(t, s.WriteRunLogs(ctx, tt.logs), tt.code)
			if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM flow_run_logs`); got != before {
				t.Fatalf("%s: logs went from %d to %d", tt.name, before, got)
			}
		}
		// The largest batch is fine (and crosses the insert chunk size).
		if err := s.WriteRunLogs(ctx, many[1:]); err != nil {
			t.Fatal(err)
		} else if got := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM flow_run_logs`); got != before+latchkey.MaxRunLogsPerWrite {
			t.Errorf("logs=%d, want %d", got, before+latchkey.MaxRunLogsPerWrite)
		}
	})
}

func TestFlowRunService_MarkLostFlowRuns(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewFlowRunService(db)
		ctx, ctxB := w.ctx(cSA), w.ctx(cOtherTenant)
		running := mustSetState(t, s, ctx, mustCreateRun(t, s, ctx, "running"), latchkey.FlowRunRunning, "")
		submitted := mustSetState(t, s, ctx, mustCreateRun(t, s, ctx, "submitted"), latchkey.FlowRunSubmitted, "")
		runningB := mustSetState(t, s, ctxB, mustCreateRun(t, s, ctxB, "running b"), latchkey.FlowRunRunning, "")
		lastBeat := clock.Now()
		scheduled := mustCreateRun(t, s, ctx, "scheduled")
		done := mustSetState(t, s, ctx, mustCreateRun(t, s, ctx, "done"), latchkey.FlowRunSuccess, "")
		clock.Add(50 * time.Second)
		alive := mustSetState(t, s, ctx, mustCreateRun(t, s, ctx, "alive"), latchkey.FlowRunRunning, "")
		if ok, err := s.HeartbeatFlowRun(ctx, running.ID); err != nil || !ok {
			t.Fatal(ok, err)
		}

		// Nothing is older than a minute yet.
		if n, err := s.MarkLostFlowRuns(context.Background(), time.Minute); err != nil || n != 0 {
			t.Fatalf("marked %d, err %v", n, err)
		}
		clock.Add(20 * time.Second)
		n, err := s.MarkLostFlowRuns(context.Background(), time.Minute)
		if err != nil {
			t.Fatal(err)
		} else if n != 2 {
			t.Errorf("marked %d runs, want 2 (submitted in A, running in B)", n)
		}
		for _, tt := range []struct {
			ctx  context.Context
			run  *latchkey.FlowRun
			lost bool
		}{
			{ctx, submitted, true}, {ctxB, runningB, true},
			{ctx, running, false}, {ctx, alive, false}, {ctx, scheduled, false}, {ctx, done, false},
		} {
			got := mustFindRun(t, s, tt.ctx, tt.run.ID)
			if got.LostContact() != tt.lost {
				t.Errorf("%s: lost contact=%v, want %v (%+v)", got.Name, got.LostContact(), tt.lost, got)
				continue
			}
			if !tt.lost {
				if got.State != tt.run.State || got.Version != tt.run.Version {
					t.Errorf("%s changed: %+v", got.Name, got)
				}
				continue
			}
			if got.State != latchkey.FlowRunFailed || got.Version != tt.run.Version+1 || !got.LostContactAt.Equal(clock.Now()) || !got.EndTime.Equal(clock.Now()) ||
				!strings.HasPrefix(got.StateMessage, latchkey.LostContactMessagePrefix) || !strings.Contains(got.StateMessage, lastBeat.Format(time.RFC3339)) {
				t.Errorf("%s: %+v", got.Name, got)
			}
			logs, _, err := s.FindRunLogs(tt.ctx, latchkey.RunLogFilter{FlowRunID: &tt.run.ID})
			if err != nil {
				t.Fatal(err)
			} else if len(logs) != 1 || logs[0].Level != latchkey.RunLogError || logs[0].Message != got.StateMessage || logs[0].Name != "latchkey.server" {
				t.Errorf("%s: logs=%+v", got.Name, logs)
			}
			// The run's process, should it come back, is told to stop.
			if ok, err := s.HeartbeatFlowRun(tt.ctx, tt.run.ID); err != nil || ok {
				t.Errorf("%s: heartbeat ok=%v err=%v, want false", got.Name, ok, err)
			}
			_, err = s.SetFlowRunStates(tt.ctx, []*latchkey.FlowRunStateUpdate{{FlowRunID: tt.run.ID, Version: &got.Version, State: latchkey.FlowRunSuccess}})
			wantErr(t, err, latchkey.EVERSIONLOCK)
		}
		if n, err := s.MarkLostFlowRuns(context.Background(), time.Minute); err != nil || n != 0 {
			t.Errorf("second sweep marked %d, err %v", n, err)
		}
		if _, err := s.MarkLostFlowRuns(context.Background(), 0); err == nil {
			t.Error("zero timeout accepted")
		}
	})
}
