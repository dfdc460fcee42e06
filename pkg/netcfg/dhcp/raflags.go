package dhcp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The M (managed) and O (other configuration) flags of the last router
// advertisement, as the kernel keeps them per link (in6_dev->if_flags,
// IFLA_INET6_FLAGS in the IFLA_PROTINFO of an AF_INET6 RTM_NEWLINK). The
// kernel announces their changes on RTNLGRP_IPV6_IFINFO.
const (
	raManaged   = 0x40 // IF_RA_MANAGED
	raOtherConf = 0x80 // IF_RA_OTHERCONF
)

// RAFlags are a link's router advertisement flags.
type RAFlags struct {
	Managed, Other bool
}

// parseRAFlags reads the flags of the link with index from an AF_INET6
// RTM_NEWLINK message body; ok is false for another link or a message
// without them.
func parseRAFlags(b []byte, index int) (f RAFlags, ok bool) {
	if len(b) < unix.SizeofIfInfomsg {
		return f, false
	}
	m := nl.DeserializeIfInfomsg(b)
	if m.Family != unix.AF_INET6 || int(m.Index) != index {
		return f, false
	}
	attrs, err := nl.ParseRouteAttr(b[unix.SizeofIfInfomsg:])
	if err != nil {
		return f, false
	}
	for _, a := range attrs {
		if a.Attr.Type&^unix.NLA_F_NESTED != unix.IFLA_PROTINFO {
			continue
		}
		inner, err := nl.ParseRouteAttr(a.Value)
		if err != nil {
			return f, false
		}
		for _, x := range inner {
			if x.Attr.Type == unix.IFLA_INET6_FLAGS && len(x.Value) >= 4 {
				v := binary.NativeEndian.Uint32(x.Value)
				return RAFlags{Managed: v&raManaged != 0, Other: v&raOtherConf != 0}, true
			}
		}
	}
	return f, false
}

// ReadRAFlags returns the router advertisement flags the kernel holds
// for link in ns (nil: hostd's own); both are false before any
// advertisement.
func ReadRAFlags(ns *netns.NsHandle, link string) (RAFlags, error) {
	nsh := netns.None()
	if ns != nil {
		nsh = *ns
	}
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return RAFlags{}, fmt.Errorf("netlink: %w", err)
	}
	l, err := h.LinkByName(link)
	h.Close()
	if err != nil {
		return RAFlags{}, fmt.Errorf("link %s: %w", link, err)
	}
	return readRAFlags(ns, l.Attrs().Index)
}

func readRAFlags(ns *netns.NsHandle, index int) (RAFlags, error) {
	var msgs [][]byte
	err := InNetNS(ns, func() error {
		req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
		req.AddData(nl.NewIfInfomsg(unix.AF_INET6))
		var err error
		msgs, err = req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
		return err
	})
	if err != nil {
		return RAFlags{}, fmt.Errorf("ipv6 flags of link %d: %w", index, err)
	}
	for _, m := range msgs {
		if f, ok := parseRAFlags(m, index); ok {
			return f, nil
		}
	}
	return RAFlags{}, fmt.Errorf("ipv6 flags of link %d: not reported (ipv6 off?)", index)
}

// watchManaged follows the M flag of link in ns until ctx ends and sends
// each change on out, the state at subscription time first.
func watchManaged(ctx context.Context, ns *netns.NsHandle, link string, out chan<- bool) error {
	nsh := netns.None()
	if ns != nil {
		nsh = *ns
	}
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return fmt.Errorf("netlink for ra flags of %s: %w", link, err)
	}
	l, err := h.LinkByName(link)
	h.Close()
	if err != nil {
		return fmt.Errorf("link %s: %w", link, err)
	}
	index := l.Attrs().Index
	s, err := nl.SubscribeAt(nsh, netns.None(), unix.NETLINK_ROUTE, unix.RTNLGRP_IPV6_IFINFO)
	if err != nil {
		return fmt.Errorf("subscribe to ipv6 link changes of %s: %w", link, err)
	}
	// Receive blocks; the timeout only lets the loop see ctx end.
	if err := s.SetReceiveTimeout(&unix.Timeval{Sec: 1}); err != nil {
		s.Close()
		return fmt.Errorf("subscribe to ipv6 link changes of %s: %w", link, err)
	}
	f, err := readRAFlags(ns, index)
	if err != nil {
		s.Close()
		return err
	}
	out <- f.Managed
	go func() {
		defer s.Close()
		m := f.Managed
		for ctx.Err() == nil {
			msgs, _, err := s.Receive()
			if err != nil {
				if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOBUFS) {
					if errors.Is(err, unix.ENOBUFS) { // lost events: read afresh
						if f, err := readRAFlags(ns, index); err == nil && f.Managed != m {
							m = f.Managed
							send(ctx, out, m)
						}
					}
					continue
				}
				select { // cannot follow: try again later
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
				continue
			}
			for _, msg := range msgs {
				if msg.Header.Type != syscall.RTM_NEWLINK {
					continue
				}
				if f, ok := parseRAFlags(msg.Data, index); ok && f.Managed != m {
					m = f.Managed
					send(ctx, out, m)
				}
			}
		}
	}()
	return nil
}
