package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/internal/testenv"
)

// TestStateSaveFailure runs a job whose state directory cannot be
// written, for real: a full tmpfs, and a read-only bind mount (root
// ignores permission bits, so chmod would prove nothing). The backup
// itself succeeds, but the job and the service are degraded with a
// reason naming the state file and the error, the status and metrics
// show it, and it clears once a save succeeds again.
func TestStateSaveFailure(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tc := range []struct {
		name  string
		errno syscall.Errno
		// breakDir makes dir unwritable; repair undoes it.
		breakDir func(t *testing.T, dir string) (repair func())
	}{
		{name: "full", errno: syscall.ENOSPC, breakDir: fullTmpfs},
		{name: "read-only", errno: syscall.EROFS, breakDir: readOnlyBind},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const pw = "state-save-password"
			repo := initRepo(t, pw)
			job := testJob(repo, sourceTree(t, 2, 1024), writeSecret(t, pw))
			// The job's state directory is a mount of its own, so only
			// the state file is affected: the engine's cache lives beside it.
			stateDir := t.TempDir()
			jobsDir := filepath.Join(stateDir, "jobs")
			if err := os.MkdirAll(jobsDir, 0o700); err != nil {
				t.Fatal(err)
			}
			repair := tc.breakDir(t, jobsDir)

			h := newHarness(t, Config{Enable: true, Jobs: map[string]Job{"home": job}}, stateDir)
			h.serve()
			h.idle()
			stateFile := h.svc.store.path("home")
			// The first save (when the job is first seen) already fails;
			// Serve keeps running the job instead of failing over and over.
			want := "job home: save job state " + stateFile + ": " + tc.errno.Error()
			isErr := func(s string) bool { return s == want }
			if ready, reason, _ := h.healthNow(); ready || !isErr(reason) {
				t.Errorf("health at start: ready %v reason %q, want degraded with %q", ready, reason, want)
			}

			r, _, err := h.svc.byName["home"].request()
			if err != nil {
				t.Fatal(err)
			}
			<-r.done
			h.idle()
			if res := r.result; res.Result != ResultSuccess {
				t.Fatalf("run: %+v", res)
			}
			ready, reason, _ := h.healthNow()
			if ready || !isErr(reason) {
				t.Errorf("health after the run: ready %v reason %q, want degraded with %q", ready, reason, want)
			}
			st := h.svc.list().Jobs[0]
			if st.LastResult != ResultSuccess || !isErr("job home: "+st.StateError) || st.StateErrorAt == nil || st.Problem != reason {
				t.Errorf("job status: result %q state_error %q at %v problem %q", st.LastResult, st.StateError, st.StateErrorAt, st.Problem)
			}
			status, _ := json.Marshal(h.svc.Status())
			if !strings.Contains(string(status), `"state_error":"save job state `+stateFile) ||
				!strings.Contains(h.svc.Status().Summary, "home success") || !strings.Contains(h.svc.Status().Summary, "state not saved") {
				t.Errorf("service status: %s", status)
			}
			metrics := gatherText(t, h)
			if strings.Contains(metrics, `hostd_backup_state_save_errors_total{job="home"} 0`) ||
				!strings.Contains(metrics, `hostd_backup_state_save_errors_total{job="home"}`) {
				t.Errorf("state save errors not counted:\n%s", metrics)
			}
			if _, err := os.Stat(stateFile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("state file after failed saves: %v", err)
			}
			if entries, _ := os.ReadDir(jobsDir); len(entries) > 1 || len(entries) == 1 && entries[0].Name() != "fill" {
				t.Errorf("temporary files left behind: %v", entries)
			}

			// Room again: the job's loop saves within maxWait and the
			// problem clears, without waiting for another run.
			repair()
			h.clock.Advance(maxWait)
			testenv.WaitFor(t, 30*time.Second, func() error {
				if ready, reason, _ := h.healthNow(); !ready {
					return fmt.Errorf("still degraded: %s", reason)
				}
				return nil
			})
			if st := h.svc.list().Jobs[0]; st.StateError != "" || st.StateErrorAt != nil || st.Problem != "" {
				t.Errorf("after repair: %+v", st)
			}
			saved, err := h.svc.store.load("home")
			if err != nil || saved.LastResult != ResultSuccess || saved.LastSnapshot == "" || !saved.FirstSeen.Equal(t0) {
				t.Errorf("saved state after repair: %+v, %v", saved, err)
			}
			if n := strings.Count(h.logs.String(), "cannot save job state"); n != 1 {
				t.Errorf("the save failure was logged %d times, want once:\n%s", n, h.logs.String())
			}
			if !strings.Contains(h.logs.String(), "job state saved again") {
				t.Errorf("recovery not logged:\n%s", h.logs.String())
			}
		})
	}
}

// fullTmpfs mounts a 64 KiB tmpfs on dir and fills it; repair frees it.
func fullTmpfs(t *testing.T, dir string) func() {
	t.Helper()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k,mode=0700"); err != nil {
		testenv.Require(t, "tmpfs mount", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	fill := filepath.Join(dir, "fill")
	f, err := os.Create(fill)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			break
		}
	}
	return func() {
		if err := os.Remove(fill); err != nil {
			t.Fatal(err)
		}
	}
}

// readOnlyBind bind-mounts dir on itself read-only; repair makes it
// writable again.
func readOnlyBind(t *testing.T, dir string) func() {
	t.Helper()
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		testenv.Require(t, "bind mount", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount %s read-only: %v", dir, err)
	}
	return func() {
		if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND, ""); err != nil {
			t.Fatalf("remount %s writable: %v", dir, err)
		}
	}
}

// TestStateFileNotRegularOrTooLarge checks that loading a state file
// that is a FIFO (which would block a plain read) or larger than any
// real state returns at once as a corrupt state, which the service sets
// aside.
func TestStateFileNotRegularOrTooLarge(t *testing.T) {
	store := stateStore{dir: t.TempDir()}
	if err := unix.Mkfifo(store.path("fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Valid JSON, so only the size cap refuses it.
	big := `{"last_snapshot": "` + strings.Repeat("a", stateLimit) + `"}`
	if err := os.WriteFile(store.path("big"), []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"fifo", "big"} {
		if _, err := store.load(name); !errors.Is(err, errCorruptState) || !strings.Contains(err.Error(), store.path(name)) {
			t.Errorf("load %s: %v, want a corrupt state naming the file", name, err)
		}
	}
}
