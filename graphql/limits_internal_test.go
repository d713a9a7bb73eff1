package graphql

import (
	"context"
	"strings"
	"testing"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2"
)

// Complexity scores of variable-free single-operation documents are cached
// by query text and give the same verdict every time; others are scored on
// every request.
func TestLimits_ComplexityCache(t *testing.T) {
	t.Parallel()
	es := NewExecutableSchema(Config{Resolvers: &resolver{s: &Server{}}})
	l := &limits{maxDepth: 10, maxComplexity: 3, es: es, scores: lru.New[int](10)}
	ctx := context.Background()
	opCtx := func(query string, vars map[string]any) *gql.OperationContext {
		t.Helper()
		doc, errs := gqlparser.LoadQueryWithRules(es.Schema(), query, nil)
		if errs != nil {
			t.Fatal(errs)
		}
		return &gql.OperationContext{RawQuery: query, Doc: doc, Operation: doc.Operations[0], Variables: vars}
	}
	for _, tc := range []struct {
		query  string
		vars   map[string]any
		ok     bool
		cached bool
	}{
		{"{ hello }", nil, true, true},
		{"{ a: hello b: hello c: hello d: hello }", nil, false, true},
		{"query($slug: String) { tenant(where: {slug: {_eq: $slug}}) { id } a: hello b: hello }", map[string]any{"slug": "x"}, false, false},
		{"query A { hello }\nquery B { hello }", nil, true, false},
	} {
		for range 2 {
			err := l.MutateOperationContext(ctx, opCtx(tc.query, tc.vars))
			if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Message, "too complex")) {
				t.Errorf("%q: err = %v, want ok=%v", tc.query, err, tc.ok)
			}
		}
		if _, cached := l.scores.Get(ctx, tc.query); cached != tc.cached {
			t.Errorf("%q: cached = %v, want %v", tc.query, cached, tc.cached)
		}
	}
}
