package resolver_test

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netns"

	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/netcfg/resolver"
)

// inNetNS runs f on a thread that is in the network namespace name, so
// the sockets f creates live there.
func inNetNS(t *testing.T, name string, f func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("current netns: %v", err)
	}
	defer orig.Close()
	h, err := netns.GetFromName(name)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("open netns %s: %v", name, err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("enter netns %s: %v", name, err)
	}
	f()
	if err := netns.Set(orig); err != nil {
		// The thread stays locked and ends with the goroutine.
		t.Fatalf("leave netns %s: %v", name, err)
	}
	runtime.UnlockOSThread()
}

// TestAccessControl serves DNS on an address off loopback, inside a
// network namespace joined to a peer namespace by a veth pair, and asks
// from the peer: a client in allow_from gets its answer; any other gets
// REFUSED, a bare header no larger than its query (nothing to amplify),
// over UDP and TCP, on a specific address (hostd's own UDP loop) and on
// the wildcard (miekg/dns's server). Loopback clients are always answered.
func TestAccessControl(t *testing.T) {
	ns := testenv.NewNetNS(t)
	ns.IP(t, "addr", "add", "10.77.0.1/24", "dev", ns.Link)
	ns.IP(t, "link", "set", ns.Link, "up")
	ns.PeerIP(t, "addr", "add", "10.77.0.2/24", "dev", ns.PeerLink)
	ns.PeerIP(t, "link", "set", ns.PeerLink, "up")

	hosts := filepath.Join(t.TempDir(), "hosts")
	writeFile(t, hosts, "192.0.2.7 nas\n")
	r, err := resolver.New(resolver.Options{Upstreams: []resolver.Upstream{{Address: startFixedUpstream(t)}}, HostsPath: hosts})
	if err != nil {
		t.Fatal(err)
	}
	peer := netip.MustParsePrefix("10.77.0.2/32")
	other := netip.MustParsePrefix("192.0.2.0/24")

	tests := []struct {
		name   string
		listen string
		allow  []netip.Prefix
		from   string // namespace the client asks from
		to     string // address the client asks
		want   int    // rcode
	}{
		{"allowed client, udp loop", "10.77.0.1:0", []netip.Prefix{peer}, ns.Peer, "10.77.0.1", dns.RcodeSuccess},
		{"other client, udp loop", "10.77.0.1:0", []netip.Prefix{other}, ns.Peer, "10.77.0.1", dns.RcodeRefused},
		{"no allow_from, udp loop", "10.77.0.1:0", nil, ns.Peer, "10.77.0.1", dns.RcodeRefused},
		{"allowed client, wildcard", "0.0.0.0:0", []netip.Prefix{peer}, ns.Peer, "10.77.0.1", dns.RcodeSuccess},
		{"other client, wildcard", "0.0.0.0:0", []netip.Prefix{other}, ns.Peer, "10.77.0.1", dns.RcodeRefused},
		{"loopback client always", "0.0.0.0:0", []netip.Prefix{other}, ns.Name, "127.0.0.1", dns.RcodeSuccess},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			var srv *resolver.Server
			inNetNS(t, ns.Name, func() { srv, err = resolver.Listen(ctx, tc.listen) })
			if err != nil {
				cancel()
				t.Fatalf("listen in %s: %v", ns.Name, err)
			}
			srv.AllowFrom(tc.allow)
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx, r) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("serve: %v", err)
				}
			})
			_, port, _ := net.SplitHostPort(srv.Addr())
			addr := net.JoinHostPort(tc.to, port)
			for _, network := range []string{"udp", "tcp"} {
				q := new(dns.Msg)
				q.SetQuestion("nas.", dns.TypeA)
				q.SetEdns0(4096, false)
				packed, _ := q.Pack()
				var c net.Conn
				inNetNS(t, tc.from, func() { c, err = net.Dial(network, addr) })
				if err != nil {
					t.Fatalf("%s: dial %s from %s: %v", network, addr, tc.from, err)
				}
				defer c.Close()
				dc := &dns.Conn{Conn: c}
				// A bound on a lost answer, not part of what is tested.
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if err := dc.WriteMsg(q); err != nil {
					t.Fatalf("%s: send: %v", network, err)
				}
				raw, err := dc.ReadMsgHeader(nil)
				if err != nil {
					t.Fatalf("%s: read answer: %v", network, err)
				}
				m := new(dns.Msg)
				if err := m.Unpack(raw); err != nil {
					t.Fatalf("%s: unpack answer: %v", network, err)
				}
				if m.Id != q.Id || !m.Response || m.Rcode != tc.want {
					t.Fatalf("%s: answer id %d qr %v rcode %s, want id %d rcode %s", network, m.Id, m.Response,
						dns.RcodeToString[m.Rcode], q.Id, dns.RcodeToString[tc.want])
				}
				switch tc.want {
				case dns.RcodeSuccess:
					if len(m.Answer) != 1 {
						t.Errorf("%s: answer %v, want the hosts entry", network, m.Answer)
					}
				case dns.RcodeRefused:
					if len(m.Answer)+len(m.Ns)+len(m.Extra) != 0 || len(raw) > len(packed) {
						t.Errorf("%s: REFUSED of %d bytes with records %v %v %v, want a bare header no larger than the %d-byte query",
							network, len(raw), m.Answer, m.Ns, m.Extra, len(packed))
					}
				}
			}
		})
	}
}
