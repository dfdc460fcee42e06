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
	"strings"
	"testing"
	"time"

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
	td := runTestDaemon(t, []daemon.Registration{
		daemontest.Registration("alpha"),
		daemon.Register(jobs.Name, jobs.DefaultConfig, jobs.New),
	}, func(td testDaemon) string {
		return fmt.Sprintf(`hostd:
  state_dir: %[1]s/state
  socket: %[2]s
  http:
    listen: %[3]s
alpha: {}
backup:
  enable: true
  jobs:
    home:
      repository: %[4]s
      paths: [%[5]s]
      password: file:%[6]s
      schedule: yearly
    broken:
      repository: %[4]s
      paths: [%[5]s/a]
      password: file:%[7]s
      schedule: yearly
`, td.Dir, td.Socket, td.HTTP, repo, src, good, bad)
	})
	socket, httpAddr = td.Socket, td.HTTP
	testenv.WaitFor(t, 10*time.Second, func() error {
		var list jobs.JobList
		if err := api.NewClient(socket).Get(context.Background(), "/v1/backup/jobs", &list); err != nil {
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
