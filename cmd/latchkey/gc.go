package main

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// DefaultGCMinHeapMiB is the server's --gc-min-heap default.
const DefaultGCMinHeapMiB = 64

// gcTuneEvery is how often the GC tuner looks at the live heap.
const gcTuneEvery = 500 * time.Millisecond

// gcTuner keeps the garbage collector's heap goal at no less than a floor.
//
// Go's collector starts a cycle when the heap has grown by GOGC percent
// (100) over what the last cycle found live. Latchkey's live heap is small
// (a few MiB), while every request allocates: at thousands of requests a
// second that is dozens of collections a second, each marking for a few
// milliseconds with a quarter of the CPUs and slowing the requests that
// allocate meanwhile — a large share of the CPU time per request, and of the
// tail latency. The tuner sets the GC percentage so that the goal is the
// floor while the live heap is under half of it; above that it leaves Go's
// default of 100 percent. GOMEMLIMIT, if set, still caps the heap.
//
// It is process-wide state (debug.SetGCPercent), so the server starts one
// only when asked (--gc-min-heap, and not when GOGC is set).
type gcTuner struct {
	floor   uint64
	percent int // last set; 0 before the first
	sample  []metrics.Sample
	stop    chan struct{}
	done    chan struct{}
}

// startGCTuner starts a tuner for a floor of floor bytes and returns a
// function that stops it and restores Go's default of 100 percent.
func startGCTuner(floor uint64) (stop func()) {
	t := &gcTuner{
		floor:  floor,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}},
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	t.tune()
	go t.run()
	return func() {
		close(t.stop)
		<-t.done
		debug.SetGCPercent(100)
	}
}

func (t *gcTuner) run() {
	defer close(t.done)
	tick := time.NewTicker(gcTuneEvery)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			t.tune()
		}
	}
}

func (t *gcTuner) tune() {
	metrics.Read(t.sample)
	var live uint64
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	p := gcPercentFor(t.floor, live)
	// Only follow changes of more than a tenth.
	if t.percent == 0 || p*10 < t.percent*9 || p*10 > t.percent*11 {
		debug.SetGCPercent(p)
		t.percent = p
	}
}

// gcPercentFor returns the GC percentage that puts the heap goal,
// live × (1 + percent/100), at floor, and at least 100. Before the first
// collection (live 0) it aims at floor from 4 MiB, the runtime's own
// minimum goal.
func gcPercentFor(floor, live uint64) int {
	if live == 0 {
		live = 4 << 20
	}
	if floor <= 2*live {
		return 100
	}
	return int(min(floor*100/live-100, 100_000))
}
