package graphql

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/latchkey/latchkey"
)

// Bounds on a request's input values: the shape of variables (JSON) and of
// argument literals in the query text, checked while the body is tokenized
// and before the query is parsed, so that no shape costs more than its
// bytes. The costs they stop are superlinear: gqlgen's variable coercion
// and filter building took about 1 s for a 9,000-level _not chain (81 KB)
// and 0.8 s for a 40,000-wide _or.
//
// The numbers are generous for real clients. The Prefect 1.x client's
// deepest input is the agent's flow_run filter, five levels
// (where → _or → [ ] → task_runs → state_start_time → _lte); its widest
// lists are flow-run ids in _in and write_run_logs batches, hundreds of
// items. Depth 32 is six times the deepest, 5,000 members ten times the
// widest list; an authenticated request with more is refused whole.
const (
	// MaxInputDepth caps how many levels of objects and lists one input
	// value nests: a variable's value, an argument's literal, an
	// extension. The variables object itself is not a level.
	MaxInputDepth = 32

	// MaxInputWidth caps the members of one input object, the items of
	// one input list, and the arguments or variable definitions of one
	// field or operation. The variables and extensions objects themselves
	// are bounded only by MaxInputValues: the engine ignores the members
	// the query does not declare, and declarations count towards width.
	MaxInputWidth = 5000

	// MaxInputValues caps the JSON values in a request body outside
	// query and operationName (variables, extensions, unknown members).
	MaxInputValues = 100_000
)

// Bounds for anonymous requests (no Authorization header), besides the
// body limit (DefaultMaxAnonymousBodyBytes), which also bounds their tokens
// to what 64 KiB holds. Such a caller may use only hello, refresh_token and
// __typename: the Prefect client's refresh_token mutation nests its input
// two levels deep and holds 3 values.
const (
	AnonymousMaxInputDepth = 8
	AnonymousMaxInputWidth = 100
	AnonymousMaxValues     = 256
)

// inputLimits bounds what one request may send; see the constants.
type inputLimits struct {
	anonymous bool
	maxDepth  int
	maxWidth  int
	maxValues int
	maxTokens int
}

func authenticatedLimits(maxTokens int) inputLimits {
	return inputLimits{maxDepth: MaxInputDepth, maxWidth: MaxInputWidth, maxValues: MaxInputValues, maxTokens: maxTokens}
}

func anonymousLimits(maxTokens int) inputLimits {
	return inputLimits{
		anonymous: true,
		maxDepth:  AnonymousMaxInputDepth,
		maxWidth:  AnonymousMaxInputWidth,
		maxValues: AnonymousMaxValues,
		maxTokens: maxTokens,
	}
}

// hint is appended to the messages of limits that are smaller for
// anonymous requests.
func (l *inputLimits) hint() string {
	if l.anonymous {
		return " (the limit for requests without a credential)"
	}
	return ""
}

func (l *inputLimits) errTooDeep(where string) error {
	return latchkey.Errorf(latchkey.ETOOLARGE,
		"Input value too deep: %s nests objects and lists more than %d levels%s.", where, l.maxDepth, l.hint())
}

func (l *inputLimits) errTooWide(where string) error {
	return latchkey.Errorf(latchkey.ETOOLARGE,
		"Input value too large: an object or list in %s has more than %d members%s.", where, l.maxWidth, l.hint())
}

func (l *inputLimits) errTooManyValues() error {
	return latchkey.Errorf(latchkey.ETOOLARGE,
		"Request too large: variables and extensions hold more than %d values%s.", l.maxValues, l.hint())
}

// errInvalidBody marks a body that is not JSON or not a GraphQL request.
var errInvalidBody = errors.New("graphql: not a JSON GraphQL request")

func errNotGraphQLRequest() error {
	return latchkey.Errorf(latchkey.EINVALID,
		"Request body is not a JSON GraphQL request: want {\"query\": ..., \"variables\": ...}.")
}

func errDuplicateMember(err error) error {
	var se *jsontext.SyntacticError
	where := "an object"
	if errors.As(err, &se) && se.JSONPointer != "" {
		where = string(se.JSONPointer)
	}
	return latchkey.Errorf(latchkey.EINVALID,
		"Request body has a duplicate member name at %s: send each member once.", truncate(where, 64))
}

// jsonInput reads input values from a JSON text within inputLimits.
type jsonInput struct {
	dec    *jsontext.Decoder
	lim    *inputLimits
	values int // values read so far, in the body and a variables string
	where  string
}

// decodeRequest decodes the JSON body that dec reads into the parameters of
// a GraphQL request. The body is an object with the members query and
// operationName (strings or null), variables (an object, null, or a string
// holding either, as the Prefect client sends them) and extensions (an
// object or null); other members are read within the limits and ignored.
// Numbers are kept as json.Number. A duplicate member name anywhere, data
// after the object, and invalid UTF-8 are refused.
//
// The error is EINVALID for a body that is not a GraphQL request and
// ETOOLARGE for one over lim; tooLarge says which.
func decodeRequest(dec *jsontext.Decoder, lim *inputLimits) (params *gql.RawParams, tooLarge bool, err error) {
	params = &gql.RawParams{}
	in := jsonInput{dec: dec, lim: lim}
	fail := func(err error) (*gql.RawParams, bool, error) {
		switch {
		case latchkey.ErrorCode(err) == latchkey.ETOOLARGE:
			return nil, true, err
		case errors.Is(err, jsontext.ErrDuplicateName):
			return nil, false, errDuplicateMember(err)
		case latchkey.ErrorCode(err) == latchkey.EINVALID:
			return nil, false, err
		}
		return nil, false, errNotGraphQLRequest()
	}

	switch dec.PeekKind() {
	case 'n': // as json.Unmarshal did, null is an empty request
		if _, err := dec.ReadToken(); err != nil {
			return fail(err)
		}
		if err := in.end(); err != nil {
			return fail(err)
		}
		return params, false, nil
	case '{':
	default:
		return fail(errInvalidBody)
	}
	if _, err := dec.ReadToken(); err != nil {
		return fail(err)
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return fail(err)
		}
		switch name.String() {
		case "query":
			err = in.stringOrNull(&params.Query)
		case "operationName":
			err = in.stringOrNull(&params.OperationName)
		case "variables":
			params.Variables, err = in.variables()
		case "extensions":
			in.where = "extensions"
			params.Extensions, err = in.objectOrNull()
		default:
			in.where = "the request body"
			_, err = in.value(1)
		}
		if err != nil {
			return fail(err)
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return fail(err)
	}
	if err := in.end(); err != nil {
		return fail(err)
	}
	return params, false, nil
}

// end checks that nothing but whitespace follows the value read.
func (in *jsonInput) end() error {
	if _, err := in.dec.ReadToken(); err != io.EOF {
		return errInvalidBody
	}
	return nil
}

func (in *jsonInput) stringOrNull(s *string) error {
	tok, err := in.dec.ReadToken()
	if err != nil {
		return err
	}
	switch tok.Kind() {
	case 'n':
	case '"':
		*s = tok.String()
	default:
		return errInvalidBody
	}
	return nil
}

// variables reads the variables member: an object, null, or a string that
// holds JSON text of either ("null" and "" are what the Prefect client
// sends without variables).
func (in *jsonInput) variables() (map[string]any, error) {
	in.where = "variables"
	switch in.dec.PeekKind() {
	case 'n', '{':
		return in.objectOrNull()
	case '"':
	default:
		if _, err := in.dec.ReadValue(); err != nil {
			return nil, err
		}
		return nil, errBadVariables()
	}
	raw, err := in.dec.ReadValue() // not a Token: "null" needs no copy
	if err != nil {
		return nil, err
	}
	if string(raw) == `"null"` || string(raw) == `""` {
		return nil, nil
	}
	text, err := jsontext.AppendUnquote(nil, raw)
	if err != nil {
		return nil, err
	}
	text = bytes.TrimSpace(text)
	if len(text) == 0 || string(text) == "null" {
		return nil, nil
	}
	if text[0] != '{' {
		return nil, errBadVariables()
	}
	inner := jsonInput{dec: jsontext.NewDecoder(bytes.NewBuffer(text)), lim: in.lim, values: in.values, where: "variables"}
	vars, err := inner.objectOrNull()
	if err == nil {
		err = inner.end()
	}
	in.values = inner.values
	switch {
	case err == nil:
		return vars, nil
	case latchkey.ErrorCode(err) == latchkey.ETOOLARGE:
		return nil, err
	case errors.Is(err, jsontext.ErrDuplicateName):
		return nil, latchkey.Errorf(latchkey.EINVALID, "variables has a duplicate member name: send each variable once.")
	}
	return nil, latchkey.Errorf(latchkey.EINVALID, "variables is not valid JSON.")
}

func errBadVariables() error {
	return latchkey.Errorf(latchkey.EINVALID, "variables must be a JSON object, null, or a string holding one.")
}

// objectOrNull reads an object whose members are values at level 1, or
// null (a nil map).
func (in *jsonInput) objectOrNull() (map[string]any, error) {
	switch in.dec.PeekKind() {
	case 'n':
		_, err := in.dec.ReadToken()
		return nil, err
	case '{':
		v, err := in.container(0)
		m, _ := v.(map[string]any)
		return m, err
	}
	if _, err := in.dec.ReadValue(); err != nil {
		return nil, err
	}
	if in.where == "variables" {
		return nil, errBadVariables()
	}
	return nil, errInvalidBody
}

// value reads one JSON value into what encoding/json would decode into an
// any (with numbers as json.Number). An object or list in it is at nesting
// level depth.
func (in *jsonInput) value(depth int) (any, error) {
	if in.values++; in.values > in.lim.maxValues {
		return nil, in.lim.errTooManyValues()
	}
	switch in.dec.PeekKind() {
	case '{', '[':
		return in.container(depth)
	}
	tok, err := in.dec.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case '"':
		return tok.String(), nil
	case '0':
		return json.Number(tok.String()), nil
	case 't', 'f':
		return tok.Bool(), nil
	case 'n':
		return nil, nil
	}
	return nil, errInvalidBody
}

// container reads an object or list at nesting level depth, refusing it
// before reading any further if it is too deep, and as soon as it has too
// many members (level 0, the variables or extensions object, has no member
// limit but the values limit). The recursion is bounded by maxDepth.
func (in *jsonInput) container(depth int) (any, error) {
	if depth > in.lim.maxDepth {
		return nil, in.lim.errTooDeep(in.where)
	}
	open, err := in.dec.ReadToken()
	if err != nil {
		return nil, err
	}
	if open.Kind() == '{' {
		m := make(map[string]any)
		for in.dec.PeekKind() != '}' {
			if depth > 0 && len(m) >= in.lim.maxWidth {
				return nil, in.lim.errTooWide(in.where)
			}
			name, err := in.dec.ReadToken()
			if err != nil {
				return nil, err
			}
			key := name.String()
			v, err := in.value(depth + 1)
			if err != nil {
				return nil, err
			}
			m[key] = v
		}
		_, err := in.dec.ReadToken()
		return m, err
	}
	l := []any{}
	for in.dec.PeekKind() != ']' {
		if len(l) >= in.lim.maxWidth {
			return nil, in.lim.errTooWide(in.where)
		}
		v, err := in.value(depth + 1)
		if err != nil {
			return nil, err
		}
		l = append(l, v)
	}
	_, err = in.dec.ReadToken()
	return l, err
}
