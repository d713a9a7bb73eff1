package http_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/latchkey/latchkey"
	lkhttp "github.com/latchkey/latchkey/http"
	"github.com/latchkey/latchkey/mock"
	"github.com/prometheus/client_golang/prometheus"
)

// benchServer is a Server as `latchkey server` runs it (JSON access log
// through the redacting handler, metrics) whose services answer from
// memory, so that a benchmark measures the HTTP layer only: routing, access
// log, metrics, the authentication middleware and the handler.
func benchServer(b *testing.B, gql http.Handler) http.Handler {
	b.Helper()
	user := &latchkey.User{ID: "5b0f6c9e-1c1d-4e7a-9b0f-2a6d1e4c7b90", Kind: latchkey.UserKindHuman}
	auth := &mock.AuthService{AuthenticateFn: func(ctx context.Context, credential, tenantID string) (*latchkey.Auth, error) {
		return &latchkey.Auth{User: user, TenantID: "8f5b6c2e-3c1d-4e7a-9b0f-2a6d1e4c7b90", Role: latchkey.RoleUser,
			Kind: latchkey.CredentialAPIKey, APIKeyID: "2c4b7f0e-9a1d-4e7a-9b0f-2a6d1e4c7b90"}, nil
	}}
	tenants := &mock.TenantService{FindTenantByIDFn: func(ctx context.Context, id string) (*latchkey.Tenant, error) {
		return &latchkey.Tenant{ID: id, Slug: "acme", Name: "Acme"}, nil
	}}
	logger := slog.New(latchkey.NewRedactingHandler(slog.NewJSONHandler(io.Discard, nil)))
	s := &lkhttp.Server{
		Addr:     "127.0.0.1:0",
		GraphQL:  gql,
		Authn:    &lkhttp.Authenticator{Auth: auth, Logger: logger},
		Tenants:  tenants,
		Logger:   logger,
		Registry: prometheus.NewRegistry(),
	}
	if err := s.Open(); err != nil { // registers the metrics
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close(context.Background()) })
	return s.Handler()
}

// BenchmarkServer_Verify is /auth/verify with an API key through the whole
// handler (access log, metrics, middleware, verifier), without the network
// and with an AuthService that answers from memory.
func BenchmarkServer_Verify(b *testing.B) {
	h := benchServer(b, nil)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/auth/verify", nil)
		req.Header.Set("Authorization", "Bearer lku_notchecked")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || rec.Header().Get(lkhttp.HeaderVerifyRole) != "USER" {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	}
}

// BenchmarkServer_Route is what the server adds to a handler that does
// nothing (here the API's, without a credential): routing, access log,
// metrics and the middleware.
func BenchmarkServer_Route(b *testing.B) {
	h := benchServer(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/graphql", nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
