package main_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	main "github.com/latchkey/latchkey/cmd/latchkey"
	"github.com/latchkey/latchkey/internal/latchkeytest"
)

const (
	qSetFlowRunStates = "mutation($input: set_flow_run_states_input!) {\n    set_flow_run_states(input: $input) {\n        states {\n            id\n            status\n            message\n        }\n    }\n}"
	qRunState         = `query($id: uuid!) { flow_run(where: { id: { _eq: $id } }) { state state_message version version_locking } }`
)

// logLines returns the server's JSON log lines whose msg is msg.
func logLines(tb testing.TB, s *TestServer, msg string) []map[string]any {
	tb.Helper()
	var out []map[string]any
	for _, line := range strings.Split(s.Logs.String(), "\n") {
		if !strings.Contains(line, msg) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			tb.Fatalf("log line is not JSON: %s", line)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// linesWith returns the lines whose attribute key is value.
func linesWith(lines []map[string]any, key, value string) []map[string]any {
	var out []map[string]any
	for _, l := range lines {
		if l[key] == value {
			out = append(out, l)
		}
	}
	return out
}

// TestServer_FailureLog is issue 17's point 3, end to end on the real
// server: every refused credential (unknown, revoked, expired, rate
// limited) and every refused state change or heartbeat is logged once at
// info, with the reason, the credential's non-secret identifier or the run,
// and the client address; no secret is ever in the log.
func TestServer_FailureLog(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine string) {
		clock := latchkeytest.NewClock()
		s := MustRunMain(t, engine, func(m *main.Main) {
			m.Now = clock.Now
			m.FailedAuthPerAddr = 3 // so that the last step can be rate limited
		})
		var secrets []string
		newKey := func(name string, expires *time.Time) (id, key string) {
			in := map[string]any{"name": name}
			if expires != nil {
				in["expires_at"] = expires.UTC().Format(time.RFC3339)
			}
			var k struct{ ID, Key string }
			s.MustDo(t, s.AdminKey, "", qCreateKeyWithID, map[string]any{"input": in}, "create_api_key", &k)
			secrets = append(secrets, k.Key)
			return k.ID, k.Key
		}
		secrets = append(secrets, s.AdminKey)
		refused := func(cred, reason string) {
			t.Helper()
			s.Do(t, "/graphql", cred, "", qAuthInfoTenant, nil).mustFail(t, "UNAUTHENTICATED")
			lines := linesWith(logLines(t, s, "authentication failed"), "credential", latchkey.SecretIdentifier(cred))
			if len(lines) != 1 {
				t.Fatalf("%s: %d log lines for %s, want 1:\n%s", reason, len(lines), latchkey.SecretIdentifier(cred), s.Logs)
			}
			if l := lines[0]; l["level"] != "INFO" || l["reason"] != reason || l["addr"] != "127.0.0.1" {
				t.Errorf("%s: log line %v", reason, l)
			}
		}

		// Flow runs first, while the clock is where the runs' heartbeats are.
		createRun := func(locking any) string {
			var out struct{ ID string }
			s.MustDo(t, s.AdminKey, "", qCreateFlowRun, map[string]any{"input": map[string]any{
				"command": []string{"true"}, "version_locking": locking,
			}}, "create_flow_run", &out)
			return out.ID
		}
		setState := func(id string, version int, state, msg string) *gqlResponse {
			return s.Do(t, "/graphql", s.AdminKey, "", qSetFlowRunStates, map[string]any{"input": map[string]any{"states": []any{
				map[string]any{"flow_run_id": id, "version": version, "state": map[string]any{"type": state, "message": msg}},
			}}})
		}
		type runState struct {
			State          string  `json:"state"`
			StateMessage   *string `json:"state_message"`
			Version        int     `json:"version"`
			VersionLocking bool    `json:"version_locking"`
		}
		getRun := func(id string) runState {
			var runs []runState
			s.MustDo(t, s.AdminKey, "", qRunState, map[string]any{"id": id}, "flow_run", &runs)
			if len(runs) != 1 {
				t.Fatalf("run %s: %d rows", id, len(runs))
			}
			return runs[0]
		}
		const deployFailed = "Failed to deploy flow run: no such image"

		// The Prefect 1.0 agent's sequence on a run without locking (the
		// default): Submitted (1 to 2), then Failed with the version it
		// read before. The run ends Failed with the agent's message.
		run := createRun(nil)
		if r := setState(run, 1, "Submitted", "Submitted for execution"); len(r.Errors) != 0 {
			t.Fatalf("Submitted: %s", r.raw)
		}
		if r := setState(run, 1, "Failed", deployFailed); len(r.Errors) != 0 {
			t.Fatalf("Failed with the stale version: %s", r.raw)
		}
		if got := getRun(run); got.State != "Failed" || got.StateMessage == nil || *got.StateMessage != deployFailed || got.Version != 3 || got.VersionLocking {
			t.Fatalf("run = %+v", got)
		}
		// Refused: the run has finished; and its heartbeat.
		setState(run, 3, "Running", "").mustFail(t, "VERSION_LOCKING_ERROR")
		var hb struct{ Success bool }
		s.MustDo(t, s.AdminKey, "", agentHeartbeat(run), nil, "update_flow_run_heartbeat", &hb)
		if hb.Success {
			t.Error("heartbeat of a finished run succeeded")
		}
		// A run that asked for locking refuses the stale version.
		locked := createRun(true)
		if r := setState(locked, 1, "Submitted", ""); len(r.Errors) != 0 {
			t.Fatalf("Submitted: %s", r.raw)
		}
		setState(locked, 1, "Failed", deployFailed).mustFail(t, "VERSION_LOCKING_ERROR")
		if got := getRun(locked); got.State != "Submitted" || got.Version != 2 || !got.VersionLocking {
			t.Fatalf("locked run = %+v", got)
		}
		if r := setState(locked, 2, "Failed", deployFailed); len(r.Errors) != 0 {
			t.Fatalf("Failed with the current version: %s", r.raw)
		}

		changes := logLines(t, s, "flow run state change refused")
		if len(changes) != 2 || len(linesWith(changes, "flow_run_id", run)) != 1 || len(linesWith(changes, "flow_run_id", locked)) != 1 {
			t.Fatalf("state-change refusals logged: %v", changes)
		}
		for _, l := range changes {
			if l["level"] != "INFO" || l["code"] != string(latchkey.EVERSIONLOCK) || l["addr"] != "127.0.0.1" || l["reason"] == "" || l["user_id"] == "" {
				t.Errorf("refusal line %v", l)
			}
		}
		if l := linesWith(changes, "flow_run_id", locked)[0]; l["state"] != "Failed" || l["version"] != float64(1) || !strings.Contains(fmt.Sprint(l["reason"]), "not 1") {
			t.Errorf("stale-version line %v", l)
		}
		if hbs := logLines(t, s, "flow run heartbeat refused"); len(hbs) != 1 || hbs[0]["flow_run_id"] != run || hbs[0]["level"] != "INFO" {
			t.Errorf("heartbeat refusals logged: %v", hbs)
		}

		// Unknown key: well-formed, never issued.
		unknown, err := latchkey.NewSecret(rand.Reader, latchkey.PrefixUserKey)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, unknown)
		refused(unknown, "Invalid API key.")

		// Revoked key, and an access token minted from it.
		revokedID, revokedKey := newKey("to revoke", nil)
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		tenantID, _ := authInfoOf(t, s, revokedKey)
		s.MustDo(t, revokedKey, "", qSwitchTenant, map[string]any{"input": map[string]any{"tenant_id": tenantID}}, "switch_tenant", &tok)
		secrets = append(secrets, tok.AccessToken)
		var ok struct{ Success bool }
		s.MustDo(t, s.AdminKey, "", qRevokeKey, map[string]any{"input": map[string]any{"key_id": revokedID}}, "delete_api_key", &ok)
		refused(revokedKey, "Invalid API key.") // revoking deletes the key: it is as unknown as a guess
		refused(tok.AccessToken, "The API key or token this access token was issued from has been revoked.")

		// Rate limited: 127.0.0.1 has used up its budget (three failures
		// above), so its uncached
		// checks share the slow lane; with the lane held, the next check
		// is refused unchecked.
		s.Limiter.LaneSlots, s.Limiter.LaneWait = 1, 50*time.Millisecond // before the lane's first use
		release, err := s.Limiter.Gate(latchkey.NewContextWithClientInfo(context.Background(), latchkey.ClientInfo{Addr: "127.0.0.1"}))
		if err != nil {
			t.Fatalf("taking the slow lane: %v", err)
		}
		limited, err := latchkey.NewSecret(rand.Reader, latchkey.PrefixUserKey)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, limited)
		refused(limited, "Too many failed attempts; try again later.")
		release()

		// Expired key.
		in := clock.Now().Add(time.Hour)
		_, expiring := newKey("expiring", &in)
		if r := s.Do(t, "/graphql", expiring, "", qAuthInfoTenant, nil); len(r.Errors) != 0 {
			t.Fatalf("before it expires: %s", r.raw)
		}
		clock.Add(2 * time.Hour)
		refused(expiring, "API key expired.")

		// No secret, nor the secret part of one, is in the log.
		logs := s.Logs.String()
		for _, secret := range secrets {
			for _, part := range []string{secret, secret[4:], secret[:12], secret[len(secret)-16:]} {
				if strings.Contains(logs, part) {
					t.Errorf("the log holds a secret (%s)", latchkey.SecretIdentifier(secret))
				}
			}
		}
	})
}
