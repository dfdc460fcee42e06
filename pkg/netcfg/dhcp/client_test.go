package dhcp

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/internal/testenv"
)

// runClient starts a client on n's link and returns it with the channel
// of its lease changes; the client stops when the test ends (or cancel).
func runClient(t *testing.T, n *testenv.NetNS, o Options) (*Client, <-chan *Lease, context.CancelFunc, <-chan error) {
	t.Helper()
	h := n.Handle(t)
	o.Link, o.NetNS = n.Link, &h
	if o.Attempt == 0 {
		o.Attempt = 200 * time.Millisecond
	}
	if o.Tries == 0 {
		o.Tries = 3
	}
	changes := make(chan *Lease, 16)
	o.OnChange = func(l *Lease) { changes <- l }
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := c.Run(ctx)
		done <- err
		close(done) // later receives see it ended
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return c, changes, cancel, done
}

// next waits for the next lease change.
func next(t *testing.T, ch <-chan *Lease) *Lease {
	t.Helper()
	select {
	case l := <-ch:
		return l
	case <-time.After(30 * time.Second):
		t.Fatal("no lease change within 30s")
		return nil
	}
}

func handle(t *testing.T, n *testenv.NetNS) *netlink.Handle {
	t.Helper()
	ns := n.Handle(t)
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// TestLeaseObtainedRenewedReleased: a lease from dnsmasq with its address,
// default route, MTU, DNS and search domains; hostname and client-id seen
// by the server; a forced renew; a release on stop.
func TestLeaseObtainedRenewedReleased(t *testing.T) {
	n := testNet(t)
	srv := startDHCP(t, n, defaultRange...)
	h := handle(t, n)
	c, changes, cancel, done := runClient(t, n, Options{Hostname: "hostd-test", Release: true, LeaseFile: filepath.Join(t.TempDir(), "lease.json")})

	l := next(t, changes)
	if l == nil || !strings.HasPrefix(l.Address.String(), "10.99.0.") || l.Address.Bits() != 24 {
		t.Fatalf("lease %+v", l)
	}
	if l.Server.String() != "10.99.0.1" || l.Gateway.String() != "10.99.0.1" || l.MTU != 1400 {
		t.Errorf("server %s gateway %s mtu %d", l.Server, l.Gateway, l.MTU)
	}
	if len(l.DNS) != 1 || l.DNS[0].String() != "10.99.0.1" || !slices.Equal(l.Domains, []string{"lan.test", "corp.test"}) {
		t.Errorf("dns %v domains %v", l.DNS, l.Domains)
	}
	if got := addrs(t, h, n.Link); !slices.Contains(got, l.Address.String()) {
		t.Errorf("addresses %v, want %s", got, l.Address)
	}
	if got := routes(t, h, n.Link); !slices.Contains(got, "default via 10.99.0.1") {
		t.Errorf("routes %v, want the default route", got)
	}
	if lk, _ := h.LinkByName(n.Link); lk.Attrs().MTU != 1400 {
		t.Errorf("mtu %d, want 1400", lk.Attrs().MTU)
	}
	lf := srv.Leases()
	if !strings.Contains(lf, "hostd-test") || !strings.Contains(lf, "01:"+mac(t, h, n.Link)) {
		t.Errorf("dnsmasq lease file %q lacks hostname or client-id", lf)
	}
	if st := c.Status(); st.State != StateBound {
		t.Errorf("state %s", st.State)
	}

	// A forced renew is answered by the server (it logs DHCPREQUEST twice:
	// once for the request after the offer, once for the renewal).
	ctx, cancelR := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelR()
	if err := c.Renew(ctx); err != nil {
		t.Fatalf("renew: %v", err)
	}
	if got := strings.Count(srv.Log(), "DHCPACK("+n.PeerLink+")"); got < 2 {
		t.Errorf("dnsmasq logged %d ACKs, want 2:\n%s", got, srv.Log())
	}

	// Stop: released and removed.
	cancel()
	<-done
	if got := addrs(t, h, n.Link); slices.Contains(got, l.Address.String()) {
		t.Errorf("address %s still there after release: %v", l.Address, got)
	}
	testenv.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(srv.Log(), "DHCPRELEASE") {
			return errString("no DHCPRELEASE in the server log")
		}
		return nil
	})
}

// TestServerGoneLeaseKeptUntilExpiry: with the server stopped, renew and
// rebind fail, the address stays until the lease's end, then goes. The
// lease timers run on a fake clock; the network does not.
func TestServerGoneLeaseKeptUntilExpiry(t *testing.T) {
	n := testNet(t)
	srv := startDHCP(t, n, defaultRange...)
	h := handle(t, n)
	clk := servicetest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c, changes, _, _ := runClient(t, n, Options{Clock: clk, Tries: 2, Attempt: 500 * time.Millisecond, RetryMin: time.Second})
	l := next(t, changes)
	srv.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// T1 and T2 pass: the renewal and the rebinding get no answer.
	for i, at := range []time.Time{l.RenewAt(), l.RebindAt()} {
		if err := clk.BlockUntil(ctx, 1); err != nil {
			t.Fatal(err)
		}
		clk.Set(at)
		// Wait until the failed attempt is counted.
		testenv.WaitFor(t, 10*time.Second, func() error {
			if st := c.Status(); st.RenewFailures < i+1 {
				return errString("failure not counted yet")
			}
			return nil
		})
		if got := addrs(t, h, n.Link); !slices.Contains(got, l.Address.String()) {
			t.Fatalf("address gone before expiry: %v", got)
		}
	}
	if st := c.Status(); st.State != StateRebinding || st.LastError == "" {
		t.Errorf("state %s, last error %q; want rebinding with an error", st.State, st.LastError)
	}
	// The lease ends.
	if err := clk.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Set(l.Expires())
	for {
		if err := clk.BlockUntil(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if got := next(t, changes); got == nil {
			break
		}
	}
	if got := addrs(t, h, n.Link); slices.Contains(got, l.Address.String()) {
		t.Errorf("address %s still there after expiry: %v", l.Address, got)
	}
}

// TestRebindToNewServer: the server that granted the lease goes away and
// another one (another server identifier, address and router, its own
// empty lease database) serves the link: the renewal at T1 (unicast to
// the old server) gets no answer, the rebinding at T2 (broadcast) is
// answered by the new server, which keeps the address; the lease then
// names the new server, and its router replaces the old default route.
func TestRebindToNewServer(t *testing.T) {
	n := testNet(t)
	srv := startDHCP(t, n, defaultRange...)
	h := handle(t, n)
	clk := servicetest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c, changes, _, _ := runClient(t, n, Options{Clock: clk, Tries: 2, Attempt: 500 * time.Millisecond, RetryMin: time.Second, Timeout: 5 * time.Second})
	l := next(t, changes)
	if l == nil || l.Server.String() != "10.99.0.1" {
		t.Fatalf("lease %+v", l)
	}

	// The old server goes; the new one takes the link over.
	srv.Stop()
	n.PeerIP(t, "addr", "del", "10.99.0.1/24", "dev", n.PeerLink)
	n.PeerIP(t, "addr", "add", "10.99.0.2/24", "dev", n.PeerLink)
	srv2 := startDHCP(t, n,
		"--dhcp-range=10.99.0.100,10.99.0.150,255.255.255.0,2m",
		"--dhcp-option=option:router,10.99.0.2",
		"--dhcp-option=option:dns-server,10.99.0.2")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// T1: the renewal, unicast to the old server, gets no answer.
	if err := clk.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Set(l.RenewAt())
	testenv.WaitFor(t, 20*time.Second, func() error {
		if st := c.Status(); st.RenewFailures < 1 {
			return errString("renewal failure not counted yet")
		}
		return nil
	})
	if got := addrs(t, h, n.Link); !slices.Contains(got, l.Address.String()) {
		t.Fatalf("address gone after the failed renewal: %v", got)
	}
	// T2: the rebinding is answered by the new server.
	if err := clk.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Set(l.RebindAt())
	var nl *Lease
	for nl == nil || nl.Server.String() != "10.99.0.2" {
		nl = next(t, changes)
		if nl == nil {
			t.Fatalf("lease lost instead of rebound:\n%s", srv2.Log())
		}
	}
	if nl.Address != l.Address || !nl.Acquired.Equal(l.RebindAt()) {
		t.Errorf("rebound lease %+v, want %s acquired at T2", nl, l.Address)
	}
	if st := c.Status(); st.State != StateBound || st.Lease == nil || st.Lease.Server != nl.Server {
		t.Errorf("status %+v", st)
	}
	log2 := srv2.Log()
	if strings.Contains(log2, "DHCPDISCOVER") || !strings.Contains(log2, "DHCPACK("+n.PeerLink+") "+l.Address.Addr().String()) {
		t.Errorf("the new server did not just ack the rebinding:\n%s", log2)
	}
	if got := addrs(t, h, n.Link); !slices.Contains(got, l.Address.String()) {
		t.Errorf("address %s not kept: %v", l.Address, got)
	}
	if got := routes(t, h, n.Link); !slices.Contains(got, "default via 10.99.0.2") || slices.Contains(got, "default via 10.99.0.1") {
		t.Errorf("routes %v, want the default route via the new server only", got)
	}
	if len(nl.DNS) != 1 || nl.DNS[0].String() != "10.99.0.2" {
		t.Errorf("dns %v, want the new server's", nl.DNS)
	}
}

// TestClasslessRoutesInstalled: option 121 routes go on the link, and the
// router option is ignored (RFC 3442).
func TestClasslessRoutesInstalled(t *testing.T) {
	n := testNet(t)
	startDHCP(t, n, append(slices.Clone(defaultRange),
		"--dhcp-option=121,192.168.50.0/24,10.99.0.254,0.0.0.0/0,10.99.0.2,172.16.0.0/12,0.0.0.0")...)
	h := handle(t, n)
	_, changes, _, _ := runClient(t, n, Options{})
	l := next(t, changes)
	if len(l.Routes) != 3 || l.Gateway.String() != "10.99.0.2" {
		t.Fatalf("routes %v gateway %s", l.Routes, l.Gateway)
	}
	got := routes(t, h, n.Link)
	for _, want := range []string{"192.168.50.0/24 via 10.99.0.254", "default via 10.99.0.2", "172.16.0.0/12"} {
		if !slices.Contains(got, want) {
			t.Errorf("routes %v lack %q", got, want)
		}
	}
	if slices.Contains(got, "default via 10.99.0.1") {
		t.Errorf("router option used despite option 121: %v", got)
	}
}

// TestRestartKeepsAddress: a client stopped without release keeps the
// address; the next one asks for it again (INIT-REBOOT) and the address
// is never deleted in between.
func TestRestartKeepsAddress(t *testing.T) {
	n := testNet(t)
	srv := startDHCP(t, n, defaultRange...)
	h := handle(t, n)
	file := filepath.Join(t.TempDir(), "lease.json")

	// Watch for RTM_DELADDR from the start.
	ns := n.Handle(t)
	updates := make(chan netlink.AddrUpdate, 64)
	stopW := make(chan struct{})
	defer close(stopW)
	if err := netlink.AddrSubscribeWithOptions(updates, stopW, netlink.AddrSubscribeOptions{Namespace: &ns}); err != nil {
		t.Fatal(err)
	}

	_, changes, cancel, done := runClient(t, n, Options{LeaseFile: file})
	l := next(t, changes)
	cancel()
	<-done
	if got := addrs(t, h, n.Link); !slices.Contains(got, l.Address.String()) {
		t.Fatalf("address dropped on stop without release: %v", got)
	}
	_, changes2, _, _ := runClient(t, n, Options{LeaseFile: file})
	l2 := next(t, changes2)
	if l2 == nil || l2.Address != l.Address {
		t.Fatalf("after restart: lease %+v, want %s", l2, l.Address)
	}
	if !strings.Contains(srv.Log(), "DHCPREQUEST("+n.PeerLink+") "+l.Address.Addr().String()) {
		t.Errorf("no INIT-REBOOT request in the server log:\n%s", srv.Log())
	}
	for {
		select {
		case u := <-updates:
			if !u.NewAddr && u.LinkAddress.IP.Equal(l.Address.Addr().AsSlice()) {
				t.Fatalf("RTM_DELADDR for %s during the restart", l.Address)
			}
			continue
		default:
		}
		break
	}
}

func mac(t *testing.T, h *netlink.Handle, link string) string {
	t.Helper()
	l, err := h.LinkByName(link)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().HardwareAddr.String()
}

type errString string

func (e errString) Error() string { return string(e) }

// TestCarrierLossGraceThenReboot: carrier lost for less than the grace
// keeps the address; carrier back asks for the lease again (INIT-REBOOT).
// Lost for longer, the address and routes go but the lease is kept, and
// carrier back brings the same address again. The grace runs on a fake
// clock; carrier follows the peer end of the veth pair.
func TestCarrierLossGraceThenReboot(t *testing.T) {
	n := testNet(t)
	srv := startDHCP(t, n, defaultRange...)
	h := handle(t, n)
	clk := servicetest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	const grace = 10 * time.Second
	c, changes, _, _ := runClient(t, n, Options{Clock: clk, CarrierGrace: grace})
	l := next(t, changes)
	reboots := func() int {
		return strings.Count(srv.Log(), "DHCPREQUEST("+n.PeerLink+") "+l.Address.Addr().String())
	}
	waitState := func(want string) {
		t.Helper()
		testenv.WaitFor(t, 30*time.Second, func() error {
			if st := c.Status(); st.State != want {
				return errString("state " + st.State + ", want " + want)
			}
			return nil
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A short loss: nothing is removed; carrier back means INIT-REBOOT.
	before := reboots()
	n.PeerIP(t, "link", "set", n.PeerLink, "down")
	waitState(StateNoCarrier)
	if got := addrs(t, h, n.Link); !slices.Contains(got, l.Address.String()) {
		t.Fatalf("address removed at once on carrier loss: %v", got)
	}
	n.PeerIP(t, "link", "set", n.PeerLink, "up")
	waitState(StateBound)
	if reboots() <= before {
		t.Errorf("no INIT-REBOOT request after carrier came back:\n%s", srv.Log())
	}
	if got := addrs(t, h, n.Link); !slices.Contains(got, l.Address.String()) {
		t.Fatalf("address %s gone after a short carrier loss: %v", l.Address, got)
	}

	// A loss past the grace: address and routes go, the lease stays.
	n.PeerIP(t, "link", "set", n.PeerLink, "down")
	waitState(StateNoCarrier)
	if err := clk.BlockUntil(ctx, 2); err != nil { // grace and expiry
		t.Fatal(err)
	}
	clk.Advance(grace)
	if got := next(t, changes); got != nil {
		t.Fatalf("lease change %+v after the grace, want nil", got)
	}
	if got := addrs(t, h, n.Link); slices.Contains(got, l.Address.String()) {
		t.Fatalf("address still there after the grace: %v", got)
	}
	if got := routes(t, h, n.Link); slices.Contains(got, "default via 10.99.0.1") {
		t.Errorf("default route still there after the grace: %v", got)
	}
	before = reboots()
	n.PeerIP(t, "link", "set", n.PeerLink, "up")
	l2 := next(t, changes)
	if l2 == nil || l2.Address != l.Address {
		t.Fatalf("after carrier came back: lease %+v, want %s", l2, l.Address)
	}
	if reboots() <= before {
		t.Errorf("no INIT-REBOOT request after carrier came back:\n%s", srv.Log())
	}
	if got := addrs(t, h, n.Link); !slices.Contains(got, l.Address.String()) {
		t.Errorf("address %s not back: %v", l.Address, got)
	}
}
