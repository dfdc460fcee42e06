package netwatch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
)

// LinkSpec is the declared state of one named link. Only what is set is
// enforced: addresses and routes not listed are left alone (DHCP clients
// and others may add their own).
type LinkSpec struct {
	// Name is the interface name, e.g. "eth0". Required.
	Name string `yaml:"name" json:"name"`
	// State is "up", "down" or "" (default: leave as it is).
	State string `yaml:"state" json:"state,omitempty"`
	// MTU to set; 0 (default) leaves it as it is.
	MTU int `yaml:"mtu" json:"mtu,omitempty"`
	// Addresses in CIDR form ("192.0.2.10/24", "2001:db8::10/64") that must
	// be on the link. Default: none.
	Addresses []string `yaml:"addresses" json:"addresses,omitempty"`
	// Routes that must go through the link. Default: none.
	Routes []RouteSpec `yaml:"routes" json:"routes,omitempty"`
	// DHCP is "v4" to get an address by DHCPv4, "v6" to take addresses
	// and default routes from router advertisements (SLAAC), "both" for
	// the two, or "" (default) for none. netcfg's dhcp package runs them;
	// the watcher ignores it.
	DHCP string `yaml:"dhcp" json:"dhcp,omitempty"`
}

// RouteSpec is one declared route.
type RouteSpec struct {
	// To is a CIDR or "default". Required.
	To string `yaml:"to" json:"to"`
	// Via is the gateway address; empty (default) for an on-link route.
	Via string `yaml:"via" json:"via,omitempty"`
	// Metric is the route priority; 0 by default.
	Metric int `yaml:"metric" json:"metric,omitempty"`
}

// Check returns the problems of a spec, each with the field it is about
// (relative to the spec, e.g. "addresses[1]").
func (s LinkSpec) Check() []FieldProblem {
	var ps []FieldProblem
	add := func(field, format string, args ...any) {
		ps = append(ps, FieldProblem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if s.Name == "" {
		add("name", "link name is required")
	} else if len(s.Name) > 15 || strings.ContainsAny(s.Name, "/ \t") {
		add("name", "%q is not a valid interface name", s.Name)
	}
	switch s.State {
	case "", "up", "down":
	default:
		add("state", "state %q: want up, down or empty", s.State)
	}
	switch s.DHCP {
	case "", "v4", "v6", "both":
	default:
		add("dhcp", "dhcp %q: want v4, v6, both or empty", s.DHCP)
	}
	if s.DHCP != "" && s.State == "down" {
		add("state", "a link with dhcp cannot be declared down")
	}
	if s.MTU < 0 || s.MTU > 65535 || (s.MTU > 0 && s.MTU < 68) {
		add("mtu", "mtu %d out of range 68..65535", s.MTU)
	}
	for i, a := range s.Addresses {
		if _, err := netip.ParsePrefix(a); err != nil {
			add(fmt.Sprintf("addresses[%d]", i), "address %q: want CIDR like 192.0.2.10/24", a)
		}
	}
	for i, r := range s.Routes {
		if _, err := r.parse(); err != nil {
			add(fmt.Sprintf("routes[%d]", i), "%v", err)
		}
	}
	return ps
}

// FieldProblem is one problem of a spec.
type FieldProblem struct {
	Field string
	Msg   string
}

// parse turns the spec into a netlink route without a link.
func (r RouteSpec) parse() (netlink.Route, error) {
	var out netlink.Route
	var family int
	if r.To != "default" {
		p, err := netip.ParsePrefix(r.To)
		if err != nil {
			return out, fmt.Errorf("route to %q: want a CIDR or \"default\"", r.To)
		}
		p = p.Masked()
		out.Dst = &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
		family = famOf(p.Addr())
	}
	if r.Via != "" {
		gw, err := netip.ParseAddr(r.Via)
		if err != nil {
			return out, fmt.Errorf("route via %q: not an IP address", r.Via)
		}
		if family != 0 && famOf(gw) != family {
			return out, fmt.Errorf("route to %s via %s mixes IPv4 and IPv6", r.To, r.Via)
		}
		family = famOf(gw)
		out.Gw = gw.AsSlice()
	}
	if r.To == "default" && r.Via == "" {
		return out, errors.New("a default route needs a gateway (via)")
	}
	if r.Metric < 0 {
		return out, fmt.Errorf("route metric %d is negative", r.Metric)
	}
	out.Family = family
	out.Priority = r.Metric
	return out, nil
}

func famOf(a netip.Addr) int {
	if a.Is4() || a.Is4In6() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

// reconciler applies LinkSpecs through a netlink handle.
type reconciler struct {
	h *netlink.Handle
}

// apply makes the link match s and returns what it did and what it could
// not do.
func (rc reconciler) apply(s LinkSpec) (done []string, problems []error) {
	link, err := rc.h.LinkByName(s.Name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil, []error{fmt.Errorf("link %s: not found (configured when it appears)", s.Name)}
	}
	if err != nil {
		return nil, []error{fmt.Errorf("link %s: %w", s.Name, err)}
	}
	a := link.Attrs()
	if s.MTU > 0 && a.MTU != s.MTU {
		if err := rc.h.LinkSetMTU(link, s.MTU); err != nil {
			problems = append(problems, fmt.Errorf("set mtu of %s to %d: %w", s.Name, s.MTU, err))
		} else {
			done = append(done, fmt.Sprintf("set mtu of %s to %d", s.Name, s.MTU))
		}
	}
	isUp := a.Flags&net.FlagUp != 0
	switch {
	case s.State == "up" && !isUp:
		if err := rc.h.LinkSetUp(link); err != nil {
			problems = append(problems, fmt.Errorf("set %s up: %w", s.Name, err))
		} else {
			done = append(done, "set "+s.Name+" up")
		}
	case s.State == "down" && isUp:
		if err := rc.h.LinkSetDown(link); err != nil {
			problems = append(problems, fmt.Errorf("set %s down: %w", s.Name, err))
		} else {
			done = append(done, "set "+s.Name+" down")
		}
	}
	if len(s.Addresses) > 0 {
		have, err := rc.h.AddrList(link, netlink.FAMILY_ALL)
		if err != nil {
			problems = append(problems, fmt.Errorf("list addresses of %s: %w", s.Name, err))
		}
		for _, want := range s.Addresses {
			p, err := netip.ParsePrefix(want)
			if err != nil {
				continue // reported by Check
			}
			if slices.ContainsFunc(have, func(h netlink.Addr) bool { return h.IPNet.String() == p.String() }) {
				continue
			}
			addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
			if err := rc.h.AddrAdd(link, addr); err != nil {
				problems = append(problems, fmt.Errorf("add address %s to %s: %w", want, s.Name, err))
			} else {
				done = append(done, fmt.Sprintf("add address %s to %s", want, s.Name))
			}
		}
	}
	for _, rs := range s.Routes {
		want, err := rs.parse()
		if err != nil {
			continue // reported by Check
		}
		want.LinkIndex = a.Index
		have, err := rc.h.RouteList(link, want.Family)
		if err != nil {
			problems = append(problems, fmt.Errorf("list routes of %s: %w", s.Name, err))
			continue
		}
		if slices.ContainsFunc(have, func(h netlink.Route) bool { return sameRoute(h, want) }) {
			continue
		}
		if err := rc.h.RouteReplace(&want); err != nil {
			problems = append(problems, fmt.Errorf("add route to %s via %s on %s: %w", rs.To, orOnLink(rs.Via), s.Name, err))
		} else {
			done = append(done, fmt.Sprintf("add route to %s via %s on %s", rs.To, orOnLink(rs.Via), s.Name))
		}
	}
	return done, problems
}

func orOnLink(via string) string {
	if via == "" {
		return "link"
	}
	return via
}

func sameRoute(h, w netlink.Route) bool {
	if isDefault(h) != (w.Dst == nil) {
		return false
	}
	if w.Dst != nil && (h.Dst == nil || h.Dst.String() != w.Dst.String()) {
		return false
	}
	return h.Gw.Equal(w.Gw) && h.Priority == w.Priority
}
