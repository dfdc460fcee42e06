package netwatch

import (
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Link is one network interface as netlink reports it.
type Link struct {
	Name      string   `json:"name"`
	Index     int      `json:"index"`
	Type      string   `json:"type"`
	State     string   `json:"state"`    // operational state: up, down, dormant, lowerlayerdown, unknown...
	AdminUp   bool     `json:"admin_up"` // IFF_UP
	Carrier   bool     `json:"carrier"`  // IFF_LOWER_UP
	MTU       int      `json:"mtu"`
	MAC       string   `json:"mac,omitempty"`
	Addresses []string `json:"addresses,omitempty"` // CIDR, IPv4 first
}

// Usable reports whether traffic can leave through the link.
func (l Link) Usable() bool {
	return l.AdminUp && l.Carrier && l.State != "down" && l.State != "lowerlayerdown"
}

// Route is a default route.
type Route struct {
	Family  string `json:"family"` // ipv4 or ipv6
	Gateway string `json:"gateway,omitempty"`
	Link    string `json:"link"`
	Metric  int    `json:"metric"`
}

// String is the route in ip-route style: "default via 192.0.2.1 dev eth0
// metric 100".
func (r Route) String() string {
	s := "default"
	if r.Gateway != "" {
		s += " via " + r.Gateway
	}
	return fmt.Sprintf("%s dev %s metric %d", s, r.Link, r.Metric)
}

// Probe is the result of the last connectivity probe.
type Probe struct {
	URL     string    `json:"url"`
	OK      bool      `json:"ok"`
	Error   string    `json:"error,omitempty"`
	Checked time.Time `json:"checked"`
}

// Event is one change netlink reported.
type Event struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`   // link, address, route
	Action string    `json:"action"` // added, removed, up, down, carrier-on, carrier-off, mtu
	Link   string    `json:"link,omitempty"`
	Detail string    `json:"detail,omitempty"` // the address, route or new value
}

// State is a snapshot of the network as the watcher last saw it.
type State struct {
	// Running is true once the subscriptions are open and the first dump
	// was read.
	Running bool `json:"running"`
	// Online is a usable default route and, when a probe is configured, a
	// successful probe.
	Online bool `json:"online"`
	// Reason says why the host is not online; empty when online.
	Reason       string   `json:"reason,omitempty"`
	DefaultRoute *Route   `json:"default_route,omitempty"` // the best usable one
	Links        []Link   `json:"links"`
	Probe        *Probe   `json:"probe,omitempty"`
	Problems     []string `json:"problems,omitempty"` // declarative config that could not be applied
	Events       []Event  `json:"events,omitempty"`   // the most recent changes, oldest first
	Changes      int      `json:"changes"`            // events seen since start
}

// linkOf converts a netlink link and its addresses.
func linkOf(l netlink.Link, addrs []netlink.Addr) Link {
	a := l.Attrs()
	out := Link{
		Name:    a.Name,
		Index:   a.Index,
		Type:    l.Type(),
		State:   a.OperState.String(),
		AdminUp: a.Flags&net.FlagUp != 0,
		Carrier: a.RawFlags&unix.IFF_LOWER_UP != 0,
		MTU:     a.MTU,
	}
	if len(a.HardwareAddr) > 0 {
		out.MAC = a.HardwareAddr.String()
	}
	for _, ad := range addrs {
		out.Addresses = append(out.Addresses, ad.IPNet.String())
	}
	slices.SortStableFunc(out.Addresses, func(x, y string) int {
		return boolInt(net.ParseIP(trimPrefix(x)).To4() == nil) - boolInt(net.ParseIP(trimPrefix(y)).To4() == nil)
	})
	return out
}

func trimPrefix(cidr string) string {
	ip, _, err := net.ParseCIDR(cidr)
	if err != nil {
		return cidr
	}
	return ip.String()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// isDefault reports whether r is a default route.
func isDefault(r netlink.Route) bool {
	if r.Dst == nil {
		return true
	}
	ones, _ := r.Dst.Mask.Size()
	return ones == 0 && r.Dst.IP.IsUnspecified()
}

// linkDown reports whether the kernel marked the route's nexthop as down.
func linkDown(r netlink.Route) bool { return r.Flags&unix.RTNH_F_LINKDOWN != 0 }
