// Package bench is Latchkey's load generator: a closed- or open-loop HTTP
// client that drives scenarios against servers on the loopback interface
// for a fixed time and reports throughput and latency, plus a bare
// net/http handler that serves as the baseline every scenario is compared
// with.
//
// A scenario is data (a URL, a body, a credential per request), so that
// the default client can write each request from bytes prepared once and
// read each answer with a minimal HTTP/1.1 parser, wrk-like, without
// allocating per request: on a machine whose cores it shares with the
// server under test, every microsecond the load generator spends is one
// the server cannot.
//
// RunSuite is `latchkey bench`: it seeds the server's database
// (sqldb.DB.Seed), builds Latchkey's scenarios, runs them in rounds and
// prints the report. cmd/latchkey parses its flags and starts the server.
package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/latchkey/latchkey"
)

// Defaults for the zero values of Options.
const (
	DefaultConcurrency = 64
	DefaultDuration    = 5 * time.Second
	DefaultWarmup      = time.Second
	DefaultTimeout     = 10 * time.Second
)

// Scenario is one kind of request that Run repeats: a POST of Body to URL
// with the headers of the Prefect 1.x client.
type Scenario struct {
	// Name labels the scenario in reports.
	Name string

	// URL (http://, loopback host) that every request is POSTed to, with
	// Body, Content-Type: application/json, X-Prefect-Core-Version: 1.4.1
	// and, if Credential is not nil, "Authorization: Bearer " +
	// Credential(w, i). The client refuses to dial a host that is not a
	// loopback address.
	URL  string
	Body []byte

	// Unique, if not empty, occurs exactly once in Body, and every request
	// replaces it with a text of the same length that no other request of
	// the run has (its worker and number in hexadecimal, padded with
	// zeros), e.g. for names that must not repeat. It must be at least 16
	// bytes long.
	Unique string

	// Credential returns the bearer credential of the i-th request of
	// worker w; nil sends no Authorization header. A credential with a
	// control character (CR, LF, ...) fails its request, unsent, with
	// the kind ErrBadCredential.
	Credential func(w, i int) string

	// Check inspects a complete response; a non-nil error counts the
	// request as failed, and its text (redacted) names the failure kind.
	// Nil accepts any 2xx status.
	Check func(status int, body []byte) error
}

// userAgent is the User-Agent of every request of both clients.
const userAgent = "latchkey-bench"

// ErrBadCredential fails a request whose credential would break its
// header (a control character such as CR or LF); it is never sent.
var ErrBadCredential = errors.New("bench: credential contains a control character, request not sent")

// validCredential reports whether cred can go into a header value as is:
// no control characters (which include CR and LF).
func validCredential(cred string) bool {
	for i := 0; i < len(cred); i++ {
		if c := cred[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// NewRequest returns the i-th request of worker w, as net/http's client
// sends it: what Run sends with an *http.Client.
func (sc Scenario) NewRequest(ctx context.Context, w, i int) (*http.Request, error) {
	var cred string
	if sc.Credential != nil {
		if cred = sc.Credential(w, i); !validCredential(cred) {
			return nil, ErrBadCredential
		}
	}
	return sc.newRequest(ctx, cred, w, i)
}

// uniqueAt returns where sc.Unique is in sc.Body, or -1 if it is empty.
func (sc Scenario) uniqueAt() int {
	if sc.Unique == "" {
		return -1
	}
	return bytes.Index(sc.Body, []byte(sc.Unique))
}

// fillUnique overwrites dst with w and i in hexadecimal, padded with
// zeros: the text of sc.Unique for the i-th request of worker w.
func fillUnique(dst []byte, w, i int) {
	const digits = "0123456789abcdef"
	v := uint64(w)<<32 | uint64(uint32(i))
	for k := len(dst) - 1; k >= 0; k-- {
		dst[k] = digits[v&15]
		v >>= 4
	}
}

// newRequest builds the i-th request of worker w with cred, which is
// ignored if sc.Credential is nil; the caller has checked cred
// (validCredential).
func (sc Scenario) newRequest(ctx context.Context, cred string, w, i int) (*http.Request, error) {
	body := sc.Body
	if at := sc.uniqueAt(); at >= 0 {
		body = bytes.Clone(body)
		fillUnique(body[at:at+len(sc.Unique)], w, i)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sc.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Prefect-Core-Version", "1.4.1")
	if sc.Credential != nil {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	return req, nil
}

// parseURL checks sc.URL: http://, a host, no user info.
func (sc Scenario) parseURL() (*url.URL, error) {
	u, err := url.Parse(sc.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL
		}
		return nil, fmt.Errorf("bench %s: invalid URL: %w", sc.Name, err)
	}
	switch {
	case u.Scheme != "http":
		return nil, fmt.Errorf("bench %s: URL must be http://", sc.Name)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("bench %s: URL has no host", sc.Name)
	case u.User != nil:
		return nil, fmt.Errorf("bench %s: URL must not carry user info", sc.Name)
	case strings.ContainsAny(u.RequestURI(), " \t"):
		return nil, fmt.Errorf("bench %s: URL has a space in its path or query", sc.Name)
	case sc.Unique != "" && (len(sc.Unique) < 16 || bytes.Count(sc.Body, []byte(sc.Unique)) != 1):
		return nil, fmt.Errorf("bench %s: Unique must be at least 16 bytes and occur once in Body", sc.Name)
	}
	return u, nil
}

// Options bound a run. The zero value uses the defaults above.
type Options struct {
	// Concurrency is the number of connections, each with one request in
	// flight at a time (a closed loop).
	Concurrency int

	// Warmup is run first and not measured; Duration is then measured.
	Warmup   time.Duration
	Duration time.Duration

	// Timeout caps each request. With an *http.Client, a request fails
	// Timeout after it started; with the direct client, which moves its
	// connection's deadline only about once per Timeout/4, a request that
	// gets no answer fails between 3/4 of Timeout and Timeout after it
	// started being sent (see directConn).
	Timeout time.Duration

	// Rate, if positive, makes the run open-loop: requests are scheduled
	// at Rate per second in all, evenly spaced from the start, whatever
	// the answers' latency, and each is sent by the next free connection.
	// A request's latency is then measured from its scheduled time, not
	// from when it could be sent, so that time spent waiting for a free
	// connection counts (no coordinated omission). Zero: closed loop,
	// each connection sending its next request when the previous answer
	// has arrived.
	Rate float64
}

func (o Options) withDefaults() Options {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Duration <= 0 {
		o.Duration = DefaultDuration
	}
	if o.Warmup < 0 {
		o.Warmup = 0
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// Result is what one Run of a scenario measured: requests that started
// after the warm-up and before the end, including failed ones.
type Result struct {
	Scenario    string
	Concurrency int
	// Rate is the open-loop schedule in requests per second; 0 for a
	// closed loop.
	Rate     float64
	Requests int64
	Errors   int64
	// ErrorKinds counts failures by kind (at most maxErrorKinds kinds).
	ErrorKinds map[string]int64
	// Elapsed runs from the end of the warm-up to the last measured
	// response.
	Elapsed            time.Duration
	P50, P90, P99, Max time.Duration

	// CPU is the CPU time the whole process (servers and load generator)
	// used meanwhile; 0 where it cannot be measured. Unlike throughput, it
	// hardly depends on what else the machine runs.
	CPU time.Duration

	lat []time.Duration // sorted
}

// RPS is the measured throughput: requests per second, failures included.
func (r *Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// CPUPerRequest is the process's CPU time per measured request.
func (r *Result) CPUPerRequest() time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Requests)
}

// OKRPS is the throughput of successful requests.
func (r *Result) OKRPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests-r.Errors) / r.Elapsed.Seconds()
}

const maxErrorKinds = 20

// Merge combines results of the same scenario measured in several rounds:
// requests, errors and elapsed times add up, and percentiles are taken
// over all the latencies.
func Merge(rs ...*Result) *Result {
	if len(rs) == 0 {
		return nil
	}
	out := &Result{Scenario: rs[0].Scenario, Concurrency: rs[0].Concurrency, Rate: rs[0].Rate, ErrorKinds: map[string]int64{}}
	for _, r := range rs {
		out.Requests += r.Requests
		out.Errors += r.Errors
		out.Elapsed += r.Elapsed
		out.CPU += r.CPU
		out.lat = append(out.lat, r.lat...)
		for k, n := range r.ErrorKinds {
			out.ErrorKinds[k] += n
		}
	}
	slices.Sort(out.lat)
	out.setPercentiles()
	return out
}

func (r *Result) setPercentiles() {
	r.P50, r.P90, r.P99, r.Max = percentile(r.lat, 50), percentile(r.lat, 90), percentile(r.lat, 99), percentile(r.lat, 100)
}

// percentile returns the nearest-rank p-th percentile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

// worker is one connection's share of a run.
type worker struct {
	lat        []time.Duration
	requests   int64
	errors     int64
	errorKinds map[string]int64
	lastDone   time.Time
	body       []byte // the last answer's body; reused
	// Without an *http.Client: this worker's connection and the bytes of
	// its current request (reused).
	dc  *directConn
	req []byte
}

func newWorker() *worker {
	return &worker{errorKinds: map[string]int64{}, lat: make([]time.Duration, 0, 4096), body: make([]byte, 0, 4096)}
}

func (w *worker) fail(kind string) {
	w.errors++
	kind = latchkey.RedactSecrets(kind)
	if len(kind) > 200 {
		kind = kind[:200] + "..."
	}
	if _, ok := w.errorKinds[kind]; ok || len(w.errorKinds) < maxErrorKinds {
		w.errorKinds[kind]++
	}
}

// Run drives sc with opt.Concurrency workers, each sending one request at
// a time over its own keep-alive connection of client, for opt.Warmup and
// then opt.Duration, and returns what it measured: as fast as answers come
// back (closed loop), or on opt.Rate's schedule (open loop). It stops by itself; ctx
// can stop it earlier (then it returns ctx's error). It returns an error
// at once if sc.URL is not an http:// URL with a host.
//
// With a nil client each worker dials its own connection (loopback only)
// and writes and reads on it itself, without net/http (see directConn):
// the lighter load generator, and the default of `latchkey bench`. The
// connections are closed when Run returns.
func Run(ctx context.Context, client *http.Client, sc Scenario, opt Options) (*Result, error) {
	opt = opt.withDefaults()
	u, err := sc.parseURL()
	if err != nil {
		return nil, err
	}
	var tgt *target
	if client == nil {
		tgt = newTarget(u, sc.Body, sc.uniqueAt(), len(sc.Unique), opt.Timeout)
	}
	start := time.Now()
	measureFrom := start.Add(opt.Warmup)
	end := measureFrom.Add(opt.Duration)
	ctx, cancel := context.WithDeadline(ctx, end.Add(opt.Timeout))
	defer cancel()

	cpu0 := make(chan time.Duration, 1)
	timer := time.AfterFunc(time.Until(measureFrom), func() { cpu0 <- processCPU() })
	defer timer.Stop()

	// Open loop: slot k is due at start + k×interval.
	var (
		interval time.Duration
		nextSlot atomic.Int64
	)
	if opt.Rate > 0 {
		interval = time.Duration(float64(time.Second) / opt.Rate)
		if interval <= 0 {
			interval = 1
		}
	}

	workers := make([]*worker, opt.Concurrency)
	var wg sync.WaitGroup
	for n := range workers {
		w := newWorker()
		workers[n] = w
		wg.Go(func() {
			for i := 0; ; i++ {
				var t0 time.Time // the request's start: when sent, or (open loop) when due
				if interval > 0 {
					t0 = start.Add(time.Duration(nextSlot.Add(1)-1) * interval)
					if !t0.Before(end) || ctx.Err() != nil {
						return
					}
					if d := time.Until(t0); d > 0 {
						time.Sleep(d)
					}
				} else {
					t0 = time.Now()
					if !t0.Before(end) || ctx.Err() != nil {
						return
					}
				}
				kind := w.do(ctx, client, tgt, sc, n, i, opt.Timeout)
				t1 := time.Now()
				if t0.Before(measureFrom) {
					continue
				}
				w.requests++
				w.lat = append(w.lat, t1.Sub(t0))
				w.lastDone = t1
				if kind != "" {
					w.fail(kind)
				}
			}
		})
	}
	wg.Wait()
	cpu1 := processCPU()
	for _, w := range workers {
		w.dc.close()
	}
	if err := ctx.Err(); err != nil && time.Now().Before(end) {
		return nil, fmt.Errorf("bench %s: %w", sc.Name, err)
	}

	r := &Result{Scenario: sc.Name, Concurrency: opt.Concurrency, Rate: opt.Rate, ErrorKinds: map[string]int64{}}
	select {
	case c := <-cpu0:
		r.CPU = cpu1 - c
	default: // measuring never started
	}
	last := measureFrom
	for _, w := range workers {
		r.Requests += w.requests
		r.Errors += w.errors
		r.lat = append(r.lat, w.lat...)
		for k, n := range w.errorKinds {
			r.ErrorKinds[k] += n
		}
		if w.lastDone.After(last) {
			last = w.lastDone
		}
	}
	r.Elapsed = last.Sub(measureFrom)
	slices.Sort(r.lat)
	r.setPercentiles()
	return r, nil
}

// do sends the i-th request of worker n, directly to tgt if client is nil,
// and returns "" on success or the failure's kind.
func (w *worker) do(ctx context.Context, client *http.Client, tgt *target, sc Scenario, n, i int, timeout time.Duration) string {
	var cred string
	if sc.Credential != nil {
		if cred = sc.Credential(n, i); !validCredential(cred) {
			return ErrBadCredential.Error()
		}
	}
	var (
		status int
		err    error
	)
	if client == nil {
		status, err = w.doDirect(ctx, tgt, sc.Credential != nil, cred, n, i)
		if err != nil {
			return err.Error()
		}
	} else if status, err = w.doClient(ctx, client, sc, cred, n, i, timeout); err != nil {
		return err.Error()
	}
	if sc.Check != nil {
		if err := sc.Check(status, w.body); err != nil {
			return err.Error()
		}
	} else if status/100 != 2 {
		return fmt.Sprintf("HTTP %d", status)
	}
	return ""
}

// doClient sends the request with cred through client and returns the
// answer's status; its body is read into w.body.
func (w *worker) doClient(ctx context.Context, client *http.Client, sc Scenario, cred string, n, i int, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := sc.newRequest(ctx, cred, n, i)
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry nothing secret, but keep kinds short
		}
		return 0, fmt.Errorf("transport: %w", err)
	}
	w.body, err = readAll(resp.Body, w.body)
	resp.Body.Close()
	if err != nil {
		return 0, fmt.Errorf("read body: %w", err)
	}
	return resp.StatusCode, nil
}

// maxBody caps an answer's body.
const maxBody = 16 << 20

var errBodyTooLarge = errors.New("body over 16 MiB")

// readAll reads r to its end into buf[:0], growing it as needed, and
// returns the bytes read; more than maxBody is an error (and the large
// buffer is let go).
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, 4096)
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > maxBody {
			return nil, errBodyTooLarge
		}
		if err == io.EOF {
			return buf, nil
		} else if err != nil {
			return buf[:0], err
		}
	}
}

// NewClient returns an HTTP/1.1 client that keeps up to conns connections
// alive per host and dials loopback addresses only.
func NewClient(conns int) *http.Client {
	if conns <= 0 {
		conns = DefaultConcurrency
	}
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: loopbackOnly}
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         d.DialContext,
		MaxIdleConns:        conns * 4,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}}
}

// ErrNotLoopback is returned when dialing an address that is not on the
// loopback interface.
var ErrNotLoopback = errors.New("bench: only loopback addresses may be load-tested")

// loopbackOnly is a net.Dialer Control hook that refuses non-loopback
// addresses, after name resolution.
func loopbackOnly(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: %s", ErrNotLoopback, address)
	}
	return nil
}

// sortedKinds returns r's error kinds, most frequent first.
func sortedKinds(m map[string]int64) []string {
	kinds := make([]string, 0, len(m))
	for k := range m {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if m[kinds[i]] != m[kinds[j]] {
			return m[kinds[i]] > m[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	return kinds
}
