package testenv

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// DHCPServer is Debian's dnsmasq serving DHCPv4, DHCPv6 or router
// advertisements, as its options say (DNS off unless they turn it on with
// --port=53), on the peer end of a NetNS's veth pair.
type DHCPServer struct {
	cancel  context.CancelFunc
	exited  chan struct{}
	leases  string // dnsmasq's lease file
	logFile string
	stderr  string // dnsmasq's own errors, once it exited
}

// StartDHCPServer starts dnsmasq in n's peer namespace on n.PeerLink with
// the given options (a --dhcp-range among them); it is stopped when the
// test ends, or by Stop. The peer link must be up with an address in the
// range's subnet. A missing dnsmasq skips the test, or fails it with
// CI=true.
func StartDHCPServer(t testing.TB, n *NetNS, opts ...string) *DHCPServer {
	t.Helper()
	bin := LookPath(t, "dnsmasq")
	dir := TempDir(t)
	s := &DHCPServer{leases: filepath.Join(dir, "leases"), logFile: filepath.Join(dir, "log"), exited: make(chan struct{})}
	port := "--port=0" // no DNS unless an option sets the port
	for _, o := range opts {
		if strings.HasPrefix(o, "--port=") {
			port = o
		}
	}
	args := []string{"netns", "exec", n.Peer, bin,
		"--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", port,
		"--interface=" + n.PeerLink, "--bind-interfaces", "--pid-file=", "--user=root", "--group=root",
		"--dhcp-leasefile=" + s.leases, "--log-dhcp", "--log-facility=" + s.logFile,
		"--dhcp-authoritative", "--no-ping",
	}
	for _, o := range opts {
		if !strings.HasPrefix(o, "--port=") {
			args = append(args, o)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	cmd := exec.CommandContext(ctx, "ip", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	// ip execs dnsmasq in the namespace: the same process, tied to the
	// test binary (see dnsmasq.go for its group).
	if err := startTied(cmd); err != nil {
		cancel()
		t.Fatalf("start dnsmasq: %v", err)
	}
	go func() { cmd.Wait(); s.stderr = stderr.String(); close(s.exited) }()
	t.Cleanup(s.Stop)
	// dnsmasq logs its DHCP range (or, with ra-only, its advertised
	// prefix) once it serves it.
	err := Poll(context.Background(), 10*time.Second, func() error {
		select {
		case <-s.exited:
			return errors.New("dnsmasq exited: " + s.stderr + s.Log())
		default:
		}
		log := s.Log()
		for _, ready := range []string{"DHCP, IP range", "DHCPv6, IP range", "router advertisement on"} {
			if strings.Contains(log, ready) {
				return nil
			}
		}
		return errors.New("dnsmasq does not serve dhcp yet: " + log)
	})
	if err != nil {
		t.Fatalf("start dnsmasq: %v", err)
	}
	return s
}

// Stop stops dnsmasq and waits for it to exit.
func (s *DHCPServer) Stop() {
	s.cancel()
	<-s.exited
}

// Log is dnsmasq's log: every DHCP message it saw and sent (--log-dhcp).
func (s *DHCPServer) Log() string {
	b, _ := os.ReadFile(s.logFile)
	return string(b)
}

// Leases is dnsmasq's lease file: expiry, MAC, address, hostname and
// client-id of each lease.
func (s *DHCPServer) Leases() string {
	b, _ := os.ReadFile(s.leases)
	return string(b)
}
