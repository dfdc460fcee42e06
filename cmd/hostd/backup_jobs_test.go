package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/daemon"
	"github.com/hostd/hostd/internal/daemon/daemontest"
	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backuptest"
	"github.com/hostd/hostd/pkg/backup/jobs"
)

// startBackupDaemon runs a daemon in-process with the backup service
// (jobs "home", which works, and "broken", whose password secret is
// wrong) and a test service "alpha", and returns its socket and HTTP
// address.
func startBackupDaemon(t *testing.T) (socket, httpAddr string) {
	t.Helper()
	dir := testenv.TempDir(t)
	repo := filepath.Join(dir, "repo")
	if err := backup.Init(context.Background(), repo, backuptest.Password, backup.InitOptions{KDF: backuptest.FastKDF()}); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	for _, name := range []string{"a", "b", "c"} {
		backuptest.RandomFile(t, filepath.Join(src, name), 32<<10)
	}
	good := filepath.Join(dir, "good-pw")
	bad := filepath.Join(dir, "bad-pw")
	if err := os.WriteFile(good, backuptest.Password, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("not the password"), 0o600); err != nil {
		t.Fatal(err)
	}
	td := daemontest.Start(t, daemontest.Options{
		Registrations: []daemon.Registration{
			daemontest.Registration("alpha"),
			daemon.Register(jobs.Name, jobs.DefaultConfig, jobs.New),
		},
		Sections: fmt.Sprintf(`alpha: {}
backup:
  enable: true
  jobs:
    home:
      repository: %[1]s
      paths: [%[2]s]
      password: file:%[3]s
      schedule: yearly
    broken:
      repository: %[1]s
      paths: [%[2]s/a]
      password: file:%[4]s
      schedule: yearly
`, repo, src, good, bad),
	})
	socket, httpAddr = td.Socket, td.HTTP
	testenv.WaitFor(t, 10*time.Second, func() error {
		var list jobs.JobList
		if err := api.NewClient(socket).Get(context.Background(), api.RouteBackupJobs, &list); err != nil {
			return err
		}
		for _, j := range list.Jobs {
			if j.NextRun == nil {
				return errors.New("job loops not started yet")
			}
		}
		return nil
	})
	return socket, httpAddr
}

func TestBackupRunAndJobsCLI(t *testing.T) {
	sock, httpAddr := startBackupDaemon(t)

	out, code := runCLI(t, "--socket", sock, "backup", "run", "home")
	if code != 0 || !strings.Contains(out, "home: started") || !strings.Contains(out, "home: success in ") ||
		!strings.Contains(out, ": 3 files (3 new, 0 changed), ") {
		t.Fatalf("backup run home: exit %d\n%s", code, out)
	}

	out, code = runCLI(t, "--socket", sock, "backup", "run", "broken")
	if code != 1 || !strings.Contains(out, "broken: failed in ") || !strings.Contains(out, "wrong password (from file:") {
		t.Errorf("backup run broken: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "not the password") {
		t.Errorf("the password leaked:\n%s", out)
	}

	out, code = runCLI(t, "--socket", sock, "backup", "run", "nope")
	if code != 1 || !strings.Contains(out, `no backup job "nope" (jobs: broken, home)`) {
		t.Errorf("backup run nope: exit %d\n%s", code, out)
	}

	out, code = runCLI(t, "--socket", sock, "--json", "backup", "run", "home")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var first, last jobs.RunEvent
	if code != 0 || json.Unmarshal([]byte(lines[0]), &first) != nil || json.Unmarshal([]byte(lines[len(lines)-1]), &last) != nil ||
		first.Type != jobs.EventStarted || last.Type != jobs.EventDone || last.Result.Summary.FilesUnmodified != 3 {
		t.Errorf("backup run --json: exit %d\n%s", code, out)
	}

	out, code = runCLI(t, "--socket", sock, "backup", "jobs")
	if code != 0 {
		t.Fatalf("backup jobs: exit %d\n%s", code, out)
	}
	t.Logf("backup jobs:\n%s", out)
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 3 || !strings.HasPrefix(rows[0], "JOB ") || !strings.Contains(rows[0], "LAST RESULT") || !strings.Contains(rows[0], "NEXT RUN") {
		t.Fatalf("backup jobs table:\n%s", out)
	}
	if f := strings.Fields(rows[1]); f[0] != "broken" || f[1] != "failed" || !strings.Contains(rows[1], "job broken: open repository") {
		t.Errorf("broken row: %q", rows[1])
	}
	if f := strings.Fields(rows[2]); f[0] != "home" || f[1] != "success" || !strings.Contains(rows[2], "s ago") {
		t.Errorf("home row: %q", rows[2])
	}

	out, code = runCLI(t, "--socket", sock, "--json", "backup", "jobs")
	var list jobs.JobList
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Jobs) != 2 || list.Jobs[1].Files != 3 {
		t.Errorf("backup jobs --json: exit %d\n%s", code, out)
	}

	// The failed job makes the backup service degraded, naming the job;
	// the other service stays ready.
	reason := regexp.MustCompile(`job broken: open repository /\S+/repo: wrong password \(from file:`)
	out, code = runCLI(t, "--socket", sock, "status")
	if code != 1 || !reason.MatchString(out) || !regexp.MustCompile(`(?m)^alpha\s+ready`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^backup\s+degraded`).MatchString(out) {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	curl := testenv.LookPath(t, "curl")
	body, err := exec.Command(curl, "-s", "-w", "\n%{http_code}", "http://"+httpAddr+"/readyz").Output()
	if err != nil {
		t.Fatalf("curl /readyz: %v", err)
	}
	trimmed := strings.TrimSpace(string(body))
	i := strings.LastIndexByte(trimmed, '\n')
	text, httpCode := trimmed[:i], trimmed[i+1:]
	var ready api.Ready
	if err := json.Unmarshal([]byte(text), &ready); err != nil || httpCode != "503" || ready.Ready ||
		!reason.MatchString(ready.NotReady["backup"]) || ready.NotReady["alpha"] != "" {
		t.Errorf("readyz: %s %s", httpCode, text)
	}
	if strings.Contains(text+out, "not the password") {
		t.Errorf("the password leaked")
	}
}

func TestBackupJobsCLIWithoutDaemon(t *testing.T) {
	sock := filepath.Join(testenv.TempDir(t), "none.sock")
	if out, code := runCLI(t, "--socket", sock, "backup", "jobs"); code != 3 || !strings.Contains(out, "hostd is not running") {
		t.Errorf("exit %d\n%s", code, out)
	}
}

// TestBackupJobsShowStateSaveFailure makes the jobs' state directory
// read-only under a running daemon (a bind mount: root ignores
// permission bits): the run succeeds, but `hostd backup jobs` and
// `hostd status` show that its state could not be saved.
func TestBackupJobsShowStateSaveFailure(t *testing.T) {
	testenv.RequireRoot(t)
	sock, _ := startBackupDaemon(t)
	var st api.Status
	if err := api.NewClient(sock).Get(context.Background(), api.RouteStatus, &st); err != nil {
		t.Fatal(err)
	}
	jobsDir := filepath.Join(st.StateDir, "backup", "jobs")
	if err := unix.Mount(jobsDir, jobsDir, "", unix.MS_BIND, ""); err != nil {
		testenv.Require(t, "bind mount", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(jobsDir, unix.MNT_DETACH) })
	if err := unix.Mount("", jobsDir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount %s read-only: %v", jobsDir, err)
	}

	if out, code := runCLI(t, "--socket", sock, "backup", "run", "home"); code != 0 || !strings.Contains(out, "home: success in ") {
		t.Fatalf("backup run home: exit %d\n%s", code, out)
	}
	want := "job home: save job state " + filepath.Join(jobsDir, "home.json") + ": read-only file system"
	out, code := runCLI(t, "--socket", sock, "backup", "jobs")
	row := regexp.MustCompile(`(?m)^home .*$`).FindString(out)
	if code != 0 || strings.Fields(row + " x")[1] != "success" || !strings.HasSuffix(row, want) {
		t.Errorf("backup jobs: exit %d, home row %q, want success with the problem %q\n%s", code, row, want, out)
	}
	out, code = runCLI(t, "--socket", sock, "--json", "status")
	if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "home success") || !strings.Contains(out, "state not saved") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
}

// TestBackupJobGivesMemoryBack runs the real hostd binary (built
// without the race detector, as shipped) with a backup job and reads the
// daemon's resident set from /proc: after a run (repository creation
// with the default argon2id key derivation, backup, retention with
// prune, and a check) and after a second plain run, RSS comes back to
// within 10 MiB of its level before the first run, well within 30 s.
func TestBackupJobGivesMemoryBack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the hostd binary")
	}
	dir := testenv.TempDir(t)
	bin := buildHostd(t, dir)
	src := filepath.Join(dir, "src")
	backuptest.RandomFile(t, filepath.Join(src, "file"), 2<<10)
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, backuptest.Password, 0o600); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "hostd.sock")
	cfg := filepath.Join(dir, "hostd.yaml")
	// Only the backup service, so that nothing else moves RSS meanwhile.
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`hostd:
  state_dir: %[1]s/state
  socket: %[2]s
  http:
    listen: %[3]s
netcfg:
  enable: false
metrics:
  enable: false
backup:
  enable: true
  jobs:
    home:
      repository: %[1]s/repo
      paths: [%[4]s]
      password: file:%[5]s
      schedule: yearly
      init: true
      check: daily
`, dir, socket, testenv.FreeAddr(t), src, pw)), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	cmd := exec.Command(bin, "run", "--config", cfg)
	cmd.Env = append(os.Environ(), "GOGC=", "GOMEMLIMIT=")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})
	testenv.WaitFor(t, 30*time.Second, func() error {
		select {
		case <-exited:
			t.Fatalf("hostd exited: %s", logs.String())
		default:
		}
		var st api.Status
		if err := api.NewClient(socket).Get(context.Background(), api.RouteStatus, &st); err != nil {
			return err
		}
		if !st.Ready {
			return errors.New("hostd not ready yet")
		}
		return nil
	})
	pid := cmd.Process.Pid
	before := vmRSSKiB(t, pid)
	const slack = 10 << 10 // KiB
	for i, want := range []string{"retention: kept 1 snapshots", "home: success"} {
		out, code := runCLI(t, "--socket", socket, "backup", "run", "home")
		if code != 0 || !strings.Contains(out, want) || i == 0 && !strings.Contains(out, "check: no problems") {
			t.Fatalf("backup run %d: exit %d\n%s", i+1, code, out)
		}
		var now int64
		err := testenv.Poll(context.Background(), 30*time.Second, func() error {
			if now = vmRSSKiB(t, pid); now > before+slack {
				return fmt.Errorf("RSS %d KiB, %d KiB before the first run", now, before)
			}
			return nil
		})
		t.Logf("run %d: RSS %d KiB, %d KiB before the first run", i+1, now, before)
		if err != nil {
			t.Errorf("run %d: RSS not back within 10 MiB of its level before the job within 30 s: %v", i+1, err)
		}
	}
}

// buildHostd builds the hostd binary into dir, as `make build` does.
func buildHostd(t *testing.T, dir string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "hostd")
	cmd := exec.Command(goTool, "build", "-trimpath", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// vmRSSKiB is the resident set of process pid, from /proc/PID/status.
func vmRSSKiB(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kib int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kib); err != nil {
				t.Fatalf("parse VmRSS %q: %v", rest, err)
			}
			return kib
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
