package dhcp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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
	n, srv, h := v6Net(t)
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

// v6Net is a namespace pair with dnsmasq serving DHCPv6 (fd99::/64,
// 2-minute leases) on the peer end, and the link up with a usable
// link-local address.
func v6Net(t *testing.T) (*testenv.NetNS, *testenv.DHCPServer, *netlink.Handle) {
	t.Helper()
	n := testenv.NewNetNS(t)
	n.PeerIP(t, "addr", "add", "fd99::1/64", "dev", n.PeerLink, "nodad")
	n.PeerIP(t, "link", "set", n.PeerLink, "up")
	srv := startDHCP(t, n, "--dhcp-range=fd99::100,fd99::1ff,64,2m")
	n.IP(t, "link", "set", n.Link, "up")
	h := handle(t, n)
	waitLinkLocal(t, h, n.Link)
	return n, srv, h
}

// waitLinkLocal waits for the link-local address of link to pass DAD
// (the client binds to it).
func waitLinkLocal(t *testing.T, h *netlink.Handle, link string) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, func() error {
		l, err := h.LinkByName(link)
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
}

// run6 starts a DHCPv6 client on n's link; it stops at cancel or the
// end of the test.
func run6(t *testing.T, n *testenv.NetNS, o Options6) (*Client6, <-chan *Lease6, context.CancelFunc) {
	t.Helper()
	changes := make(chan *Lease6, 16)
	o.Link, o.Timeout = n.Link, 10*time.Second
	o.OnChange = func(l *Lease6) { changes <- l }
	c, err := New6(o)
	if err != nil {
		t.Fatal(err)
	}
	ns := n.Handle(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.RunIn(ctx, &ns); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return c, changes, sync.OnceFunc(stop)
}

func has6(h *netlink.Handle, link string, a netip.Addr) bool {
	l, err := h.LinkByName(link)
	if err != nil {
		return false
	}
	as, _ := h.AddrList(l, netlink.FAMILY_V6)
	for _, x := range as {
		if x.IP.Equal(a.AsSlice()) {
			return true
		}
	}
	return false
}

// TestDHCPv6RestartAndCarrier: the lease is kept in the lease file; a
// new client (a restart of hostd) confirms it (CONFIRM) without the
// address ever leaving the link (no RTM_DELADDR for it). Carrier lost:
// the address stays for the grace, then goes with the lease kept;
// carrier back: CONFIRM again and the address is back.
func TestDHCPv6RestartAndCarrier(t *testing.T) {
	n, srv, h := v6Net(t)
	file := filepath.Join(t.TempDir(), "dhcp6.lease")
	clk := servicetest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c1, changes1, stop1 := run6(t, n, Options6{Clock: clk, LeaseFile: file})
	var l *Lease6
	select {
	case l = <-changes1:
	case <-time.After(30 * time.Second):
		t.Fatalf("no lease: %+v\n%s", c1.Status(), srv.Log())
	}
	stop1()
	stored, err := LoadLease6(file, n.Link)
	if err != nil || stored.Address != l.Address {
		t.Fatalf("stored lease %+v, %v; want %s", stored, err, l.Address)
	}
	if !has6(h, n.Link, l.Address) {
		t.Fatalf("address %s left the link when the client stopped", l.Address)
	}

	// Restart: watch for the address leaving the link.
	ns := n.Handle(t)
	upd := make(chan netlink.AddrUpdate, 64)
	udone := make(chan struct{})
	defer close(udone)
	if err := netlink.AddrSubscribeWithOptions(upd, udone, netlink.AddrSubscribeOptions{Namespace: &ns}); err != nil {
		t.Fatal(err)
	}
	clk2 := servicetest.NewFakeClock(clk.Now())
	c2, changes2, _ := run6(t, n, Options6{Clock: clk2, LeaseFile: file, CarrierGrace: 5 * time.Second})
	testenv.WaitFor(t, 20*time.Second, func() error {
		if st := c2.Status(); st.State != StateBound || st.Lease == nil || st.Lease.Address != l.Address {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	if got := strings.Count(srv.Log(), "DHCPCONFIRM"); got != 1 {
		t.Errorf("dnsmasq saw %d CONFIRMs, want 1:\n%s", got, srv.Log())
	}
	if strings.Count(srv.Log(), "DHCPSOLICIT") != 1 {
		t.Errorf("the restarted client solicited again:\n%s", srv.Log())
	}
	if got := <-changes2; got == nil || got.Address != l.Address {
		t.Errorf("restarted client published %+v", got)
	}
	checkNoDel := func() {
		t.Helper()
		for {
			select {
			case u := <-upd:
				if !u.NewAddr && u.LinkAddress.IP.Equal(l.Address.AsSlice()) {
					t.Fatalf("address %s was removed (RTM_DELADDR)", l.Address)
				}
			default:
				return
			}
		}
	}
	checkNoDel()

	// A forced renew (hostd net renew) is a RENEW answered by the server.
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	if err := c2.Renew(rctx); err != nil {
		t.Fatalf("renew: %v", err)
	}
	if !strings.Contains(srv.Log(), "DHCPRENEW") {
		t.Errorf("dnsmasq saw no RENEW:\n%s", srv.Log())
	}

	// Carrier lost: the address stays for the grace, then goes.
	bctx, bcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer bcancel()
	// The server's address must outlive its link going down.
	if out, err := exec.Command("ip", "netns", "exec", n.Peer, "sh", "-c",
		"echo 1 >/proc/sys/net/ipv6/conf/"+n.PeerLink+"/keep_addr_on_down").CombinedOutput(); err != nil {
		t.Fatalf("keep_addr_on_down: %v %s", err, out)
	}
	n.PeerIP(t, "link", "set", n.PeerLink, "down")
	testenv.WaitFor(t, 10*time.Second, func() error {
		if st := c2.Status(); st.State != StateNoCarrier {
			return fmt.Errorf("state %s", st.State)
		}
		return nil
	})
	if err := clk2.BlockUntil(bctx, 2); err != nil { // grace and expiry
		t.Fatal(err)
	}
	checkNoDel()
	if !has6(h, n.Link, l.Address) {
		t.Fatal("address gone before the grace ended")
	}
	clk2.Advance(5 * time.Second)
	testenv.WaitFor(t, 10*time.Second, func() error {
		if has6(h, n.Link, l.Address) {
			return errString("address still on the link")
		}
		return nil
	})
	if st := c2.Status(); st.Lease == nil || st.Lease.Address != l.Address {
		t.Errorf("lease not kept without carrier: %+v", st)
	}

	// Carrier back: CONFIRM, and the address is back.
	n.PeerIP(t, "link", "set", n.PeerLink, "up")
	waitLinkLocal(t, h, n.Link)
	testenv.WaitFor(t, 30*time.Second, func() error {
		if st := c2.Status(); st.State != StateBound || !has6(h, n.Link, l.Address) {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	if got := strings.Count(srv.Log(), "DHCPCONFIRM"); got != 2 {
		t.Errorf("dnsmasq saw %d CONFIRMs, want 2:\n%s", got, srv.Log())
	}
}

// TestDHCPv6WaitsForManagedFlag: with RequireManaged (a `both` link) the
// client solicits nothing while the router advertisements lack the M
// flag (dnsmasq's ra-only: SLAAC only), and obtains a lease once they set
// it (dnsmasq with a stateful range sends M).
func TestDHCPv6WaitsForManagedFlag(t *testing.T) {
	n := testenv.NewNetNS(t)
	n.PeerIP(t, "addr", "add", "fd99::1/64", "dev", n.PeerLink, "nodad")
	n.PeerIP(t, "link", "set", n.PeerLink, "up")
	ra := startDHCP(t, n, "--enable-ra", "--dhcp-range=fd99::,ra-only,64", "--ra-param="+n.PeerLink+",10,600")
	ns := n.Handle(t)
	if err := EnableRA(&ns, n.Link); err != nil { // up: the kernel solicits a router
		t.Fatal(err)
	}
	h := handle(t, n)
	waitLinkLocal(t, h, n.Link)

	c, changes, _ := run6(t, n, Options6{RequireManaged: true, Clock: servicetest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))})
	// The advertisement arrived (a SLAAC address) and set neither flag.
	testenv.WaitFor(t, 30*time.Second, func() error {
		l, err := h.LinkByName(n.Link)
		if err != nil {
			return err
		}
		as, _ := h.AddrList(l, netlink.FAMILY_V6)
		for _, a := range as {
			if strings.HasPrefix(a.IPNet.String(), "fd99::") {
				return nil
			}
		}
		return errString("no SLAAC address yet")
	})
	if f, err := ReadRAFlags(&ns, n.Link); err != nil || f.Managed || f.Other {
		t.Fatalf("ra flags %+v, %v; want none", f, err)
	}
	testenv.WaitFor(t, 10*time.Second, func() error {
		if st := c.Status(); st.State != StateNoManaged {
			return fmt.Errorf("state %s", st.State)
		}
		return nil
	})
	if log := ra.Log(); strings.Contains(log, "DHCPSOLICIT") || strings.Contains(log, "DHCPv6 request") {
		t.Errorf("the client solicited without the M flag:\n%s", log)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	if err := c.Renew(rctx); err == nil || !strings.Contains(err.Error(), "M flag") {
		t.Errorf("renew without the M flag: %v", err)
	}

	// A router with a stateful range: M set, a lease follows.
	ra.Stop()
	// (Its advertisements come at least every 10s.)
	srv := startDHCP(t, n, "--enable-ra", "--dhcp-range=fd99::100,fd99::1ff,64,2m", "--ra-param="+n.PeerLink+",10,600")
	select {
	case l := <-changes:
		if l == nil || !strings.HasPrefix(l.Address.String(), "fd99::1") {
			t.Fatalf("lease %+v", l)
		}
	case <-time.After(60 * time.Second):
		f, err := ReadRAFlags(&ns, n.Link)
		t.Fatalf("no lease: %+v (ra flags %+v %v)\n%s", c.Status(), f, err, srv.Log())
	}
	if f, err := ReadRAFlags(&ns, n.Link); err != nil || !f.Managed {
		t.Errorf("ra flags %+v, %v; want M", f, err)
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
