package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// InCI reports whether the tests run in CI (CI=true).
func InCI() bool {
	v := os.Getenv("CI")
	return v == "true" || v == "1"
}

// Require stops the test when err is not nil: it fails in CI and skips
// elsewhere, naming the component that is missing.
func Require(t testing.TB, component string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if InCI() {
		t.Fatalf("%s is required in CI but not available: %v", component, err)
	}
	t.Skipf("%s not available: %v", component, err)
}

// LookPath requires an executable, by name.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Require(t, name, err)
	return p
}

// WaitFor polls cond until it returns nil or timeout passes; then it fails
// the test with cond's last error.
func WaitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	if err := Poll(context.Background(), timeout, cond); err != nil {
		t.Fatalf("condition not met within %s: %v", timeout, err)
	}
}

// Poll calls cond with growing pauses (from 5ms up to 200ms) until it
// returns nil, ctx ends, or timeout passes; it returns cond's last error.
func Poll(ctx context.Context, timeout time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pause := 5 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			if err == nil {
				err = ctx.Err()
			}
			return err
		case <-t.C:
		}
		pause = min(pause*2, 200*time.Millisecond)
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// RefusedPort returns a TCP port on 127.0.0.1 that refuses connections
// until the test ends: a socket bound to it that does not listen holds
// it, so no other process (a test binary running beside) takes it
// meanwhile, as one can a port FreePort found free.
func RefusedPort(t testing.TB) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket for a refused port: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind a refused port: %v", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatalf("the refused port's address: %v", err)
	}
	return sa.(*unix.SockaddrInet4).Port
}

// FreeAddr returns "127.0.0.1:PORT" with a free port.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", FreePort(t))
}

// TempDir returns a fresh directory removed when the test ends. Unlike
// t.TempDir its path is short, for unix sockets (108-byte limit).
func TempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "hostd-test-")
	if err != nil {
		t.Fatalf("create temp dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// DialWait waits until a TCP or unix listener accepts connections.
func DialWait(ctx context.Context, network, addr string, timeout time.Duration) error {
	return Poll(ctx, timeout, func() error {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// ErrNotRoot is returned by components that need root.
var ErrNotRoot = errors.New("needs root")

// RequireRoot requires the test to run as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Require(t, "root", ErrNotRoot)
	}
}
