package http_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	lkhttp "github.com/latchkey/latchkey/http"
	"github.com/prometheus/client_golang/prometheus"
)

// TestServer_MetricsPerRouteAndStatus checks the metric series: one
// counter per route and status, one histogram per route, and no series for
// a route before its first request.
func TestServer_MetricsPerRouteAndStatus(t *testing.T) {
	t.Parallel()
	status := http.StatusOK
	gql := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) })
	s := &lkhttp.Server{
		Addr: "127.0.0.1:0", GraphQL: gql,
		Logger:   slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Registry: prometheus.NewRegistry(),
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	h := s.Handler()
	for _, st := range []int{200, 200, 200, 413, 200, 413, 999} {
		status = st
		do(t, h, "POST", "/graphql", nil)
	}
	do(t, h, "GET", "/nope", nil)
	metrics := do(t, h, "GET", "/metrics", nil).Body.String()
	for _, want := range []string{
		`latchkey_http_requests_total{route="graphql",status="200"} 4`,
		`latchkey_http_requests_total{route="graphql",status="413"} 2`,
		`latchkey_http_requests_total{route="graphql",status="999"} 1`,
		`latchkey_http_requests_total{route="notfound",status="404"} 1`,
		`latchkey_http_request_duration_seconds_count{route="graphql"} 7`,
		`latchkey_http_request_duration_seconds_count{route="notfound"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, metrics)
		}
	}
	if strings.Contains(metrics, `route="healthz"`) {
		t.Errorf("series for a route never requested:\n%s", metrics)
	}
}
