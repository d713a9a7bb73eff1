package sqldb_test

import (
	"context"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
	"github.com/latchkey/latchkey/sqldb"
)

func TestAuthFailureService(t *testing.T) {
	t.Parallel()
	runWithWorld(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock, w *world) {
		s := sqldb.NewAuthFailureService(db)
		minute := time.Date(2030, 5, 1, 10, 0, 0, 0, time.UTC)
		f := func(kind latchkey.AuthFailureKind, id, addr string, m time.Time, n int, first, last int) *latchkey.AuthFailure {
			return &latchkey.AuthFailure{Kind: kind, Identifier: id, ClientAddr: addr, Minute: m, Count: n,
				FirstAt: m.Add(time.Duration(first) * time.Second), LastAt: m.Add(time.Duration(last) * time.Second)}
		}
		ctx := context.Background()
		// Two replicas' flushes of the same minute add up.
		if err := s.RecordAuthFailures(ctx, []*latchkey.AuthFailure{
			f(latchkey.AuthFailureSignIn, "user@example.com", "203.0.113.1", minute, 3, 10, 20),
			f(latchkey.AuthFailureSignIn, "userb@example.com", "203.0.113.1", minute, 1, 5, 5),  // B's member
			f(latchkey.AuthFailureSignIn, "nobody@example.com", "203.0.113.1", minute, 9, 5, 5), // no such user
			f(latchkey.AuthFailureCredential, "lku_…abcd", "203.0.113.1", minute, 7, 1, 50),
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordAuthFailures(ctx, []*latchkey.AuthFailure{
			f(latchkey.AuthFailureSignIn, "user@example.com", "203.0.113.1", minute, 2, 5, 40),
			f(latchkey.AuthFailureSignIn, "user@example.com", "203.0.113.1", minute.Add(time.Minute), 1, 0, 0),
		}); err != nil {
			t.Fatal(err)
		}
		w.eachCaller(t, onlyHumanAdmins(), func(t *testing.T, name string, ctx context.Context) error {
			fs, n, err := s.FindAuthFailures(ctx, latchkey.AuthFailureFilter{})
			if err != nil {
				return err
			}
			want := map[string][]int{cAdmin: {1, 5}, cUserToken: {1, 5}, cOtherTenant: {1}}[name]
			if n != len(want) || len(fs) != len(want) {
				t.Fatalf("%d failures (count %d): %+v, want counts %v", len(fs), n, fs, want)
			}
			for i, c := range want {
				if fs[i].Count != c {
					t.Errorf("failure %d: %+v, want count %d", i, fs[i], c)
				}
			}
			if name == cAdmin {
				merged := fs[1]
				if merged.Identifier != "user@example.com" || !merged.Minute.Equal(minute) ||
					!merged.FirstAt.Equal(minute.Add(5*time.Second)) || !merged.LastAt.Equal(minute.Add(40*time.Second)) {
					t.Errorf("merged %+v", merged)
				}
			}
			return nil
		})
		from := minute.Add(time.Minute)
		if fs, _, err := s.FindAuthFailures(w.ctx(cAdmin), latchkey.AuthFailureFilter{From: &from}); err != nil || len(fs) != 1 {
			t.Errorf("from %v: %+v, %v", from, fs, err)
		}
	})
}

// DeleteAuthFailuresBefore deletes the minutes before its time, and only
// those, on both engines.
func TestAuthFailureService_DeleteBefore(t *testing.T) {
	t.Parallel()
	latchkeytest.RunWithDB(t, func(t *testing.T, db *sqldb.DB, clock *latchkeytest.Clock) {
		s := sqldb.NewAuthFailureService(db)
		ctx := context.Background()
		minute := time.Date(2030, 5, 1, 10, 0, 0, 0, time.UTC)
		var fs []*latchkey.AuthFailure
		for i := range 5 { // minutes 10:00 to 10:04, two records each
			m := minute.Add(time.Duration(i) * time.Minute)
			for _, kind := range []latchkey.AuthFailureKind{latchkey.AuthFailureCredential, latchkey.AuthFailureSignIn} {
				fs = append(fs, &latchkey.AuthFailure{Kind: kind, Identifier: "user@example.com", ClientAddr: "203.0.113.1",
					Minute: m, Count: 1, FirstAt: m, LastAt: m})
			}
		}
		if err := s.RecordAuthFailures(ctx, fs); err != nil {
			t.Fatal(err)
		}
		// Before 10:02:30: the minutes 10:00, 10:01 and 10:02 go.
		n, err := s.DeleteAuthFailuresBefore(ctx, minute.Add(2*time.Minute+30*time.Second))
		if err != nil || n != 6 {
			t.Fatalf("deleted %d, %v; want 6", n, err)
		}
		rows := latchkeytest.MustQueryAll(t, db, `SELECT minute FROM auth_failures ORDER BY minute, kind`)
		if len(rows) != 4 {
			t.Fatalf("left %v, want the minutes 10:03 and 10:04 (4 records)", rows)
		}
		if n, err := s.DeleteAuthFailuresBefore(ctx, minute); err != nil || n != 0 {
			t.Errorf("deleting before the oldest: %d, %v", n, err)
		}
		if c := latchkeytest.MustCount(t, db, `SELECT COUNT(*) FROM auth_failures`); c != 4 {
			t.Errorf("%d records left, want 4", c)
		}
	})
}
