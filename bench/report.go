package bench

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// WriteTable prints one line per result: connections, requests, req/s,
// req/s as a ratio to baseline's (if baseline is not nil), p50, p90, p99,
// max, errors, the process's CPU time per request, and the baseline's CPU
// time per request divided by the result's (the ratio of req/s to expect
// where CPU is the limit and the machine is otherwise idle). Then the
// kinds of errors seen.
func WriteTable(w io.Writer, results []*Result, baseline *Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tconns\trequests\treq/s\tvs baseline\tp50\tp90\tp99\tmax\terrors\tcpu/req\tcpu vs baseline\t")
	for _, r := range results {
		ratio, cpuRatio := "-", "-"
		if baseline != nil && baseline.RPS() > 0 {
			ratio = fmt.Sprintf("%.2f", r.RPS()/baseline.RPS())
		}
		if baseline != nil && baseline.CPUPerRequest() > 0 && r.CPUPerRequest() > 0 {
			cpuRatio = fmt.Sprintf("%.2f", float64(baseline.CPUPerRequest())/float64(r.CPUPerRequest()))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t\n", r.Scenario, r.Concurrency, r.Requests, r.RPS(), ratio,
			FormatDuration(r.P50), FormatDuration(r.P90), FormatDuration(r.P99), FormatDuration(r.Max), r.Errors,
			formatMicros(r.CPUPerRequest()), cpuRatio)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		for _, k := range sortedKinds(r.ErrorKinds) {
			fmt.Fprintf(w, "  %s: %d x %s\n", r.Scenario, r.ErrorKinds[k], k)
		}
	}
	return nil
}

func formatMicros(d time.Duration) string {
	return fmt.Sprintf("%.0fus", float64(d)/float64(time.Microsecond))
}

// FormatDuration prints d in milliseconds with three decimals.
func FormatDuration(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}

// lockPatterns are what SQLite and PostgreSQL say when a lock could not be
// taken or a transaction lost a conflict.
var lockPatterns = [][]byte{
	[]byte("database is locked"),
	[]byte("database table is locked"),
	[]byte("SQLITE_BUSY"),
	[]byte("SQLITE_LOCKED"),
	[]byte("deadlock detected"),
	[]byte("could not serialize access"),
	[]byte("lock timeout"),
	[]byte("could not obtain lock"),
}

// LockErrorCounter is an io.Writer for a server's log. It counts the lines
// that report a lock, busy or serialization error, keeps the first few,
// and passes every line on to Next (nil: discards them). Safe for
// concurrent use.
type LockErrorCounter struct {
	Next io.Writer

	lines atomic.Int64
	locks atomic.Int64

	mu      sync.Mutex
	samples []string
}

// Write implements io.Writer. Log handlers write whole lines.
func (c *LockErrorCounter) Write(p []byte) (int, error) {
	c.lines.Add(int64(bytes.Count(p, []byte{'\n'})))
	for line := range bytes.Lines(p) {
		if hasLockError(line) {
			c.locks.Add(1)
			c.mu.Lock()
			if len(c.samples) < 5 {
				c.samples = append(c.samples, string(bytes.TrimRight(line, "\n")))
			}
			c.mu.Unlock()
		}
	}
	if c.Next != nil {
		return c.Next.Write(p)
	}
	return len(p), nil
}

func hasLockError(line []byte) bool {
	for _, p := range lockPatterns {
		if bytes.Contains(line, p) {
			return true
		}
	}
	return false
}

// Lines is the number of log lines written.
func (c *LockErrorCounter) Lines() int64 { return c.lines.Load() }

// LockErrors is the number of log lines reporting a lock error.
func (c *LockErrorCounter) LockErrors() int64 { return c.locks.Load() }

// Samples returns up to five of the lines counted by LockErrors.
func (c *LockErrorCounter) Samples() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.samples)
}
