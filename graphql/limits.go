package graphql

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/complexity"
	gql "github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/latchkey/latchkey"
)

// limits is a gqlgen extension that refuses, before anything is resolved,
// operations nested deeper than maxDepth, selecting more than maxComplexity
// fields, or costing more than maxCost (fields times the rows of the lists
// around them, see listComplexity). Introspection fields (__schema, __type)
// do not count towards depth: the validator caps their depth on its own.
//
// Some of gqlgen's validation rules cost more than linear time
// (overlapping-field merging is quadratic in a selection set's size, and
// naive fragment expansion is exponential in a chain of fragments each
// spreading the next twice). So MutateOperationParameters parses the query
// once, in linear time, and refuses it before validation if its fields,
// with each fragment expanded, or its depth are over the limits (checkSize).
// That count is never below gqlgen's own complexity score (one per field),
// so after validation only the cost, which depends on the variables, is
// left to compute: MutateOperationContext walks the operation once for it.
type limits struct {
	maxDepth      int
	maxComplexity int
	maxTokens     int

	// docs is the executor's cache of parsed and validated documents, by
	// query text: each of them passed checkSize with these limits (the
	// executor asks MutateOperationParameters before it parses), so a text
	// found there is not parsed a second time. Nil checks every text.
	docs gql.Cache[*ast.QueryDocument]

	// maxCost caps the cost; zero means DefaultMaxCost. costES scores
	// costs (the schema with listComplexity's functions); Validate sets it.
	maxCost int
	costES  gql.ExecutableSchema
}

var _ interface {
	gql.HandlerExtension
	gql.OperationParameterMutator
	gql.OperationContextMutator
} = (*limits)(nil)

// MutateOperationParameters implements graphql.OperationParameterMutator:
// the pre-validation size check.
func (l *limits) MutateOperationParameters(ctx context.Context, params *gql.RawParams) *gqlerror.Error {
	if l.docs != nil {
		if _, ok := l.docs.Get(ctx, params.Query); ok {
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
	return l.checkSize(doc)
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
	l.costES = NewExecutableSchema(Config{Schema: es.Schema(), Complexity: listComplexity()})
	if l.maxCost <= 0 {
		l.maxCost = DefaultMaxCost
	}
	return nil
}

// MutateOperationContext implements graphql.OperationContextMutator: the
// cost check, on the validated operation with its variables.
func (l *limits) MutateOperationContext(ctx context.Context, opCtx *gql.OperationContext) *gqlerror.Error {
	if c := l.cost(ctx, opCtx); c > l.maxCost {
		return tooLarge("Query is too complex: it could return %d values (each field once per row of the lists around it), over the limit of %d. Ask for fewer rows with limit, or select fewer fields.", c, l.maxCost)
	}
	return nil
}

// cost returns the operation's cost (see listComplexity).
func (l *limits) cost(ctx context.Context, opCtx *gql.OperationContext) int {
	return complexity.Calculate(ctx, l.costES, opCtx.Operation, opCtx.Variables)
}

func tooLarge(format string, args ...any) *gqlerror.Error {
	err := latchkey.Errorf(latchkey.ETOOLARGE, format, args...)
	return &gqlerror.Error{Message: err.Message, Err: err}
}
