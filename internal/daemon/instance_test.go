package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/testenv"
)

// TestReloadFromFIFODoesNotBlockTheLoop replaces the config file with a
// FIFO that no one writes. SIGHUP and the API's reload must both fail at
// once naming the file, the watchdog must keep being fed by the live loop,
// and SIGTERM must still stop hostd with exit 0.
func TestReloadFromFIFODoesNotBlockTheLoop(t *testing.T) {
	n := listenNotify(t)
	p := startDaemon(t, "alpha: {}\nbeta: {}\n", "NOTIFY_SOCKET="+n.path, "WATCHDOG_USEC=200000")
	n.wait(t, "READY=1")
	if err := os.Remove(p.cfg); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p.cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(p.logs(), "not a regular file") {
			return errors.New("SIGHUP's reload has not reported the FIFO yet")
		}
		return nil
	})

	// The API's reload answers with the error; a hang fails the test at
	// the client's deadline instead of blocking it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var res api.ConfigReload
	err := api.NewClient(p.socket).Post(ctx, "/v1/config/reload", nil, &res)
	var he *api.HTTPError
	if !errors.As(err, &he) || he.Code != 422 || !strings.Contains(string(he.Body), "not a regular file (a FIFO)") || !strings.Contains(string(he.Body), p.cfg) {
		t.Fatalf("API reload from a FIFO = %v (%+v), want 422 naming %s as a FIFO", err, res, p.cfg)
	}

	// The loop is alive: watchdog pings keep coming.
	before := n.count("WATCHDOG=1")
	testenv.WaitFor(t, 10*time.Second, func() error {
		if n.count("WATCHDOG=1") <= before {
			return errors.New("no watchdog ping since the reload")
		}
		return nil
	})

	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// shutdown_timeout is 2s in the test config.
	if code, took := p.waitExit(t, 10*time.Second); code != 0 || took > 5*time.Second {
		t.Errorf("after SIGHUP and SIGTERM: exit %d after %s, want 0 within the 2s deadline", code, took)
	}
}

// runSecond runs another daemon process on config text and returns its
// output and exit status.
func runSecond(t *testing.T, cfgText string) (string, int) {
	t.Helper()
	cfg := filepath.Join(testenv.TempDir(t), "second.yaml")
	if err := os.WriteFile(cfg, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), "HOSTD_TEST_DAEMON=1", "HOSTD_TEST_CONFIG="+cfg)
	out, _ := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("second hostd still running after 20s:\n%s", out)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// TestSecondInstanceIsRefused starts a second hostd on the state
// directory, and on the socket, of a running one: each must fail at once
// with exit 1, name the holder's pid, and leave the first one's socket
// working.
func TestSecondInstanceIsRefused(t *testing.T) {
	p := startDaemon(t, "alpha: {}\n")
	pid := strconv.Itoa(p.cmd.Process.Pid)
	other := testenv.TempDir(t)
	cases := []struct {
		name, config, want string
	}{
		{"same state dir", baseConfig(p.dir, filepath.Join(other, "other.sock"), testenv.FreeAddr(t)),
			fmt.Sprintf("another hostd holds %s (pid %s)", filepath.Join(p.dir, "state"), pid)},
		{"same socket", baseConfig(other, p.socket, testenv.FreeAddr(t)),
			fmt.Sprintf("another hostd holds %s (pid %s)", p.socket, pid)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, code := runSecond(t, tc.config+"alpha: {}\n")
			if code != 1 || !strings.Contains(out, tc.want) {
				t.Errorf("second hostd: exit %d, output:\n%s\nwant exit 1 and %q", code, out, tc.want)
			}
			if st := p.status(t); st.PID != p.cmd.Process.Pid {
				t.Errorf("socket answered by pid %d, want the first hostd %d", st.PID, p.cmd.Process.Pid)
			}
		})
	}
}

// TestDeletedSocketIsRecreated deletes, then replaces, the running
// daemon's API socket: hostd notices at its next check and listens anew
// with the same mode.
func TestDeletedSocketIsRecreated(t *testing.T) {
	p := startDaemon(t, "alpha: {}\n", "HOSTD_TEST_SOCKET_CHECK=100ms")
	for _, how := range []string{"deleted", "replaced"} {
		t.Run(how, func(t *testing.T) {
			if err := os.Remove(p.socket); err != nil {
				t.Fatal(err)
			}
			if how == "replaced" {
				if err := os.WriteFile(p.socket, []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			testenv.WaitFor(t, 15*time.Second, func() error {
				var st api.Status
				return api.NewClient(p.socket).Get(context.Background(), "/v1/status", &st)
			})
			fi, err := os.Stat(p.socket)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
				t.Errorf("recreated socket mode %v, want a 0660 socket", fi.Mode())
			}
		})
	}
	if !strings.Contains(p.logs(), "API socket was deleted or replaced; recreated it") {
		t.Errorf("recreation not logged:\n%s", p.logs())
	}
}
