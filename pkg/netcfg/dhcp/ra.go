package dhcp

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

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
// clock until it succeeds or ctx ends.
func RunRA(ctx context.Context, ns *netns.NsHandle, link string, clock service.Clock, log *slog.Logger) {
	b := service.Backoff{Min: time.Second, Max: time.Minute, Jitter: 0.2, Clock: clock}
	for ctx.Err() == nil {
		err := EnableRA(ns, link)
		if err == nil {
			log.Info("ipv6 autoconfiguration on", "link", link)
			return
		}
		log.Warn("ipv6 autoconfiguration", "link", link, "err", err, "attempt", b.Attempts()+1)
		if b.Wait(ctx) != nil {
			return
		}
	}
}
