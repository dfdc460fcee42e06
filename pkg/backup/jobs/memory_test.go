package jobs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/daemon"
	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backuptest"
)

// heapWatch samples what the Go runtime holds (daemon.RuntimeMemory: what
// its soft limit bounds) every millisecond until stopped, keeping the
// highest sample.
type heapWatch struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func watchHeap() *heapWatch {
	w := &heapWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if m := daemon.RuntimeMemory(); m > w.peak.Load() {
				w.peak.Store(m)
			}
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *heapWatch) end() int64 {
	close(w.stop)
	<-w.done
	return w.peak.Load()
}

// A run under the daemon's heap limiter (env.LimitMemory) keeps the Go
// runtime's memory within the job's budget of what it held before the
// run, including the first run, which creates the repository with the
// default (32 MiB) key derivation, backs up and checks; and a second run
// opens the repository with the key the first one unlocked, deriving
// none.
func TestRunHeapStaysInBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("backs up 24 MiB twice with the default key derivation")
	}
	const pw = "heap-budget-pw"
	src := sourceTree(t, 192, 128<<10)
	job := testJob(filepath.Join(t.TempDir(), "repo"), src, writeSecret(t, pw))
	job.Schedule, job.Init, job.Check = "hourly UTC", true, "daily UTC"
	h := newHarness(t, Config{Enable: true, Jobs: map[string]Job{"home": job}}, "")
	h.svc.initOpts = backup.InitOptions{} // hostd's key derivation and pack size
	limiter := daemon.NewHeapLimiter(func(string) string { return "" })
	h.svc.env.LimitMemory = limiter.Limit
	if v := os.Getenv("HOSTD_TEST_JOB_BUDGET"); v != "" { // for measuring
		fmt.Sscan(v, &h.svc.memoryBudget)
	}
	budget := h.svc.memoryBudget
	gc := debug.SetGCPercent(100)
	defer debug.SetGCPercent(gc)
	h.serve()
	h.idle()

	// Slack over the budget for a noisy machine: the limit is soft, the
	// collector lags the allocations of the engine's goroutines, and the
	// test's own goroutines count.
	const slack = 24 << 20
	for i, at := range []time.Duration{time.Hour, 2 * time.Hour} {
		if i > 0 {
			for k := range 6 {
				backuptest.RandomFile(t, filepath.Join(src, "d0", fmt.Sprintf("new%d-%d", i, k)), 128<<10)
			}
		}
		debug.FreeOSMemory()
		before := daemon.RuntimeMemory()
		w := watchHeap()
		h.clock.Set(t0.Add(at))
		h.waitRuns("home", int64(i+1))
		peak := w.end()
		h.idle()
		if st := h.jobState("home"); st.LastResult != ResultSuccess {
			t.Fatalf("run %d: %s: %s", i+1, st.LastResult, st.LastError)
		}
		t.Logf("run %d: runtime memory %.1f MiB before, peak %.1f MiB (+%.1f MiB; budget %d MiB)",
			i+1, mib(before), mib(peak), mib(peak-before), budget>>20)
		if budget > 0 && peak-before > budget+slack {
			t.Errorf("run %d: runtime memory grew by %.1f MiB, want at most the budget %d MiB + %d MiB",
				i+1, mib(peak-before), budget>>20, slack>>20)
		}
		if n := limiter.Bursts(); n != 0 {
			t.Errorf("run %d: %d bursts still under way after the run", i+1, n)
		}
		// The run's target stays for the cool-down after it, then the
		// daemon's comes back (internal/daemon's TestHeapLimiter).
		if got := debug.SetGCPercent(100); got != daemon.BurstGCPercent || !limiter.CoolingDown() {
			t.Errorf("run %d: garbage collector target %d after the run (cooling down: %v), want %d for %v",
				i+1, got, limiter.CoolingDown(), daemon.BurstGCPercent, daemon.BurstCoolDown)
		}
		if n := h.svc.keyDerivations.Load(); n != 1 {
			t.Errorf("after run %d: %d key derivations, want 1 (the init's)", i+1, n)
		}
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// The key a run unlocked serves the next runs only while the password
// and its key file stay: a key file removed (the password changed with
// key passwd) makes the next run derive from the password again, and
// fail if the password no longer opens the repository; the new password
// derives once and is then remembered.
func TestRememberedKeyFollowsPasswordAndKeyFile(t *testing.T) {
	const pwA, pwB = "remembered-a", "remembered-b"
	repo := initRepo(t, pwA)
	job := testJob(repo, sourceTree(t, 2, 1024), writeSecret(t, pwA))
	job.Schedule = "hourly UTC"
	secret := strings.TrimPrefix(string(job.Password), "file:")
	h := newHarness(t, Config{Enable: true, Jobs: map[string]Job{"home": job}}, "")
	h.serve()
	h.idle()
	runs := int64(0)
	run := func(wantResult string, wantDerivations int64) {
		t.Helper()
		runs++
		h.clock.Set(t0.Add(time.Duration(runs) * time.Hour))
		h.waitRuns("home", runs)
		h.idle()
		if st := h.jobState("home"); st.LastResult != wantResult {
			t.Fatalf("run %d: %s (%s), want %s", runs, st.LastResult, st.LastError, wantResult)
		}
		if n := h.svc.keyDerivations.Load(); n != wantDerivations {
			t.Fatalf("after run %d: %d key derivations, want %d", runs, n, wantDerivations)
		}
	}
	run(ResultSuccess, 1)
	run(ResultSuccess, 1)

	r, err := backup.Open(context.Background(), repo, []byte(pwA), backup.OpenOptions{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ChangePassword(context.Background(), []byte(pwB), backuptest.FastKDF()); err != nil {
		t.Fatal(err)
	}
	r.Close()
	run(ResultFailed, 2) // the remembered key's file is gone; A opens nothing

	if err := os.WriteFile(secret, []byte(pwB+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(ResultSuccess, 3)
	run(ResultSuccess, 3)
}
