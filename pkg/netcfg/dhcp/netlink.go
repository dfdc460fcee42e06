package dhcp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// configurer puts a lease on the link and takes it off again.
type configurer interface {
	// linkInfo returns the link's hardware address and whether it is up
	// with carrier; bringUp sets it admin up.
	linkInfo() (hw net.HardwareAddr, carrier bool, err error)
	bringUp() error
	// apply installs l (address with its lifetime, routes, MTU) and
	// removes what old had that l has not. old may be nil.
	apply(old, l *Lease, now time.Time) error
	// remove takes l's address and routes off the link.
	remove(l *Lease) error
}

// nlConfigurer applies leases through a netlink handle.
type nlConfigurer struct {
	h        *netlink.Handle
	link     string
	metric   int
	useMTU   bool
	useRoute bool
}

func (c *nlConfigurer) get() (netlink.Link, error) {
	l, err := c.h.LinkByName(c.link)
	if err != nil {
		return nil, fmt.Errorf("link %s: %w", c.link, err)
	}
	return l, nil
}

func (c *nlConfigurer) linkInfo() (net.HardwareAddr, bool, error) {
	l, err := c.get()
	if err != nil {
		return nil, false, err
	}
	a := l.Attrs()
	carrier := a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0
	return a.HardwareAddr, carrier, nil
}

func (c *nlConfigurer) bringUp() error {
	l, err := c.get()
	if err != nil {
		return err
	}
	if l.Attrs().Flags&net.FlagUp != 0 {
		return nil
	}
	if err := c.h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", c.link, err)
	}
	return nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// lifetime is what is left of l at now, in whole seconds, for the
// kernel's address lifetimes: the kernel drops the address by itself when
// the lease runs out, even if hostd is not running then.
func lifetime(l *Lease, now time.Time) int {
	exp := l.Expires()
	if exp.IsZero() {
		return 0 // forever
	}
	s := int(exp.Sub(now).Round(time.Second) / time.Second)
	return max(s, 1)
}

func (c *nlConfigurer) apply(old, l *Lease, now time.Time) error {
	link, err := c.get()
	if err != nil {
		return err
	}
	var errs []error
	if old != nil && old.Address != l.Address {
		if err := c.remove(old); err != nil {
			errs = append(errs, err)
		}
	}
	addr := &netlink.Addr{IPNet: prefixNet(l.Address)}
	if lt := lifetime(l, now); lt > 0 {
		addr.ValidLft, addr.PreferedLft = lt, lt
	}
	// Replace, not add: a renewed lease only moves the lifetimes, and the
	// address never disappears in between (no RTM_DELADDR).
	if err := c.h.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("add address %s to %s: %w", l.Address, c.link, err)
	}
	if c.useMTU && l.MTU > 0 && link.Attrs().MTU != l.MTU {
		if err := c.h.LinkSetMTU(link, l.MTU); err != nil {
			errs = append(errs, fmt.Errorf("set mtu of %s to %d: %w", c.link, l.MTU, err))
		}
	}
	if c.useRoute {
		if old != nil {
			for _, r := range old.Routes {
				if !slices.Contains(l.Routes, r) {
					_ = c.h.RouteDel(c.route(link, l, r)) // may have gone with the address
				}
			}
		}
		// On-link routes first, so gateways reached through them work.
		rs := slices.Clone(l.Routes)
		slices.SortStableFunc(rs, func(a, b Route) int {
			return boolInt(a.Via.IsValid()) - boolInt(b.Via.IsValid())
		})
		for _, r := range rs {
			if err := c.h.RouteReplace(c.route(link, l, r)); err != nil {
				errs = append(errs, fmt.Errorf("add route to %s via %s on %s: %w", r.To, viaString(r.Via), c.link, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (c *nlConfigurer) route(link netlink.Link, l *Lease, r Route) *netlink.Route {
	nr := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       prefixNet(r.To),
		Priority:  c.metric,
		Protocol:  unix.RTPROT_DHCP,
		Src:       l.Address.Addr().AsSlice(),
		Table:     unix.RT_TABLE_MAIN,
	}
	if r.Via.IsValid() {
		nr.Gw = r.Via.AsSlice()
		if !l.Address.Contains(r.Via) {
			// A gateway outside the subnet (RFC 3442 allows it): reach it
			// on the link.
			nr.Flags = int(netlink.FLAG_ONLINK)
		}
	} else {
		nr.Scope = netlink.SCOPE_LINK
	}
	return nr
}

func (c *nlConfigurer) remove(l *Lease) error {
	link, err := c.get()
	if err != nil {
		return err
	}
	if c.useRoute {
		for _, r := range l.Routes {
			_ = c.h.RouteDel(c.route(link, l, r)) // most go with the address
		}
	}
	err = c.h.AddrDel(link, &netlink.Addr{IPNet: prefixNet(l.Address)})
	if err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
		return fmt.Errorf("remove address %s from %s: %w", l.Address, c.link, err)
	}
	return nil
}

func viaString(a netip.Addr) string {
	if !a.IsValid() {
		return "link"
	}
	return a.String()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
