package jobs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/secrets"
)

func TestStateRoundTrip(t *testing.T) {
	store := stateStore{dir: filepath.Join(t.TempDir(), "jobs")}
	if st, err := store.load("home"); err != nil || st != (state{}) {
		t.Fatalf("missing state: %+v, %v", st, err)
	}
	want := state{FirstSeen: t0, LastStart: t0, LastTrigger: t0, LastEnd: t0.Add(time.Minute), LastResult: ResultSuccess,
		LastSuccess: t0.Add(time.Minute), LastDuration: time.Minute, LastSnapshot: "abc", BytesAdded: 42, Files: 7}
	if err := store.save("home", want); err != nil {
		t.Fatal(err)
	}
	got, err := store.load("home")
	if err != nil || got != want {
		t.Fatalf("load = %+v, %v; want %+v", got, err, want)
	}
	entries, _ := os.ReadDir(store.dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	info, _ := os.Stat(store.path("home"))
	if info.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v", info.Mode().Perm())
	}
}

// TestCorruptStateIsSetAside checks a state file that does not decode:
// the service starts with an empty state and keeps the file for
// inspection instead of failing.
func TestCorruptStateIsSetAside(t *testing.T) {
	stateDir := t.TempDir()
	store := stateStore{dir: filepath.Join(stateDir, "jobs")}
	if err := os.MkdirAll(store.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(store.path("home"), []byte(`{"last_start": "yesterday"`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := store.load("home"); !errors.Is(err, errCorruptState) {
		t.Fatalf("load of a corrupt file: %v", err)
	}
	job := testJob("/nonexistent/repo", t.TempDir(), writeSecret(t, "x"))
	h := newHarness(t, Config{Enable: true, Jobs: map[string]Job{"home": job}}, stateDir)
	h.serve()
	h.idle()
	if st := h.jobState("home"); !st.FirstSeen.Equal(t0) {
		t.Errorf("state after a corrupt file: %+v", st)
	}
	if _, err := os.Stat(store.path("home") + ".corrupt"); err != nil {
		t.Errorf("corrupt file not kept: %v", err)
	}
	if !strings.Contains(h.logs.String(), "job state unreadable") {
		t.Errorf("no log line:\n%s", h.logs.String())
	}
}

// FuzzLoadState feeds arbitrary bytes to the state decoder: it returns a
// state or errCorruptState, never panics.
func FuzzLoadState(f *testing.F) {
	f.Add([]byte(`{"first_seen":"2025-03-12T10:00:00Z","last_result":"success","bytes_added":5}`))
	f.Add([]byte(`{"last_duration_ns": -1}`))
	f.Add([]byte(`[]`))
	f.Add([]byte{0xff, 0})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		store := stateStore{dir: dir}
		if err := os.WriteFile(store.path("fuzz"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := store.load("fuzz"); err != nil && !errors.Is(err, errCorruptState) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}

// TestServeAgainReportsHealth checks that a Serve restarted by the
// supervisor reports its health again, even when nothing changed.
func TestServeAgainReportsHealth(t *testing.T) {
	job := testJob("/nonexistent/repo", t.TempDir(), writeSecret(t, "x"))
	h := newHarness(t, Config{Enable: true, Jobs: map[string]Job{"home": job}}, "")
	h.serve()
	h.idle()
	_, _, first := h.healthNow()
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	h.serve()
	h.idle()
	if ready, _, again := h.healthNow(); !ready || again <= first {
		t.Errorf("after restart: ready %v, %d reports (before %d)", ready, again, first)
	}
}

// TestMissingSecret checks a password reference that resolves to
// nothing: the run fails naming the reference, and the job is degraded.
func TestMissingSecret(t *testing.T) {
	ref := secrets.Ref("file:" + filepath.Join(t.TempDir(), "no-such-file"))
	job := testJob(initRepo(t, "pw"), t.TempDir(), ref)
	job.Schedule = "hourly UTC"
	h := newHarness(t, Config{Enable: true, Jobs: map[string]Job{"home": job}}, "")
	h.serve()
	h.idle()
	h.clock.Set(t0.Add(time.Hour))
	h.waitRuns("home", 1)
	h.idle()
	st := h.jobState("home")
	want := "read the repository password: resolve secret " + string(ref) + ": "
	if st.LastResult != ResultFailed || !strings.HasPrefix(st.LastError, want) {
		t.Errorf("result %q error %q, want failed starting with %q", st.LastResult, st.LastError, want)
	}
	if ready, reason, _ := h.healthNow(); ready || !strings.HasPrefix(reason, "job home: "+want) {
		t.Errorf("health ready=%v %q", ready, reason)
	}
}
