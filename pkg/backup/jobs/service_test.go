package jobs

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/hostd/hostd/internal/schedule"
	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/backup/backuptest"
)

// TestScheduledRunsApplyRetention drives a job on a ten-minute schedule
// with the fake clock: nothing runs before an elapse, each elapse runs
// one real backup, and retention keeps the newest two snapshots.
func TestScheduledRunsApplyRetention(t *testing.T) {
	pw := "scheduled-pw"
	repo := initRepo(t, pw)
	src := sourceTree(t, 6, 20<<10)
	job := testJob(repo, src, writeSecret(t, pw))
	job.Schedule = "*:0/10 UTC"
	job.Retention = &Retention{KeepLast: 2, Schedule: "minutely"}
	h := newHarness(t, Config{Enable: true, Jobs: map[string]Job{"home": job}}, "")
	h.serve()
	h.idle()

	if got := h.svc.byName["home"].status().NextRun; got == nil || !got.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("next run = %v, want %v", got, t0.Add(10*time.Minute))
	}
	h.clock.Set(t0.Add(9*time.Minute + 59*time.Second))
	h.idle()
	if n := h.totalRuns("home"); n != 0 {
		t.Fatalf("%d runs before the first elapse", n)
	}
	for i := 1; i <= 4; i++ {
		elapse := t0.Add(time.Duration(i) * 10 * time.Minute)
		backupFile(t, filepath.Join(src, fmt.Sprintf("new%d", i)))
		h.clock.Set(elapse)
		h.waitRuns("home", int64(i))
		h.idle()
		st := h.jobState("home")
		if st.LastResult != ResultSuccess || !st.LastStart.Equal(elapse) {
			t.Fatalf("run %d: result %q started %v, want success at %v (error %q)", i, st.LastResult, st.LastStart, elapse, st.LastError)
		}
		if !st.LastRetention.Equal(elapse) {
			t.Errorf("run %d: retention last ran %v, want %v", i, st.LastRetention, elapse)
		}
	}
	snaps := snapshots(t, repo, pw)
	if len(snaps) != 2 {
		t.Fatalf("%d snapshots after retention keep_last 2, want 2", len(snaps))
	}
	for _, s := range snaps {
		if !containsString(s.Tags, "job=home") {
			t.Errorf("snapshot %s tags %v lack job=home", s.ShortID, s.Tags)
		}
	}
	if want := t0.Add(40 * time.Minute); !snaps[1].Time.Equal(want) {
		t.Errorf("newest snapshot at %v, want %v (the fake clock)", snaps[1].Time, want)
	}
	if ready, reason, _ := h.healthNow(); !ready {
		t.Errorf("degraded after successful runs: %s", reason)
	}
	saved, err := h.svc.store.load("home")
	if err != nil || saved.LastSnapshot != h.jobState("home").LastSnapshot || saved.LastSnapshot == "" {
		t.Errorf("saved state %+v (err %v) does not match the last run", saved, err)
	}
}

func backupFile(t *testing.T, p string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
		t.Fatal(err)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestMissedRunCatchesUpAtStart checks Persistent: a run missed while
// hostd was down happens at start; without Persistent it waits for the
// next elapse.
func TestMissedRunCatchesUpAtStart(t *testing.T) {
	pw := "catch-up-pw"
	for _, persistent := range []bool{true, false} {
		t.Run(fmt.Sprintf("persistent=%v", persistent), func(t *testing.T) {
			repo := initRepo(t, pw)
			job := testJob(repo, sourceTree(t, 2, 1024), writeSecret(t, pw))
			job.Schedule = "daily UTC"
			job.Persistent = boolPtr(persistent)
			stateDir := t.TempDir()
			twoDaysAgo := t0.Add(-48 * time.Hour).Truncate(24 * time.Hour)
			store := stateStore{dir: filepath.Join(stateDir, "jobs")}
			if err := store.save("home", state{FirstSeen: twoDaysAgo.Add(-24 * time.Hour), LastStart: twoDaysAgo,
				LastTrigger: twoDaysAgo, LastSuccess: twoDaysAgo.Add(time.Minute), LastResult: ResultSuccess}); err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, Config{Enable: true, Jobs: map[string]Job{"home": job}}, stateDir)
			h.serve()
			if persistent {
				h.waitRuns("home", 1)
				if st := h.jobState("home"); st.LastResult != ResultSuccess || !st.LastStart.Equal(t0) {
					t.Fatalf("catch-up run: result %q at %v, want success at %v (error %q)", st.LastResult, st.LastStart, t0, st.LastError)
				}
				if !strings.Contains(h.logs.String(), "missed while hostd was down") {
					t.Errorf("no log line for the catch-up run:\n%s", h.logs.String())
				}
				h.idle()
				if ready, reason, _ := h.healthNow(); !ready {
					t.Errorf("degraded after the catch-up run: %s", reason)
				}
				return
			}
			h.idle()
			if n := h.totalRuns("home"); n != 0 {
				t.Fatalf("%d runs at start without persistent", n)
			}
			// The last success is 2 days and 10 hours old, more than twice
			// the daily period: the job is overdue.
			ready, reason, _ := h.healthNow()
			if ready || !strings.Contains(reason, "job home: last successful backup 58h") || !strings.Contains(reason, "more than twice its schedule's period") {
				t.Errorf("health = ready %v %q, want degraded naming job home", ready, reason)
			}
			if p := h.svc.byName["home"].status().Problem; p != reason {
				t.Errorf("status problem %q, health reason %q", p, reason)
			}
			h.clock.Set(t0.Truncate(24 * time.Hour).Add(24 * time.Hour))
			h.waitRuns("home", 1)
			h.idle()
			if ready, reason, _ := h.healthNow(); !ready {
				t.Errorf("still degraded after a successful run: %s", reason)
			}
		})
	}
}

// TestProblem checks the readiness rule: a failed last run, a failed
// retention or check, or a last success older than twice the schedule's
// period makes the job a problem; a recent success or a new job does not.
func TestProblem(t *testing.T) {
	hour := time.Hour
	tests := []struct {
		name     string
		schedule string
		delay    time.Duration
		st       state
		want     string
	}{
		{"new job", "hourly", 0, state{FirstSeen: t0}, ""},
		{"new job not yet overdue", "hourly", 0, state{FirstSeen: t0.Add(-2 * hour)}, ""},
		{"never succeeded", "hourly", 0, state{FirstSeen: t0.Add(-2*hour - time.Second)},
			"job j: no successful backup since 2025-03-12T07:59:59Z, more than twice its schedule's period"},
		{"recent success", "hourly", 0, state{FirstSeen: t0.Add(-48 * hour), LastSuccess: t0.Add(-90 * time.Minute), LastResult: ResultSuccess}, ""},
		{"overdue", "hourly", 0, state{FirstSeen: t0.Add(-48 * hour), LastSuccess: t0.Add(-2*hour - time.Minute), LastResult: ResultSuccess},
			"job j: last successful backup 2h1m0s ago (2025-03-12T07:59:00Z), more than twice its schedule's period"},
		{"randomized delay extends the period", "hourly", 10 * time.Minute, state{FirstSeen: t0.Add(-48 * hour), LastSuccess: t0.Add(-2*hour - time.Minute), LastResult: ResultSuccess}, ""},
		{"irregular schedule uses the gap after the success", "Mon,Fri 00:00 UTC", 0,
			// Last success Friday 7th; next Mon 10th, then Fri 14th: period 4 days, overdue from the 15th.
			state{FirstSeen: t0.Add(-480 * hour), LastSuccess: time.Date(2025, 3, 7, 0, 5, 0, 0, time.UTC), LastResult: ResultSuccess}, ""},
		{"failed last run", "hourly", 0, state{FirstSeen: t0, LastResult: ResultFailed, LastError: "open repository /r: wrong password (from file:/p)"},
			"job j: open repository /r: wrong password (from file:/p)"},
		{"failed check", "hourly", 0, state{FirstSeen: t0, LastSuccess: t0, LastResult: ResultSuccess, MaintenanceError: "check repository: 1 problems found"},
			"job j: check repository: 1 problems found"},
		{"interrupted run is not a problem", "hourly", 0, state{FirstSeen: t0, LastSuccess: t0.Add(-time.Hour), LastResult: ResultInterrupted}, ""},
		{"one-shot schedule never goes stale", "2099-01-01", 0, state{FirstSeen: t0.Add(-10000 * hour)}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sched, err := schedule.Parse(tc.schedule)
			if err != nil {
				t.Fatal(err)
			}
			j := &job{s: &Service{}, name: "j", st: tc.st, timer: schedule.Timer{Schedule: sched, RandomizedDelay: tc.delay}, cfg: Job{RandomizedDelay: tc.delay}}
			if got := j.problem(t0); got != tc.want {
				t.Errorf("problem = %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestWrongPasswordDegradesOnlyThatJob checks a wrong password in the
// secret: the job fails with a clear error, the service reports itself
// degraded naming the job and keeps running, the other job succeeds, the
// secret appears nowhere, and fixing the secret recovers.
func TestWrongPasswordDegradesOnlyThatJob(t *testing.T) {
	const right, wrong = "right-password-1", "WRONG-password-zz9"
	badRepo := initRepo(t, right)
	goodRepo := initRepo(t, right)
	badRef := writeSecret(t, wrong)
	bad := testJob(badRepo, sourceTree(t, 2, 1024), badRef)
	good := testJob(goodRepo, sourceTree(t, 2, 1024), writeSecret(t, right))
	bad.Schedule, good.Schedule = "hourly UTC", "hourly UTC"
	h := newHarness(t, Config{Enable: true, Jobs: map[string]Job{"bad": bad, "good": good}}, "")
	h.serve()
	h.idle()
	h.clock.Set(t0.Add(time.Hour))
	h.waitRuns("bad", 1)
	h.waitRuns("good", 1)
	h.idle()

	st := h.jobState("bad")
	wantErr := fmt.Sprintf("open repository %s: wrong password (from %s)", badRepo, badRef)
	if st.LastResult != ResultFailed || st.LastError != wantErr {
		t.Errorf("bad job: result %q error %q, want failed with %q", st.LastResult, st.LastError, wantErr)
	}
	if g := h.jobState("good"); g.LastResult != ResultSuccess {
		t.Errorf("good job: %q %q", g.LastResult, g.LastError)
	}
	ready, reason, _ := h.healthNow()
	if ready || reason != "job bad: "+wantErr {
		t.Errorf("health: ready %v reason %q, want degraded with %q", ready, reason, "job bad: "+wantErr)
	}
	select {
	case err := <-h.done:
		t.Fatalf("Serve returned %v after a failed run; it must keep serving the other jobs", err)
	default:
	}
	status, _ := json.Marshal(h.svc.Status())
	stateFile, _ := os.ReadFile(h.svc.store.path("bad"))
	metrics := gatherText(t, h)
	for what, text := range map[string]string{"logs": h.logs.String(), "status": string(status), "state file": string(stateFile),
		"health": reason, "metrics": metrics} {
		if strings.Contains(text, wrong) || strings.Contains(text, right) {
			t.Errorf("%s show a password:\n%s", what, text)
		}
	}
	if !strings.Contains(metrics, `hostd_backup_errors_total{job="bad"} 1`) || !strings.Contains(metrics, `hostd_backup_errors_total{job="good"} 0`) {
		t.Errorf("errors_total wrong:\n%s", metrics)
	}
	if !strings.Contains(string(status), `"problem":"job bad: open repository`) {
		t.Errorf("status lacks the problem: %s", status)
	}

	// Fix the secret and run again: the job recovers.
	if err := os.WriteFile(strings.TrimPrefix(string(badRef), "file:"), []byte(right), 0o600); err != nil {
		t.Fatal(err)
	}
	h.clock.Set(t0.Add(2 * time.Hour))
	h.waitRuns("bad", 2)
	h.idle()
	if ready, reason, _ := h.healthNow(); !ready {
		t.Errorf("still degraded after fixing the password: %s", reason)
	}
	if st := h.jobState("bad"); st.LastError != "" || st.LastResult != ResultSuccess {
		t.Errorf("after the fix: %q %q", st.LastResult, st.LastError)
	}
}

// TestMissingRepository checks init: without it a missing repository is
// a clear error; with it the first run creates the repository.
func TestMissingRepository(t *testing.T) {
	pw := "init-pw"
	for _, init := range []bool{false, true} {
		t.Run(fmt.Sprintf("init=%v", init), func(t *testing.T) {
			repo := filepath.Join(t.TempDir(), "new-repo")
			job := testJob(repo, sourceTree(t, 3, 4096), writeSecret(t, pw))
			job.Init = init
			job.Schedule = "hourly UTC"
			h := newHarness(t, Config{Enable: true, Jobs: map[string]Job{"home": job}}, "")
			h.serve()
			h.idle()
			h.clock.Set(t0.Add(time.Hour))
			h.waitRuns("home", 1)
			st := h.jobState("home")
			if !init {
				want := fmt.Sprintf("open repository %s: no repository there; set init: true on the job to create it, or run hostd backup init", repo)
				if st.LastResult != ResultFailed || st.LastError != want {
					t.Errorf("result %q error %q, want failed with %q", st.LastResult, st.LastError, want)
				}
				if _, err := os.Stat(repo); err == nil {
					t.Errorf("a repository was created at %s without init", repo)
				}
				return
			}
			if st.LastResult != ResultSuccess {
				t.Fatalf("result %q error %q", st.LastResult, st.LastError)
			}
			if n := len(snapshots(t, repo, pw)); n != 1 {
				t.Errorf("%d snapshots in the new repository", n)
			}
			if !strings.Contains(h.logs.String(), "created repository") {
				t.Errorf("no log line for the new repository")
			}
		})
	}
}

// TestInterruptedRunIsResumed stops hostd in the middle of a large
// backup: the run is recorded as interrupted with its packs on disk and
// no snapshot; after a restart the missed run happens at once and
// reuses those packs.
func TestInterruptedRunIsResumed(t *testing.T) {
	pw := "resume-pw"
	repo := initRepo(t, pw)
	src := sourceTree(t, 1, 1024)
	job := testJob(repo, src, writeSecret(t, pw))
	job.Schedule = "*:0/10 UTC"
	cfg := Config{Enable: true, Jobs: map[string]Job{"home": job}}
	stateDir := t.TempDir()
	h := newHarness(t, cfg, stateDir)
	h.serve()
	h.idle()
	h.clock.Set(t0.Add(10 * time.Minute))
	h.waitRuns("home", 1)
	h.idle()
	packsBefore, bytesBefore := packFiles(t, repo)

	const big = 16
	for i := range big {
		randomFile(t, filepath.Join(src, "big", fmt.Sprintf("b%02d", i)), 8<<20)
	}
	h.clock.Set(t0.Add(20 * time.Minute))
	testenv.WaitFor(t, 60*time.Second, func() error {
		if n, _ := packFiles(t, repo); n < packsBefore+8 {
			return fmt.Errorf("%d new packs written", n-packsBefore)
		}
		return nil
	})
	stopAt := time.Now()
	if err := h.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	// The daemon's default stop_timeout is 10s.
	if took := time.Since(stopAt); took > 10*time.Second {
		t.Errorf("stopping mid-run took %v, more than the 10s stop timeout", took)
	} else {
		t.Logf("stopped mid-run in %v", took.Round(time.Millisecond))
	}
	st := h.jobState("home")
	if st.LastResult != ResultInterrupted {
		t.Fatalf("after stop: result %q error %q, want interrupted (the backup finished before the stop; make the data larger)", st.LastResult, st.LastError)
	}
	if !st.LastTrigger.Equal(t0.Add(10 * time.Minute)) {
		t.Errorf("last trigger %v: an interrupted run must not count as done", st.LastTrigger)
	}
	if n := len(snapshots(t, repo, pw)); n != 1 {
		t.Errorf("%d snapshots after the interrupted run, want only the first", n)
	}
	packsKept, bytesKept := packFiles(t, repo)
	if packsKept <= packsBefore {
		t.Fatalf("no packs left by the interrupted run")
	}

	// Restart 5 minutes later: the 10:20 run was missed and runs at once.
	h2 := newHarness(t, cfg, stateDir)
	h2.clock.Set(t0.Add(25 * time.Minute))
	h2.serve()
	h2.waitRuns("home", 1)
	st = h2.jobState("home")
	if st.LastResult != ResultSuccess || !st.LastStart.Equal(t0.Add(25*time.Minute)) {
		t.Fatalf("resumed run: %q at %v (error %q)", st.LastResult, st.LastStart, st.LastError)
	}
	total := int64(big * 8 << 20)
	left := bytesKept - bytesBefore
	t.Logf("interrupted run left %d packs (%d bytes); resumed run added %d of %d bytes", packsKept-packsBefore, left, st.BytesAdded, total)
	// Random data does not compress: what the packs hold is not added again
	// (allowing 5% for pack headers and encryption overhead).
	if st.BytesAdded > total-left*95/100 {
		t.Errorf("resumed run added %d bytes of %d; the %d bytes packed before the stop were not reused", st.BytesAdded, total, left)
	}
	if n := len(snapshots(t, repo, pw)); n != 2 {
		t.Errorf("%d snapshots after the resumed run, want 2", n)
	}
}

// packFiles counts the repository's pack files and their bytes.
func packFiles(t *testing.T, repo string) (int, int64) {
	t.Helper()
	n, size := 0, int64(0)
	_ = filepath.WalkDir(filepath.Join(repo, "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n++
				size += info.Size()
			}
		}
		return nil
	})
	return n, size
}

func randomFile(t *testing.T, p string, size int) {
	t.Helper()
	backuptest.RandomFile(t, p, size)
}

// gatherText renders the harness's metrics in the text format.
func gatherText(t *testing.T, h *harness) string {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			b.WriteString(mf.GetName())
			b.WriteString("{")
			for i, l := range m.GetLabel() {
				if i > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, "%s=%q", l.GetName(), l.GetValue())
			}
			fmt.Fprintf(&b, "} %v\n", metricValue(m))
		}
	}
	return b.String()
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	}
	return 0
}

// TestRandomizedDelayedCatchUp checks a catch-up run with a randomized
// delay longer than the loop's longest sleep: the planned time stays put
// while the clock moves minute by minute, and the run starts then.
func TestRandomizedDelayedCatchUp(t *testing.T) {
	pw := "delay-pw"
	repo := initRepo(t, pw)
	job := testJob(repo, sourceTree(t, 2, 1024), writeSecret(t, pw))
	job.Schedule = "daily UTC"
	job.RandomizedDelay = 30 * time.Minute
	stateDir := t.TempDir()
	dayBefore := t0.Truncate(24 * time.Hour).Add(-24 * time.Hour)
	if err := (stateStore{dir: filepath.Join(stateDir, "jobs")}).save("home", state{FirstSeen: dayBefore, LastTrigger: dayBefore,
		LastStart: dayBefore, LastSuccess: dayBefore, LastResult: ResultSuccess}); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, Config{Enable: true, Jobs: map[string]Job{"home": job}}, stateDir)
	h.serve()
	h.idle()
	planned := h.svc.byName["home"].status().NextRun
	if planned == nil || planned.Before(t0) || !planned.Before(t0.Add(30*time.Minute)) {
		t.Fatalf("catch-up planned at %v, want within 30m after %v", planned, t0)
	}
	for now := t0.Add(time.Minute); now.Before(*planned); now = now.Add(time.Minute) {
		h.clock.Set(now)
		h.idle()
		if got := h.svc.byName["home"].status().NextRun; !got.Equal(*planned) {
			t.Fatalf("at %v the next run moved from %v to %v", now, planned, got)
		}
		if n := h.totalRuns("home"); n != 0 {
			t.Fatalf("ran at %v, before the planned %v", now, planned)
		}
	}
	h.clock.Set(*planned)
	h.waitRuns("home", 1)
	if st := h.jobState("home"); st.LastResult != ResultSuccess || !st.LastStart.Equal(*planned) {
		t.Errorf("run %q at %v, want success at %v", st.LastResult, st.LastStart, planned)
	}
}

// TestOpenErrorNamesRepositoryOnce checks that a job's error names its
// repository once: the repository layer already names it in the errors
// of a damaged repository, and the job used to add the same prefix
// again ("open repository R: open repository R: ...").
func TestOpenErrorNamesRepositoryOnce(t *testing.T) {
	repo := initRepo(t, "pw")
	// The config file damaged: the key no longer opens it.
	if err := os.WriteFile(filepath.Join(repo, "config"), []byte("not a repository config"), 0o600); err != nil {
		t.Fatal(err)
	}
	job := testJob(repo, sourceTree(t, 1, 16), writeSecret(t, "pw"))
	job.Schedule = "hourly UTC"
	h := newHarness(t, Config{Enable: true, Jobs: map[string]Job{"home": job}}, "")
	h.serve()
	h.idle()
	h.clock.Set(t0.Add(time.Hour))
	h.waitRuns("home", 1)
	st := h.jobState("home")
	prefix := "open repository " + repo
	if st.LastResult != ResultFailed || !strings.HasPrefix(st.LastError, prefix) || strings.Count(st.LastError, prefix) != 1 {
		t.Errorf("result %q error %q: want failed, %q once", st.LastResult, st.LastError, prefix)
	}
}
