package daemon

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/hostd/hostd/internal/service"
)

// The memory governor returns the Go heap's free pages to the system
// soon after a burst of work (a run of proxy transfers, a prune, a
// restore through the API) instead of leaving them resident.
//
// After a burst the collector frees the burst's objects, but the pages
// that held them stay in the process: the runtime's background scavenger
// returns only what exceeds about 10% over the next heap goal, at about
// 1% of one CPU, and the goal itself still reflects the burst for a
// cycle. After the soak's load bursts hostd held 13-14 MiB so. The
// governor reads the heap's free, unreleased bytes every GovernorInterval;
// when they exceed the bound (GovernorMinFree, or half the live heap if
// larger) at GovernorReadings readings in a row, it collects and returns
// them at once (debug.FreeOSMemory), at most once per GovernorMinGap. It
// stays out of the way while a burst bounded by LimitMemory (a backup
// job) runs: the job releases its memory itself when it ends.
//
// Each release costs a forced collection, the return of the pages
// (madvise) and, when the heap grows again, a page fault for every page
// taken back. Go 1.26 has no call that returns free pages without a
// collection (debug.FreeOSMemory always collects first), so the governor
// spends that only on free heap worth it: a steady collection cycle (the
// metrics service's every-second scrape) leaves 2-4 MiB free after its
// collections and fills it again before the next; releasing that every
// 10 s (the governor's first bound, 2 MiB or a quarter of the live heap)
// cost the metrics bench about a fifth of its CPU for memory taken back
// within seconds.
//
// At idle the collector runs seldom: hostd allocates little, so the heap
// fills with garbage toward its goal (twice the live heap at
// hostd.gc_percent 100) over minutes and stays there. When no collection
// has run for GovernorIdleCollect and at least GovernorMinGarbage were
// allocated since the last one, the governor collects and returns the
// pages too. Under load collections come every few seconds and this never
// fires.
const (
	// GovernorInterval is how often the governor reads the heap's figures
	// (one runtime/metrics read: about a microsecond).
	GovernorInterval = time.Second
	// GovernorReadings is how many readings in a row must find the free
	// heap above the bound: a collection in progress frees pages that the
	// next allocations take back at once.
	GovernorReadings = 2
	// GovernorMinFree is the smallest bound on free, unreleased heap.
	GovernorMinFree = 4 << 20
	// GovernorMinGap is the least time between two releases: each is a
	// forced collection and the return of the free pages, a few
	// milliseconds of CPU at hostd's heap size, plus the page faults when
	// the heap grows into them again.
	GovernorMinGap = 30 * time.Second
	// GovernorIdleCollect is how long the heap may go without a collection
	// before the governor collects its garbage (a collection of hostd's
	// heap at idle costs a few milliseconds of CPU).
	GovernorIdleCollect = 2 * time.Minute
	// GovernorMinGarbage is the least garbage for an idle collection.
	GovernorMinGarbage = 1 << 20
)

// heapFigures are the runtime's figures the governor decides on.
type heapFigures struct {
	free    int64  // free heap pages not returned to the system
	live    int64  // heap marked live by the last collection
	objects int64  // heap objects, live or garbage not yet collected
	cycles  uint64 // collections so far
}

// readHeapFigures reads heapFigures from runtime/metrics.
func readHeapFigures() heapFigures {
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
	}
	metrics.Read(s)
	u := func(i int) uint64 {
		if s[i].Value.Kind() == metrics.KindUint64 {
			return s[i].Value.Uint64()
		}
		return 0
	}
	return heapFigures{free: int64(u(0)), live: int64(u(1)), objects: int64(u(2)), cycles: u(3)}
}

// governor is the memory governor's state. Its fields are set once at
// construction; step is called from one goroutine.
type governor struct {
	read    func() heapFigures
	release func()      // returns free heap to the system
	busy    func() bool // a burst bounded by LimitMemory runs
	now     func() time.Time
	// released is called after each release with its reason ("free":
	// free heap above the bound; "idle": garbage at idle) and the free
	// heap and garbage it found.
	released func(reason string, bytes int64)

	over int       // readings in a row above the bound
	last time.Time // last release; zero: none yet
	// cycles is the collection count of the last reading, cycleAt when
	// the governor first saw it.
	cycles  uint64
	cycleAt time.Time
}

// newGovernor returns the daemon's governor: the process's heap, its
// heap limiter, the real clock.
func newGovernor(released func(reason string, bytes int64)) *governor {
	return &governor{
		read:     readHeapFigures,
		release:  debug.FreeOSMemory,
		busy:     func() bool { return heap.Bursts() > 0 },
		now:      time.Now,
		released: released,
	}
}

// bound is the free heap the governor tolerates with live bytes live.
func governorBound(live int64) int64 {
	return max(GovernorMinFree, live/2)
}

// step takes one reading and releases the free heap when it has been
// above the bound for GovernorReadings readings, or when no collection
// ran for GovernorIdleCollect and GovernorMinGarbage piled up since; never
// twice within GovernorMinGap. It reports whether it released.
func (g *governor) step() bool {
	now := g.now()
	if g.busy() {
		g.over = 0
		return false
	}
	f := g.read()
	if f.cycles != g.cycles || g.cycleAt.IsZero() {
		g.cycles, g.cycleAt = f.cycles, now
	}
	if f.free > governorBound(f.live) {
		g.over++
	} else {
		g.over = 0
	}
	idle := now.Sub(g.cycleAt) >= GovernorIdleCollect && f.objects-f.live >= GovernorMinGarbage
	if g.over < GovernorReadings && !idle {
		return false
	}
	if !g.last.IsZero() && now.Sub(g.last) < GovernorMinGap {
		return false
	}
	g.release()
	if g.released != nil {
		reason := "free"
		if g.over < GovernorReadings {
			reason = "idle"
		}
		g.released(reason, f.free+max(0, f.objects-f.live))
	}
	// The release is a collection: the idle clock starts again.
	g.last, g.over, g.cycleAt = now, 0, now
	return true
}

// run steps every GovernorInterval, on its grid (service.NextTick), until
// ctx is done: with the metrics service scraping every second, the two
// wake the process at the same moment, not each on its own.
func (g *governor) run(ctx context.Context) {
	for {
		now := time.Now()
		if service.Sleep(ctx, service.RealClock{}, service.NextTick(now, GovernorInterval).Sub(now)) != nil {
			return
		}
		g.step()
	}
}
