package jobs

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/secrets"
	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backend"
)

// TestS3OutageDegradesJob runs a scheduled job backing up to a real S3
// server (SeaweedFS): the first run succeeds; with the server down the
// next run fails with an error naming the repository, the job's status
// shows it (last_error, the service degraded naming the job) and the
// metrics count the failure; with the server back the next run succeeds,
// the job is healthy again, and check --read-data passes.
func TestS3OutageDegradesJob(t *testing.T) {
	s := testenv.StartSeaweedFS(t)
	dir := t.TempDir()
	keyRef := func(name, v string) secrets.Ref {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		return secrets.Ref("file:" + p)
	}
	const pw = "s3-job-pw"
	repo := "s3:" + s.Endpoint + "/jobs/host1"
	job := testJob(repo, sourceTree(t, 6, 64<<10), writeSecret(t, pw))
	job.Schedule = "hourly UTC"
	job.Init = true
	job.S3 = S3{AccessKey: keyRef("access", s.AccessKey), SecretKey: keyRef("secret", s.SecretKey)}
	h := newHarness(t, Config{Enable: true, Jobs: map[string]Job{"offsite": job}}, "")
	net := newPeers()
	net.set(true)
	h.svc.env.Peers = net
	h.serve()
	h.idle()

	runAt := func(n int) {
		t.Helper()
		h.clock.Set(t0.Add(time.Duration(n) * time.Hour))
		h.waitRuns("offsite", int64(n))
		h.idle()
	}
	runAt(1)
	if st := h.jobState("offsite"); st.LastResult != ResultSuccess {
		t.Fatalf("first run: %q %q", st.LastResult, st.LastError)
	}

	// The server goes away: the run fails (after its retries), naming
	// the repository.
	s.Kill()
	runAt(2)
	st := h.jobState("offsite")
	if st.LastResult != ResultFailed || !strings.Contains(st.LastError, repo) {
		t.Fatalf("run with the server down: %q %q, want failed naming %s", st.LastResult, st.LastError, repo)
	}
	t.Logf("run with the server down: %s", st.LastError)
	ready, reason, _ := h.healthNow()
	if ready || !strings.HasPrefix(reason, "job offsite: ") || !strings.Contains(reason, repo) {
		t.Errorf("health: ready %v reason %q, want degraded naming the job and the repository", ready, reason)
	}
	status, _ := json.Marshal(h.svc.Status())
	if !strings.Contains(string(status), `"last_error":"`) || !strings.Contains(string(status), `"problem":"job offsite: `) {
		t.Errorf("status lacks last_error or the problem: %s", status)
	}
	metrics := gatherText(t, h)
	for _, want := range []string{`hostd_backup_errors_total{job="offsite"} 1`, `hostd_backup_runs_total{job="offsite",result="failed"} 1`,
		`hostd_backup_runs_total{job="offsite",result="success"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, metrics)
		}
	}
	for what, text := range map[string]string{"logs": h.logs.String(), "status": string(status), "metrics": metrics} {
		if strings.Contains(text, s.SecretKey) || strings.Contains(text, pw) {
			t.Errorf("%s show a secret", what)
		}
	}

	// The server is back: the next run succeeds and the job is healthy.
	s.Restart(t)
	runAt(3)
	if st := h.jobState("offsite"); st.LastResult != ResultSuccess || st.LastError != "" {
		t.Fatalf("run with the server back: %q %q", st.LastResult, st.LastError)
	}
	if ready, reason, _ := h.healthNow(); !ready {
		t.Errorf("still degraded with the server back: %s", reason)
	}
	if m := gatherText(t, h); !strings.Contains(m, `hostd_backup_runs_total{job="offsite",result="success"} 2`) {
		t.Errorf("metrics do not count the second success:\n%s", m)
	}
	h.stop()

	ctx := context.Background()
	r, err := backup.Open(ctx, repo, []byte(pw), backup.OpenOptions{NoCache: true,
		Backend: backend.Options{S3: backend.S3Options{AccessKey: job.S3.AccessKey, SecretKey: job.S3.SecretKey}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := r.Check(ctx, backup.CheckOptions{ReadData: true})
	if err != nil || !res.OK() {
		t.Fatalf("check --read-data: %+v %v", res, err)
	}
	snaps, err := r.Snapshots(ctx)
	if err != nil || len(snaps) != 2 {
		t.Fatalf("%d snapshots (%v), want 2: the runs before and after the outage", len(snaps), err)
	}
}
