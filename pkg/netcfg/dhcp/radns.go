package dhcp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/internal/service"
)

// DNS from router advertisements (RFC 8106): the kernel handles the
// advertisements (accept_ra) but passes the options it does not use
// itself, RDNSS (25) and DNSSL (31) among them, to user space as
// RTM_NEWNDUSEROPT messages on the netlink group RTNLGRP_ND_USEROPT.
// vishvananda/netlink has no subscription for them, so hostd reads them
// from a raw netlink socket and parses them itself (ParseNDUserOpts,
// bounded, fuzzed by FuzzParseNDUserOpts).

// ND option types carrying DNS configuration (RFC 8106).
const (
	ndOptRDNSS = 25
	ndOptDNSSL = 31
	// ndUserOptHdrLen is struct nduseroptmsg (linux/rtnetlink.h): family,
	// pad, opts_len (u16), ifindex (s32), icmp_type, icmp_code, pad (u16),
	// pad (u32).
	ndUserOptHdrLen = 16
	// ndUserOptSrcAddr is NDUSEROPT_SRCADDR, the advertising router.
	ndUserOptSrcAddr   = 1
	icmpv6RouterAdvert = 134
	// MaxNetlinkMessage is the largest netlink datagram read.
	MaxNetlinkMessage = 64 << 10
)

// InfiniteLifetime is the RDNSS/DNSSL lifetime 0xffffffff: it never ends.
const InfiniteLifetime = time.Duration(1<<32-1) * time.Second

// RAServer is one recursive DNS server of an advertisement (RDNSS).
type RAServer struct {
	// Addr is the server's address; a link-local one carries the link's
	// index as its zone ("fe80::1%2").
	Addr     netip.Addr
	Lifetime time.Duration // 0: withdrawn; InfiniteLifetime: never ends
}

// RADomain is one search domain of an advertisement (DNSSL).
type RADomain struct {
	Name     string // lower case, without the trailing dot
	Lifetime time.Duration
}

// NDUserOpt is what one RTM_NEWNDUSEROPT message says about DNS.
type NDUserOpt struct {
	IfIndex int
	Router  netip.Addr // the advertising router, when the kernel names it
	Servers []RAServer
	Domains []RADomain
}

// ParseNDUserOpts parses a netlink datagram of RTM_NEWNDUSEROPT messages
// and returns the DNS options of each router advertisement in it. Other
// message types and other ND options are skipped; a malformed message is
// an error (RFC 4861 4.6: an option of length 0 spoils the whole
// advertisement). At most MaxDNSServers servers and MaxSearchDomains
// domains are kept per message.
func ParseNDUserOpts(b []byte) ([]NDUserOpt, error) {
	var out []NDUserOpt
	for len(b) > 0 {
		if len(b) < unix.NLMSG_HDRLEN {
			return nil, errors.New("netlink: truncated header")
		}
		n := int(binary.NativeEndian.Uint32(b[0:4]))
		typ := binary.NativeEndian.Uint16(b[4:6])
		if n < unix.NLMSG_HDRLEN || n > len(b) {
			return nil, fmt.Errorf("netlink: message length %d of %d bytes", n, len(b))
		}
		if typ == unix.RTM_NEWNDUSEROPT {
			o, ok, err := parseNDUserOpt(b[unix.NLMSG_HDRLEN:n])
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, o)
			}
		}
		b = b[min(nlmAlign(n), len(b)):]
	}
	return out, nil
}

func nlmAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// parseNDUserOpt parses one nduseroptmsg; ok is false for one that is not
// from an IPv6 router advertisement.
func parseNDUserOpt(b []byte) (o NDUserOpt, ok bool, err error) {
	if len(b) < ndUserOptHdrLen {
		return o, false, errors.New("nd user option: truncated header")
	}
	family, optsLen := b[0], int(binary.NativeEndian.Uint16(b[2:4]))
	o.IfIndex = int(int32(binary.NativeEndian.Uint32(b[4:8])))
	icmpType := b[8]
	if ndUserOptHdrLen+optsLen > len(b) {
		return o, false, fmt.Errorf("nd user option: %d bytes of options in %d", optsLen, len(b)-ndUserOptHdrLen)
	}
	if family != unix.AF_INET6 || icmpType != icmpv6RouterAdvert || o.IfIndex <= 0 {
		return o, false, nil
	}
	opts := b[ndUserOptHdrLen : ndUserOptHdrLen+optsLen]
	for len(opts) > 0 {
		if len(opts) < 2 {
			return o, false, errors.New("nd option: truncated")
		}
		typ, l := opts[0], int(opts[1])*8
		if l == 0 || l > len(opts) {
			return o, false, fmt.Errorf("nd option %d: length %d of %d bytes", typ, l, len(opts))
		}
		body := opts[:l]
		opts = opts[l:]
		switch typ {
		case ndOptRDNSS:
			// type, length, reserved (2), lifetime (4), addresses.
			if l < 24 || (l-8)%16 != 0 {
				return o, false, fmt.Errorf("rdnss option: length %d", l)
			}
			life := raLifetime(body[4:8])
			for p := body[8:]; len(p) >= 16; p = p[16:] {
				a := netip.AddrFrom16([16]byte(p[:16]))
				if !usableUnicast6(a) || len(o.Servers) >= MaxDNSServers {
					continue
				}
				if a.IsLinkLocalUnicast() {
					a = a.WithZone(strconv.Itoa(o.IfIndex))
				}
				o.Servers = append(o.Servers, RAServer{Addr: a, Lifetime: life})
			}
		case ndOptDNSSL:
			if l < 16 {
				return o, false, fmt.Errorf("dnssl option: length %d", l)
			}
			life := raLifetime(body[4:8])
			names, err := ParseSearchList(body[8:])
			if err != nil {
				return o, false, fmt.Errorf("dnssl option: %w", err)
			}
			for _, n := range names {
				if len(o.Domains) < MaxSearchDomains {
					o.Domains = append(o.Domains, RADomain{Name: n, Lifetime: life})
				}
			}
		}
	}
	// Attributes follow the options, aligned to 4 bytes.
	attrs := b[min(len(b), ndUserOptHdrLen+nlmAlign(optsLen)):]
	for len(attrs) >= 4 {
		al, at := int(binary.NativeEndian.Uint16(attrs[0:2])), binary.NativeEndian.Uint16(attrs[2:4])
		if al < 4 || al > len(attrs) {
			break // the router's address is informational: not an error
		}
		if at == ndUserOptSrcAddr && al == 4+16 {
			o.Router = netip.AddrFrom16([16]byte(attrs[4:20]))
		}
		attrs = attrs[min(nlmAlign(al), len(attrs)):]
	}
	return o, true, nil
}

func raLifetime(b []byte) time.Duration {
	return time.Duration(binary.BigEndian.Uint32(b)) * time.Second
}

// usableUnicast6 reports whether a can be a DNS server on the link: an
// IPv6 unicast address, not a mapped IPv4 one.
func usableUnicast6(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast()
}

// raDNS is the DNS a link learned from advertisements, each entry with
// the time it ends (zero: never). It is bounded as a lease is: at most
// MaxDNSServers servers and MaxSearchDomains domains; when full, a new
// entry replaces the one that ends first (RFC 8106 5.3.1), if it outlives
// it.
type raDNS struct {
	servers map[netip.Addr]time.Time
	domains map[string]time.Time
}

func expiry(now time.Time, life time.Duration) time.Time {
	if life >= InfiniteLifetime {
		return time.Time{}
	}
	return now.Add(life)
}

// later reports whether a ends after b (zero ends never).
func later(a, b time.Time) bool {
	return !b.IsZero() && (a.IsZero() || a.After(b))
}

func put[K comparable](m map[K]time.Time, k K, end time.Time, withdraw bool, limit int) bool {
	_, had := m[k]
	switch {
	case withdraw:
		delete(m, k)
		return had
	case had:
		m[k] = end
		return false // the same entry, only its lifetime moved
	case len(m) < limit:
		m[k] = end
		return true
	}
	var first K
	var firstEnd time.Time
	found := false
	for x, e := range m {
		if !found || later(firstEnd, e) {
			first, firstEnd, found = x, e, true
		}
	}
	if !later(end, firstEnd) {
		return false
	}
	delete(m, first)
	m[k] = end
	return true
}

// update takes in one advertisement's options at now and reports whether
// the servers or domains changed (not only their lifetimes).
func (s *raDNS) update(o NDUserOpt, now time.Time) bool {
	if s.servers == nil {
		s.servers, s.domains = map[netip.Addr]time.Time{}, map[string]time.Time{}
	}
	changed := false
	for _, v := range o.Servers {
		changed = put(s.servers, v.Addr, expiry(now, v.Lifetime), v.Lifetime == 0, MaxDNSServers) || changed
	}
	for _, v := range o.Domains {
		changed = put(s.domains, v.Name, expiry(now, v.Lifetime), v.Lifetime == 0, MaxSearchDomains) || changed
	}
	return changed
}

// expire drops what ended by now and reports whether anything went.
func (s *raDNS) expire(now time.Time) bool {
	changed := false
	for k, e := range s.servers {
		if !e.IsZero() && !now.Before(e) {
			delete(s.servers, k)
			changed = true
		}
	}
	for k, e := range s.domains {
		if !e.IsZero() && !now.Before(e) {
			delete(s.domains, k)
			changed = true
		}
	}
	return changed
}

// next is when the next entry ends; zero when none does.
func (s *raDNS) next() time.Time {
	var n time.Time
	consider := func(e time.Time) {
		if !e.IsZero() && (n.IsZero() || e.Before(n)) {
			n = e
		}
	}
	for _, e := range s.servers {
		consider(e)
	}
	for _, e := range s.domains {
		consider(e)
	}
	return n
}

// RADNS is the DNS configuration a link holds from router advertisements.
type RADNS struct {
	Servers []RAEntry[netip.Addr] `json:"servers,omitempty"`
	Domains []RAEntry[string]     `json:"domains,omitempty"`
}

// RAEntry is one server or domain with the time it ends (zero: never).
type RAEntry[T any] struct {
	Value   T         `json:"value"`
	Expires time.Time `json:"expires,omitzero"`
}

// snapshot is s in a stable order (by address, by name).
func (s *raDNS) snapshot() RADNS {
	var r RADNS
	for _, a := range slices.SortedFunc(mapKeys(s.servers), netip.Addr.Compare) {
		r.Servers = append(r.Servers, RAEntry[netip.Addr]{a, s.servers[a]})
	}
	for _, d := range slices.Sorted(mapKeys(s.domains)) {
		r.Domains = append(r.Domains, RAEntry[string]{d, s.domains[d]})
	}
	return r
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Addrs returns the servers' addresses.
func (r RADNS) Addrs() []netip.Addr {
	out := make([]netip.Addr, 0, len(r.Servers))
	for _, s := range r.Servers {
		out = append(out, s.Value)
	}
	return out
}

// Names returns the domains.
func (r RADNS) Names() []string {
	out := make([]string, 0, len(r.Domains))
	for _, d := range r.Domains {
		out = append(out, d.Value)
	}
	return out
}

// openNDUserOpt opens a netlink socket in ns subscribed to
// RTNLGRP_ND_USEROPT. Closing the file ends a blocked Read.
func openNDUserOpt(ns *netns.NsHandle) (*os.File, error) {
	var f *os.File
	err := InNetNS(ns, func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("netlink socket: %w", err)
		}
		sa := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (unix.RTNLGRP_ND_USEROPT - 1)}
		if err := unix.Bind(fd, sa); err != nil {
			unix.Close(fd)
			return fmt.Errorf("subscribe to nd user options: %w", err)
		}
		// A non-blocking descriptor goes to the runtime's poller, so
		// Close unblocks a Read.
		f = os.NewFile(uintptr(fd), "netlink-nduseropt")
		return nil
	})
	return f, err
}

// watchRADNS follows the DNS options of the advertisements received on
// link in ns until ctx ends, keeps them in st with their lifetimes (on
// clock), and calls onChange with the whole set each time servers or
// domains come or go. subscribed is called once the socket listens. It returns when ctx ends (nil) or the socket fails.
func watchRADNS(ctx context.Context, ns *netns.NsHandle, link string, st *raDNS, clock service.Clock, onChange func(RADNS), subscribed func()) error {
	nsh := netns.None()
	if ns != nil {
		nsh = *ns
	}
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return fmt.Errorf("netlink for %s: %w", link, err)
	}
	defer h.Close()
	f, err := openNDUserOpt(ns)
	if err != nil {
		return fmt.Errorf("router advertisement dns on %s: %w", link, err)
	}
	msgs := make(chan []NDUserOpt)
	readErr := make(chan error, 1)
	rctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		f.Close()
		<-readErr // the reader has ended
	}()
	go func() {
		buf := make([]byte, MaxNetlinkMessage)
		for {
			n, err := f.Read(buf)
			if err != nil {
				if errors.Is(err, unix.ENOBUFS) {
					continue // messages were lost; the next advertisement repeats them
				}
				readErr <- err
				return
			}
			opts, perr := ParseNDUserOpts(buf[:n])
			if perr != nil || len(opts) == 0 {
				continue // not usable: the next advertisement counts
			}
			select {
			case msgs <- opts:
			case <-rctx.Done():
				readErr <- nil
				return
			}
		}
	}()
	index := func() int {
		l, err := h.LinkByName(link)
		if err != nil {
			return 0
		}
		return l.Attrs().Index
	}
	subscribed()
	ifindex := index()
	for {
		var expire <-chan time.Time
		var timer service.Timer
		if n := st.next(); !n.IsZero() {
			timer = clock.NewTimer(n.Sub(clock.Now()))
			expire = timer.C()
		}
		stop := func() {
			if timer != nil {
				timer.Stop()
			}
		}
		select {
		case <-ctx.Done():
			stop()
			return nil
		case err := <-readErr:
			stop()
			readErr <- err // for the deferred wait
			return fmt.Errorf("router advertisement dns on %s: read: %w", link, err)
		case <-expire:
			if st.expire(clock.Now()) {
				onChange(st.snapshot())
			}
		case opts := <-msgs:
			stop()
			changed := false
			now := clock.Now()
			for _, o := range opts {
				if o.IfIndex != ifindex {
					if ifindex = index(); o.IfIndex != ifindex {
						continue // another link's, or the link was replaced
					}
				}
				changed = st.update(o, now) || changed
			}
			if st.expire(now) || changed {
				onChange(st.snapshot())
			}
		}
	}
}
