package main_test

import (
	"io"
	"runtime/debug"
	"testing"

	main "github.com/latchkey/latchkey/cmd/latchkey"
)

func TestGCPercentFor(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	for _, tc := range []struct {
		floor, live uint64
		want        int
	}{
		{64 * mib, 6 * mib, 966},    // goal 6 MiB × 10.66 ≈ 64 MiB
		{64 * mib, 32 * mib, 100},   // half the floor: Go's default
		{64 * mib, 100 * mib, 100},  // above the floor
		{64 * mib, 0, 1500},         // before the first collection: from 4 MiB
		{64 * mib, 1, 100_000},      // capped
		{64 * mib, 31 * mib, 106},   // just under half
		{256 * mib, 8 * mib, 3100},  // 8 × 32 = 256
		{0, 6 * mib, 100},           // no floor
		{1 * mib, 64 * mib, 100},    // floor under the live heap
		{64 * mib, 64*mib - 1, 100}, // about the floor
		{128 * mib, 16 * mib, 700},  // 16 × 8 = 128
		{64 * mib, 21 * mib, 204},   // 21 × 3.04 ≈ 64
		{64 * mib, 4 * mib, 1500},   // the runtime's minimum goal
		{64 * mib, 12 * mib, 433},   // 12 × 5.33 = 64
		{1 << 40, 1 << 30, 100_000}, // 1 GiB live, 1 TiB floor: 102,300, capped
	} {
		if got := main.GCPercentFor(tc.floor, tc.live); got != tc.want {
			t.Errorf("gcPercentFor(%d, %d) = %d, want %d", tc.floor, tc.live, got, tc.want)
		}
	}
}

// The tuner raises the GC percentage while the live heap is small, and
// stopping it restores Go's default.
func TestGCTuner(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	stop := main.StartGCTuner(1 << 30) // far above this test binary's live heap
	p := debug.SetGCPercent(-1)        // read back (and keep) the tuner's setting
	debug.SetGCPercent(p)
	if p <= 100 {
		t.Errorf("GC percent with a 1 GiB floor: %d, want more than 100", p)
	}
	stop()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("GC percent after stop: %d, want 100", p)
	}
}

func TestParseFlags_GCMinHeap(t *testing.T) {
	t.Parallel()
	noEnv := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		gogc string
		want uint64
	}{
		{nil, "", main.DefaultGCMinHeapMiB << 20},
		{[]string{"--gc-min-heap", "256"}, "", 256 << 20},
		{[]string{"--gc-min-heap", "0"}, "", 0},
		{nil, "200", 0},                              // GOGC set: the operator's choice
		{[]string{"--gc-min-heap", "256"}, "off", 0}, // GOGC wins over the flag too
	} {
		m := main.NewMain(&main.Env{Stderr: io.Discard})
		getenv := noEnv
		if tc.gogc != "" {
			getenv = func(k string) string {
				if k == "GOGC" {
					return tc.gogc
				}
				return ""
			}
		}
		if err := m.ParseFlags(tc.args, getenv); err != nil {
			t.Fatalf("%v (GOGC=%q): %v", tc.args, tc.gogc, err)
		}
		if m.GCMinHeap != tc.want {
			t.Errorf("%v (GOGC=%q): GCMinHeap = %d, want %d", tc.args, tc.gogc, m.GCMinHeap, tc.want)
		}
	}
	if main.NewMain(&main.Env{}).GCMinHeap != 0 {
		t.Error("NewMain starts a GC tuner: it must be asked for")
	}
	for _, bad := range []string{"-1", "1048577", "x"} {
		if err := main.NewMain(&main.Env{Stderr: io.Discard}).ParseFlags([]string{"--gc-min-heap", bad}, noEnv); err == nil {
			t.Errorf("--gc-min-heap %s accepted", bad)
		}
	}
}
