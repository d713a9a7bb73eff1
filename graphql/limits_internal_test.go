package graphql

import (
	"context"
	"fmt"
	"strings"
	"testing"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/latchkey/latchkey"
)

// mustValidateLimits validates l against the schema and returns a function
// that parses and validates a query into the operation context the executor
// would hand l.
func mustValidateLimits(t *testing.T, l *limits) func(query string, vars map[string]any) *gql.OperationContext {
	t.Helper()
	es := NewExecutableSchema(Config{Resolvers: &resolver{s: &Server{}}})
	if err := l.Validate(es); err != nil {
		t.Fatal(err)
	}
	return func(query string, vars map[string]any) *gql.OperationContext {
		t.Helper()
		doc, errs := gqlparser.LoadQueryWithRules(es.Schema(), query, nil)
		if errs != nil {
			t.Fatal(errs)
		}
		return &gql.OperationContext{RawQuery: query, Doc: doc, Operation: doc.Operations[0], Variables: vars}
	}
}

// The field limit gives the same verdict every time, for documents with or
// without variables and with one operation or several.
func TestLimits_Complexity(t *testing.T) {
	t.Parallel()
	l := &limits{maxDepth: 10, maxComplexity: 3, maxTokens: DefaultMaxTokens}
	opCtx := mustValidateLimits(t, l)
	ctx := context.Background()
	for _, tc := range []struct {
		query string
		vars  map[string]any
		ok    bool
	}{
		{"{ hello }", nil, true},
		{"{ a: hello b: hello c: hello d: hello }", nil, false},
		{"query($slug: String) { tenant(where: {slug: {_eq: $slug}}) { id } a: hello b: hello }", map[string]any{"slug": "x"}, false},
		{"query A { hello }\nquery B { hello }", nil, true},
	} {
		for range 2 {
			// As the executor calls them: before parsing, and after validation.
			err := l.MutateOperationParameters(ctx, &gql.RawParams{Query: tc.query, Variables: tc.vars})
			if err == nil {
				err = l.MutateOperationContext(ctx, opCtx(tc.query, tc.vars))
			}
			if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Message, "too complex")) {
				t.Errorf("%q: err = %v, want ok=%v", tc.query, err, tc.ok)
			}
		}
	}
}

// The document cache keeps short query texts; those of callers without a
// credential in a small part of their own, which never pushes out the
// authenticated callers' texts.
func TestDocCache(t *testing.T) {
	t.Parallel()
	c := newDocCache(10)
	anon := context.Background()
	authed := latchkey.NewContextWithAuth(anon, &latchkey.Auth{User: &latchkey.User{ID: "u"}})
	long := "{ hello }\n#" + strings.Repeat("x", maxCachedQuery)
	doc := &ast.QueryDocument{}
	c.Add(anon, "{ a: hello }", doc)
	c.Add(authed, "{ b: hello }", doc)
	c.Add(authed, long, doc)
	c.Add(anon, long, doc)
	for _, tc := range []struct {
		query string
		want  bool
	}{{"{ a: hello }", true}, {"{ b: hello }", true}, {long, false}} {
		if got, ok := c.Get(authed, tc.query); ok != tc.want || (ok && got != doc) {
			t.Errorf("%.20q cached: %v, want %v", tc.query, ok, tc.want)
		}
	}
	// Many anonymous texts: they push out one another, never "{ b: hello }".
	for i := range 10 * anonymousDocCache {
		c.Add(anon, fmt.Sprintf("{ a%d: hello }", i), doc)
	}
	if _, ok := c.Get(anon, "{ b: hello }"); !ok {
		t.Error("anonymous texts pushed out an authenticated caller's")
	}
	if _, ok := c.Get(anon, "{ a: hello }"); ok {
		t.Error("the anonymous part kept more than its size")
	}
}
