package audio

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/internal/testenv"
)

func TestDialAddress(t *testing.T) {
	tests := []struct {
		in, network, addr string
		ok                bool
	}{
		{"/run/user/1000/pulse/native", "unix", "/run/user/1000/pulse/native", true},
		{"unix:/tmp/p/native", "unix", "/tmp/p/native", true},
		{"tcp:127.0.0.1:4713", "tcp", "127.0.0.1:4713", true},
		{"tcp:localhost", "tcp", "localhost:4713", true},
		{"tcp4:127.0.0.1", "tcp4", "127.0.0.1:4713", true},
		{"tcp6:[::1]:4000", "tcp6", "[::1]:4000", true},
		{"tcp6:[::1]", "tcp6", "[::1]:4713", true},
		{"{myhost}unix:/a/native tcp:b", "unix", "/a/native", true},
		{"http://x", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		network, addr, err := dialAddress(tt.in)
		if (err == nil) != tt.ok || network != tt.network || addr != tt.addr {
			t.Errorf("dialAddress(%q) = %q %q %v", tt.in, network, addr, err)
		}
	}
}

func TestDialFailures(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// Nothing listening.
	if _, err := dial(ctx, "unix:"+filepath.Join(dir, "none"), "", DefaultTimeout); err == nil || !strings.Contains(err.Error(), "connect to") {
		t.Errorf("dial nothing: %v", err)
	}
	// A peer that accepts and hangs up at once: authentication fails
	// cleanly instead of crashing the library's read goroutine.
	sock := filepath.Join(dir, "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, err = dial(ctx, "unix:"+sock, "", DefaultTimeout)
	if err == nil || !strings.Contains(err.Error(), "authenticate") {
		t.Errorf("dial hang-up peer: %v", err)
	}
	if _, err := dial(ctx, "bogus", "", DefaultTimeout); err == nil {
		t.Error("dial bogus address worked")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := dial(cctx, "unix:"+sock, "", DefaultTimeout); !errors.Is(err, context.Canceled) {
		t.Errorf("dial with canceled ctx: %v", err)
	}
}

func TestResolvedName(t *testing.T) {
	for in, want := range map[string]string{
		"@DEFAULT_SINK@": "", "@DEFAULT_SOURCE@": "", "alsa_output.usb": "alsa_output.usb", "": "", "@DEFAULT_SINK@.monitor": "@DEFAULT_SINK@.monitor",
	} {
		if got := resolvedName(in); got != want {
			t.Errorf("resolvedName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStuckServer: a pulse socket that accepts and never answers. Each
// connection attempt fails within audio.timeout with an error saying so,
// the service is degraded with that reason, and controls fail at once
// instead of waiting on the server. A cookie path that is a FIFO (which
// would block a plain read forever) is no cookie.
func TestStuckServer(t *testing.T) {
	dir := t.TempDir()
	peer := testenv.NewStuckPeer(t, "unix", filepath.Join(dir, "native"))
	fifo := filepath.Join(dir, "cookie")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := dial(context.Background(), "unix:"+peer.Addr, fifo, 200*time.Millisecond)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "authenticate") || !strings.Contains(err.Error(), "no answer within 200ms (audio.timeout)") {
			t.Errorf("dial a stuck server: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dial a stuck server did not return")
	}

	health := &servicetest.Health{}
	cfg := DefaultConfig()
	cfg.Server = "unix:" + peer.Addr
	cfg.Timeout = 200 * time.Millisecond
	s, err := newService(service.Env{StateDir: t.TempDir(), Health: health}, cfg, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	waitCtx, cancelWait := context.WithTimeout(ctx, 30*time.Second)
	defer cancelWait()
	rep, err := health.Wait(waitCtx, servicetest.IsDegraded("audio.timeout"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.Reason(), peer.Addr) {
		t.Errorf("degraded reason %q does not name the socket", rep.Reason())
	}
	if _, err := s.SetMute(ctx, KindSink, "", "on"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("SetMute against a stuck server: %v", err)
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil after cancel", err)
	}
}
