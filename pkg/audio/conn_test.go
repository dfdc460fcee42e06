package audio

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

func TestBackoff(t *testing.T) {
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second}
	for i, w := range want {
		if got := backoff(i); got != w {
			t.Errorf("backoff(%d) = %v, want %v", i, got, w)
		}
	}
	if got := backoff(1000); got != 5*time.Second {
		t.Errorf("backoff(1000) = %v", got)
	}
}

func TestDialFailures(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// Nothing listening.
	if _, err := dial(ctx, "unix:"+filepath.Join(dir, "none"), ""); err == nil || !strings.Contains(err.Error(), "connect to") {
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
	_, err = dial(ctx, "unix:"+sock, "")
	if err == nil || !strings.Contains(err.Error(), "authenticate") {
		t.Errorf("dial hang-up peer: %v", err)
	}
	if _, err := dial(ctx, "bogus", ""); err == nil {
		t.Error("dial bogus address worked")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := dial(cctx, "unix:"+sock, ""); !errors.Is(err, context.Canceled) {
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
