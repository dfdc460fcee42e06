package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/testenv"
)

// serveAPI serves the service's local API on a unix socket, as the
// daemon does, and returns a client for it.
func serveAPI(t *testing.T, s *Service) *api.Client {
	t.Helper()
	sock := filepath.Join(testenv.TempDir(t), "hostd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.LocalAPI(), ConnContext: api.ConnContext}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return api.NewClient(sock)
}

// follow posts a run request and collects the streamed events.
func follow(ctx context.Context, c *api.Client, job string, first chan<- RunEvent) ([]RunEvent, error) {
	var events []RunEvent
	err := c.Stream(ctx, http.MethodPost, "/v1/backup/run", RunRequest{Job: job}, func(line json.RawMessage) error {
		var ev RunEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("decode %s: %w", line, err)
		}
		if len(events) == 0 && first != nil {
			first <- ev
		}
		events = append(events, ev)
		return nil
	})
	return events, err
}

func TestRunStreamsProgress(t *testing.T) {
	pw := "api-pw"
	repo := initRepo(t, pw)
	job := testJob(repo, sourceTree(t, 40, 64<<10), writeSecret(t, pw))
	h := newHarness(t, Config{Enable: true, Jobs: map[string]Job{"home": job}}, "")
	h.serve()
	h.idle()
	c := serveAPI(t, h.svc)
	ctx := context.Background()

	events, err := follow(ctx, c, "home", nil)
	if err != nil {
		t.Fatal(err)
	}
	types := make([]string, len(events))
	for i, ev := range events {
		types[i] = ev.Type
		if ev.Job != "home" {
			t.Errorf("event %d for job %q", i, ev.Job)
		}
	}
	if len(events) < 3 || types[0] != EventStarted || types[len(types)-1] != EventDone {
		t.Fatalf("events %v, want started ... done", types)
	}
	done := events[len(events)-1].Result
	if done == nil || done.Result != ResultSuccess || done.Summary == nil || done.Summary.SnapshotID == "" || done.Summary.FilesNew != 40 {
		t.Fatalf("done event %+v", done)
	}
	if !containsString(types, EventPhase) {
		t.Errorf("no phase event in %v", types)
	}

	var list JobList
	if err := c.Get(ctx, "/v1/backup/jobs", &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Jobs) != 1 {
		t.Fatalf("jobs = %+v", list)
	}
	js := list.Jobs[0]
	if js.Name != "home" || js.State != stateIdle || js.LastResult != ResultSuccess || js.Files != 40 || js.BytesAdded <= 0 ||
		js.LastSnapshot != done.Summary.SnapshotID || js.RepositorySize <= 0 || js.NextRun == nil || js.Schedule != "*-01-01 00:00:00 UTC" {
		t.Errorf("job status %+v", js)
	}
	metrics := gatherText(t, h)
	for _, want := range []string{
		fmt.Sprintf(`hostd_backup_last_success_timestamp_seconds{job="home"} %v`, float64(t0.Unix())),
		`hostd_backup_files{job="home"} 40`,
		fmt.Sprintf(`hostd_backup_added_bytes{job="home"} %v`, float64(js.BytesAdded)),
		fmt.Sprintf(`hostd_backup_repository_size_bytes{job="home"} %v`, float64(js.RepositorySize)),
		`hostd_backup_last_duration_seconds{job="home"} 0`, // the fake clock did not move
		`hostd_backup_errors_total{job="home"} 0`,
		`hostd_backup_runs_total{job="home",result="success"} 1`,
		`hostd_backup_running{job="home"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, metrics)
		}
	}
	if sum := h.svc.Status().Summary; !strings.HasPrefix(sum, "home success 0s ago, next ") {
		t.Errorf("status summary %q", sum)
	}
}

func TestRunRequestErrors(t *testing.T) {
	job := testJob("/nonexistent/repo", t.TempDir(), writeSecret(t, "x"))
	h := newHarness(t, Config{Enable: true, Jobs: map[string]Job{"home": job, "etc": job}}, "")
	c := serveAPI(t, h.svc)
	ctx := context.Background()
	var herr *api.HTTPError

	_, err := follow(ctx, c, "nope", nil)
	if !errors.As(err, &herr) || herr.Code != http.StatusNotFound || herr.Msg != `no backup job "nope" (jobs: etc, home)` {
		t.Errorf("unknown job: %v", err)
	}
	_, err = follow(ctx, c, "home", nil)
	if !errors.As(err, &herr) || herr.Code != http.StatusServiceUnavailable || !strings.Contains(herr.Msg, "backup service is stopped") {
		t.Errorf("run while stopped: %v", err)
	}
	raw, err := c.Raw(ctx, http.MethodPost, "/v1/backup/run", map[string]any{"job": "home", "extra": 1})
	if !errors.As(err, &herr) || herr.Code != http.StatusBadRequest || !strings.Contains(herr.Msg, `unknown field "extra"`) {
		t.Errorf("bad body: %v %s", err, raw)
	}

	// Without peer credentials (not the unix socket) a run is refused.
	rec := httptest.NewRecorder()
	h.svc.LocalAPI().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/backup/run", strings.NewReader(`{"job":"home"}`)))
	if rec.Code != http.StatusForbidden {
		t.Errorf("run without peer credentials: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.svc.LocalAPI().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/backup/run", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET run: %d", rec.Code)
	}
}

// TestOverlappingTriggersRunOnce sends five run requests while the
// repository is busy: they all follow one run, which saves one snapshot.
// A second job on the same repository waits for it.
func TestOverlappingTriggersRunOnce(t *testing.T) {
	pw := "overlap-pw"
	repo := initRepo(t, pw)
	ref := writeSecret(t, pw)
	a := testJob(repo, sourceTree(t, 5, 8<<10), ref)
	b := testJob(repo, sourceTree(t, 5, 8<<10), ref)
	h := newHarness(t, Config{Enable: true, Jobs: map[string]Job{"a": a, "b": b}}, "")
	h.serve()
	h.idle()
	c := serveAPI(t, h.svc)
	ctx := context.Background()

	// Hold the repository as another run would.
	lock := h.svc.byName["a"].repoLock
	if err := lock.acquire(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	const n = 5
	var wg sync.WaitGroup
	results := make([][]RunEvent, n)
	errs := make([]error, n)
	first := make(chan RunEvent, n+1)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = follow(ctx, c, "a", first)
		}()
	}
	var bEvents []RunEvent
	var bErr error
	wg.Add(1)
	for range n {
		select {
		case <-first:
		case <-time.After(30 * time.Second):
			t.Fatal("run requests were not answered")
		}
	}
	go func() {
		defer wg.Done()
		bEvents, bErr = follow(ctx, c, "b", nil)
	}()
	testenv.WaitFor(t, 30*time.Second, func() error {
		if st := h.svc.byName["b"].status(); st.State != stateWaiting {
			return fmt.Errorf("job b is %s", st.State)
		}
		return nil
	})
	lock.release()
	wg.Wait()

	started, joined := 0, 0
	snapshot := ""
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		evs := results[i]
		switch evs[0].Type {
		case EventStarted:
			started++
		case EventJoined:
			joined++
		}
		last := evs[len(evs)-1]
		if last.Type != EventDone || last.Result.Result != ResultSuccess {
			t.Fatalf("request %d ended with %+v", i, last)
		}
		if snapshot == "" {
			snapshot = last.Result.Summary.SnapshotID
		} else if last.Result.Summary.SnapshotID != snapshot {
			t.Errorf("request %d followed another run (snapshot %s, not %s)", i, last.Result.Summary.SnapshotID, snapshot)
		}
	}
	if started != 1 || joined != n-1 {
		t.Errorf("%d requests started a run and %d joined, want 1 and %d", started, joined, n-1)
	}
	if bErr != nil || bEvents[len(bEvents)-1].Result.Result != ResultSuccess {
		t.Fatalf("job b: %v %+v", bErr, bEvents)
	}
	sawWaiting := false
	for _, ev := range bEvents {
		sawWaiting = sawWaiting || ev.Type == EventWaiting
	}
	if !sawWaiting {
		t.Errorf("job b did not report waiting for the repository: %+v", bEvents)
	}
	if got := h.totalRuns("a"); got != 1 {
		t.Errorf("job a ran %d times", got)
	}
	if got := len(snapshots(t, repo, pw)); got != 2 {
		t.Errorf("%d snapshots, want one per job", got)
	}
	if !strings.Contains(h.logs.String(), "waiting for another job on the same repository") {
		t.Error("no log line for the wait")
	}
}
