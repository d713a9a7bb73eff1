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
	"sync"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/latchkey/latchkey"
)

// Defaults for the Server's limits.
const (
	DefaultMaxBodyBytes = 1 << 20 // 1 MiB
	// DefaultMaxAnonymousBodyBytes is the body limit without a credential:
	// the Prefect client's refresh_token mutation, the largest request it
	// sends anonymously, is about 2 KB with its access token.
	DefaultMaxAnonymousBodyBytes = 64 << 10
	DefaultMaxDepth              = 10
	DefaultMaxComplexity         = 500
	DefaultMaxTokens             = 10000
	DefaultQueryCache            = 1000
)

// Server serves the GraphQL API over HTTP. Set the services and call
// Handler once; changing fields afterwards has no effect on that handler.
type Server struct {
	Auth            latchkey.AuthService
	Tenants         latchkey.TenantService
	Users           latchkey.UserService
	Memberships     latchkey.MembershipService
	Invitations     latchkey.InvitationService
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

	// MaxAnonymousBodyBytes caps the body of a request without an
	// Authorization header; zero means DefaultMaxAnonymousBodyBytes (or
	// MaxBodyBytes if that is smaller).
	MaxAnonymousBodyBytes int64

	// MaxDepth caps how deeply fields nest; zero means DefaultMaxDepth.
	MaxDepth int

	// MaxComplexity caps gqlgen's complexity score (one per field);
	// zero means DefaultMaxComplexity.
	MaxComplexity int

	// MaxCost caps how many values an operation could return, counting
	// each field once per row of the lists around it (see cost.go); zero
	// means DefaultMaxCost.
	MaxCost int

	// MaxTokens caps the lexical tokens in a query; zero means
	// DefaultMaxTokens.
	MaxTokens int

	// DisableIntrospection turns off __schema and __type queries.
	DisableIntrospection bool

	// Failures, if set, is told of every refused refresh token.
	Failures latchkey.FailureCounter
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
	h.maxAnonBodyBytes = s.MaxAnonymousBodyBytes
	if h.maxAnonBodyBytes <= 0 {
		h.maxAnonBodyBytes = DefaultMaxAnonymousBodyBytes
	}
	h.maxAnonBodyBytes = min(h.maxAnonBodyBytes, h.maxBodyBytes)
	lim := &limits{maxDepth: s.MaxDepth, maxComplexity: s.MaxComplexity, maxCost: s.MaxCost}
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
	lim.docs = newDocCache(DefaultQueryCache)

	exec := executor.New(NewExecutableSchema(Config{Resolvers: &resolver{s: s}}))
	exec.SetQueryCache(lim.docs)
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
	h.authLimits = authenticatedLimits(h.maxTokens)
	h.anonLimits = anonymousLimits(h.maxTokens)
	return h
}

// anonymousFields are the root fields that need no credential.
// refresh_token authenticates with the refresh token itself. Introspection
// (__schema, __type) is for authenticated callers only: it is expensive and
// tells an anonymous caller nothing it needs.
var anonymousFields = map[string]bool{
	"hello":         true,
	"refresh_token": true,
	"__typename":    true,
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

	// maxAnonBodyBytes is the body limit for anonymous requests.
	maxAnonBodyBytes int64

	// bufs recycles the buffers that request bodies are read into and
	// responses encoded in; see getBuf and putBuf.
	bufs sync.Pool

	// decs recycles JSON decoders; see getDecoder.
	decs sync.Pool

	// authLimits and anonLimits bound the input of requests with and
	// without a credential.
	authLimits, anonLimits inputLimits
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

// readRequest reads and decodes the body within the input limits that
// apply to the caller (see inputLimits), and checks the query text against
// them before anything parses it. On failure it returns the HTTP status to
// answer with: 413 for a body over the byte limit, 400 for one that is not
// a GraphQL request at all, and 200 for a request whose input values or
// query are over the limits (a GraphQL error REQUEST_TOO_LARGE, as for the
// depth and complexity limits: the Prefect client shows those).
func (h *handler) readRequest(w http.ResponseWriter, r *http.Request) (*gql.RawParams, int, error) {
	lim, maxBody := &h.authLimits, h.maxBodyBytes
	if h.anonymous(r) {
		lim, maxBody = &h.anonLimits, h.maxAnonBodyBytes
	}

	// Everything decoded from the body is copied out of it (strings), so
	// its buffer is recycled on return.
	buf := h.getBuf()
	defer h.putBuf(buf)
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, http.StatusRequestEntityTooLarge, latchkey.Errorf(latchkey.ETOOLARGE,
			"Request body too large: the limit is %d bytes%s.", maxBody, lim.hint())
	} else if err != nil {
		return nil, http.StatusBadRequest, latchkey.Errorf(latchkey.EINVALID, "Could not read the request body.")
	}

	dec := h.getDecoder(buf)
	params, over, err := decodeRequest(dec, lim)
	h.putDecoder(dec)
	if over {
		return nil, http.StatusOK, err
	} else if err != nil {
		return nil, http.StatusBadRequest, err
	}
	if err := checkQuery(params.Query, lim); err != nil {
		return nil, http.StatusOK, err
	}
	return params, 0, nil
}

// anonymous reports whether r has no authenticated caller (no credential,
// or a refresh token, which authenticates no caller): such requests get
// the small limits.
func (h *handler) anonymous(r *http.Request) bool {
	return latchkey.AuthFromContext(r.Context()) == nil
}

// docCache is the executor's cache of parsed and validated documents by
// query text. Parsing and validating a query costs about twice what the
// rest of an auth_info request does, and clients send the same few texts
// over and over. Since the texts are the caller's to choose, it keeps only
// short ones (which bounds its memory), and those of callers without a
// verified credential (refresh_token, which authenticates in its resolver)
// in a small part of their own: they can churn that part, never fill the
// authenticated callers' part or push its texts out.
type docCache struct {
	authed, anon *lru.LRU[*ast.QueryDocument]
}

// maxCachedQuery is the longest query text docCache keeps;
// anonymousDocCache is how many texts of callers without a credential it
// keeps (Prefect's refresh_token text is one).
const (
	maxCachedQuery    = 4 << 10
	anonymousDocCache = 16
)

func newDocCache(size int) docCache {
	return docCache{authed: lru.New[*ast.QueryDocument](size), anon: lru.New[*ast.QueryDocument](anonymousDocCache)}
}

// Get implements graphql.Cache.
func (c docCache) Get(ctx context.Context, query string) (*ast.QueryDocument, bool) {
	if doc, ok := c.authed.Get(ctx, query); ok {
		return doc, true
	}
	return c.anon.Get(ctx, query)
}

// Add implements graphql.Cache: it keeps a short query's document in the
// part of the caller's kind.
func (c docCache) Add(ctx context.Context, query string, doc *ast.QueryDocument) {
	if len(query) > maxCachedQuery {
		return
	} else if latchkey.AuthFromContext(ctx) != nil {
		c.authed.Add(ctx, query, doc)
	} else {
		c.anon.Add(ctx, query, doc)
	}
}

// getDecoder returns a JSON decoder reading buf, which it parses in place.
func (h *handler) getDecoder(buf *bytes.Buffer) *jsontext.Decoder {
	if dec, ok := h.decs.Get().(*jsontext.Decoder); ok {
		dec.Reset(buf)
		return dec
	}
	return jsontext.NewDecoder(buf)
}

// putDecoder recycles dec, letting go of the buffer it read.
func (h *handler) putDecoder(dec *jsontext.Decoder) {
	dec.Reset(http.NoBody)
	h.decs.Put(dec)
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
