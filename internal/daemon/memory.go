package daemon

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/hostd/hostd/internal/config"
)

// gcPercent returns the garbage collector target hostd should set from its
// config, and false when the GOGC environment variable is set: the Go
// runtime has already applied the user's value, which wins.
func gcPercent(core config.Core, getenv func(string) string) (int, bool) {
	if getenv("GOGC") != "" {
		return 0, false
	}
	return core.GCPercent, true
}

// applyMemorySettings sets the process-wide garbage collector target from
// hostd.gc_percent, at start and on every reload. While a burst of work
// runs under LimitMemory, the target is applied when the last one ends.
func applyMemorySettings(core config.Core, getenv func(string) string, log *slog.Logger) {
	pct, ok := gcPercent(core, getenv)
	if !ok {
		log.Debug("GOGC is set in the environment; hostd.gc_percent is not applied")
		return
	}
	heap.setGCPercent(pct, log)
}

// BurstGCPercent is the garbage collector target while a burst of work
// (a backup job) runs, unless the daemon's own is lower: the CLI runs the
// backup engine at the same target.
const BurstGCPercent = 50

// BurstCoolDown is how long the burst's target stays after the last
// burst ends. The job's release collects while whatever else runs (proxy
// transfers, the resolver's cache, a scrape) holds its own working set;
// at the daemon's target of 100 the heap then grows to twice that before
// the next collection, which made the seconds after a job the soak's
// worst moment (docs/soak.md). A minute at the burst's target keeps the
// heap near what is live until the load that overlapped the job has
// passed; a host without jobs never pays for it.
const BurstCoolDown = time.Minute

// heap is the process's: the garbage collector's settings are global.
var heap = &HeapLimiter{}

// HeapLimiter holds the garbage collector's settings of the process: the
// daemon's own target (hostd.gc_percent), and the bounds of bursts of
// work under way (service.Env.LimitMemory).
//
// A backup job's engine allocates in bursts (pack buffers, compression
// windows, the index, a key derivation) that the collector, at the
// daemon's target of 100 and no soft limit, lets grow the heap to twice
// what is live: the daemon's resident set then peaks at twice the CLI's
// for the same backup. Under a burst's bound the heap stays near what the
// burst keeps live.
type HeapLimiter struct {
	getenv func(string) string // nil: os.Getenv
	// afterFunc runs f after d unless the returned stop is called first
	// (nil: time.AfterFunc).
	afterFunc func(d time.Duration, f func()) (stop func() bool)

	mu sync.Mutex
	// gcPercent is the daemon's target, applied when no burst runs; 0
	// until set (GOGC in the environment: never).
	gcPercent int
	budgets   map[int]int64 // bursts under way, by id
	nextID    int
	base      int64 // runtime memory when the first burst under way started
	// saved and savedGC are the memory limit and the collector's target
	// before the first burst under way.
	saved   int64
	savedGC int
	// coolStop ends the cool-down under way (nil: none); coolGen tells
	// a cool-down's timer whether it is still the current one.
	coolStop func() bool
	coolGen  int
}

// NewHeapLimiter returns a limiter that reads GOGC and GOMEMLIMIT with
// getenv (nil: os.Getenv). The daemon uses one for the whole process;
// tests make their own.
func NewHeapLimiter(getenv func(string) string) *HeapLimiter {
	return &HeapLimiter{getenv: getenv}
}

func (l *HeapLimiter) env(name string) string {
	if l.getenv == nil {
		return os.Getenv(name)
	}
	return l.getenv(name)
}

func (l *HeapLimiter) after(d time.Duration, f func()) (stop func() bool) {
	if l.afterFunc == nil {
		return time.AfterFunc(d, f).Stop
	}
	return l.afterFunc(d, f)
}

// setGCPercent records the daemon's target and applies it unless a burst
// runs or cools down.
func (l *HeapLimiter) setGCPercent(pct int, log *slog.Logger) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gcPercent = pct
	if len(l.budgets) > 0 || l.coolStop != nil {
		log.Debug("garbage collector target set; applied when the backup jobs' cool-down ends", "gc_percent", pct)
		return
	}
	if old := debug.SetGCPercent(pct); old != pct {
		log.Debug("garbage collector target set", "gc_percent", pct, "was", old)
	}
}

// Limit bounds the heap for a burst of work needing about budget bytes
// more than the process holds, until restore is called (once; later
// calls do nothing). When the first burst starts, the garbage is
// collected and its pages returned (what the process holds then is the
// base); while bursts run, the soft memory limit (debug.SetMemoryLimit)
// is the base plus the largest budget of the bursts under way, and the
// collector's target at most BurstGCPercent. When the last ends, the
// limit before it comes back, and the daemon's target (as set meanwhile
// by a reload) BurstCoolDown later, unless another burst started. A GOGC
// in the environment keeps the target as it is, a GOMEMLIMIT the limit.
func (l *HeapLimiter) Limit(budget int64) (restore func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.budgets == nil {
		l.budgets = map[int]int64{}
	}
	if len(l.budgets) == 0 {
		debug.FreeOSMemory()
		l.base = runtimeMemory()
		l.saved = debug.SetMemoryLimit(-1)
		if l.env("GOGC") == "" {
			pct := BurstGCPercent
			if l.gcPercent > 0 && l.gcPercent < pct {
				pct = l.gcPercent
			}
			old := debug.SetGCPercent(pct)
			if l.coolStop == nil { // in a cool-down, the target before it is kept
				l.savedGC = old
			}
		}
		l.endCoolDown()
	}
	id := l.nextID
	l.nextID++
	l.budgets[id] = budget
	l.applyLimit()
	var once sync.Once
	return func() { once.Do(func() { l.end(id) }) }
}

// end ends the burst id.
func (l *HeapLimiter) end(id int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.budgets, id)
	if len(l.budgets) > 0 {
		l.applyLimit()
		return
	}
	if l.env("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(l.saved)
	}
	if l.env("GOGC") == "" {
		l.coolGen++
		gen := l.coolGen
		l.coolStop = l.after(BurstCoolDown, func() { l.cooled(gen) })
	}
}

// cooled ends the cool-down gen, if it is still the current one: the
// daemon's target comes back.
func (l *HeapLimiter) cooled(gen int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if gen != l.coolGen || l.coolStop == nil || len(l.budgets) > 0 {
		return
	}
	l.coolStop = nil
	pct := l.gcPercent // the daemon's, as a reload during the bursts set it
	if pct == 0 {
		pct = l.savedGC
	}
	debug.SetGCPercent(pct)
}

// endCoolDown stops the cool-down under way, if any, leaving the
// collector's target as it is.
func (l *HeapLimiter) endCoolDown() {
	if l.coolStop != nil {
		l.coolStop()
		l.coolStop = nil
	}
	l.coolGen++
}

// CoolingDown reports whether the target of the bursts is kept after
// the last one ended.
func (l *HeapLimiter) CoolingDown() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.coolStop != nil
}

// applyLimit sets the soft limit for the bursts under way.
func (l *HeapLimiter) applyLimit() {
	if l.env("GOMEMLIMIT") != "" {
		return
	}
	var most int64
	for _, b := range l.budgets {
		most = max(most, b)
	}
	limit := l.base + most
	if limit < l.base { // overflow
		limit = math.MaxInt64
	}
	debug.SetMemoryLimit(min(limit, l.saved))
}

// Bursts reports how many bursts are under way.
func (l *HeapLimiter) Bursts() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.budgets)
}

// runtimeMemory is what the Go runtime holds from the system and counts
// against its memory limit: everything it mapped, less the heap pages it
// returned.
func runtimeMemory() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64()) - int64(s[1].Value.Uint64())
}

// RuntimeMemory is runtimeMemory, for tests that watch a burst.
func RuntimeMemory() int64 { return runtimeMemory() }

// limitMemory is service.Env.LimitMemory. The burst first releases the
// executable's pages, as the end of one does: the code the other
// services ran since the last release (a proxy transfer, a scrape, a
// reload) stays mapped until the next, so a burst's own peak (a key
// derivation's 32 MiB, the backup engine's buffers) stacked on all of
// it. Pages still in use come back at their next fault.
func (d *Daemon) limitMemory(budget int64) (restore func()) {
	d.trimCode("before work")
	return heap.Limit(budget)
}
