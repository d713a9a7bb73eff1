// Package graphql serves Latchkey's GraphQL API: the part of the Prefect
// Cloud 1.x API that deals with authentication, on gqlgen.
//
// The HTTP handler accepts the Prefect client's quirks (variables sent as a
// JSON-encoded string, queries at / and /graphql), authenticates the bearer
// credential, and always answers GraphQL errors with HTTP 200 and a
// non-empty errors list, with codes the Prefect client understands.
package graphql

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/latchkey/latchkey"
)

// Defaults for the Server's limits.
const (
	DefaultMaxBodyBytes  = 1 << 20 // 1 MiB
	DefaultMaxDepth      = 10
	DefaultMaxComplexity = 500
	DefaultMaxTokens     = 10000
	DefaultQueryCache    = 1000
)

// Server serves the GraphQL API over HTTP. Set the services and call
// Handler once; changing fields afterwards has no effect on that handler.
type Server struct {
	Auth            latchkey.AuthService
	Tenants         latchkey.TenantService
	Users           latchkey.UserService
	Memberships     latchkey.MembershipService
	ServiceAccounts latchkey.ServiceAccountService
	APIKeys         latchkey.APIKeyService
	APITokens       latchkey.APITokenService
	FlowRuns        latchkey.FlowRunService
	Agents          latchkey.AgentService
	Audit           latchkey.AuditService

	// Logger receives internal errors and panics, with secrets redacted.
	// Nil discards them.
	Logger *slog.Logger

	// MaxBodyBytes caps the request body; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64

	// MaxDepth caps how deeply fields nest; zero means DefaultMaxDepth.
	MaxDepth int

	// MaxComplexity caps gqlgen's complexity score (one per field);
	// zero means DefaultMaxComplexity.
	MaxComplexity int

	// MaxTokens caps the lexical tokens in a query; zero means
	// DefaultMaxTokens.
	MaxTokens int

	// DisableIntrospection turns off __schema and __type queries.
	DisableIntrospection bool

	// Failures, if set, is told of every refused refresh token.
	Failures FailureCounter
}

// Handler returns the HTTP handler for the API. Mount it at both / and
// /graphql, behind the authentication middleware (http.Authenticator's
// API), which has checked the request's credential before the handler
// runs: a request whose credential was refused is answered
// UNAUTHENTICATED without its body being read. It answers POST only;
// other methods get 405 with a short text.
func (s *Server) Handler() http.Handler {
	h := &handler{
		s:            s,
		logger:       s.Logger,
		maxBodyBytes: s.MaxBodyBytes,
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if h.maxBodyBytes <= 0 {
		h.maxBodyBytes = DefaultMaxBodyBytes
	}
	lim := &limits{maxDepth: s.MaxDepth, maxComplexity: s.MaxComplexity}
	if lim.maxDepth <= 0 {
		lim.maxDepth = DefaultMaxDepth
	}
	if lim.maxComplexity <= 0 {
		lim.maxComplexity = DefaultMaxComplexity
	}
	h.maxTokens = s.MaxTokens
	if h.maxTokens <= 0 {
		h.maxTokens = DefaultMaxTokens
	}
	lim.maxTokens = h.maxTokens
	lim.accepted = lru.New[struct{}](DefaultQueryCache)
	lim.scores = lru.New[int](DefaultQueryCache)

	exec := executor.New(NewExecutableSchema(Config{Resolvers: &resolver{s: s}}))
	exec.SetQueryCache(lru.New[*ast.QueryDocument](DefaultQueryCache))
	exec.SetParserTokenLimit(h.maxTokens)
	exec.SetErrorPresenter(func(ctx context.Context, err error) *gqlerror.Error {
		return presentError(h.logger, ctx, err)
	})
	exec.SetRecoverFunc(func(ctx context.Context, v any) error {
		return recoverPanic(h.logger, ctx, v)
	})
	if !s.DisableIntrospection {
		exec.Use(extension.Introspection{})
	}
	exec.Use(lim)
	exec.AroundFields(guardRootFields(!s.DisableIntrospection))
	h.exec = exec
	return h
}

// anonymousFields are the root fields that need no credential.
// refresh_token authenticates with the refresh token itself.
var anonymousFields = map[string]bool{
	"hello":         true,
	"refresh_token": true,
	"__typename":    true,
	"__schema":      true,
	"__type":        true,
}

// guardRootFields returns field middleware that fails every root field
// except anonymousFields with EUNAUTHENTICATED when the request carries no
// credential (services check again; this keeps anonymous callers out even
// of fields a service might answer without a caller), and fails __schema
// and __type with EFORBIDDEN unless introspection is on.
func guardRootFields(introspection bool) gql.FieldMiddleware {
	return func(ctx context.Context, next gql.Resolver) (any, error) {
		fc := gql.GetFieldContext(ctx)
		if fc == nil || (fc.Object != "Query" && fc.Object != "Mutation") {
			return next(ctx)
		}
		name := fc.Field.Name
		if !introspection && (name == "__schema" || name == "__type") {
			return nil, latchkey.Errorf(latchkey.EFORBIDDEN, "Introspection is disabled.")
		}
		if !anonymousFields[name] {
			if _, err := latchkey.RequireAuth(ctx); err != nil {
				return nil, err
			}
		}
		return next(ctx)
	}
}

type handler struct {
	s            *Server
	exec         *executor.Executor
	logger       *slog.Logger
	maxBodyBytes int64
	maxTokens    int

	// bufs recycles the buffers that request bodies are read into and
	// responses encoded in; see getBuf and putBuf.
	bufs sync.Pool
}

// maxPooledBuf is the largest buffer put back in the pool, so that one huge
// request does not pin its memory.
const maxPooledBuf = 64 << 10

func (h *handler) getBuf() *bytes.Buffer {
	if b, ok := h.bufs.Get().(*bytes.Buffer); ok {
		return b
	}
	return new(bytes.Buffer)
}

// putBuf recycles b. Nothing may refer to its bytes afterwards.
func (h *handler) putBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuf {
		b.Reset()
		h.bufs.Put(b)
	}
}

// request is the JSON body of a GraphQL request. Variables and extensions
// are decoded separately, with numbers kept as json.Number.
type request struct {
	Query         string          `json:"query"`
	OperationName string          `json:"operationName"`
	Variables     json.RawMessage `json:"variables"`
	Extensions    json.RawMessage `json:"extensions"`
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			err := recoverPanic(h.logger, r.Context(), v)
			h.writeErrors(w, http.StatusOK, presentError(h.logger, r.Context(), err))
		}
	}()

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = io.WriteString(w, "Latchkey GraphQL API: POST a JSON body {\"query\": ..., \"variables\": ...}.\n")
		return
	}

	// A refused credential is answered before anything is read.
	ctx := r.Context()
	if err := latchkey.CredentialFromContext(ctx).Err; err != nil {
		h.writeErrors(w, http.StatusOK, presentError(h.logger, ctx, err))
		return
	}

	start := gql.Now()
	params, status, err := h.readRequest(w, r)
	if err != nil {
		h.writeErrors(w, status, presentError(h.logger, ctx, err))
		return
	}
	params.Headers = r.Header
	params.ReadTime = gql.TraceTiming{Start: start, End: gql.Now()}

	ctx = gql.StartOperationTrace(ctx)
	opCtx, errs := h.exec.CreateOperationContext(ctx, params)
	if errs != nil {
		h.writeResponse(w, h.exec.DispatchError(gql.WithOperationContext(ctx, opCtx), errs))
		return
	}
	responses, ctx := h.exec.DispatchOperation(ctx, opCtx)
	resp := responses(ctx)
	if resp == nil {
		// Only when the request's context ended: the client is gone.
		resp = &gql.Response{Errors: gqlerror.List{presentError(h.logger, ctx, errors.New("graphql: no response: "+fmt.Sprint(ctx.Err())))}}
	}
	h.writeResponse(w, resp)
}

// readRequest reads and decodes the body. On failure it returns the HTTP
// status to answer with: 413 for a body over the limit, 400 for one that is
// not a GraphQL request at all.
func (h *handler) readRequest(w http.ResponseWriter, r *http.Request) (*gql.RawParams, int, error) {
	// Everything decoded from the body is copied out of it (strings,
	// json.RawMessage), so its buffer is recycled on return.
	buf := h.getBuf()
	defer h.putBuf(buf)
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, h.maxBodyBytes))
	body := buf.Bytes()
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, http.StatusRequestEntityTooLarge, latchkey.Errorf(latchkey.ETOOLARGE,
			"Request body too large: the limit is %d bytes.", h.maxBodyBytes)
	} else if err != nil {
		return nil, http.StatusBadRequest, latchkey.Errorf(latchkey.EINVALID, "Could not read the request body.")
	}

	var req request
	if err := decodeRequest(body, &req); err != nil {
		return nil, http.StatusBadRequest, errNotGraphQLRequest()
	}
	vars, err := decodeVariables(req.Variables)
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	var ext map[string]any
	if raw := bytes.TrimSpace(req.Extensions); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		if err := decodeNumbers(raw, &ext); err != nil {
			return nil, http.StatusBadRequest, errNotGraphQLRequest()
		}
	}
	return &gql.RawParams{
		Query:         req.Query,
		OperationName: req.OperationName,
		Variables:     vars,
		Extensions:    ext,
	}, 0, nil
}

// decodeRequest decodes body into req exactly as json.Unmarshal(body, req)
// does: the same field values, and an error exactly when Unmarshal returns
// one (though not the same error). The common case, an object whose keys
// are spelt exactly as request's fields, with strings or nulls for query and
// operationName, is decoded without reflection; anything else (another key
// or spelling, top-level value or value type) is left to json.Unmarshal.
// Nothing in req refers to body afterwards.
func decodeRequest(body []byte, req *request) error {
	if !json.Valid(body) {
		return errors.New("graphql: request body is not valid JSON")
	}
	// Unmarshal leaves the fields body does not mention as they were, so
	// the fast path starts from *req too, and sets it only on success.
	if r := *req; decodeSimpleRequest(body, &r) {
		*req = r
		return nil
	}
	u := *req // a copy escapes to the heap, so that req need not
	err := json.Unmarshal(body, &u)
	*req = u
	return err
}

// decodeSimpleRequest decodes the valid JSON text body into r and reports
// whether it is the common case of decodeRequest. If not, r is partly set.
func decodeSimpleRequest(body []byte, r *request) bool {
	i := skipJSONSpace(body, 0)
	if body[i] != '{' {
		return false
	}
	for body[i] != '}' {
		// body[i] is the opening brace or a comma: a member follows, or
		// the closing brace of an empty object.
		if i = skipJSONSpace(body, i+1); body[i] == '}' {
			break
		}
		end := jsonValueEnd(body, i)
		key := body[i+1 : end-1] // escaped keys match no case: fall back
		i = skipJSONSpace(body, skipJSONSpace(body, end)+1)
		end = jsonValueEnd(body, i)
		value := body[i:end]
		switch string(key) {
		case "query":
			if !decodeJSONString(value, &r.Query) {
				return false
			}
		case "operationName":
			if !decodeJSONString(value, &r.OperationName) {
				return false
			}
		case "variables": // as Unmarshal does, null is stored as "null"
			r.Variables = bytes.Clone(value)
		case "extensions":
			r.Extensions = bytes.Clone(value)
		default:
			return false
		}
		i = skipJSONSpace(body, end)
	}
	return true
}

// decodeJSONString decodes the valid JSON value v into *s as Unmarshal
// does, and reports whether v was a string or null (which leaves *s as it
// was); Unmarshal refuses anything else.
func decodeJSONString(v []byte, s *string) bool {
	switch v[0] {
	case 'n':
		return true
	case '"':
		if inner := v[1 : len(v)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			*s = string(inner)
			return true
		}
		// Escapes, or invalid UTF-8 for Unmarshal to replace with U+FFFD.
		// Into a local, so that s, and the caller's request, need not
		// escape to the heap.
		var t string
		if err := json.Unmarshal(v, &t); err != nil {
			return false
		}
		*s = t
		return true
	}
	return false
}

// skipJSONSpace returns the index of the first byte of b from i on that is
// not JSON whitespace, or len(b).
func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// jsonValueEnd returns the index just past the JSON value that starts at
// b[i], in the valid JSON text b.
func jsonValueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		for i++; b[i] != '"'; i++ {
			if b[i] == '\\' {
				i++
			}
		}
		return i + 1
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				i = jsonValueEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	}
	// A number, true, false or null: it ends at a delimiter.
	for i < len(b) && strings.IndexByte(" \t\n\r,}]", b[i]) < 0 {
		i++
	}
	return i
}

func errNotGraphQLRequest() error {
	return latchkey.Errorf(latchkey.EINVALID,
		"Request body is not a JSON GraphQL request: want {\"query\": ..., \"variables\": ...}.")
}

// decodeNumbers decodes the JSON value raw into v, keeping numbers as
// json.Number so that large integers survive.
func decodeNumbers(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

// decodeVariables accepts variables as a JSON object, as null or absent, or
// as a string holding JSON text, which is how the Prefect client sends them
// (json.dumps of a dict, or "null" when there are none).
func decodeVariables(raw json.RawMessage) (map[string]any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] == '"' {
		if bytes.Equal(raw, []byte(`"null"`)) || bytes.Equal(raw, []byte(`""`)) {
			return nil, nil // what the Prefect client sends without variables
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, latchkey.Errorf(latchkey.EINVALID, "variables is not valid JSON.")
		}
		raw = bytes.TrimSpace([]byte(s))
		if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
			return nil, nil
		}
	}
	if raw[0] != '{' {
		return nil, latchkey.Errorf(latchkey.EINVALID, "variables must be a JSON object, null, or a string holding one.")
	}
	var vars map[string]any
	if err := decodeNumbers(raw, &vars); err != nil {
		return nil, latchkey.Errorf(latchkey.EINVALID, "variables is not valid JSON.")
	}
	return vars, nil
}

// writeErrors answers with errors only and "data": null.
func (h *handler) writeErrors(w http.ResponseWriter, status int, errs ...*gqlerror.Error) {
	h.write(w, status, &gql.Response{Errors: errs})
}

// writeResponse answers a GraphQL response with HTTP 200, whatever errors
// it holds: the Prefect client turns any other status into a traceback.
func (h *handler) writeResponse(w http.ResponseWriter, resp *gql.Response) {
	h.write(w, http.StatusOK, resp)
}

func (h *handler) write(w http.ResponseWriter, status int, resp *gql.Response) {
	if resp.Errors != nil && len(resp.Errors) == 0 {
		resp.Errors = nil // never "errors": []
	}
	if len(resp.Errors) == 0 && len(resp.Data) == 0 {
		resp.Errors = gqlerror.List{{Message: internalMessage, Extensions: map[string]any{"code": CodeInternal}}}
	}
	// Write copies b, so its buffer is recycled on return.
	buf := h.getBuf()
	defer h.putBuf(buf)
	var err error
	if dataOnly(resp) {
		// What json.Encoder writes for this response (Data is compact JSON
		// from gqlgen's marshalers), without its reflection.
		buf.WriteString(`{"data":`)
		buf.Write(resp.Data)
		buf.WriteString("}\n")
	} else {
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		err = enc.Encode(resp)
	}
	b := buf.Bytes()
	if err != nil {
		h.logger.Error("graphql: encode response", slog.String("error", latchkey.RedactSecrets(err.Error())))
		status = http.StatusOK
		b = []byte(`{"errors":[{"message":"Internal error.","extensions":{"code":"INTERNAL_SERVER_ERROR"}}],"data":null}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// dataOnly reports whether resp has data and nothing else to encode.
func dataOnly(resp *gql.Response) bool {
	return len(resp.Errors) == 0 && len(resp.Data) > 0 && resp.Label == "" && resp.Path == nil &&
		resp.HasNext == nil && len(resp.Extensions) == 0
}
