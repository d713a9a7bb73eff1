package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/graphql"
)

// limitsResponse is an answer to a hostile request.
type limitsResponse struct {
	status  int
	raw     string
	code    string
	message string
	elapsed time.Duration
}

// postRaw posts body to /graphql with cred (if any) and decodes the
// answer, which must be JSON without an empty errors list.
func postRaw(t *testing.T, s *TestServer, cred string, body []byte) *limitsResponse {
	t.Helper()
	req, err := http.NewRequest("POST", s.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	client := &http.Client{Timeout: 20 * time.Second}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("post %d bytes: %v", len(body), err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := &limitsResponse{status: resp.StatusCode, raw: string(raw), elapsed: time.Since(start)}
	var r struct {
		Errors []struct {
			Message    string `json:"message"`
			Extensions struct {
				Code string `json:"code"`
			} `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("status %d, not JSON: %.300s", resp.StatusCode, raw)
	}
	if strings.Contains(out.raw, `"errors":[]`) {
		t.Fatalf("empty errors: %.300s", raw)
	}
	if len(r.Errors) > 0 {
		out.code, out.message = r.Errors[0].Extensions.Code, r.Errors[0].Message
	}
	if strings.Contains(out.raw, "API_ERROR") {
		t.Fatalf("API_ERROR: %.300s", raw)
	}
	return out
}

// mustRefuse checks that r was refused with status, code and a message
// containing want.
func (r *limitsResponse) mustRefuse(t *testing.T, status int, code, want string) {
	t.Helper()
	if r.status != status || r.code != code || !strings.Contains(r.message, want) {
		t.Fatalf("got %d %s %q, want %d %s %q: %.300s", r.status, r.code, r.message, status, code, want, r.raw)
	}
}

// mustBeHealthy checks that the server still answers /healthz and a normal
// query.
func mustBeHealthy(t *testing.T, s *TestServer) {
	t.Helper()
	resp, err := http.Get(s.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	s.MustDo(t, s.AdminKey, "", qAuthInfoTenant, nil, "auth_info", nil)
}

func gqlBody(t *testing.T, query string, variables any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"query": query, "variables": variables})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLimits_BodyTooLarge(t *testing.T) {
	t.Parallel()
	s := MustRunMain(t, "sqlite")
	// A valid request, padded past 1 MiB.
	body := gqlBody(t, "query { hello }"+strings.Repeat(" ", graphql.DefaultMaxBodyBytes), "null")
	for _, cred := range []string{"", s.AdminKey} {
		r := postRaw(t, s, cred, body)
		want := fmt.Sprintf("Request body too large: the limit is %d bytes.", graphql.DefaultMaxBodyBytes)
		if cred == "" {
			want = fmt.Sprintf("Request body too large: the limit is %d bytes (the limit for requests without a credential).", graphql.DefaultMaxAnonymousBodyBytes)
		}
		r.mustRefuse(t, http.StatusRequestEntityTooLarge, graphql.CodeRequestTooLarge, want)
		mustBeHealthy(t, s)
	}
	// Just under the limit is fine.
	body = gqlBody(t, "query { hello }", "null")
	body = append(body[:len(body)-1], []byte(`, "pad": "`+strings.Repeat("x", graphql.DefaultMaxBodyBytes-len(body)-20)+`"}`)...)
	if len(body) > graphql.DefaultMaxBodyBytes {
		t.Fatalf("padded body is %d bytes", len(body))
	}
	var hello string
	s.MustDo(t, "", "", "query { hello }", nil, "hello", &hello)
	req, _ := http.NewRequest("POST", s.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.AdminKey) // anonymous bodies have a smaller limit
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(raw), hello) {
		t.Fatalf("%d-byte body: %d %.300s", len(body), resp.StatusCode, raw)
	}
}

func TestLimits_TooDeep(t *testing.T) {
	t.Parallel()
	s := MustRunMain(t, "sqlite")
	// user { memberships { user { memberships { ... { id } } } } }: 49
	// nested fields and a leaf, 50 levels.
	var q strings.Builder
	q.WriteString("query {")
	for i := range 49 {
		q.WriteString([]string{" user {", " memberships {"}[i%2])
	}
	q.WriteString(" id" + strings.Repeat(" }", 50))
	query := q.String()
	for _, cred := range []string{"", s.AdminKey} {
		r := postRaw(t, s, cred, gqlBody(t, query, "null"))
		r.mustRefuse(t, http.StatusOK, graphql.CodeRequestTooLarge, "Query is too deep: it nests fields more than 10 levels.")
		mustBeHealthy(t, s)
	}
}

// aliases returns a query selecting field n times, each under its own alias.
func aliases(n int, field string) string {
	var b strings.Builder
	b.WriteString("query {")
	for i := range n {
		fmt.Fprintf(&b, " a%d: %s", i, field)
	}
	b.WriteString(" }")
	return b.String()
}

func TestLimits_TooWide(t *testing.T) {
	t.Parallel()
	s := MustRunMain(t, "sqlite")
	for _, tc := range []struct {
		name, query, want string
	}{
		// 5,000 aliased fields are 15,000 tokens: the parser stops first.
		{"5000 aliases", aliases(5000, "hello"), "Query is too large: it has more than 10000 tokens."},
		// 3,000 fit in the token limit and are refused for complexity.
		{"3000 aliases", aliases(3000, "hello"), "Query is too complex: it selects more than 500 fields."},
		{"600 aliased lists", aliases(600, "tenant { id }"), "Query is too complex"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, cred := range []string{"", s.AdminKey} {
				r := postRaw(t, s, cred, gqlBody(t, tc.query, "null"))
				if r.status != http.StatusOK || !strings.Contains(r.message, tc.want) || r.code != graphql.CodeRequestTooLarge {
					t.Fatalf("got %d %s %q, want %q: %.300s", r.status, r.code, r.message, tc.want, r.raw)
				}
				mustBeHealthy(t, s)
			}
		})
	}
}

func TestLimits_HugeVariables(t *testing.T) {
	t.Parallel()
	s := MustRunMain(t, "sqlite")
	t.Run("over the body limit", func(t *testing.T) {
		vars, _ := json.Marshal(map[string]any{"input": map[string]any{"name": strings.Repeat("k", graphql.DefaultMaxBodyBytes)}})
		r := postRaw(t, s, s.AdminKey, gqlBody(t, qCreateKey, string(vars)))
		r.mustRefuse(t, http.StatusRequestEntityTooLarge, graphql.CodeRequestTooLarge, "Request body too large")
		mustBeHealthy(t, s)
	})
	t.Run("a huge value under the limit", func(t *testing.T) {
		vars, _ := json.Marshal(map[string]any{"input": map[string]any{"name": strings.Repeat("k", 900_000)}})
		r := postRaw(t, s, s.AdminKey, gqlBody(t, qCreateKey, string(vars)))
		r.mustRefuse(t, http.StatusOK, graphql.CodeBadUserInput, "API key name must be at most 200 characters.")
		if len(r.raw) > 4096 {
			t.Fatalf("the %d-byte answer echoes the input", len(r.raw))
		}
		mustBeHealthy(t, s)
	})
	t.Run("deeply nested JSON", func(t *testing.T) {
		vars := `{"input": ` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}`
		r := postRaw(t, s, s.AdminKey, gqlBody(t, qCreateKey, vars))
		r.mustRefuse(t, http.StatusOK, graphql.CodeRequestTooLarge,
			fmt.Sprintf("Input value too deep: variables nests objects and lists more than %d levels.", graphql.MaxInputDepth))
		mustBeHealthy(t, s)
	})
	t.Run("many variables", func(t *testing.T) {
		m := map[string]any{}
		for i := range 50_000 {
			m[fmt.Sprintf("v%d", i)] = i
		}
		vars, _ := json.Marshal(m)
		// Unused variables are ignored, quickly.
		r := postRaw(t, s, s.AdminKey, gqlBody(t, "query { hello }", string(vars)))
		if r.status != http.StatusOK || r.code != "" || r.elapsed > 5*time.Second {
			t.Fatalf("%d after %v: %.300s", r.status, r.elapsed, r.raw)
		}
		mustBeHealthy(t, s)
	})
}

// Expensive queries must be refused cheaply: these are small, anonymous
// requests. Before the graphql package counts fragment spreads once per
// fragment and caps the number of fields before validating, they cost
// seconds of CPU each (exponential in the fragment chain; quadratic in the
// number of identical fields, in gqlparser's OverlappingFieldsCanBeMerged).
func TestLimits_ExpensiveQueriesAreCheap(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("burns CPU until the limit is fixed")
	}
	s := MustRunMain(t, "sqlite")
	bomb := func(n int) string {
		var b strings.Builder
		b.WriteString("query { ...F0 }\n")
		for i := range n {
			fmt.Fprintf(&b, "fragment F%d on Query { hello ...F%d ...F%d }\n", i, i+1, i+1)
		}
		fmt.Fprintf(&b, "fragment F%d on Query { hello }\n", n)
		return b.String()
	}
	for _, tc := range []struct {
		name, query string
	}{
		{"fragment bomb", bomb(22)},
		{"identical fields", "query {" + strings.Repeat(" hello", 4000) + " }"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := postRaw(t, s, "", gqlBody(t, tc.query, "null"))
			if r.status != http.StatusOK || r.code != graphql.CodeRequestTooLarge {
				t.Errorf("got %d %s %q: %.300s", r.status, r.code, r.message, r.raw)
			}
			if r.elapsed > time.Second {
				t.Errorf("a %d-byte anonymous query took %v to refuse (a denial of service); refuse it before validation and complexity (graphql/limits.go)", len(tc.query), r.elapsed.Round(time.Millisecond))
			}
			mustBeHealthy(t, s)
		})
	}
}
