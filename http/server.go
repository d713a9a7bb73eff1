// Package http serves Latchkey over HTTP: the GraphQL API at / and
// /graphql, forward auth at /auth/verify (verify.go), the JWKS document,
// health and metrics, and the web UI.
package http

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server is Latchkey's HTTP server. Set its fields, then call Open.
type Server struct {
	// Addr is the listen address, e.g. "127.0.0.1:4200" or ":0".
	Addr string

	// Listener, if set, is served instead of listening on Addr, so that a
	// caller can bind the address before doing anything else. Close
	// closes it.
	Listener net.Listener

	// GraphQL handles API requests (POST at / and /graphql).
	GraphQL http.Handler

	// UI, if set, serves the web UI under /ui/.
	UI http.Handler

	// Tokens publishes the JWKS document, and signs the access tokens of
	// /auth/verify?token=1.
	Tokens latchkey.TokenService

	// AccessTokenTTL is the lifetime of the access tokens of
	// /auth/verify?token=1; zero means latchkey.DefaultAccessTokenTTL. It
	// must not exceed what Tokens allows.
	AccessTokenTTL time.Duration

	// Authn authenticates every GraphQL and UI request (see
	// Authenticator); its trusted proxies also decide the client address
	// the access log records. Nil: every request is anonymous, and a
	// request with a credential is refused.
	Authn *Authenticator

	// Tenants, if set, enables forward authentication at /auth/verify
	// (see verifier): it names the tenant a caller acts in.
	Tenants latchkey.TenantService

	// Events, if set, drops the access tokens /auth/verify?token=1 keeps
	// for a user when a change may revoke their credentials.
	Events latchkey.EventService

	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// HSTS makes every response carry Strict-Transport-Security: set it
	// when the public URL is https (TLS may end at a proxy in front).
	HSTS bool

	// Ping checks the database for /healthz; nil means always healthy.
	Ping func(ctx context.Context) error

	// Logger receives one line per request (never headers or bodies).
	Logger *slog.Logger

	// Registry receives request metrics and is served at /metrics; nil
	// disables both.
	Registry *prometheus.Registry

	ln       net.Listener
	server   *http.Server
	verify   *verifier
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// Open starts listening and serving in the background.
func (s *Server) Open() (err error) {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.ln = s.Listener; s.ln == nil {
		if s.ln, err = net.Listen("tcp", s.Addr); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	if s.Registry != nil {
		s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "status"})
		s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "latchkey_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"route"})
		if err := s.Registry.Register(s.requests); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
		if err := s.Registry.Register(s.duration); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	s.server = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := s.server.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// Close stops the server, waiting up to ctx's deadline for requests in flight.
func (s *Server) Close(ctx context.Context) error {
	if s.verify != nil {
		s.verify.close()
	}
	if s.server == nil {
		return nil
	}
	return s.server.Shutdown(ctx)
}

// URL returns the server's base URL, e.g. http://127.0.0.1:4200.
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	a := s.ln.Addr().(*net.TCPAddr)
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(a.Port))
}

// Handler returns the routed handler, for use without Open (tests, benchmarks).
func (s *Server) Handler() http.Handler {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Authn == nil {
		s.Authn = &Authenticator{}
	}
	mux := http.NewServeMux()
	if s.GraphQL != nil {
		api := s.Authn.API(s.GraphQL)
		mux.Handle("/graphql", s.route("graphql", api))
		mux.Handle("/{$}", s.route("graphql", api))
	}
	if s.Tenants != nil {
		// Forward auth, for any method (proxies ask with the client's),
		// behind the same middleware as the API. Envoy's ext_authz appends
		// the original path, hence the subtree.
		if s.verify == nil {
			now := s.Now
			if now == nil {
				now = time.Now
			}
			ttl := s.AccessTokenTTL
			if ttl <= 0 {
				ttl = latchkey.DefaultAccessTokenTTL
			}
			s.verify = newVerifier(s.Tenants, s.Tokens, ttl, s.Events, now, s.Logger)
		}
		verify := s.route("verify", s.Authn.API(s.verify))
		mux.Handle("/auth/verify", verify)
		mux.Handle("/auth/verify/", verify)
	}
	if s.UI != nil {
		// Prefect clients only POST to /; a browser landing there wants the UI.
		mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	}
	mux.Handle("GET /.well-known/jwks.json", s.route("jwks", http.HandlerFunc(s.handleJWKS)))
	mux.Handle("GET /healthz", s.route("healthz", http.HandlerFunc(s.handleHealthz)))
	if s.Registry != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))
	}
	if s.UI != nil {
		mux.Handle("/ui/", s.route("ui", s.Authn.UI(s.UI)))
	}
	mux.Handle("/", s.route("notfound", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Not found.", http.StatusNotFound)
	})))
	return mux
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	if s.Tokens == nil {
		http.Error(w, "Not found.", http.StatusNotFound)
		return
	}
	b, err := s.Tokens.JWKS(r.Context())
	if err != nil {
		s.Logger.Error("jwks", "err", err)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Write(b)
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if s.Ping != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.Ping(ctx); err != nil {
			s.Logger.Error("health check failed", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"status":"unavailable"}` + "\n"))
			return
		}
	}
	w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// route wraps h with the access log and metrics. It logs method, path,
// status, size and duration: never headers, query strings or bodies, which
// may carry credentials.
func (s *Server) route(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if s.HSTS {
			w.Header().Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				s.Logger.Error("panic serving request", "route", name, "panic", latchkey.RedactSecrets(fmt.Sprint(v)))
				if !rw.wrote {
					http.Error(rw, "Internal error.", http.StatusInternalServerError)
				}
			}
			end := time.Now()
			d := end.Sub(start)
			if s.requests != nil {
				s.requests.WithLabelValues(name, strconv.Itoa(rw.status)).Inc()
				s.duration.WithLabelValues(name).Observe(d.Seconds())
			}
			// The record goes to the handler directly: Logger.LogAttrs would
			// also capture the caller's PC, on every request, for a source
			// the access log never shows.
			// The client address is worked out again here rather than passed
			// in the context: that would copy the request once more.
			if ctx, lh := r.Context(), s.Logger.Handler(); lh.Enabled(ctx, slog.LevelInfo) {
				rec := slog.NewRecord(end, slog.LevelInfo, "request", 0)
				rec.AddAttrs(slog.String("method", r.Method), slog.String("path", r.URL.Path),
					slog.Int("status", rw.status), slog.Int("bytes", rw.n),
					slog.Duration("duration", d), slog.String("remote", s.Authn.clientAddr(r)))
				_ = lh.Handle(ctx, rec)
			}
		}()
		h.ServeHTTP(rw, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	n      int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	n, err := w.ResponseWriter.Write(b)
	w.n += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
