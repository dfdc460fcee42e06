package dhcp

import (
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/hostd/hostd/internal/testenv"
)

// testNet is a namespace pair with 10.99.0.1/24 on the peer end.
func testNet(t *testing.T) *testenv.NetNS {
	t.Helper()
	n := testenv.NewNetNS(t)
	n.PeerIP(t, "addr", "add", "10.99.0.1/24", "dev", n.PeerLink)
	n.PeerIP(t, "link", "set", n.PeerLink, "up")
	return n
}

// startDHCP starts dnsmasq in n's peer namespace with the given options.
func startDHCP(t *testing.T, n *testenv.NetNS, opts ...string) *testenv.DHCPServer {
	t.Helper()
	return testenv.StartDHCPServer(t, n, opts...)
}

// defaultRange is a pool with 2-minute leases (dnsmasq's shortest).
var defaultRange = []string{
	"--dhcp-range=10.99.0.100,10.99.0.150,255.255.255.0,2m",
	"--dhcp-option=option:router,10.99.0.1",
	"--dhcp-option=option:dns-server,10.99.0.1",
	"--dhcp-option=option:domain-search,lan.test,corp.test",
	"--dhcp-option=option:mtu,1400",
}

// addrs lists the IPv4 addresses of link in the namespace.
func addrs(t *testing.T, h *netlink.Handle, link string) []string {
	t.Helper()
	l, err := h.LinkByName(link)
	if err != nil {
		t.Fatalf("link %s: %v", link, err)
	}
	as, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatalf("list addresses: %v", err)
	}
	var out []string
	for _, a := range as {
		out = append(out, a.IPNet.String())
	}
	return out
}

// routes lists link's IPv4 routes as "dst via gw".
func routes(t *testing.T, h *netlink.Handle, link string) []string {
	t.Helper()
	l, err := h.LinkByName(link)
	if err != nil {
		t.Fatalf("link %s: %v", link, err)
	}
	rs, err := h.RouteList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatalf("list routes: %v", err)
	}
	var out []string
	for _, r := range rs {
		dst := "default"
		if r.Dst != nil && r.Dst.String() != "0.0.0.0/0" {
			dst = r.Dst.String()
		}
		if r.Gw != nil {
			dst += " via " + r.Gw.String()
		}
		out = append(out, dst)
	}
	return out
}
