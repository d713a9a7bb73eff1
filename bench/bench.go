// Package bench is Latchkey's load generator: a closed-loop HTTP client
// that drives scenarios against servers on the loopback interface for a
// fixed time and reports throughput and latency, plus a bare net/http
// handler that serves as the baseline every scenario is compared with.
//
// It knows nothing of Latchkey's storage or services: cmd/latchkey's
// `latchkey bench` starts the server, seeds it, builds the scenarios and
// prints what Run returns.
package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
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

// Scenario is one kind of request that Run repeats.
type Scenario struct {
	// Name labels the scenario in reports.
	Name string

	// NewRequest returns the i-th request of worker w. The URL's host must
	// be a loopback address: the client refuses to dial anything else.
	NewRequest func(ctx context.Context, w, i int) (*http.Request, error)

	// Check inspects a complete response; a non-nil error counts the
	// request as failed, and its text (redacted) names the failure kind.
	// Nil accepts any 2xx status.
	Check func(status int, body []byte) error
}

// Options bound a run. The zero value uses the defaults above.
type Options struct {
	// Concurrency is the number of connections, each with one request in
	// flight at a time (a closed loop).
	Concurrency int

	// Warmup is run first and not measured; Duration is then measured.
	Warmup   time.Duration
	Duration time.Duration

	// Timeout caps each request.
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
	buf        bytes.Buffer
	dc         *directConn // without an *http.Client: this worker's connection
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
// can stop it earlier (then it returns ctx's error).
//
// With a nil client each worker dials its own connection (loopback only)
// and writes and reads on it itself, without net/http's Transport (see
// directConn): the lighter load generator, and the default of `latchkey
// bench`. The connections are closed when Run returns.
func Run(ctx context.Context, client *http.Client, sc Scenario, opt Options) (*Result, error) {
	opt = opt.withDefaults()
	if sc.NewRequest == nil {
		return nil, fmt.Errorf("bench %s: no request", sc.Name)
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
		w := &worker{errorKinds: map[string]int64{}, lat: make([]time.Duration, 0, 4096)}
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
				kind := w.do(ctx, client, sc, n, i, opt.Timeout)
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

// do sends one request and returns "" on success or the failure's kind.
func (w *worker) do(ctx context.Context, client *http.Client, sc Scenario, n, i int, timeout time.Duration) string {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := sc.NewRequest(ctx, n, i)
	if err != nil {
		return "build request: " + err.Error()
	}
	var status int
	if client == nil {
		if status, err = w.doDirect(ctx, req, timeout); err != nil {
			return err.Error()
		}
	} else {
		resp, err := client.Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // the URL may carry nothing secret, but keep kinds short
			}
			return "transport: " + err.Error()
		}
		if err := w.readBody(resp); err != nil {
			return "read body: " + err.Error()
		}
		status = resp.StatusCode
	}
	if sc.Check != nil {
		if err := sc.Check(status, w.buf.Bytes()); err != nil {
			return err.Error()
		}
	} else if status/100 != 2 {
		return fmt.Sprintf("HTTP %d", status)
	}
	return ""
}

// readBody reads resp's body into w.buf and closes it.
func (w *worker) readBody(resp *http.Response) error {
	w.buf.Reset()
	_, err := w.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	return err
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
