package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/testenv"
)

// The test binary doubles as the hostd CLI (HOSTD_TEST_MAIN=1: its
// arguments are the CLI's), so exit statuses and signals are tested on a
// real process, and as a bare API client (HOSTD_TEST_REQUEST=1: METHOD
// PATH SOCKET; it prints the reply's status code), for requests made as
// another user.
func TestMain(m *testing.M) {
	switch {
	case os.Getenv("HOSTD_TEST_MAIN") == "1":
		main()
		os.Exit(0)
	case os.Getenv("HOSTD_TEST_REQUEST") == "1":
		method, path, socket := os.Args[1], os.Args[2], os.Args[3]
		var in any
		if method == "POST" {
			in = json.RawMessage("{}")
		}
		_, err := api.NewClient(socket).WithTimeout(30*time.Second).Raw(context.Background(), method, path, in)
		var he *api.HTTPError
		switch {
		case errors.As(err, &he):
			fmt.Println(he.Code, he.Msg)
		case err != nil:
			fmt.Println(0, err)
		default:
			fmt.Println(200)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// cliProc runs the CLI as a separate process; cred, when set, runs it as
// that user. The process is killed if it runs past 30s.
func cliProc(t *testing.T, bin string, cred *syscall.Credential, env []string, args ...string) *exec.Cmd {
	t.Helper()
	if bin == "" {
		bin = os.Args[0]
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "HOSTD_TEST_MAIN=1"), env...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	return cmd
}

// runProc runs cmd and returns its combined output and exit status.
func runProc(t *testing.T, cmd *exec.Cmd) (string, int) {
	t.Helper()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%v still running after 30s:\n%s", cmd.Args, out.String())
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// leaves returns every runnable command below root.
func leaves(root *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() && c != root && c.Name() != "help" {
			out = append(out, c)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return out
}

func path(c *cobra.Command) []string { return strings.Fields(c.CommandPath())[1:] }

// TestUsageErrorsExitTwo checks, on every verb, that an unknown flag, a
// bad flag value and a wrong argument count exit with status 2 and say
// what is wrong, as do unknown subcommands and --json on verbs that have
// no JSON output.
func TestUsageErrorsExitTwo(t *testing.T) {
	root := newRootCmd()
	for _, c := range leaves(root) {
		p := path(c)
		t.Run(strings.Join(p, "_"), func(t *testing.T) {
			for _, extra := range [][]string{{"--no-such-flag"}, {"--json=maybe"}} {
				out, code := runCLI(t, append(append([]string{}, p...), extra...)...)
				if code != 2 {
					t.Errorf("%v %v: exit %d, want 2\n%s", p, extra, code, out)
				}
			}
			if c.Args == nil {
				return
			}
			// The wrapped validator decides without running the verb.
			for _, args := range [][]string{nil, strings.Fields(strings.Repeat("x ", 20))} {
				err := c.Args(c, args)
				var ee *exitError
				if err != nil && (!errors.As(err, &ee) || ee.code != 2) {
					t.Errorf("%v with %d args: %v, want a usage error (exit 2)", p, len(args), err)
				}
			}
		})
	}
	for _, args := range [][]string{
		{"no-such-verb"}, {"backup", "no-such-verb"}, {"config", "no-such-verb"},
		{"status", "extra"}, {"config", "check", "a", "b"}, {"config", "check"}, {"version", "x"},
		{"--json", "run"}, {"--json", "config", "example"}, {"--json", "backup", "dump", "s", "f"},
	} {
		if out, code := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, out)
		}
	}
	// On a real process too, with the message on stderr.
	out, code := runProc(t, cliProc(t, "", nil, nil, "status", "--no-such-flag"))
	if code != 2 || !strings.Contains(out, "unknown flag: --no-such-flag") {
		t.Errorf("hostd status --no-such-flag: exit %d\n%s", code, out)
	}
}

// TestConfigFilesAreBounded checks that every verb reading a config file
// refuses a FIFO (at once, without waiting for a writer), a device and a
// file over 8 MiB, naming the file.
func TestConfigFilesAreBounded(t *testing.T) {
	dir := testenv.TempDir(t)
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("hostd: {}\n"+strings.Repeat("#\n", 4<<20+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "none.sock")
	for file, want := range map[string]string{
		fifo:        fifo + ": not a regular file (a FIFO)",
		"/dev/zero": "/dev/zero: not a regular file (a character device)",
		big:         big + ": too large: larger than 8 MiB",
	} {
		for _, args := range [][]string{
			{"config", "check", file},
			{"config", "show", file},
			{"--socket", sock, "--config", file, "config", "show", "--local"},
			{"run", "--config", file},
		} {
			out, code := runProc(t, cliProc(t, "", nil, nil, args...))
			if code == 0 || !strings.Contains(out, want) {
				t.Errorf("hostd %v: exit %d, want an error with %q:\n%s", args, code, want, out)
			}
		}
	}
}

// TestCLIStopsOnSIGTERM sends SIGTERM to verbs that wait on something
// outside: a daemon socket that never answers, and a config FIFO. Each
// must end within the grace period with a non-zero status.
func TestCLIStopsOnSIGTERM(t *testing.T) {
	dir := testenv.TempDir(t)
	sock := filepath.Join(dir, "mute.sock")
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // never accepts: connects queue, nothing answers
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--socket", sock, "status"},
		{"--socket", sock, "config", "reload"},
		{"config", "check", fifo},
	} {
		cmd := cliProc(t, "", nil, nil, args...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(signalGrace + 10*time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("hostd %v still running %s after SIGTERM:\n%s", args, signalGrace+10*time.Second, out.String())
			continue
		}
		if cmd.ProcessState.Success() {
			t.Errorf("hostd %v: exit 0 after SIGTERM:\n%s", args, out.String())
		}
	}
}

var _ = io.Discard

// TestConfigCheckReportsSecretsWithOtherErrors checks that an unresolvable
// secret reference is reported in the same run as the file's other
// problems, in file order.
func TestConfigCheckReportsSecretsWithOtherErrors(t *testing.T) {
	dir := testenv.TempDir(t)
	cfg := filepath.Join(dir, "hostd.yaml")
	text := fmt.Sprintf(`hostd:
  log_levle: debug
backup:
  enable: true
  jobs:
    home:
      repository: %[1]s/repo
      paths: [%[1]s]
      password: file:%[1]s/missing-password
      schedule: not-a-schedule
`, dir)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := runCLI(t, "config", "check", cfg)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	want := []string{"hostd.log_levle: unknown key", "backup.jobs.home.password: secret cannot be resolved", "backup.jobs.home.schedule:"}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if i, j := strings.Index(out, "password: secret"), strings.Index(out, "schedule:"); i < 0 || j < 0 || i > j {
		t.Errorf("problems not in file order:\n%s", out)
	}
	if out, _ := runCLI(t, "config", "check", "--no-secrets", cfg); strings.Contains(out, "secret cannot be resolved") {
		t.Errorf("--no-secrets resolved secrets:\n%s", out)
	}
}

// TestConfigShowAndExampleDefaults checks that config show takes a FILE
// as config check does, prints real defaults (not the zero values that
// stand for them), prints JSON with --json, locally and from the daemon,
// and that the example states the real defaults.
func TestConfigShowAndExampleDefaults(t *testing.T) {
	dir := testenv.TempDir(t)
	cfg := filepath.Join(dir, "hostd.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("backup:\n  jobs:\n    home:\n      repository: %[1]s/repo\n      paths: [%[1]s]\n      password: file:/x\n", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := runCLI(t, "--socket", filepath.Join(dir, "none.sock"), "config", "show", cfg)
	if code != 0 {
		t.Fatalf("config show FILE: exit %d\n%s", code, out)
	}
	for _, w := range []string{"compression: 3", "keep_daily: 7", "keep_weekly: 4", "keep_monthly: 6", "schedule: daily", "persistent: true", "check_read_data: 5%", "reload_timeout: 30s"} {
		if !strings.Contains(out, w) {
			t.Errorf("config show lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "compression: 0") || strings.Contains(out, "keep_daily: 0") {
		t.Errorf("config show prints zero values for defaults:\n%s", out)
	}
	out, code = runCLI(t, "--json", "config", "show", cfg)
	var doc map[string]map[string]any
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil {
		t.Fatalf("config show --json FILE: exit %d, %v:\n%s", code, err, out)
	}
	job, _ := doc["backup"]["jobs"].(map[string]any)["home"].(map[string]any)
	if job["compression"] != float64(3) || doc["hostd"]["shutdown_timeout"] != "15s" {
		t.Errorf("config show --json: job %v, hostd %v", job, doc["hostd"])
	}
	socket := startDaemon(t, "alpha: {}\nbeta:\n  token: hunter2\n")
	out, code = runCLI(t, "--socket", socket, "--json", "config", "show")
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil || doc["beta"]["token"] != "<redacted>" {
		t.Errorf("config show --json from the daemon: exit %d, %v:\n%s", code, err, out)
	}
	out, _ = runCLI(t, "config", "example")
	for _, w := range []string{"# compression: 3", "#   keep_daily: 7", "# schedule: daily", "# check_read_data: 5%"} {
		if !strings.Contains(out, w) {
			t.Errorf("config example lacks %q", w)
		}
	}
	for _, bad := range []string{"  compression: 0\n", "    keep_daily: 0\n"} {
		if strings.Contains(out, bad) {
			t.Errorf("config example sets %q", strings.TrimSpace(bad))
		}
	}
}
