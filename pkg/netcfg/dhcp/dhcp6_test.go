package dhcp

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/internal/testenv"
)

// TestDHCPv6RenewAtT1: the DHCPv6 client obtains an address from dnsmasq
// and renews it when T1 passes on its (fake) clock: dnsmasq sees a RENEW,
// the lease's acquisition time moves, and the address stays (replaced in
// place). The network runs in real time; only the lease timers are faked.
func TestDHCPv6RenewAtT1(t *testing.T) {
	n := testenv.NewNetNS(t)
	n.PeerIP(t, "addr", "add", "fd99::1/64", "dev", n.PeerLink, "nodad")
	n.PeerIP(t, "link", "set", n.PeerLink, "up")
	srv := startDHCP(t, n, "--dhcp-range=fd99::100,fd99::1ff,64,2m")
	n.IP(t, "link", "set", n.Link, "up")
	h := handle(t, n)
	// The client binds to the link-local address: wait for its DAD.
	testenv.WaitFor(t, 10*time.Second, func() error {
		l, err := h.LinkByName(n.Link)
		if err != nil {
			return err
		}
		as, _ := h.AddrList(l, netlink.FAMILY_V6)
		for _, a := range as {
			if a.IP.IsLinkLocalUnicast() && a.Flags&unix.IFA_F_TENTATIVE == 0 {
				return nil
			}
		}
		return errString("no link-local address yet")
	})

	clk := servicetest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	changes := make(chan *Lease6, 4)
	c, err := New6(Options6{Link: n.Link, Clock: clk, Timeout: 10 * time.Second, OnChange: func(l *Lease6) { changes <- l }})
	if err != nil {
		t.Fatal(err)
	}
	ns := n.Handle(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.RunIn(ctx, &ns); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	var l *Lease6
	select {
	case l = <-changes:
	case <-time.After(30 * time.Second):
		t.Fatalf("no lease: %+v\n%s", c.Status(), srv.Log())
	}
	if l == nil || !strings.HasPrefix(l.Address.String(), "fd99::1") || l.T1 <= 0 || l.T1 > l.Valid {
		t.Fatalf("lease %+v", l)
	}
	bctx, bcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer bcancel()
	if err := clk.BlockUntil(bctx, 1); err != nil { // the T1 timer
		t.Fatal(err)
	}
	clk.Set(l.Acquired.Add(l.T1))
	testenv.WaitFor(t, 20*time.Second, func() error {
		st := c.Status()
		if st.Lease == nil || !st.Lease.Acquired.After(l.Acquired) || st.State != StateBound {
			return errString("not renewed yet")
		}
		return nil
	})
	if !strings.Contains(srv.Log(), "DHCPRENEW") {
		t.Errorf("dnsmasq saw no RENEW:\n%s", srv.Log())
	}
	link, _ := h.LinkByName(n.Link)
	as, _ := h.AddrList(link, netlink.FAMILY_V6)
	found := false
	for _, a := range as {
		found = found || a.IP.Equal(l.Address.AsSlice())
	}
	if !found {
		t.Errorf("address %s not on the link after renewal: %v", l.Address, as)
	}
}

func FuzzParseLease6(f *testing.F) {
	reply, _ := dhcpv6.NewMessage()
	reply.MessageType = dhcpv6.MessageTypeReply
	reply.AddOption(dhcpv6.OptServerID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: []byte{2, 0, 0, 0, 0, 1}}))
	ia := &dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 1}, T1: time.Minute, T2: 90 * time.Second}
	ia.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP("fd99::123"), PreferredLifetime: 2 * time.Minute, ValidLifetime: 2 * time.Minute})
	reply.AddOption(ia)
	reply.AddOption(dhcpv6.OptDNS(net.ParseIP("fd99::1")))
	f.Add(reply.ToBytes())
	f.Add([]byte{7, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := dhcpv6.MessageFromBytes(b)
		if err != nil {
			return
		}
		l, err := ParseLease6(m, time.Unix(0, 0))
		if err != nil {
			return
		}
		if !usableUnicast6(l.Address) || l.Valid < MinLeaseTime || l.Preferred > l.Valid || l.T1 <= 0 || l.T2 < l.T1 ||
			len(l.DNS) > MaxDNSServers || len(l.Domains) > MaxSearchDomains || len(l.ServerID) > MaxServerIDLen {
			t.Fatalf("lease %+v", l)
		}
		for _, d := range l.Domains {
			if cleanName(d) != d {
				t.Fatalf("domain %q", d)
			}
		}
	})
}
