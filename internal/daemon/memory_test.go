package daemon

import (
	"log/slog"
	"math"
	"runtime/debug"
	"testing"
)

// The heap limiter bounds overlapping bursts by the largest budget, keeps
// a target set by a reload during them for their end, and restores the
// process's settings when the last ends; GOGC and GOMEMLIMIT in the
// environment keep their settings.
func TestHeapLimiter(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	log := slog.New(slog.DiscardHandler)
	limit := func() int64 { return debug.SetMemoryLimit(-1) }
	gc := func() int { p := debug.SetGCPercent(-1); debug.SetGCPercent(p); return p }

	l := NewHeapLimiter(func(string) string { return "" })
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
	if limit() != math.MaxInt64 || gc() != 30 || l.Bursts() != 0 {
		t.Errorf("after the bursts: limit %d, target %d; want none, 30 (the reload's)", limit(), gc())
	}
	// A daemon target under the burst's is kept.
	end := l.Limit(1 << 20)
	if gc() != 30 {
		t.Errorf("burst with hostd.gc_percent 30: target %d, want 30", gc())
	}
	end()

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
