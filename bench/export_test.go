package bench

import (
	"context"
	"time"
)

// DirectRoundTrip returns a function that sends the next request (i = 0,
// 1, ...) of worker 0 of sc over a direct connection and reads its answer,
// exactly as a worker of Run does (without the latency bookkeeping), and
// returns its failure kind, "" on success; stop closes the connection.
func DirectRoundTrip(sc Scenario, timeout time.Duration) (do func() string, stop func(), err error) {
	u, err := sc.parseURL()
	if err != nil {
		return nil, nil, err
	}
	t := newTarget(u, sc.Body, sc.uniqueAt(), len(sc.Unique), timeout)
	w := newWorker()
	ctx, cancel := context.WithCancel(context.Background())
	i := 0
	do = func() string {
		kind := w.do(ctx, nil, t, sc, 0, i, timeout)
		i++
		return kind
	}
	return do, func() { w.dc.close(); cancel() }, nil
}
