package graphql

import (
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/lexer"

	"github.com/latchkey/latchkey"
)

// checkQuery lexes query once, before anything parses it, and refuses it
// with ETOOLARGE if it has more tokens, or has argument values
// nested deeper or wider than lim allows. Its cost is linear in the text
// and stops at the first limit passed.
//
// Inside parentheses (arguments, variable definitions, directive
// arguments) every brace or bracket opens a value (or a list type, which
// counts the same): their nesting is the value's depth. An object's or
// argument list's members are counted by their colons, a list's items by
// the tokens that start a value.
func checkQuery(query string, lim *inputLimits) error {
	tokens := 0 // without comments, as the parser counts them
	type level struct {
		open  lexer.Type // ParenL, BraceL or BracketL
		value bool       // within parentheses: a value or list type
		width int
	}
	stack := make([]level, 0, 16)
	valueDepth := 0
	lx := lexer.New(&ast.Source{Input: query})
	afterDollar := false
	for {
		tok, err := lx.ReadToken()
		if err != nil || tok.Kind == lexer.EOF {
			return nil // the parser reports lexical errors
		}
		if tok.Kind == lexer.Comment {
			continue
		}
		if tokens++; tokens > lim.maxTokens {
			return latchkey.Errorf(latchkey.ETOOLARGE,
				"Query is too large: it has more than %d tokens.", lim.maxTokens)
		}
		// Count one member of the innermost value or argument list.
		member := false
		if n := len(stack); n > 0 {
			top := stack[n-1]
			switch {
			case top.open == lexer.BracketL && top.value:
				member = !afterDollar && tok.Kind != lexer.BracketR && tok.Kind != lexer.Bang
			case top.open == lexer.BraceL && top.value, top.open == lexer.ParenL:
				member = tok.Kind == lexer.Colon
			}
			if member {
				stack[n-1].width++
				if stack[n-1].width > lim.maxWidth {
					return lim.errTooWide("the query")
				}
			}
		}
		afterDollar = tok.Kind == lexer.Dollar
		switch tok.Kind {
		case lexer.ParenL:
			stack = append(stack, level{open: lexer.ParenL})
		case lexer.BraceL, lexer.BracketL:
			value := len(stack) > 0 && (stack[len(stack)-1].open == lexer.ParenL || stack[len(stack)-1].value)
			if value {
				valueDepth++
				if valueDepth > lim.maxDepth {
					return lim.errTooDeep("an argument in the query")
				}
			}
			stack = append(stack, level{open: tok.Kind, value: value})
		case lexer.ParenR, lexer.BraceR, lexer.BracketR:
			if len(stack) == 0 {
				return nil // unbalanced: the parser reports it
			}
			if stack[len(stack)-1].value {
				valueDepth--
			}
			stack = stack[:len(stack)-1]
		}
	}
}
