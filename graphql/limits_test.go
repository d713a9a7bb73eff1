package graphql_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/graphql"
)

// Documents whose validation would cost more than linear time are refused
// before gqlgen validates them, and quickly.
func TestLimits_RefusedBeforeValidation(t *testing.T) {
	e := MustNewEnv(t)
	// A chain of 40 fragments, each spreading the next twice: 2^40 fields
	// if expanded naively.
	var b strings.Builder
	b.WriteString("query { ...F0 }\n")
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&b, "fragment F%d on Query { ...F%d ...F%d }\n", i, i+1, i+1)
	}
	b.WriteString("fragment F40 on Query { hello }\n")
	bomb := b.String()

	// A fragment cycle must not hang the pre-check (validation reports it).
	cycle := "query { ...A }\nfragment A on Query { hello ...B }\nfragment B on Query { ...A }"

	// Thousands of identical fields in a fragment nobody uses: validation
	// would still compare them pairwise.
	unused := "query { hello }\nfragment U on Query {" + strings.Repeat(" hello", 2000) + " }"

	for name, tc := range map[string]struct {
		query, code, msg string
	}{
		"fragment bomb":   {bomb, graphql.CodeRequestTooLarge, "too complex"},
		"unused fragment": {unused, graphql.CodeRequestTooLarge, "too complex"},
		"fragment cycle":  {cycle, "GRAPHQL_VALIDATION_FAILED", "within itself"},
	} {
		t.Run(name, func(t *testing.T) {
			for _, cred := range []string{"", goodKey} {
				start := time.Now()
				r := e.QueryAs(t, cred, nil, tc.query, nil)
				if d := time.Since(start); d > time.Second {
					t.Fatalf("took %s", d)
				}
				if r.Code() != tc.code || !strings.Contains(r.Errors[0].Message, tc.msg) {
					t.Fatalf("code=%q: %s", r.Code(), r.Body)
				}
			}
		})
	}
}

// Within the limits, a query with fragments still runs, every time.
func TestLimits_AcceptedWithFragments(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	q := "query { ...A ...A }\nfragment A on Query { hello ...B }\nfragment B on Query { hello }"
	for i := 0; i < 2; i++ {
		r := e.QueryAs(t, "", nil, q, nil)
		if len(r.Errors) > 0 || !strings.Contains(r.Body, `"hello"`) {
			t.Fatalf("run %d: %s", i, r.Body)
		}
	}
}
