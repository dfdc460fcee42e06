package netcfg_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/netcfg"
	"github.com/hostd/hostd/pkg/netcfg/dhcp"
	"github.com/hostd/hostd/pkg/netcfg/netwatch"
)

// TestServiceDHCPLease: a link declared with dhcp: v4 gets its lease in a
// namespace, the host goes online through the lease's default route, the
// lease's DNS server answers its search domain in the resolver, the status
// shows the lease, and a renew through the local API is answered.
func TestServiceDHCPLease(t *testing.T) {
	ns := testenv.NewNetNS(t)
	ns.PeerIP(t, "addr", "add", "10.99.0.1/24", "dev", ns.PeerLink)
	ns.PeerIP(t, "link", "set", ns.PeerLink, "up")
	srv := testenv.StartDHCPServer(t, ns,
		"--dhcp-range=10.99.0.100,10.99.0.150,255.255.255.0,2m",
		"--dhcp-option=option:router,10.99.0.1",
		"--dhcp-option=option:dns-server,10.99.0.1",
		"--dhcp-option=option:domain-search,lan.test")

	cfg := dhcpConfig(ns, "v4")
	cfg.DHCP.Hostname = "hostd-svc"
	s := startService(t, cfg)

	waitHealth(t, s, 30*time.Second, servicetest.IsReady)
	testenv.WaitFor(t, 30*time.Second, func() error {
		if d := s.Details(); len(d.DHCP) != 1 || d.DHCP[0].Lease == nil {
			return errors.New("no lease yet")
		}
		return nil
	})
	d := s.Details()
	if len(d.DHCP) != 1 || d.DHCP[0].Lease == nil || d.DHCP[0].State != dhcp.StateBound {
		t.Fatalf("dhcp status %+v", d.DHCP)
	}
	l := d.DHCP[0].Lease
	if d.DefaultRoute == nil || d.DefaultRoute.Gateway != "10.99.0.1" {
		t.Errorf("default route %+v, want via 10.99.0.1", d.DefaultRoute)
	}
	if !strings.Contains(d.Summary(), "dhcp 1/1 bound") {
		t.Errorf("summary %q", d.Summary())
	}
	// The lease's server is an upstream for its search domain and a
	// fallback for everything else.
	var got []string
	for _, u := range d.DNS.Upstreams {
		got = append(got, u.Domain+" "+u.Upstream)
	}
	for _, want := range []string{"lan.test. udp://10.99.0.1:53", ". udp://10.99.0.1:53"} {
		if !slices.Contains(got, want) {
			t.Errorf("upstreams %q lack %q", got, want)
		}
	}
	if !strings.Contains(srv.Leases(), "hostd-svc") {
		t.Errorf("server leases %q lack the hostname", srv.Leases())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, err := s.client.Raw(ctx, "POST", api.RouteNetcfgDHCPRenew, netcfg.RenewRequest{Link: ns.Link})
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	var st dhcp.Status
	if err := json.Unmarshal(raw, &st); err != nil || st.Lease == nil || st.Lease.Address != l.Address {
		t.Fatalf("renew answered %s (%v)", raw, err)
	}
	if _, err := s.client.Raw(ctx, "POST", api.RouteNetcfgDHCPRenew, netcfg.RenewRequest{Link: "nope0"}); err == nil {
		t.Error("renew of a link without dhcp succeeded")
	}

	// Carrier lost: offline at once (the grace keeps the address, not the
	// verdict); back: ready again once the lease is confirmed.
	ns.PeerIP(t, "link", "set", ns.PeerLink, "down")
	waitHealth(t, s, 30*time.Second, servicetest.IsDegraded("offline"))
	ns.PeerIP(t, "link", "set", ns.PeerLink, "up")
	waitHealth(t, s, 30*time.Second, servicetest.IsReady)
	if d := s.Details(); d.DHCP[0].State != dhcp.StateBound || d.DHCP[0].Lease == nil || d.DHCP[0].Lease.Address != l.Address {
		t.Errorf("after carrier came back: %+v", d.DHCP[0])
	}

	// Stop without release_on_stop: the address stays, the lease file too.
	if err := s.stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if lf, err := dhcp.LoadLease(s.state+"/dhcp4-"+ns.Link+".lease", ns.Link); err != nil || lf.Address != l.Address {
		t.Errorf("stored lease %+v (%v)", lf, err)
	}
}

// TestServiceIPv6Autoconf: a link declared with dhcp: both gets its IPv4
// lease and, from dnsmasq's router advertisements, a SLAAC address in the
// advertised prefix and an IPv6 default route through the router.
func TestServiceIPv6Autoconf(t *testing.T) {
	ns := testenv.NewNetNS(t)
	ns.PeerIP(t, "addr", "add", "10.99.0.1/24", "dev", ns.PeerLink)
	ns.PeerIP(t, "addr", "add", "fd99::1/64", "dev", ns.PeerLink, "nodad")
	ns.PeerIP(t, "link", "set", ns.PeerLink, "up")
	testenv.StartDHCPServer(t, ns,
		"--dhcp-range=10.99.0.100,10.99.0.150,255.255.255.0,2m",
		"--dhcp-option=option:router,10.99.0.1",
		"--enable-ra", "--dhcp-range=fd99::,ra-only,64", "--ra-param="+ns.PeerLink+",10,600")

	cfg := netcfg.DefaultConfig()
	cfg.NetNS = ns.Name
	cfg.Links = []netwatch.LinkSpec{{Name: ns.Link, DHCP: "both"}}
	s := startService(t, cfg)
	h := nsHandle(t, ns)

	testenv.WaitFor(t, 30*time.Second, func() error {
		l, err := h.LinkByName(ns.Link)
		if err != nil {
			return err
		}
		as, err := h.AddrList(l, netlink.FAMILY_V6)
		if err != nil {
			return err
		}
		slaac := false
		for _, a := range as {
			if strings.HasPrefix(a.IPNet.String(), "fd99::") && a.Flags&unix.IFA_F_TENTATIVE == 0 {
				slaac = true
			}
		}
		if !slaac {
			return fmt.Errorf("no SLAAC address in fd99::/64 yet: %v", as)
		}
		rs, err := h.RouteList(l, netlink.FAMILY_V6)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if (r.Dst == nil || r.Dst.String() == "::/0") && r.Gw != nil && r.Gw.IsLinkLocalUnicast() {
				return nil
			}
		}
		return fmt.Errorf("no IPv6 default route yet: %v", rs)
	})
	testenv.WaitFor(t, 30*time.Second, func() error {
		if d := s.Details(); len(d.DHCP) != 1 || d.DHCP[0].Lease == nil {
			return errors.New("no DHCPv4 lease yet")
		}
		return nil
	})
}

// nsHandle is a netlink handle in ns's namespace under test.
func nsHandle(t *testing.T, ns *testenv.NetNS) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns.Handle(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// TestServiceLeaseDNSAnswers: the DNS server a lease names (dnsmasq in the
// peer namespace, serving DHCP and DNS) answers a name under the lease's
// search domain through hostd's resolver. The resolver listens on
// loopback in the test's namespace and reaches the server in the link's
// namespace.
func TestServiceLeaseDNSAnswers(t *testing.T) {
	ns := testenv.NewNetNS(t)
	ns.PeerIP(t, "addr", "add", "10.99.0.1/24", "dev", ns.PeerLink)
	ns.PeerIP(t, "link", "set", ns.PeerLink, "up")
	srv := testenv.StartDHCPServer(t, ns,
		"--port=53", "--address=/www.lan.test/192.0.2.77", "--log-queries",
		"--dhcp-range=10.99.0.100,10.99.0.150,255.255.255.0,2m",
		"--dhcp-option=option:router,10.99.0.1",
		"--dhcp-option=option:dns-server,10.99.0.1",
		"--dhcp-option=option:domain-search,lan.test")

	cfg := dhcpConfig(ns, "v4")
	s := startService(t, cfg)
	waitHealth(t, s, 30*time.Second, servicetest.IsReady)
	testenv.WaitFor(t, 30*time.Second, func() error {
		if d := s.Details(); d.DNS == nil || d.DNS.Listen == "" || len(d.DHCP) != 1 || d.DHCP[0].Lease == nil {
			return errors.New("no lease or resolver yet")
		}
		return nil
	})

	resolveThrough(t, s, srv, "www.lan.test", "192.0.2.77", "the lease's server")
}

// TestServiceRADNSAnswers: on a link declared with dhcp: v6, the DNS
// server and search domain of dnsmasq's router advertisements (RDNSS,
// DNSSL, RFC 8106) become the link's upstreams in the resolver, and a name
// under the domain is answered through them.
func TestServiceRADNSAnswers(t *testing.T) {
	ns := testenv.NewNetNS(t)
	ns.PeerIP(t, "addr", "add", "fd99::1/64", "dev", ns.PeerLink, "nodad")
	ns.PeerIP(t, "link", "set", ns.PeerLink, "up")
	srv := testenv.StartDHCPServer(t, ns,
		"--port=53", "--address=/www.lan6.test/192.0.2.66", "--log-queries",
		"--enable-ra", "--dhcp-range=fd99::,ra-only,64", "--ra-param="+ns.PeerLink+",10,600",
		"--dhcp-option=option6:dns-server,[fd99::1]",
		"--dhcp-option=option6:domain-search,lan6.test")

	cfg := dhcpConfig(ns, "v6")
	s := startService(t, cfg)

	want := "udp://[fd99::1]:53"
	testenv.WaitFor(t, 30*time.Second, func() error {
		d := s.Details()
		if d.DNS == nil || d.DNS.Listen == "" {
			return errors.New("no resolver yet")
		}
		for _, u := range d.DNS.Upstreams {
			if u.Upstream == want && u.Domain == "lan6.test." {
				return nil
			}
		}
		return fmt.Errorf("no upstream %s for lan6.test in %+v", want, d.DNS.Upstreams)
	})

	resolveThrough(t, s, srv, "www.lan6.test", "192.0.2.66", "the advertised server")
}

// TestServiceDHCPv6Lease: on a link declared with dhcp: v6, dnsmasq as
// DHCPv6 server (its advertisements set the M flag) hands out an address
// in fd99::100-1ff and a DNS server with a search domain: the address is
// installed as a /128 with a finite valid lifetime, the status shows the
// lease, the DNS server answers the domain through hostd's resolver, and
// with release_on_stop the address goes when netcfg stops.
func TestServiceDHCPv6Lease(t *testing.T) {
	ns := testenv.NewNetNS(t)
	ns.PeerIP(t, "addr", "add", "fd99::1/64", "dev", ns.PeerLink, "nodad")
	ns.PeerIP(t, "link", "set", ns.PeerLink, "up")
	srv := testenv.StartDHCPServer(t, ns,
		"--port=53", "--address=/www.v6.test/192.0.2.67", "--log-queries",
		"--enable-ra", "--dhcp-range=fd99::100,fd99::1ff,64,2m",
		"--dhcp-option=option6:dns-server,[fd99::1]",
		"--dhcp-option=option6:domain-search,v6.test")

	cfg := dhcpConfig(ns, "v6")
	cfg.DHCP.ReleaseOnStop = true
	s := startService(t, cfg)
	h := nsHandle(t, ns)

	var leased netlink.Addr
	testenv.WaitFor(t, 30*time.Second, func() error {
		d := s.Details()
		if len(d.DHCP6) != 1 || d.DHCP6[0].Lease == nil {
			return fmt.Errorf("no dhcpv6 lease yet: %+v", d.DHCP6)
		}
		l, err := h.LinkByName(ns.Link)
		if err != nil {
			return err
		}
		as, err := h.AddrList(l, netlink.FAMILY_V6)
		if err != nil {
			return err
		}
		for _, a := range as {
			if a.IP.Equal(d.DHCP6[0].Lease.Address.AsSlice()) {
				leased = a
				return nil
			}
		}
		return fmt.Errorf("leased %s not on the link: %v", d.DHCP6[0].Lease.Address, as)
	})
	if ones, _ := leased.Mask.Size(); ones != 128 || leased.ValidLft <= 0 || leased.ValidLft > 120 || !strings.HasPrefix(leased.IP.String(), "fd99::1") {
		t.Errorf("address %s valid %d preferred %d", leased.IPNet, leased.ValidLft, leased.PreferedLft)
	}
	st := s.Details().DHCP6[0]
	if st.State != dhcp.StateBound || !slices.Equal(st.Lease.Domains, []string{"v6.test"}) || len(st.Lease.DNS) != 1 || st.Lease.DNS[0].String() != "fd99::1" {
		t.Errorf("status %+v", st)
	}

	testenv.WaitFor(t, 10*time.Second, func() error {
		for _, u := range s.Details().DNS.Upstreams {
			if u.Upstream == "udp://[fd99::1]:53" && u.Domain == "v6.test." {
				return nil
			}
		}
		return fmt.Errorf("no upstream for v6.test: %+v", s.Details().DNS.Upstreams)
	})
	// The server is reached once the advertisement's on-link prefix is in.
	testenv.WaitFor(t, 30*time.Second, func() error {
		q := new(dns.Msg)
		q.SetQuestion("www.v6.test.", dns.TypeA)
		resp, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(q, s.Details().DNS.Listen)
		if err != nil || resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
			return fmt.Errorf("query www.v6.test: %v %v", resp, err)
		}
		return nil
	})
	if !strings.Contains(srv.Log(), "query[A] www.v6.test") {
		t.Errorf("the lease's server did not see the query:\n%s", srv.Log())
	}

	if err := s.stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if !strings.Contains(srv.Log(), "DHCPRELEASE") {
		t.Errorf("dnsmasq saw no release:\n%s", srv.Log())
	}
	l, _ := h.LinkByName(ns.Link)
	as, _ := h.AddrList(l, netlink.FAMILY_V6)
	for _, a := range as {
		if a.IP.Equal(leased.IP) {
			t.Errorf("released address %s still on the link", a.IPNet)
		}
	}
}

// dhcpConfig is netcfg's config for the link of ns declared with dhcp
// mode (v4, v6), and hostd's resolver on a loopback port without a hosts file.
func dhcpConfig(ns *testenv.NetNS, mode string) netcfg.Config {
	cfg := netcfg.DefaultConfig()
	cfg.NetNS = ns.Name
	cfg.Links = []netwatch.LinkSpec{{Name: ns.Link, DHCP: mode}}
	cfg.DNS.Enable = true
	cfg.DNS.Listen = "127.0.0.1:0"
	cfg.DNS.HostsFile = ""
	return cfg
}

// resolveThrough asks hostd's resolver in s for name's A record, wants
// the address want, and wants srv (server: who it is, in the error) to
// have seen the query.
func resolveThrough(t *testing.T, s *running, srv *testenv.DHCPServer, name, want, server string) {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name+".", dns.TypeA)
	c := &dns.Client{Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(q, s.Details().DNS.Listen)
	if err != nil {
		t.Fatalf("query hostd's resolver: %v", err)
	}
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Fatalf("answer %v", resp)
	}
	if a, ok := resp.Answer[0].(*dns.A); !ok || a.A.String() != want {
		t.Fatalf("answer %v, want %s", resp.Answer[0], want)
	}
	if !strings.Contains(srv.Log(), "query[A] "+name) {
		t.Errorf("%s did not see the query:\n%s", server, srv.Log())
	}
}
