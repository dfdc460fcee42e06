package dhcp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/internal/service"
)

// IPv6 autoconfiguration (`dhcp: v6`): the kernel's own router
// advertisement handling does the work. netcfg turns it on for the link
// (accept_ra=2, so it holds even when the host forwards, and autoconf=1)
// before it sets the link up, so the kernel solicits a router at once;
// the kernel then keeps SLAAC addresses and default routes from the
// advertisements with their lifetimes, and withdraws them when these run
// out, whether hostd runs or not.

// sysctlRA is what EnableRA writes under /proc/sys/net/ipv6/conf/LINK.
var sysctlRA = []struct{ name, value string }{
	{"disable_ipv6", "0"},
	{"accept_ra", "2"},
	{"autoconf", "1"},
	{"accept_ra_defrtr", "1"},
}

// validLinkName reports whether name can be an interface name (and so a
// path element under /proc/sys): 1 to 15 bytes, no '/', not "." or "..".
func validLinkName(name string) bool {
	return name != "" && len(name) <= 15 && name != "." && name != ".." &&
		!strings.ContainsAny(name, "/ \t\n\x00")
}

// EnableRA turns on router advertisement handling and SLAAC for link in
// ns (nil: hostd's own namespace) and sets the link up.
func EnableRA(ns *netns.NsHandle, link string) error {
	if !validLinkName(link) {
		return fmt.Errorf("enable ipv6 autoconfiguration: bad link name %q", link)
	}
	nsh := netns.None()
	if ns != nil {
		nsh = *ns
	}
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return fmt.Errorf("enable ipv6 autoconfiguration on %s: netlink: %w", link, err)
	}
	defer h.Close()
	l, err := h.LinkByName(link)
	if err != nil {
		return fmt.Errorf("enable ipv6 autoconfiguration: link %s: %w", link, err)
	}
	// /proc/sys/net shows the namespace of the thread that opens it.
	err = InNetNS(ns, func() error {
		dir := filepath.Join("/proc/sys/net/ipv6/conf", link)
		for _, s := range sysctlRA {
			p := filepath.Join(dir, s.name)
			if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == s.value {
				continue
			}
			if err := os.WriteFile(p, []byte(s.value), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("enable ipv6 autoconfiguration on %s: %w", link, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", link, err)
	}
	return nil
}

// RunRA enables autoconfiguration on link (EnableRA) and, while the link
// does not exist or cannot be configured, tries again with backoff on
// clock until it succeeds or ctx ends. With onDNS, it then follows the
// RDNSS and DNSSL options of the link's advertisements (watchRADNS) until
// ctx ends, calling onDNS with the servers and domains in force each time
// they change, and once more with none when it stops.
func RunRA(ctx context.Context, ns *netns.NsHandle, link string, clock service.Clock, log *slog.Logger, onDNS func(RADNS)) {
	b := service.Backoff{Min: time.Second, Max: time.Minute, Jitter: 0.2, Clock: clock}
	enable := func(ctx context.Context) {
		for ctx.Err() == nil {
			err := EnableRA(ns, link)
			if err == nil {
				log.Info("ipv6 autoconfiguration on", "link", link)
				b.Reset()
				return
			}
			log.Warn("ipv6 autoconfiguration", "link", link, "err", err, "attempt", b.Attempts()+1)
			if b.Wait(ctx) != nil {
				return
			}
		}
	}
	if onDNS == nil {
		enable(ctx)
		return
	}
	defer onDNS(RADNS{})
	var st raDNS // kept across failures of the socket: lifetimes still count
	first := true
	for ctx.Err() == nil {
		// Subscribed first, then the link is set up (the kernel solicits
		// a router then) and a solicitation is sent, so the answer is
		// not missed, after a restart of hostd too.
		err := watchRADNS(ctx, ns, link, &st, clock, onDNS, func() {
			if first {
				enable(ctx)
				first = false
			}
			if err := sendRS(ns, link); err != nil {
				log.Debug("router solicitation", "link", link, "err", err)
			}
		})
		if err == nil {
			return
		}
		if first { // the socket failed before listening: autoconfiguration goes on
			enable(ctx)
			first = false
		}
		log.Warn("router advertisement dns", "link", link, "err", err, "attempt", b.Attempts()+1)
		if b.Wait(ctx) != nil {
			return
		}
	}
}

// sendRS sends one router solicitation (RFC 4861 6.3.7) on link, so
// routers advertise at once instead of at their next interval. Best
// effort: the kernel solicits by itself when the link comes up.
func sendRS(ns *netns.NsHandle, link string) error {
	return InNetNS(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
		if err != nil {
			return fmt.Errorf("icmpv6 socket: %w", err)
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, link); err != nil {
			return fmt.Errorf("bind to %s: %w", link, err)
		}
		// Neighbour discovery packets carry hop limit 255 (RFC 4861 6.1.1).
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 255); err != nil {
			return fmt.Errorf("hop limit: %w", err)
		}
		ifi, err := net.InterfaceByName(link) // this thread is in ns
		if err != nil {
			return err
		}
		// Type 133, code 0, checksum (filled by the kernel), reserved.
		rs := []byte{133, 0, 0, 0, 0, 0, 0, 0}
		to := &unix.SockaddrInet6{Addr: [16]byte{0xff, 0x02, 15: 2}, ZoneId: uint32(ifi.Index)}
		if err := unix.Sendto(fd, rs, 0, to); err != nil {
			return fmt.Errorf("send router solicitation on %s: %w", link, err)
		}
		return nil
	})
}
