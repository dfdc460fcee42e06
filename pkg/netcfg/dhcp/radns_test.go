package dhcp

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ndUserOptMsg builds an RTM_NEWNDUSEROPT datagram as the kernel sends it:
// one nduseroptmsg with opts and the router's address attribute.
func ndUserOptMsg(ifindex int, router netip.Addr, opts ...[]byte) []byte {
	var o []byte
	for _, x := range opts {
		o = append(o, x...)
	}
	body := make([]byte, ndUserOptHdrLen)
	body[0] = unix.AF_INET6
	binary.NativeEndian.PutUint16(body[2:4], uint16(len(o)))
	binary.NativeEndian.PutUint32(body[4:8], uint32(ifindex))
	body[8] = icmpv6RouterAdvert
	body = append(body, o...)
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	if router.IsValid() {
		a := make([]byte, 4, 20)
		binary.NativeEndian.PutUint16(a[0:2], 20)
		binary.NativeEndian.PutUint16(a[2:4], ndUserOptSrcAddr)
		r := router.As16()
		body = append(body, append(a, r[:]...)...)
	}
	h := make([]byte, unix.NLMSG_HDRLEN)
	binary.NativeEndian.PutUint32(h[0:4], uint32(unix.NLMSG_HDRLEN+len(body)))
	binary.NativeEndian.PutUint16(h[4:6], unix.RTM_NEWNDUSEROPT)
	return append(h, body...)
}

func rdnssOpt(life uint32, addrs ...string) []byte {
	b := []byte{ndOptRDNSS, byte(1 + 2*len(addrs)), 0, 0}
	b = binary.BigEndian.AppendUint32(b, life)
	for _, a := range addrs {
		x := netip.MustParseAddr(a).As16()
		b = append(b, x[:]...)
	}
	return b
}

func dnsslOpt(life uint32, names ...string) []byte {
	b := []byte{ndOptDNSSL, 0, 0, 0}
	b = binary.BigEndian.AppendUint32(b, life)
	for _, n := range names {
		for l := range splitDots(n) {
			b = append(b, byte(len(l)))
			b = append(b, l...)
		}
		b = append(b, 0)
	}
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	b[1] = byte(len(b) / 8)
	return b
}

func splitDots(s string) func(func(string) bool) {
	return func(yield func(string) bool) {
		start := 0
		for i := 0; i <= len(s); i++ {
			if i == len(s) || s[i] == '.' {
				if !yield(s[start:i]) {
					return
				}
				start = i + 1
			}
		}
	}
}

func TestParseNDUserOpts(t *testing.T) {
	router := netip.MustParseAddr("fe80::1")
	msg := ndUserOptMsg(3, router,
		rdnssOpt(600, "fd99::1", "fe80::53", "ff02::1", "::ffff:10.0.0.1"),
		dnsslOpt(0xffffffff, "lan6.test", "Corp.Example"))
	got, err := ParseNDUserOpts(msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d messages", len(got))
	}
	o := got[0]
	if o.IfIndex != 3 || o.Router != router {
		t.Errorf("ifindex %d router %s", o.IfIndex, o.Router)
	}
	wantServers := []RAServer{
		{netip.MustParseAddr("fd99::1"), 600 * time.Second},
		{netip.MustParseAddr("fe80::53%3"), 600 * time.Second}, // link-local: zoned by index
	}
	if !slices.Equal(o.Servers, wantServers) {
		t.Errorf("servers %v, want %v (multicast and mapped addresses dropped)", o.Servers, wantServers)
	}
	wantDomains := []RADomain{{"lan6.test", InfiniteLifetime}, {"corp.example", InfiniteLifetime}}
	if !slices.Equal(o.Domains, wantDomains) {
		t.Errorf("domains %v, want %v", o.Domains, wantDomains)
	}

	bad := map[string][]byte{
		"option of length 0":      ndUserOptMsg(3, router, []byte{ndOptRDNSS, 0, 0, 0, 0, 0, 0, 0}),
		"rdnss without addresses": ndUserOptMsg(3, router, []byte{ndOptRDNSS, 1, 0, 0, 0, 0, 0, 0}),
		"option past the end":     ndUserOptMsg(3, router, []byte{ndOptRDNSS, 3, 0, 0, 0, 0, 0, 0}),
		"bad label in dnssl":      ndUserOptMsg(3, router, []byte{ndOptDNSSL, 2, 0, 0, 0, 0, 0, 1, 3, 'a', ' ', 'b', 0, 0, 0, 0}),
		"truncated netlink":       msg[:10],
	}
	for name, b := range bad {
		if _, err := ParseNDUserOpts(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Not a router advertisement: skipped, no error.
	other := ndUserOptMsg(3, router, rdnssOpt(600, "fd99::1"))
	other[unix.NLMSG_HDRLEN+8] = 137 // redirect
	if got, err := ParseNDUserOpts(other); err != nil || len(got) != 0 {
		t.Errorf("redirect: %v, %v", got, err)
	}
}

// TestRADNSLifetimes: entries end with their lifetime, lifetime 0
// withdraws one, a refresh only moves the end, and the table is bounded.
func TestRADNSLifetimes(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := netip.MustParseAddr("fd99::1"), netip.MustParseAddr("fd99::2")
	var s raDNS
	if !s.update(NDUserOpt{Servers: []RAServer{{a, 60 * time.Second}, {b, InfiniteLifetime}}, Domains: []RADomain{{"lan6.test", 30 * time.Second}}}, t0) {
		t.Fatal("first update reports no change")
	}
	if n := s.next(); !n.Equal(t0.Add(30 * time.Second)) {
		t.Errorf("next expiry %v", n)
	}
	if s.update(NDUserOpt{Servers: []RAServer{{a, 60 * time.Second}}}, t0.Add(20*time.Second)) {
		t.Error("a refresh reported a change")
	}
	if !s.expire(t0.Add(30 * time.Second)) {
		t.Error("domain did not end")
	}
	if s.expire(t0.Add(79 * time.Second)) {
		t.Error("refreshed server ended early")
	}
	if !s.expire(t0.Add(80*time.Second)) || !slices.Equal(s.snapshot().Addrs(), []netip.Addr{b}) {
		t.Errorf("after 80s: %+v", s.snapshot())
	}
	if !s.update(NDUserOpt{Servers: []RAServer{{b, 0}}}, t0.Add(90*time.Second)) || len(s.snapshot().Servers) != 0 {
		t.Errorf("lifetime 0 did not withdraw: %+v", s.snapshot())
	}
	for i := range MaxDNSServers + 4 {
		s.update(NDUserOpt{Servers: []RAServer{{netip.AddrFrom16([16]byte{0xfd, 15: byte(i + 1)}), time.Duration(i+1) * time.Minute}}}, t0)
	}
	snap := s.snapshot()
	if len(snap.Servers) != MaxDNSServers {
		t.Fatalf("%d servers kept", len(snap.Servers))
	}
	// The longest-lived ones were kept (RFC 8106 5.3.1).
	if first := snap.Servers[0].Value; first != netip.AddrFrom16([16]byte{0xfd, 15: 5}) {
		t.Errorf("first kept server %s", first)
	}
}

func FuzzParseNDUserOpts(f *testing.F) {
	router := netip.MustParseAddr("fe80::1")
	f.Add(ndUserOptMsg(3, router, rdnssOpt(600, "fd99::1", "fe80::53"), dnsslOpt(600, "lan6.test")))
	f.Add(ndUserOptMsg(3, netip.Addr{}, dnsslOpt(0, "a.b", "c")))
	f.Add(ndUserOptMsg(1, router, []byte{ndOptRDNSS, 0, 0, 0}))
	f.Add(ndUserOptMsg(1, router, []byte{ndOptDNSSL, 2, 0, 0, 0, 0, 0, 1, 0xc0, 0, 0, 0, 0, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseNDUserOpts(b)
		if err != nil {
			return
		}
		for _, o := range got {
			if o.IfIndex <= 0 || len(o.Servers) > MaxDNSServers || len(o.Domains) > MaxSearchDomains {
				t.Fatalf("parsed %+v", o)
			}
			for _, s := range o.Servers {
				if !usableUnicast6(s.Addr) || s.Lifetime < 0 || s.Lifetime > InfiniteLifetime {
					t.Fatalf("server %+v", s)
				}
			}
			for _, d := range o.Domains {
				if cleanName(d.Name) != d.Name {
					t.Fatalf("domain %q", d.Name)
				}
			}
		}
	})
}
