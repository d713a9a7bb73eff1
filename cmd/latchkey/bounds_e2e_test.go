package main_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/graphql"
)

// Lists are bounded end to end, on both engines: a read-only member's
// aliased query for every log line of every run (it got a 50.8 MB answer
// before) is refused before it runs, with a short answer; a limit over the
// maximum is refused; a list without limit gets the default page; offset
// pages on; filters are answered in SQL or refused.
func TestBounds_ListsAndFilters(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine string) {
		s := MustRunMain(t, engine)
		var run struct{ ID string }
		s.MustDo(t, s.AdminKey, "", qCreateFlowRun, map[string]any{"input": map[string]any{"name": "chatty", "command": []string{"true"}}}, "create_flow_run", &run)
		const lines = 1100
		msg := strings.Repeat("m", 1024)
		for start := 0; start < lines; start += 250 { // 250 lines of 1 KiB fit in a request body
			var logs []map[string]any
			for i := start; i < min(start+250, lines); i++ {
				logs = append(logs, map[string]any{"flow_run_id": run.ID, "name": "flow_run.stdout", "message": fmt.Sprintf("%04d %s", i, msg)})
			}
			s.MustDo(t, s.AdminKey, "", "mutation($input: write_run_logs_input!) { write_run_logs(input: $input) { success } }",
				map[string]any{"input": map[string]any{"logs": logs}}, "write_run_logs", nil)
		}
		var sa struct{ ID string }
		s.MustDo(t, s.AdminKey, "", "mutation($input: create_service_account_input!) { create_service_account(input: $input) { id } }",
			map[string]any{"input": map[string]any{"name": "reader", "role": "READ_ONLY_USER"}}, "create_service_account", &sa)
		var key struct{ Key string }
		s.MustDo(t, s.AdminKey, "", qCreateKeyWithID, map[string]any{"input": map[string]any{"name": "reader key", "user_id": sa.ID}}, "create_api_key", &key)

		t.Run("aliased logs", func(t *testing.T) {
			for _, field := range []string{
				"flow_run { logs { timestamp name level message } }",
				"flow_run { logs(limit: 1000) { message } }",
				"flow_run(limit: 1) { logs(limit: 1000) { message } }",
			} {
				query := aliases(50, field)
				if len(query) > 4096 {
					t.Fatalf("%d-byte query", len(query))
				}
				r := postRaw(t, s, key.Key, gqlBody(t, query, "null"))
				r.mustRefuse(t, http.StatusOK, graphql.CodeRequestTooLarge, "Query is too complex: it could return")
				if len(r.raw) > 1024 {
					t.Errorf("refusal is %d bytes", len(r.raw))
				}
			}
			mustBeHealthy(t, s)
		})

		logsOf := func(t *testing.T, args string) []string {
			t.Helper()
			var runs []struct{ Logs []struct{ Message string } }
			s.MustDo(t, key.Key, "", `query($id: uuid!) { flow_run(where: {id: {_eq: $id}}) { logs`+args+` { message } } }`, map[string]any{"id": run.ID}, "flow_run", &runs)
			if len(runs) != 1 {
				t.Fatalf("%d runs", len(runs))
			}
			var out []string
			for _, l := range runs[0].Logs {
				out = append(out, l.Message[:4])
			}
			return out
		}
		t.Run("limits", func(t *testing.T) {
			if got := logsOf(t, ""); len(got) != graphql.DefaultLimit || got[0] != "0000" {
				t.Errorf("without limit: %d lines from %v, want %d from 0000", len(got), got[:1], graphql.DefaultLimit)
			}
			if got := logsOf(t, "(limit: 1000)"); len(got) != 1000 || got[999] != "0999" {
				t.Errorf("limit 1000: %d lines", len(got))
			}
			if got := logsOf(t, "(limit: 1000, offset: 1000)"); len(got) != lines-1000 || got[0] != "1000" {
				t.Errorf("offset 1000: %d lines", len(got))
			}
			r := s.Do(t, "/graphql", key.Key, "", `query($id: uuid!) { flow_run(where: {id: {_eq: $id}}) { logs(limit: 1001) { message } } }`, map[string]any{"id": run.ID})
			if len(r.Errors) == 0 || r.Errors[0].Extensions.Code != graphql.CodeBadUserInput || r.Errors[0].Message != "limit must be at most 1000; ask for the following rows with offset." {
				t.Errorf("limit 1001: %s", r.raw)
			}
			r = s.Do(t, "/graphql", s.AdminKey, "", `query { audit_event(limit: 5000) { id } }`, nil)
			if len(r.Errors) == 0 || r.Errors[0].Extensions.Code != graphql.CodeBadUserInput || !strings.Contains(r.Errors[0].Message, "at most 1000") {
				t.Errorf("audit_event limit 5000: %s", r.raw)
			}
		})

		t.Run("filters", func(t *testing.T) {
			// Answered in SQL.
			var keys []struct{ Name string }
			s.MustDo(t, s.AdminKey, "", `query { auth_api_key(where: {name: {_eq: "reader key"}}) { name } }`, nil, "auth_api_key", &keys)
			if len(keys) != 1 || keys[0].Name != "reader key" {
				t.Errorf("keys = %+v", keys)
			}
			var members []struct {
				UserID string `json:"user_id"`
			}
			s.MustDo(t, s.AdminKey, "", `query { membership(where: {role: {_eq: "READ_ONLY_USER"}}) { user_id } }`, nil, "membership", &members)
			if len(members) != 1 || members[0].UserID != sa.ID {
				t.Errorf("members = %+v", members)
			}
			var sas []struct{ ID string }
			s.MustDo(t, s.AdminKey, "", `query { service_account(where: {name: {_eq: "reader"}}) { id } }`, nil, "service_account", &sas)
			if len(sas) != 1 || sas[0].ID != sa.ID {
				t.Errorf("service accounts = %+v", sas)
			}
			var runs []struct{ ID string }
			s.MustDo(t, key.Key, "", `query { flow_run(where: {name: {_eq: "chatty"}}) { id } }`, nil, "flow_run", &runs)
			if len(runs) != 1 || runs[0].ID != run.ID {
				t.Errorf("runs = %+v", runs)
			}
			s.MustDo(t, key.Key, "", `query { flow_run(where: {name: {_eq: "quiet"}}) { id } }`, nil, "flow_run", &runs)
			if len(runs) != 0 {
				t.Errorf("runs = %+v", runs)
			}
			// Refused rather than read row by row.
			for _, q := range []string{
				`query { audit_event(where: {action: {_neq: "api_key.create"}}) { id } }`,
				`query { tenant(where: {slug: {_neq: "x"}}) { id } }`,
				`query { flow_run(where: {_or: [{name: {_eq: "chatty"}}]}) { id } }`,
			} {
				r := s.Do(t, "/graphql", s.AdminKey, "", q, nil)
				if len(r.Errors) == 0 || r.Errors[0].Extensions.Code != graphql.CodeBadUserInput || !strings.Contains(r.Errors[0].Message, "is not supported") {
					t.Errorf("%s: %s", q, r.raw)
				}
			}
		})
	})
}
