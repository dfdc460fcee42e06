package jobs

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/confkit"
)

// TestManyJobs runs the most jobs the config allows, on daily schedules.
// Each job's loop used to recompute the whole service's health, resolving
// every job's schedule, on each wake: the work grew with the square of
// the jobs and 10,000 of them stalled status and shutdown. Now the
// schedule resolutions grow with the number of jobs, status answers, and
// Serve returns on cancellation without reporting health after it.
func TestManyJobs(t *testing.T) {
	const n = MaxJobs
	pw := writeSecret(t, "pw")
	jobs := make(map[string]Job, n)
	for i := range n {
		j := testJob("/nonexistent/repo", fmt.Sprintf("/src/%d", i), pw)
		j.Schedule = "daily UTC"
		jobs[fmt.Sprintf("j%04d", i)] = j
	}
	h := newHarness(t, Config{Enable: true, Jobs: jobs}, "")
	h.serve()
	h.idle()
	start := h.svc.resolutions.Load()
	// Each loop wakes every maxWait; before midnight nothing runs.
	for range 3 {
		h.clock.Advance(maxWait)
		h.idle()
	}
	if got := h.svc.resolutions.Load(); got > 3*n {
		t.Errorf("%d schedule resolutions for %d jobs (%d at start): more than a few per job", got, n, start)
	}
	st := h.svc.Status()
	if l, ok := st.Details.(JobList); !ok || len(l.Jobs) != n || !strings.Contains(st.Summary, "j0999 never ran, next") {
		t.Errorf("status: %d jobs, summary %.200q", len(h.svc.list().Jobs), st.Summary)
	}
	if ready, reason, _ := h.healthNow(); !ready {
		t.Errorf("degraded: %.200s", reason)
	}

	// Two days later every job has run (and failed: there is no
	// repository) and is overdue: the reason names the first few jobs
	// and counts the others, each change costing one pass.
	h.svc.env.ReleaseMemory = func() {}
	before := h.svc.resolutions.Load()
	h.clock.Set(t0.Add(49 * time.Hour))
	h.idle()
	ready, reason, reports := h.healthNow()
	want := fmt.Sprintf("; and %d more jobs with problems", n-maxHealthProblems)
	if ready || !strings.HasPrefix(reason, "job j0000: ") || !strings.HasSuffix(reason, want) {
		t.Errorf("health after two days: ready %v, %.200q...%q, want degraded ending %q", ready, reason, reason[max(0, len(reason)-80):], want)
	}
	if got := h.svc.resolutions.Load() - before; got > 2*n {
		t.Errorf("%d schedule resolutions for %d jobs becoming overdue", got, n)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if _, _, after := h.healthNow(); after != reports {
		t.Errorf("%d health reports after Serve returned", after-reports)
	}
}

// More jobs than MaxJobs are refused, naming the field.
func TestConfigTooManyJobs(t *testing.T) {
	jobs := make(map[string]Job, MaxJobs+1)
	for i := range MaxJobs + 1 {
		jobs[fmt.Sprintf("j%d", i)] = Job{Repository: "/r", Paths: []string{"/"}, Password: "env:PW"}
	}
	v := confkit.NewValidator(Name)
	(&Config{Enable: true, Jobs: jobs}).Validate(v)
	errs := v.Errors()
	if len(errs) != 1 || errs[0].Path != "backup.jobs" || !strings.Contains(errs[0].Msg, fmt.Sprintf("%d jobs, at most %d", MaxJobs+1, MaxJobs)) {
		t.Fatalf("errors %v, want one at backup.jobs", errs)
	}
}
