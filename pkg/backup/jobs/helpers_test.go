package jobs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hostd/hostd/internal/secrets"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backuptest"
)

// harness is a service under test with its fake clock, health, logs and
// metrics.
type harness struct {
	t      *testing.T
	svc    *Service
	clock  *servicetest.FakeClock
	health *servicetest.Health
	logs   *servicetest.Logs
	reg    *prometheus.Registry
	state  string

	cancel context.CancelFunc
	done   chan error
}

// start time of every harness: a Wednesday, 10:00 UTC.
var t0 = time.Date(2025, 3, 12, 10, 0, 0, 0, time.UTC)

// newHarness builds the service for cfg. stateDir "" makes a new one.
func newHarness(t *testing.T, cfg Config, stateDir string) *harness {
	t.Helper()
	if stateDir == "" {
		stateDir = t.TempDir()
	}
	h := &harness{t: t, clock: servicetest.NewFakeClock(t0), health: &servicetest.Health{}, logs: &servicetest.Logs{},
		reg: prometheus.NewRegistry(), state: stateDir}
	env := service.Env{
		Logger:   h.logs.Logger(Name),
		Clock:    h.clock,
		StateDir: stateDir,
		Metrics:  h.reg,
		Gatherer: h.reg,
		Secrets:  secrets.NewResolver("", ""),
		Health:   h.health,
	}
	svc, err := New(env, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	svc.initOpts = backup.InitOptions{KDF: backuptest.FastKDF(), PackSize: 1 << 20}
	h.svc = svc
	return h
}

// serve runs Serve until the test ends or stop is called, and waits
// until every job's loop waits for its timer.
func (h *harness) serve() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.svc.Serve(ctx) }()
	h.t.Cleanup(func() { h.stop() })
}

// stop cancels Serve and waits for it to return.
func (h *harness) stop() error {
	if h.cancel == nil {
		return nil
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		return err
	case <-time.After(30 * time.Second):
		h.t.Fatalf("Serve did not return within 30s of cancellation")
		return nil
	}
}

// idle waits until every job loop sleeps on the fake clock, no run is
// in progress and the health reflects the last change.
func (h *harness) idle() {
	h.t.Helper()
	testenv.WaitFor(h.t, 60*time.Second, func() error {
		for _, j := range h.svc.jobs {
			j.mu.Lock()
			busy := j.cur != nil
			j.mu.Unlock()
			if busy {
				return fmt.Errorf("job %s is running", j.name)
			}
		}
		if n := h.clock.Waiters(); n < len(h.svc.jobs) {
			return fmt.Errorf("%d of %d job loops wait", n, len(h.svc.jobs))
		}
		if !h.svc.healthSettled() {
			return fmt.Errorf("health not reported since the last change")
		}
		return nil
	})
}

// healthNow returns the latest health report (ready, or the degraded
// reason) and how many reports the service has made.
func (h *harness) healthNow() (ready bool, reason string, reports int) {
	rs := h.health.Reports()
	if len(rs) == 0 {
		return false, "", 0
	}
	last := rs[len(rs)-1]
	return last.Ready, last.Reason(), len(rs)
}

// runsOf returns how many runs of job ended with each result.
func (h *harness) runsOf(job string) map[string]int64 {
	j := h.svc.byName[job]
	j.mu.Lock()
	defer j.mu.Unlock()
	out := map[string]int64{}
	for k, v := range j.runs {
		out[k] = v
	}
	return out
}

func (h *harness) totalRuns(job string) int64 {
	var n int64
	for _, v := range h.runsOf(job) {
		n += v
	}
	return n
}

// waitRuns waits until job has finished n runs in all.
func (h *harness) waitRuns(job string, n int64) {
	h.t.Helper()
	testenv.WaitFor(h.t, 120*time.Second, func() error {
		if got := h.totalRuns(job); got < n {
			return fmt.Errorf("job %s finished %d runs, want %d", job, got, n)
		}
		return nil
	})
}

func (h *harness) jobState(job string) state {
	j := h.svc.byName[job]
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.st
}

// writeSecret stores a password in a file and returns its reference.
func writeSecret(t *testing.T, value string) secrets.Ref {
	t.Helper()
	p := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return secrets.Ref("file:" + p)
}

// initRepo creates a repository with fast key derivation.
func initRepo(t *testing.T, password string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	if err := backup.Init(context.Background(), dir, []byte(password), backup.InitOptions{KDF: backuptest.FastKDF(), PackSize: 1 << 20}); err != nil {
		t.Fatalf("init repository: %v", err)
	}
	return dir
}

// snapshots lists the repository's snapshots, oldest first.
func snapshots(t *testing.T, repo, password string) []backup.SnapshotInfo {
	t.Helper()
	r, err := backup.Open(context.Background(), repo, []byte(password), backup.OpenOptions{NoCache: true})
	if err != nil {
		t.Fatalf("open repository: %v", err)
	}
	defer r.Close()
	snaps, err := r.Snapshots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(snaps, func(i, k int) bool { return snaps[i].Time.Before(snaps[k].Time) })
	return snaps
}

// sourceTree makes a small tree of files to back up.
func sourceTree(t *testing.T, files, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	for i := range files {
		backuptest.RandomFile(t, filepath.Join(dir, fmt.Sprintf("d%d", i%3), fmt.Sprintf("f%03d", i)), size)
	}
	return dir
}

// testJob is a job on repo backing up src.
func testJob(repo, src string, pw secrets.Ref) Job {
	return Job{Repository: repo, Paths: []string{src}, Password: pw, Schedule: "yearly UTC"}
}

func boolPtr(b bool) *bool { return &b }
