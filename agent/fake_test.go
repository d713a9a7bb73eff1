package agent_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// call is one request the fake API received.
type call struct {
	Op      string // the root field, e.g. "get_runs_in_queue"
	Query   string
	Vars    map[string]any
	Header  http.Header
	Answer  string
	Ordinal int
}

// fakeAPI is a scripted GraphQL server: Handle maps a root field to a
// function returning the response body. Unscripted fields fail the test.
type fakeAPI struct {
	changes // each call recorded
	t       testing.TB
	srv     *httptest.Server
	mu      sync.Mutex
	calls   []call
	Handle  map[string]func(c call) string
}

// Root fields the fake recognises, most specific first.
var fakeOps = []string{
	"update_flow_run_heartbeat", "set_flow_run_states", "write_run_logs", "get_runs_in_queue",
	"register_agent", "auth_info", "flow_run", "hello", "tenant", "user",
}

func newFakeAPI(t testing.TB) *fakeAPI {
	f := &fakeAPI{t: t, Handle: map[string]func(call) string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) URL() string { return f.srv.URL + "/graphql" }

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req struct {
		Query     string `json:"query"`
		Variables string `json:"variables"` // Prefect sends a JSON string
	}
	if err := json.Unmarshal(body, &req); err != nil {
		f.t.Errorf("fake API: body is not {query, variables: string}: %s", body)
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	c := call{Query: req.Query, Header: r.Header.Clone()}
	if req.Variables != "null" {
		if err := json.Unmarshal([]byte(req.Variables), &c.Vars); err != nil {
			f.t.Errorf("fake API: variables %q: %v", req.Variables, err)
		}
	}
	for _, op := range fakeOps {
		if strings.Contains(req.Query, op) {
			c.Op = op
			break
		}
	}
	f.mu.Lock()
	h := f.Handle[c.Op]
	c.Ordinal = len(f.callsOf(c.Op))
	f.mu.Unlock()
	if h == nil {
		f.t.Errorf("fake API: unexpected %s: %s", c.Op, req.Query)
		c.Answer = `{"errors":[{"message":"unexpected","extensions":{"code":"BAD_USER_INPUT"}}],"data":null}`
	} else {
		c.Answer = h(c)
	}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	f.changed()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, c.Answer)
}

// callsOf returns the calls of op; f.mu must be held.
func (f *fakeAPI) callsOf(op string) []call {
	var out []call
	for _, c := range f.calls {
		if c.Op == op {
			out = append(out, c)
		}
	}
	return out
}

// Calls returns the calls of op so far.
func (f *fakeAPI) Calls(op string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.callsOf(op)
}

// Ops returns the root fields called, in order.
func (f *fakeAPI) Ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		out = append(out, c.Op)
	}
	return out
}

const unauthenticated = `{"errors":[{"message":"Invalid API key.","extensions":{"code":"UNAUTHENTICATED"}}],"data":null}`

func data(v string) string { return `{"data":` + v + `}` }

// input returns vars.input as a map.
func (c call) input() map[string]any {
	m, _ := c.Vars["input"].(map[string]any)
	return m
}
