package graphql

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/complexity"
	gql "github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/latchkey/latchkey"
)

// limits is a gqlgen extension that rejects operations nested deeper than
// maxDepth, with a complexity score (one per field) above maxComplexity, or
// with a cost (fields times the rows of the lists around them, see
// listComplexity) above maxCost, before anything is resolved. Introspection fields (__schema, __type) do not count towards
// depth: the validator caps their depth on its own.
//
// Those checks run after gqlgen has validated the document, and some
// validation rules cost more than linear time (overlapping-field merging is
// quadratic in a selection set's size, and naive fragment expansion is
// exponential in a chain of fragments each spreading the next twice). So
// MutateOperationParameters first parses the query once, in linear time,
// and refuses it before validation if its expanded size or depth is over
// the limits, expanding each fragment only once. Accepted query texts are
// remembered so the hot path parses nothing twice.
type limits struct {
	maxDepth      int
	maxComplexity int
	maxTokens     int
	es            gql.ExecutableSchema
	accepted      *lru.LRU[struct{}]

	// scores caches complexity scores by query text, for documents of one
	// operation without variables: those score the same every time.
	scores *lru.LRU[int]

	// maxCost caps the cost; zero means DefaultMaxCost. costES scores
	// costs (the schema with listComplexity's functions) and costs caches
	// them as scores does; Validate sets both.
	maxCost int
	costES  gql.ExecutableSchema
	costs   *lru.LRU[int]
}

var _ interface {
	gql.HandlerExtension
	gql.OperationParameterMutator
	gql.OperationContextMutator
} = (*limits)(nil)

// MutateOperationParameters implements graphql.OperationParameterMutator:
// the pre-validation size check.
func (l *limits) MutateOperationParameters(ctx context.Context, params *gql.RawParams) *gqlerror.Error {
	if l.accepted != nil {
		if _, ok := l.accepted.Get(ctx, params.Query); ok {
			return nil
		}
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: params.Query}, l.maxTokens)
	if err != nil {
		if strings.Contains(err.Error(), "token limit") {
			return tooLarge("Query is too large: it has more than %d tokens.", l.maxTokens)
		}
		return nil // gqlgen reports the parse error itself
	}
	if err := l.checkSize(doc); err != nil {
		return err
	}
	if l.accepted != nil {
		l.accepted.Add(ctx, params.Query, struct{}{})
	}
	return nil
}

// checkSize refuses documents whose fields, counted as written, or whose
// operations, with fragments expanded, are over the limits.
func (l *limits) checkSize(doc *ast.QueryDocument) *gqlerror.Error {
	w := &sizeWalker{
		frags: make(map[string]*ast.FragmentDefinition, len(doc.Fragments)),
		memo:  make(map[string]size, len(doc.Fragments)),
		busy:  make(map[string]bool),
		limit: l.maxComplexity,
	}
	written := 0
	for _, f := range doc.Fragments {
		w.frags[f.Name] = f
		written += countWritten(f.SelectionSet)
	}
	for _, op := range doc.Operations {
		written += countWritten(op.SelectionSet)
	}
	if written > l.maxComplexity {
		return tooLarge("Query is too complex: it selects more than %d fields.", l.maxComplexity)
	}
	for _, op := range doc.Operations {
		sz := w.set(op.SelectionSet)
		if sz.fields > l.maxComplexity {
			return tooLarge("Query is too complex: it selects more than %d fields.", l.maxComplexity)
		}
		if sz.depth > l.maxDepth {
			return tooLarge("Query is too deep: it nests fields more than %d levels.", l.maxDepth)
		}
	}
	return nil
}

// countWritten counts the fields written in set, not following spreads.
func countWritten(set ast.SelectionSet) int {
	n := 0
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			n += 1 + countWritten(sel.SelectionSet)
		case *ast.InlineFragment:
			n += countWritten(sel.SelectionSet)
		}
	}
	return n
}

// size is the expanded field count and depth of a selection set.
type size struct{ fields, depth int }

// sizeWalker measures selection sets with every fragment expanded, in time
// linear in the document: each fragment is measured once. Counts saturate
// just above limit. A fragment cycle counts as nothing here; validation
// rejects it.
type sizeWalker struct {
	frags map[string]*ast.FragmentDefinition
	memo  map[string]size
	busy  map[string]bool
	limit int
}

func (w *sizeWalker) set(set ast.SelectionSet) size {
	var out size
	for _, sel := range set {
		var sub size
		switch sel := sel.(type) {
		case *ast.Field:
			sub = w.set(sel.SelectionSet)
			sub.fields++
			sub.depth++
			if strings.HasPrefix(sel.Name, "__") {
				sub.depth = 0 // introspection depth is capped by the validator
			}
		case *ast.InlineFragment:
			sub = w.set(sel.SelectionSet)
		case *ast.FragmentSpread:
			sub = w.fragment(sel.Name)
		}
		out.fields = min(out.fields+sub.fields, w.limit+1)
		out.depth = max(out.depth, sub.depth)
	}
	return out
}

func (w *sizeWalker) fragment(name string) size {
	if sz, ok := w.memo[name]; ok {
		return sz
	}
	def := w.frags[name]
	if def == nil || w.busy[name] {
		return size{}
	}
	w.busy[name] = true
	sz := w.set(def.SelectionSet)
	delete(w.busy, name)
	w.memo[name] = sz
	return sz
}

// ExtensionName implements graphql.HandlerExtension.
func (l *limits) ExtensionName() string { return "LatchkeyLimits" }

// Validate implements graphql.HandlerExtension.
func (l *limits) Validate(es gql.ExecutableSchema) error {
	l.es = es
	l.costES = NewExecutableSchema(Config{Schema: es.Schema(), Complexity: listComplexity()})
	if l.maxCost <= 0 {
		l.maxCost = DefaultMaxCost
	}
	if l.scores != nil && l.costs == nil {
		l.costs = lru.New[int](DefaultQueryCache)
	}
	return nil
}

// MutateOperationContext implements graphql.OperationContextMutator.
func (l *limits) MutateOperationContext(ctx context.Context, opCtx *gql.OperationContext) *gqlerror.Error {
	if d := selectionDepth(opCtx.Operation.SelectionSet, l.maxDepth+1); d > l.maxDepth {
		return tooLarge("Query is too deep: it nests fields more than %d levels.", l.maxDepth)
	}
	if c := l.complexity(ctx, opCtx, l.es, l.scores); c > l.maxComplexity {
		return tooLarge("Query is too complex: complexity %d exceeds the limit of %d.", c, l.maxComplexity)
	}
	if l.costES != nil {
		if c := l.complexity(ctx, opCtx, l.costES, l.costs); c > l.maxCost {
			return tooLarge("Query is too complex: it could return %d values (each field once per row of the lists around it), over the limit of %d. Ask for fewer rows with limit, or select fewer fields.", c, l.maxCost)
		}
	}
	return nil
}

// complexity returns the operation's complexity score as es computes it,
// from cache when it can be cached.
func (l *limits) complexity(ctx context.Context, opCtx *gql.OperationContext, es gql.ExecutableSchema, cache *lru.LRU[int]) int {
	cacheable := cache != nil && opCtx.Doc != nil && len(opCtx.Doc.Operations) == 1 &&
		len(opCtx.Operation.VariableDefinitions) == 0
	if cacheable {
		if c, ok := cache.Get(ctx, opCtx.RawQuery); ok {
			return c
		}
	}
	c := complexity.Calculate(ctx, es, opCtx.Operation, opCtx.Variables)
	if cacheable {
		cache.Add(ctx, opCtx.RawQuery, c)
	}
	return c
}

func tooLarge(format string, args ...any) *gqlerror.Error {
	err := latchkey.Errorf(latchkey.ETOOLARGE, format, args...)
	return &gqlerror.Error{Message: err.Message, Err: err}
}

// selectionDepth returns how many levels of fields set nests, counting a
// field with no sub-selection as one, and stopping once it reaches stop.
// Fragments count as the fields they contain.
func selectionDepth(set ast.SelectionSet, stop int) int {
	if stop <= 0 {
		return 0
	}
	deepest := 0
	for _, sel := range set {
		d := 0
		switch sel := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(sel.Name, "__") {
				continue
			}
			d = 1 + selectionDepth(sel.SelectionSet, stop-1)
		case *ast.InlineFragment:
			d = selectionDepth(sel.SelectionSet, stop)
		case *ast.FragmentSpread:
			if sel.Definition != nil {
				d = selectionDepth(sel.Definition.SelectionSet, stop)
			}
		}
		if d > deepest {
			deepest = d
			if deepest >= stop {
				return deepest
			}
		}
	}
	return deepest
}
