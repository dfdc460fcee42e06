package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/secrets"
	"github.com/hostd/hostd/internal/testenv"
)

// reusePort is a net.ListenConfig that sets SO_REUSEPORT, as xray-core and
// other servers do: such a socket joins any other SO_REUSEPORT socket of
// the same user on the same address and takes part of its traffic.
var reusePort = net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return serr
}}

// serveErr waits for Serve to return and gives its error back to the
// cleanup.
func (r *running) serveErr(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not fail")
		return nil
	}
}

// TestProxyReusePortBefore: a socket bound with SO_REUSEPORT on the
// inbound's address first (a second hostd, a stray program) makes the
// start fail naming the option; xray-core's own listeners joined it
// silently.
func TestProxyReusePortBefore(t *testing.T) {
	w := newWorld(t)
	for _, tt := range []struct{ inbound, network string }{{"socks", "tcp"}, {"http", "tcp"}, {"socks", "udp"}} {
		t.Run(tt.inbound+"/"+tt.network, func(t *testing.T) {
			var addr string
			if tt.network == "tcp" {
				l, err := reusePort.Listen(context.Background(), "tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				addr = l.Addr().String()
			} else {
				pc, err := reusePort.ListenPacket(context.Background(), "udp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer pc.Close()
				addr = pc.LocalAddr().String()
			}
			cfg := w.config(t)
			if tt.inbound == "socks" {
				cfg.SOCKS.Listen = addr
			} else {
				cfg.HTTP.Listen = addr
			}
			r := start(t, w, cfg)
			err := r.serveErr(t)
			want := fmt.Sprintf("proxy.%s.listen %s: address in use", tt.inbound, addr)
			if tt.network == "udp" {
				want = fmt.Sprintf("proxy.%s.listen %s (udp): address in use", tt.inbound, addr)
			}
			if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("Serve = %v, want %q", err, want)
			}
			if d := r.svc.Details(); d.State != StateFailed || !strings.Contains(d.LastError, want) {
				t.Errorf("status = %s %q, want failed with %q", d.State, d.LastError, want)
			}
		})
	}
}

// TestProxyReusePortAfter: while the proxy runs, a socket bound with
// SO_REUSEPORT on either inbound's TCP address fails to bind.
func TestProxyReusePortAfter(t *testing.T) {
	w := newWorld(t)
	cfg := w.config(t)
	r := start(t, w, cfg)
	r.waitState(t, StateUp)
	for _, addr := range []string{cfg.SOCKS.Listen, cfg.HTTP.Listen} {
		l, err := reusePort.Listen(context.Background(), "tcp", addr)
		if err == nil {
			l.Close()
			t.Errorf("a SO_REUSEPORT socket bound %s next to the running proxy", addr)
			continue
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("bind %s: %v, want address in use", addr, err)
		}
	}
	// The proxy still serves.
	if got, err := curl(t, "--socks5-hostname", cfg.SOCKS.Listen, "http://"+destHost+"/after"); err != nil || got != "hello from dest /after" {
		t.Errorf("curl = %q, %v", got, err)
	}
}

// TestProxyEmptyPassword reproduces the LAN proxy with an empty password
// file: listeners on 0.0.0.0 with allow_lan and auth {username: u,
// password: file:EMPTY}. The proxy must not start, so `u:` gets nowhere,
// and the reason names the option and the reference.
func TestProxyEmptyPassword(t *testing.T) {
	w := newWorld(t)
	for name, content := range map[string]string{"empty": "", "newline": "\n"} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(w.dir, "pw-"+name), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := w.config(t)
			cfg.AllowLAN = true
			cfg.SOCKS.Listen = strings.Replace(cfg.SOCKS.Listen, "127.0.0.1", "0.0.0.0", 1)
			cfg.HTTP.Listen = strings.Replace(cfg.HTTP.Listen, "127.0.0.1", "0.0.0.0", 1)
			ref := secrets.Ref("file:pw-" + name)
			cfg.Auth = AuthConfig{Username: "u", Password: ref}
			r := start(t, w, cfg)
			err := r.serveErr(t)
			if err == nil || !strings.Contains(err.Error(), "auth.password") || !strings.Contains(err.Error(), string(ref)) || !errors.Is(err, secrets.ErrEmpty) {
				t.Fatalf("Serve = %v, want an empty-secret error naming auth.password and %s", err, ref)
			}
			if d := r.svc.Details(); d.State != StateFailed {
				t.Errorf("state = %s, want %s", d.State, StateFailed)
			}
			socks := strings.Replace(cfg.SOCKS.Listen, "0.0.0.0", "127.0.0.1", 1)
			httpAddr := strings.Replace(cfg.HTTP.Listen, "0.0.0.0", "127.0.0.1", 1)
			for _, args := range [][]string{
				{"--socks5-hostname", "u:@" + socks},
				{"-x", "http://u:@" + httpAddr},
			} {
				if out, err := curl(t, append(args, "http://"+destHost+"/empty")...); err == nil {
					t.Errorf("curl %v with an empty password got through: %q", args, out)
				}
			}
		})
	}
}

// TestXrayConfigRefusesOpenLAN: the xray config itself refuses an empty
// password and a non-loopback listener without auth, whatever called it.
func TestXrayConfigRefusesOpenLAN(t *testing.T) {
	base := settings{
		SocksListen: "127.0.0.1:1080",
		HTTPListen:  "127.0.0.1:8118",
		Server:      endpoint{Address: "vpn.example.com", Port: 443, UserID: testUUID, PublicKey: make([]byte, 32)},
	}
	if _, err := xrayConfig(base); err != nil {
		t.Fatalf("loopback without auth: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*settings)
		want   string
	}{
		{"empty password", func(s *settings) { s.Username = "u" }, "auth.password is empty"},
		{"lan without auth", func(s *settings) { s.SocksListen = "0.0.0.0:1080" }, "never an open proxy"},
		{"lan http without auth", func(s *settings) { s.HTTPListen = "192.0.2.1:8118" }, "never an open proxy"},
	}
	for _, tt := range tests {
		s := base
		tt.mutate(&s)
		if _, err := xrayConfig(s); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: xrayConfig = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestProbeAPIStampsTime: POST /v1/proxy/test over the real unix socket
// answers with the time of the probe; it used to be 0001-01-01.
func TestProbeAPIStampsTime(t *testing.T) {
	w := newWorld(t)
	cfg := w.config(t)
	r := start(t, w, cfg)
	r.waitState(t, StateUp)

	socket := filepath.Join(testenv.TempDir(t), "api.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r.svc.LocalAPI(), ConnContext: api.ConnContext, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	var res ProbeResult
	if err := api.NewClient(socket).Post(context.Background(), "/v1/proxy/test", nil, &res); err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.At.IsZero() {
		t.Fatalf("POST /v1/proxy/test = %+v, want ok with the probe's time", res)
	}
	if last := r.svc.Details().LastProbe; last == nil || !last.At.Equal(res.At) {
		t.Errorf("reply at %s, status's last probe %+v: want the same probe", res.At, last)
	}
}
