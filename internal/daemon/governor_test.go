package daemon

import (
	"runtime"
	"testing"
	"time"
)

// The governor releases only when the free heap stayed above its bound
// for GovernorReadings readings, or when garbage waited GovernorIdleCollect
// for a collection; at most once per GovernorMinGap, never while a bounded
// burst runs, and with a bound that grows with the live heap.
func TestGovernorDecisions(t *testing.T) {
	const MiB = 1 << 20
	type reading struct {
		free, live int64
		garbage    int64  // heap objects beyond the live heap
		cycles     uint64 // collections so far
		busy       bool
		after      time.Duration // since the reading before
		release    bool          // want
	}
	cases := []struct {
		name     string
		readings []reading
	}{
		// A steady collection cycle leaves up to half the live heap free
		// after each collection and takes it back before the next.
		{"a steady cycle's free heap", []reading{
			{free: 3 * MiB, live: 8 * MiB, cycles: 1}, {free: 4 * MiB, live: 8 * MiB, cycles: 2, after: time.Second},
			{free: 4 * MiB, live: 8 * MiB, cycles: 2, after: time.Second}, {free: 2 * MiB, live: 8 * MiB, cycles: 3, after: time.Second},
		}},
		{"below the bound", []reading{
			{free: 1 * MiB, live: 8 * MiB}, {free: GovernorMinFree, live: 8 * MiB, after: time.Second}, {free: MiB / 2, live: 8 * MiB, after: time.Second},
		}},
		{"above twice in a row", []reading{
			{free: 13 * MiB, live: 8 * MiB}, {free: 13 * MiB, live: 8 * MiB, after: time.Second, release: true},
		}},
		{"a dip resets the count", []reading{
			{free: 13 * MiB, live: 8 * MiB}, {free: 1 * MiB, live: 8 * MiB, after: time.Second},
			{free: 13 * MiB, live: 8 * MiB, after: time.Second}, {free: 13 * MiB, live: 8 * MiB, after: time.Second, release: true},
		}},
		{"at most once per gap", []reading{
			{free: 13 * MiB, live: 8 * MiB}, {free: 13 * MiB, live: 8 * MiB, after: time.Second, release: true},
			{free: 13 * MiB, live: 8 * MiB, after: time.Second}, {free: 13 * MiB, live: 8 * MiB, after: time.Second},
			{free: 13 * MiB, live: 8 * MiB, after: GovernorMinGap - 3*time.Second},
			{free: 13 * MiB, live: 8 * MiB, after: time.Second, release: true},
		}},
		{"not during a bounded burst", []reading{
			{free: 40 * MiB, live: 8 * MiB, busy: true}, {free: 40 * MiB, live: 8 * MiB, busy: true, after: time.Second},
			{free: 40 * MiB, live: 8 * MiB, after: time.Second}, {free: 40 * MiB, live: 8 * MiB, after: time.Second, release: true},
		}},
		{"idle: garbage uncollected for long", []reading{
			{free: 1 * MiB, live: 5 * MiB, garbage: 2 * MiB, cycles: 7}, {free: 1 * MiB, live: 5 * MiB, garbage: 3 * MiB, cycles: 7, after: GovernorIdleCollect / 2},
			{free: 1 * MiB, live: 5 * MiB, garbage: 3 * MiB, cycles: 7, after: GovernorIdleCollect / 2, release: true},
			{free: 1 * MiB, live: 5 * MiB, garbage: 3 * MiB, cycles: 8, after: 5 * time.Second},
		}},
		{"idle: a collection restarts the clock", []reading{
			{free: 1 * MiB, live: 5 * MiB, garbage: 2 * MiB, cycles: 7}, {free: 1 * MiB, live: 5 * MiB, garbage: 2 * MiB, cycles: 8, after: GovernorIdleCollect / 2},
			{free: 1 * MiB, live: 5 * MiB, garbage: 2 * MiB, cycles: 8, after: GovernorIdleCollect - time.Second},
			{free: 1 * MiB, live: 5 * MiB, garbage: 2 * MiB, cycles: 8, after: time.Second, release: true},
		}},
		{"idle: too little garbage", []reading{
			{free: 1 * MiB, live: 5 * MiB, garbage: MiB / 2}, {free: 1 * MiB, live: 5 * MiB, garbage: MiB / 2, after: 5 * GovernorIdleCollect},
		}},
		{"bound grows with the live heap", []reading{
			{free: 40 * MiB, live: 100 * MiB}, {free: 40 * MiB, live: 100 * MiB, after: time.Second},
			{free: 60 * MiB, live: 100 * MiB, after: time.Second}, {free: 60 * MiB, live: 100 * MiB, after: time.Second, release: true},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(1_000_000, 0)
			var cur reading
			var released []int64
			releases := 0
			g := &governor{
				read: func() heapFigures {
					return heapFigures{free: cur.free, live: cur.live, objects: cur.live + cur.garbage, cycles: cur.cycles}
				},
				release:  func() { releases++ },
				busy:     func() bool { return cur.busy },
				now:      func() time.Time { return now },
				released: func(_ string, bytes int64) { released = append(released, bytes) },
			}
			for i, r := range tc.readings {
				cur = r
				now = now.Add(r.after)
				before := releases
				if got := g.step(); got != r.release || (releases > before) != r.release {
					t.Errorf("reading %d (free %d MiB, live %d MiB): released %v, want %v", i, r.free/MiB, r.live/MiB, got, r.release)
				}
			}
			if len(released) != releases {
				t.Errorf("released callback %d times for %d releases", len(released), releases)
			}
		})
	}
}

// After a burst of allocations that is over, the Go heap keeps the
// burst's pages as free and unreleased (RSS stays up: the 13 MiB of
// "heap idle, not released" of a soak's worst moment). Two readings of
// the daemon's governor return them to the system.
func TestGovernorReturnsFreeHeap(t *testing.T) {
	burst := make([][]byte, 0, 64)
	for range 64 {
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = 1 // touch every page
		}
		burst = append(burst, b)
	}
	runtime.KeepAlive(burst)
	burst = nil
	runtime.GC() // the burst's spans are free now, most still resident

	clock := time.Unix(1_000_000, 0)
	g := newGovernor(nil)
	g.busy = func() bool { return false } // this test's own, whatever other tests do
	g.now = func() time.Time { clock = clock.Add(GovernorInterval); return clock }
	before := readHeapFigures()
	for range GovernorReadings {
		g.step()
	}
	after := readHeapFigures()
	t.Logf("free heap: %d bytes after the burst, %d after %d readings", before.free, after.free, GovernorReadings)
	if after.free > governorBound(after.live) {
		t.Errorf("free heap %d bytes after %d readings (%d before), want at most %d", after.free, GovernorReadings, before.free, governorBound(after.live))
	}
}
