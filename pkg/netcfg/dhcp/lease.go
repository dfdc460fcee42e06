package dhcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Bounds on what a server may hand out. Anything beyond them is cut (lists)
// or refused (values out of range); a DHCP packet is input from anyone on
// the link.
const (
	MaxDNSServers    = 8   // option 6 addresses kept
	MaxSearchDomains = 16  // option 119 (and 15) names kept
	MaxRoutes        = 64  // option 121 routes kept
	MaxNameLen       = 253 // one domain name, in presentation form
	MinLeaseTime     = 10 * time.Second
	MaxPacketSize    = 1500 // largest DHCP message read (the link MTU)
	// InfiniteLease is the lease time 0xffffffff (RFC 2131): never expires.
	InfiniteLease = time.Duration(1<<32-1) * time.Second
)

// Route is one route handed out in option 121 (or the default route from
// option 3).
type Route struct {
	To  netip.Prefix `json:"to"`
	Via netip.Addr   `json:"via,omitzero"` // zero: on-link
}

// Lease is what a DHCPACK granted, parsed and checked by hostd.
type Lease struct {
	Address   netip.Prefix  `json:"address"` // the address with the subnet's length
	Server    netip.Addr    `json:"server"`  // server identifier (option 54)
	Gateway   netip.Addr    `json:"gateway,omitzero"`
	Routes    []Route       `json:"routes,omitempty"` // option 121, or the default route via Gateway
	DNS       []netip.Addr  `json:"dns,omitempty"`
	Domains   []string      `json:"domains,omitempty"` // search list (119), else the domain name (15)
	MTU       int           `json:"mtu,omitempty"`
	Hostname  string        `json:"hostname,omitempty"` // option 12 in the answer, informational
	LeaseTime time.Duration `json:"lease_time"`
	T1        time.Duration `json:"t1"`
	T2        time.Duration `json:"t2"`
	// Acquired is when the request that this ACK answers was sent; the
	// lease times count from it (RFC 2131 4.4.1).
	Acquired time.Time `json:"acquired"`
}

// Expires is when the lease ends; the zero Time for an infinite lease.
func (l *Lease) Expires() time.Time {
	if l.LeaseTime >= InfiniteLease {
		return time.Time{}
	}
	return l.Acquired.Add(l.LeaseTime)
}

// RenewAt is T1 counted from Acquired.
func (l *Lease) RenewAt() time.Time { return l.Acquired.Add(l.T1) }

// RebindAt is T2 counted from Acquired.
func (l *Lease) RebindAt() time.Time { return l.Acquired.Add(l.T2) }

// Expired reports whether the lease has ended at now.
func (l *Lease) Expired(now time.Time) bool {
	e := l.Expires()
	return !e.IsZero() && !now.Before(e)
}

// ParseLease checks an ACK and extracts the lease from it. acquired is
// when the request was sent.
func ParseLease(ack *dhcpv4.DHCPv4, acquired time.Time) (*Lease, error) {
	if ack == nil {
		return nil, errors.New("no ack")
	}
	if ack.OpCode != dhcpv4.OpcodeBootReply {
		return nil, errors.New("not a reply")
	}
	if t := ack.MessageType(); t != dhcpv4.MessageTypeAck {
		return nil, fmt.Errorf("message type %s, want ACK", t)
	}
	ip, ok := addr4(ack.YourIPAddr)
	if !ok || !usableUnicast(ip) {
		return nil, fmt.Errorf("offered address %v is not a usable unicast address", ack.YourIPAddr)
	}
	bits := 32
	if m := ack.Options.Get(dhcpv4.OptionSubnetMask); m != nil {
		if len(m) != 4 {
			return nil, fmt.Errorf("subnet mask of %d bytes", len(m))
		}
		ones, total := net.IPMask(m).Size()
		if total != 32 || ones == 0 {
			return nil, fmt.Errorf("subnet mask %v is not contiguous", net.IP(m))
		}
		bits = ones
	}
	l := &Lease{Address: netip.PrefixFrom(ip, bits), Acquired: acquired}
	sid, ok := addr4(ack.Options.Get(dhcpv4.OptionServerIdentifier))
	if !ok || !usableUnicast(sid) {
		return nil, errors.New("no usable server identifier (option 54)")
	}
	l.Server = sid

	lt, ok := seconds(ack.Options.Get(dhcpv4.OptionIPAddressLeaseTime))
	if !ok {
		return nil, errors.New("no lease time (option 51)")
	}
	l.LeaseTime = max(lt, MinLeaseTime)
	// Divided first: a lease time near 2^32 s times 7 overflows a
	// Duration (found by FuzzParseLease).
	l.T1, l.T2 = l.LeaseTime/2, l.LeaseTime/8*7
	if t1, ok := seconds(ack.Options.Get(dhcpv4.OptionRenewTimeValue)); ok {
		l.T1 = t1
	}
	if t2, ok := seconds(ack.Options.Get(dhcpv4.OptionRebindingTimeValue)); ok {
		l.T2 = t2
	}
	if l.T2 <= 0 || l.T2 >= l.LeaseTime {
		l.T2 = l.LeaseTime / 8 * 7
	}
	if l.T1 <= 0 || l.T1 >= l.T2 {
		l.T1 = min(l.LeaseTime/2, l.T2/7*4)
	}

	if gw := ack.Options.Get(dhcpv4.OptionRouter); len(gw) >= 4 {
		if a, ok := addr4(gw[:4]); ok && usableUnicast(a) {
			l.Gateway = a
		}
	}
	if raw := ack.Options.Get(dhcpv4.OptionClasslessStaticRoute); raw != nil {
		routes, err := ParseClasslessRoutes(raw)
		if err != nil {
			return nil, fmt.Errorf("option 121: %w", err)
		}
		// RFC 3442: with option 121 the router option is ignored.
		l.Routes = routes
		l.Gateway = netip.Addr{}
		for _, r := range routes {
			if r.To.Bits() == 0 {
				l.Gateway = r.Via
			}
		}
	} else if l.Gateway.IsValid() {
		l.Routes = []Route{{To: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Via: l.Gateway}}
	}
	for b := ack.Options.Get(dhcpv4.OptionDomainNameServer); len(b) >= 4 && len(l.DNS) < MaxDNSServers; b = b[4:] {
		if a, ok := addr4(b[:4]); ok && usableUnicast(a) {
			l.DNS = append(l.DNS, a)
		}
	}
	if raw := ack.Options.Get(dhcpv4.OptionDNSDomainSearchList); raw != nil {
		names, err := ParseSearchList(raw)
		if err != nil {
			return nil, fmt.Errorf("option 119: %w", err)
		}
		l.Domains = names
	}
	if len(l.Domains) == 0 {
		if d := cleanName(string(ack.Options.Get(dhcpv4.OptionDomainName))); d != "" {
			l.Domains = []string{d}
		}
	}
	if b := ack.Options.Get(dhcpv4.OptionInterfaceMTU); len(b) == 2 {
		if m := int(binary.BigEndian.Uint16(b)); m >= 576 {
			l.MTU = m // RFC 2132 9.1: the minimum legal value is 68; below 576 is not worth using
		}
	}
	if h := ack.Options.Get(dhcpv4.OptionHostName); len(h) > 0 && len(h) <= 63 {
		l.Hostname = cleanName(string(h))
	}
	return l, nil
}

// ParseClasslessRoutes decodes option 121 (RFC 3442): each route is a
// prefix length (0..32), the significant octets of the destination, and a
// 4-byte router (0.0.0.0: on-link). Any malformed route makes the whole
// option invalid, as the RFC asks. At most MaxRoutes are accepted.
func ParseClasslessRoutes(b []byte) ([]Route, error) {
	var out []Route
	for len(b) > 0 {
		if len(out) == MaxRoutes {
			return nil, fmt.Errorf("more than %d routes", MaxRoutes)
		}
		width := int(b[0])
		if width > 32 {
			return nil, fmt.Errorf("prefix length %d", width)
		}
		sig := (width + 7) / 8
		if len(b) < 1+sig+4 {
			return nil, errors.New("truncated route")
		}
		var dst [4]byte
		copy(dst[:], b[1:1+sig])
		p := netip.PrefixFrom(netip.AddrFrom4(dst), width)
		if p.Masked() != p {
			return nil, fmt.Errorf("destination %s has host bits set", p)
		}
		gw := netip.AddrFrom4([4]byte(b[1+sig : 1+sig+4]))
		r := Route{To: p}
		if !gw.IsUnspecified() {
			if !usableUnicast(gw) {
				return nil, fmt.Errorf("router %s is not a unicast address", gw)
			}
			r.Via = gw
		}
		out = append(out, r)
		b = b[1+sig+4:]
	}
	return out, nil
}

// ParseSearchList decodes option 119 (RFC 3397): domain names in DNS wire
// form, with compression pointers that may only point backwards into the
// option. At most MaxSearchDomains names are kept; names longer than
// MaxNameLen, pointer loops and labels past the end are errors.
func ParseSearchList(b []byte) ([]string, error) {
	var out []string
	off := 0
	for off < len(b) {
		name, next, err := readName(b, off)
		if err != nil {
			return nil, err
		}
		off = next
		if name == "" {
			continue // the root: nothing to search
		}
		if len(out) < MaxSearchDomains {
			out = append(out, name)
		}
	}
	return out, nil
}

// readName reads one name at off and returns it (lower case, without the
// trailing dot) and the offset after it.
func readName(b []byte, off int) (string, int, error) {
	var labels []string
	n := 0
	next := -1 // offset after the name, set at the first pointer
	jumps := 0
	for {
		if off >= len(b) {
			return "", 0, errors.New("name runs past the end")
		}
		c := int(b[off])
		switch {
		case c == 0:
			if next < 0 {
				next = off + 1
			}
			return strings.Join(labels, "."), next, nil
		case c&0xc0 == 0xc0:
			if off+1 >= len(b) {
				return "", 0, errors.New("truncated pointer")
			}
			ptr := (c&0x3f)<<8 | int(b[off+1])
			if ptr >= off {
				return "", 0, errors.New("pointer does not point backwards")
			}
			if jumps++; jumps > 64 {
				return "", 0, errors.New("too many pointers")
			}
			if next < 0 {
				next = off + 2
			}
			off = ptr
		case c&0xc0 != 0:
			return "", 0, fmt.Errorf("bad label type %#x", c)
		default:
			if off+1+c > len(b) {
				return "", 0, errors.New("label runs past the end")
			}
			l := string(b[off+1 : off+1+c])
			if !validLabel(l) {
				return "", 0, fmt.Errorf("label %q is not a host name label", l)
			}
			n += c + 1
			if n > MaxNameLen+1 {
				return "", 0, errors.New("name too long")
			}
			labels = append(labels, strings.ToLower(l))
			off += 1 + c
		}
	}
}

// cleanName returns s as a lower-case domain name, or "" when it is not a
// plain host name (letters, digits, hyphen, underscore, dots).
func cleanName(s string) string {
	s = strings.TrimSuffix(strings.TrimRight(s, "\x00"), ".")
	if s == "" || len(s) > MaxNameLen {
		return ""
	}
	for l := range strings.SplitSeq(s, ".") {
		if !validLabel(l) {
			return ""
		}
	}
	return strings.ToLower(s)
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func addr4(b []byte) (netip.Addr, bool) {
	if len(b) == 16 {
		b = net.IP(b).To4()
	}
	if len(b) != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(b)), true
}

func usableUnicast(a netip.Addr) bool {
	return a.Is4() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// seconds reads a 4-byte time option.
func seconds(b []byte) (time.Duration, bool) {
	if len(b) != 4 {
		return 0, false
	}
	return time.Duration(binary.BigEndian.Uint32(b)) * time.Second, true
}
