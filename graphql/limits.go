package graphql

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/complexity"
	gql "github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/latchkey/latchkey"
)

// limits is a gqlgen extension that rejects operations nested deeper than
// maxDepth or with a complexity score above maxComplexity, before anything
// is resolved. Introspection fields (__schema, __type) do not count towards
// depth: the validator caps their depth on its own.
type limits struct {
	maxDepth      int
	maxComplexity int
	es            gql.ExecutableSchema
}

var _ interface {
	gql.HandlerExtension
	gql.OperationContextMutator
} = (*limits)(nil)

// ExtensionName implements graphql.HandlerExtension.
func (l *limits) ExtensionName() string { return "LatchkeyLimits" }

// Validate implements graphql.HandlerExtension.
func (l *limits) Validate(es gql.ExecutableSchema) error {
	l.es = es
	return nil
}

// MutateOperationContext implements graphql.OperationContextMutator.
func (l *limits) MutateOperationContext(ctx context.Context, opCtx *gql.OperationContext) *gqlerror.Error {
	if d := selectionDepth(opCtx.Operation.SelectionSet, l.maxDepth+1); d > l.maxDepth {
		return tooLarge("Query is too deep: it nests fields more than %d levels.", l.maxDepth)
	}
	if c := complexity.Calculate(ctx, l.es, opCtx.Operation, opCtx.Variables); c > l.maxComplexity {
		return tooLarge("Query is too complex: complexity %d exceeds the limit of %d.", c, l.maxComplexity)
	}
	return nil
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
