package daemon

import (
	"log/slog"
	"math"
	"runtime/debug"
	"testing"
	"time"
)

// The heap limiter bounds overlapping bursts by the largest budget, keeps
// a target set by a reload during them for their end, and restores the
// process's memory limit when the last ends and its collector target a
// cool-down later; GOGC and GOMEMLIMIT in the environment keep their
// settings.
func TestHeapLimiter(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	log := slog.New(slog.DiscardHandler)
	limit := func() int64 { return debug.SetMemoryLimit(-1) }
	gc := func() int { p := debug.SetGCPercent(-1); debug.SetGCPercent(p); return p }

	l := NewHeapLimiter(func(string) string { return "" })
	// The cool-downs' timers, fired by the test.
	var timers []func()
	var stopped int
	l.afterFunc = func(d time.Duration, f func()) func() bool {
		if d != BurstCoolDown {
			t.Errorf("cool-down of %v, want %v", d, BurstCoolDown)
		}
		timers = append(timers, f)
		return func() bool { stopped++; return true }
	}
	l.setGCPercent(80, log)
	if gc() != 80 {
		t.Fatalf("target %d, want 80", gc())
	}
	end1 := l.Limit(40 << 20)
	base := l.base
	if base <= 0 || limit() != base+40<<20 || gc() != BurstGCPercent {
		t.Fatalf("one burst: limit %d (base %d), target %d; want base+40 MiB, %d", limit(), base, gc(), BurstGCPercent)
	}
	end2 := l.Limit(60 << 20)
	if limit() != base+60<<20 {
		t.Errorf("two bursts: limit %d, want base+60 MiB (the largest budget)", limit()-base)
	}
	l.setGCPercent(30, log) // a reload during the bursts
	if gc() != BurstGCPercent {
		t.Errorf("reload during bursts: target %d, want %d until they end", gc(), BurstGCPercent)
	}
	end2()
	end2() // a second call does nothing
	if limit() != base+40<<20 || l.Bursts() != 1 {
		t.Errorf("after the larger burst: limit base+%d, %d bursts; want base+40 MiB, 1", limit()-base, l.Bursts())
	}
	end1()
	if limit() != math.MaxInt64 || gc() != BurstGCPercent || l.Bursts() != 0 || !l.CoolingDown() || len(timers) != 1 {
		t.Errorf("after the bursts: limit %d, target %d, cooling down %v, %d timers; want none, %d until the cool-down ends, 1 timer",
			limit(), gc(), l.CoolingDown(), len(timers), BurstGCPercent)
	}
	l.setGCPercent(35, log) // a reload during the cool-down
	if gc() != BurstGCPercent {
		t.Errorf("reload during the cool-down: target %d, want %d until it ends", gc(), BurstGCPercent)
	}
	// A burst in the cool-down stops it; its end starts another, and the
	// first one's timer, should it fire late, changes nothing.
	endC := l.Limit(1 << 20)
	if stopped != 1 || l.CoolingDown() {
		t.Errorf("burst during the cool-down: %d timers stopped, cooling down %v; want 1, false", stopped, l.CoolingDown())
	}
	endC()
	timers[0]()
	if gc() != 35 || !l.CoolingDown() {
		t.Errorf("a stale cool-down's timer: target %d, cooling down %v; want 35 (the burst's: the reload's is lower), true", gc(), l.CoolingDown())
	}
	l.setGCPercent(30, log)
	timers[len(timers)-1]()
	if gc() != 30 || l.CoolingDown() {
		t.Errorf("after the cool-down: target %d, cooling down %v; want 30 (the reload's), false", gc(), l.CoolingDown())
	}
	// A daemon target under the burst's is kept.
	end := l.Limit(1 << 20)
	if gc() != 30 {
		t.Errorf("burst with hostd.gc_percent 30: target %d, want 30", gc())
	}
	end()
	timers[len(timers)-1]()
	if gc() != 30 {
		t.Errorf("after a burst with hostd.gc_percent 30: target %d, want 30", gc())
	}

	env := NewHeapLimiter(func(k string) string {
		return map[string]string{"GOGC": "75", "GOMEMLIMIT": "1GiB"}[k]
	})
	debug.SetGCPercent(75)
	debug.SetMemoryLimit(1 << 30)
	end = env.Limit(40 << 20)
	if gc() != 75 || limit() != 1<<30 {
		t.Errorf("GOGC and GOMEMLIMIT set: burst target %d, limit %d; want theirs", gc(), limit())
	}
	end()
	if gc() != 75 || limit() != 1<<30 {
		t.Errorf("GOGC and GOMEMLIMIT set: after the burst target %d, limit %d; want theirs", gc(), limit())
	}
}
