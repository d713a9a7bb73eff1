package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// BaselineBody is the fixed JSON body the baseline handler answers with:
// the size and shape of an auth_info response.
const BaselineBody = `{"data":{"auth_info":{"tenant_id":"8f5b6c2e-3c1d-4e7a-9b0f-2a6d1e4c7b90"}}}` + "\n"

// BaselineHandler returns a bare net/http handler that drains the request
// body and answers BaselineBody: the most a Go HTTP server can do on this
// machine, which every scenario is compared with.
func BaselineHandler() http.Handler {
	body := []byte(BaselineBody)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}

// Server is an HTTP server on a loopback port.
type Server struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:41234.
	URL string
	srv *http.Server
}

// StartBaseline serves BaselineHandler on 127.0.0.1 at a free port, with
// the same timeouts as Latchkey's server, until Close.
func StartBaseline() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("baseline: listen: %w", err)
	}
	s := &Server{
		URL: "http://" + ln.Addr().String(),
		srv: &http.Server{
			Handler:           BaselineHandler(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
		},
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(fmt.Sprintf("baseline: serve: %v", err))
		}
	}()
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
