package dhcp

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/internal/testenv"
)

func TestARPConflicts(t *testing.T) {
	me := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	other := net.HardwareAddr{2, 0, 0, 0, 0, 2}
	addr := netip.MustParseAddr("10.99.0.100")
	zero := netip.IPv4Unspecified()
	cases := []struct {
		name string
		p    arpPacket
		want bool
	}{
		{"reply from the address", arpPacket{Op: arpReply, SenderHW: other, SenderIP: addr, TargetIP: zero}, true},
		{"announcement of the address", arpPacket{Op: arpRequest, SenderHW: other, SenderIP: addr, TargetIP: addr}, true},
		{"another host's probe", arpPacket{Op: arpRequest, SenderHW: other, SenderIP: zero, TargetIP: addr}, true},
		{"our own probe", arpPacket{Op: arpRequest, SenderHW: me, SenderIP: zero, TargetIP: addr}, false},
		{"a probe for another address", arpPacket{Op: arpRequest, SenderHW: other, SenderIP: zero, TargetIP: netip.MustParseAddr("10.99.0.101")}, false},
		{"a request asking for the address", arpPacket{Op: arpRequest, SenderHW: other, SenderIP: netip.MustParseAddr("10.99.0.1"), TargetIP: addr}, false},
	}
	for _, c := range cases {
		c.p.TargetHW = make(net.HardwareAddr, 6)
		p, err := parseARP(c.p.marshal())
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := p.conflicts(addr, me); got != c.want {
			t.Errorf("%s: conflicts = %v, want %v", c.name, got, c.want)
		}
	}
}

func FuzzParseARP(f *testing.F) {
	f.Add(arpPacket{Op: arpReply, SenderHW: net.HardwareAddr{2, 0, 0, 0, 0, 2}, TargetHW: make(net.HardwareAddr, 6),
		SenderIP: netip.MustParseAddr("10.99.0.100"), TargetIP: netip.IPv4Unspecified()}.marshal())
	f.Add([]byte{0, 1, 8, 0, 6, 4, 0, 1})                // header only
	f.Add(append(make([]byte, 28), make([]byte, 18)...)) // zeros with padding
	f.Add([]byte{0, 1, 0x86, 0xdd, 6, 16, 0, 1})         // IPv6 over Ethernet: not ARP for IPv4
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseARP(b)
		if err != nil {
			return
		}
		if len(p.SenderHW) != 6 || len(p.TargetHW) != 6 || !p.SenderIP.Is4() || !p.TargetIP.Is4() {
			t.Fatalf("parsed %+v", p)
		}
		if again := p.marshal(); !bytes.Equal(again, b[:arpPacketLen]) {
			t.Fatalf("marshal(parse(b)) = %x, want %x", again, b[:arpPacketLen])
		}
	})
}

// TestDeclineAddressInUse: the server offers an address that the peer
// namespace already holds; the ARP probe finds it, the client declines it
// (DHCPDECLINE, seen by dnsmasq), never configures it, and takes the next
// address after the decline wait (on a fake clock).
func TestDeclineAddressInUse(t *testing.T) {
	n := testNet(t)
	h := handle(t, n)
	n.PeerIP(t, "addr", "add", "10.99.0.100/24", "dev", n.PeerLink) // the conflict
	srv := startDHCP(t, n,
		"--dhcp-host="+mac(t, h, n.Link)+",10.99.0.100", // offered first
		"--dhcp-range=10.99.0.101,10.99.0.101,255.255.255.0,2m",
		"--dhcp-option=option:router,10.99.0.1")
	clk := servicetest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	declined := make(chan netip.Addr, 4)
	c, changes, _, _ := runClient(t, n, Options{Clock: clk, ARPProbe: 300 * time.Millisecond,
		OnDecline: func(a netip.Addr) { declined <- a }})
	select {
	case a := <-declined:
		if a.String() != "10.99.0.100" {
			t.Fatalf("declined %s, want 10.99.0.100", a)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no decline within 30s; status %+v; server log:\n%s", c.Status(), srv.Log())
	}
	if st := c.Status(); !strings.Contains(st.LastError, "address in use") {
		t.Errorf("last error %q", st.LastError)
	}
	if got := addrs(t, h, n.Link); slices.Contains(got, "10.99.0.100/24") {
		t.Errorf("the address in use was configured: %v", got)
	}
	testenv.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(srv.Log(), "DHCPDECLINE("+n.PeerLink+") 10.99.0.100") {
			return errString("no DHCPDECLINE in the server log:\n" + srv.Log())
		}
		return nil
	})

	// After the decline wait, the next discovery gets the free address.
	ctx := t.Context()
	if err := clk.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(DefaultDeclineWait)
	l := next(t, changes)
	if l == nil || l.Address.String() != "10.99.0.101/24" {
		t.Fatalf("lease after the decline %+v, want 10.99.0.101/24", l)
	}
}
