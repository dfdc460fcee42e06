package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

var errMainThread = errors.New("on the main thread")

// running reports whether pid is a process that has not exited (a zombie
// has).
func running(pid int) bool { return processID(pid) != "" }

// A child forked from a thread the Go runtime retires (its goroutine
// exited locked to it) is killed at once when it was started with
// Pdeathsig from that thread; started through startTied it keeps running.
func TestTiedChildSurvivesRetiredThread(t *testing.T) {
	sleep := LookPath(t, "sleep")
	// start starts sleep from a goroutine that exits locked to its thread,
	// so that the runtime retires the thread. The process' main thread
	// is never retired (the runtime parks it instead): a goroutine that
	// finds itself there tries again in another.
	start := func(tied bool) *exec.Cmd {
		cmd := exec.Command(sleep, "60")
		for {
			errc := make(chan error, 1)
			go func() {
				runtime.LockOSThread()
				if syscall.Gettid() == os.Getpid() {
					runtime.UnlockOSThread()
					errc <- errMainThread
					return
				}
				// Never unlocked: the thread ends with the goroutine.
				if tied {
					errc <- startTied(cmd)
					return
				}
				cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
				errc <- cmd.Start()
			}()
			err := <-errc
			if err == errMainThread {
				continue
			}
			if err != nil {
				t.Fatalf("start sleep: %v", err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			return cmd
		}
	}
	plain, tied := start(false), start(true)
	WaitFor(t, 10*time.Second, func() error {
		if running(plain.Process.Pid) {
			return fmt.Errorf("sleep %d, forked from a retired thread with Pdeathsig, still runs", plain.Process.Pid)
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond)
	if !running(tied.Process.Pid) {
		t.Fatalf("sleep %d, started through startTied from a thread since retired, was killed", tied.Process.Pid)
	}
}

// The programs the harness starts die with the test binary: a test
// process that starts dnsmasq, node_exporter and sshd and is then killed
// with SIGKILL (as `go test -timeout` or an out-of-memory kill ends one)
// leaves none of them running.
func TestTiedChildrenDieWithTestBinary(t *testing.T) {
	if os.Getenv("HOSTD_TESTENV_TIED_HELPER") == "1" {
		t.Skip("the helper runs in TestTiedHelper")
	}
	RequireRoot(t) // sshd
	helper := exec.Command(os.Args[0], "-test.run=^TestTiedHelper$", "-test.v", "-test.count=1")
	helper.Env = append(os.Environ(), "HOSTD_TESTENV_TIED_HELPER=1")
	var stderr bytes.Buffer
	helper.Stderr = &stderr
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var seen []string
	deadline := time.After(60 * time.Second)
	for ready := false; !ready; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("helper ended before it was ready:\n%s\n%s", strings.Join(seen, "\n"), stderr.String())
			}
			seen = append(seen, l)
			ready = l == "tied ready"
		case <-deadline:
			t.Fatalf("helper not ready after 60 s:\n%s\n%s", strings.Join(seen, "\n"), stderr.String())
		}
	}
	go func() {
		for range lines { // drain
		}
	}()
	pids := childrenOf(t, helper.Process.Pid)
	t.Logf("the helper's children: %v", pids)
	for _, want := range []string{"dnsmasq", "prometheus-node", "sshd"} {
		if _, ok := pids[want]; !ok {
			t.Fatalf("the helper's children are %v, want %s among them", pids, want)
		}
	}
	for name, pid := range pids {
		if !running(pid) {
			t.Fatalf("%s (pid %d) is not running before the helper is killed", name, pid)
		}
	}
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	for name, pid := range pids {
		WaitFor(t, 10*time.Second, func() error {
			if running(pid) {
				return fmt.Errorf("%s (pid %d) still runs after the test binary that started it was killed", name, pid)
			}
			return nil
		})
	}
}

// TestTiedHelper is TestTiedChildrenDieWithTestBinary's test binary: it
// starts the programs, says so and waits to be killed.
func TestTiedHelper(t *testing.T) {
	if os.Getenv("HOSTD_TESTENV_TIED_HELPER") != "1" {
		t.Skip("run by TestTiedChildrenDieWithTestBinary")
	}
	StartDnsmasq(t, DnsmasqOptions{})
	StartNodeExporter(t)
	StartSSHD(t)
	fmt.Println("tied ready")
	select {}
}

// childrenOf returns pid's children by command name (/proc/PID/comm, at
// most 15 bytes).
func childrenOf(t *testing.T, pid int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, n := range children(pid) {
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", n)); err == nil {
			out[strings.TrimSpace(string(comm))] = n
		}
	}
	return out
}
