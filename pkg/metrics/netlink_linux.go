package metrics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// netLink is what one RTM_NEWLINK message of a link dump tells of an
// interface: the attributes the netclass and netdev collectors export
// that the kernel copies from the same fields of the device as
// /sys/class/net/<iface>/ and /proc/net/dev show them.
type netLink struct {
	index int32
	typ   uint16 // ifi_type: sysfs' type
	// flags are ifi_flags (dev_get_flags(): the user's promiscuous and
	// all-multicast settings and the running, lower-up and dormant states
	// mixed in), not the device's flags that sysfs shows: the netclass
	// collector reads those from sysfs still.
	flags uint32
	name  string

	address, broadcast, alias string

	has                                   linkHas
	mtu, txqlen, group                    uint32
	operstate, linkmode, carrier          uint8
	carrierChanges, carrierUp, carrierDwn uint32
	iflink                                int32 // IFLA_LINK: only where it is not the interface's own index

	// stats is struct rtnl_link_stats64 as far as the kernel gave it
	// (nstats counters; 24 up to rx_nohandler, Linux 4.6).
	stats  [linkStats]uint64
	nstats int
}

// linkHas marks the optional attributes a netLink has.
type linkHas uint16

const (
	hasMTU linkHas = 1 << iota
	hasTxqlen
	hasGroup
	hasOperstate
	hasLinkmode
	hasCarrier
	hasCarrierChanges
	hasCarrierUp
	hasCarrierDown
	hasIflink
)

// The counters of struct rtnl_link_stats64 (include/uapi/linux/if_link.h)
// the collectors use, by index.
const (
	statRxPackets = iota
	statTxPackets
	statRxBytes
	statTxBytes
	statRxErrors
	statTxErrors
	statRxDropped
	statTxDropped
	statMulticast
	statCollisions
	statRxLengthErrors
	statRxOverErrors
	statRxCRCErrors
	statRxFrameErrors
	statRxFIFOErrors
	statRxMissedErrors
	statTxAbortedErrors
	statTxCarrierErrors
	statTxFIFOErrors
	statTxHeartbeatErrors
	statTxWindowErrors
	statRxCompressed
	statTxCompressed
	statRxNohandler
	linkStats
)

// linkDumpTimeout bounds one dump: the kernel answers from memory, but
// a dump waits for the RTNL lock on older kernels, which a stuck driver
// can hold.
const linkDumpTimeout = 2 * time.Second

// maxLinks bounds the interfaces of one dump.
const maxLinks = 1 << 14

// linkDumper lists the host's interfaces with one RTM_GETLINK dump on a
// netlink socket it keeps, once per collection: the netclass and netdev
// collectors share it. It replaces about fifteen sysfs reads an
// interface a scrape, and /proc/net/dev with the statistic files beside
// it, by three or four system calls in all.
//
// Written here, not taken from a library: syscall.NetlinkRIB opens a
// socket every call and reads without a deadline, and the netlink
// packages hostd depends on (vishvananda/netlink) neither keep the
// broadcast address, link mode and carrier counts nor parse without
// allocating for every attribute.
type linkDumper struct {
	mu    sync.Mutex
	fd    int // the socket; 0: none open
	seq   uint32
	buf   []byte
	links []netLink         // round's dump
	names map[string]string // interface names seen, to reuse their strings
	macs  map[string]string // hardware addresses seen, formatted
	round uint64            // openFiles round of links
	done  bool              // links is round's dump
	err   error
}

// dump returns the interfaces of the calling thread's network namespace
// as round's dump found them: the dump is made once per round (a
// collection, openFiles). The slice is the dumper's own until the next
// round. With keep false the socket is closed after the dump.
func (d *linkDumper) dump(round uint64, keep bool) ([]netLink, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done && d.round == round {
		return d.links, d.err
	}
	d.round, d.done = round, true
	// A new slice each dump: a collection running beside this one (a
	// gather of /metrics) may still read the last.
	d.links, d.err = make([]netLink, 0, len(d.links)), nil
	if err := d.request(); err != nil {
		d.close()
		d.err = fmt.Errorf("dump network interfaces (netlink): %w", err)
	}
	if !keep {
		d.close()
	}
	return d.links, d.err
}

// close closes the socket.
func (d *linkDumper) close() {
	if d.fd > 0 {
		_ = unix.Close(d.fd)
	}
	d.fd = 0
}

// closeSocket closes the socket between collections (openFiles.close).
func (d *linkDumper) closeSocket() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.close()
	d.done = false
}

// request sends one dump request and parses its answer into d.links.
func (d *linkDumper) request() error {
	if d.fd <= 0 {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		tv := unix.NsecToTimeval(linkDumpTimeout.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			_ = unix.Close(fd)
			return fmt.Errorf("set receive timeout: %w", err)
		}
		d.fd = fd
	}
	d.seq++
	var req [unix.SizeofNlMsghdr + unix.SizeofIfInfomsg]byte
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.RTM_GETLINK)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:], d.seq)
	req[unix.SizeofNlMsghdr] = unix.AF_UNSPEC
	if err := unix.Sendto(d.fd, req[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if d.buf == nil {
		d.buf = make([]byte, 32<<10) // the kernel's dump messages fill at most this much
	}
	deadline := time.Now().Add(linkDumpTimeout)
	for {
		n, _, err := unix.Recvfrom(d.fd, d.buf, 0)
		if errors.Is(err, unix.EINTR) && time.Now().Before(deadline) {
			continue
		}
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("receive: no end of the dump within %s", linkDumpTimeout)
		}
		end, err := d.parse(d.buf[:n])
		if err != nil || end {
			return err
		}
		if len(d.links) > maxLinks {
			return fmt.Errorf("more than %d interfaces", maxLinks)
		}
	}
}

// parse parses one datagram of the dump into d.links and reports whether
// it ended the dump. Messages of another request (a dump cut short
// before) are skipped.
func (d *linkDumper) parse(b []byte) (end bool, err error) {
	for len(b) >= unix.SizeofNlMsghdr {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		typ := binary.NativeEndian.Uint16(b[4:6])
		seq := binary.NativeEndian.Uint32(b[8:12])
		if l < unix.SizeofNlMsghdr || l > len(b) {
			return false, fmt.Errorf("message of %d bytes in a datagram of %d", l, len(b))
		}
		msg := b[unix.SizeofNlMsghdr:l]
		b = b[min(nlmAlign(l), len(b)):]
		if seq != d.seq {
			continue
		}
		switch typ {
		case unix.NLMSG_DONE:
			return true, nil
		case unix.NLMSG_ERROR:
			if len(msg) >= 4 {
				if errno := int32(binary.NativeEndian.Uint32(msg[0:4])); errno < 0 {
					return true, unix.Errno(-errno)
				}
			}
			return true, errors.New("error message from the kernel")
		case unix.RTM_NEWLINK:
			if link, ok := d.parseLink(msg); ok {
				d.links = append(d.links, link)
			}
		}
	}
	return false, nil
}

// nlmAlign rounds a message or attribute length up to netlink's 4 bytes.
func nlmAlign(n int) int { return (n + 3) &^ 3 }

// parseLink parses struct ifinfomsg and its attributes. A message
// without a name is left out.
func (d *linkDumper) parseLink(b []byte) (netLink, bool) {
	var l netLink
	if len(b) < unix.SizeofIfInfomsg {
		return l, false
	}
	l.typ = binary.NativeEndian.Uint16(b[2:4])
	l.index = int32(binary.NativeEndian.Uint32(b[4:8]))
	l.flags = binary.NativeEndian.Uint32(b[8:12])
	b = b[unix.SizeofIfInfomsg:]
	u32 := func(v []byte) (uint32, bool) {
		if len(v) < 4 {
			return 0, false
		}
		return binary.NativeEndian.Uint32(v), true
	}
	set32 := func(v []byte, dst *uint32, h linkHas) {
		if x, ok := u32(v); ok {
			*dst, l.has = x, l.has|h
		}
	}
	set8 := func(v []byte, dst *uint8, h linkHas) {
		if len(v) >= 1 {
			*dst, l.has = v[0], l.has|h
		}
	}
	for len(b) >= unix.SizeofRtAttr {
		al := int(binary.NativeEndian.Uint16(b[0:2]))
		at := binary.NativeEndian.Uint16(b[2:4]) &^ unix.NLA_F_NESTED
		if al < unix.SizeofRtAttr || al > len(b) {
			break
		}
		v := b[unix.SizeofRtAttr:al]
		b = b[min(nlmAlign(al), len(b)):]
		switch at {
		case unix.IFLA_IFNAME:
			l.name = intern(&d.names, cString(v), func(b []byte) string { return string(b) })
		case unix.IFLA_ADDRESS:
			l.address = intern(&d.macs, v, formatMAC)
		case unix.IFLA_BROADCAST:
			l.broadcast = intern(&d.macs, v, formatMAC)
		case unix.IFLA_IFALIAS:
			l.alias = string(cString(v))
		case unix.IFLA_MTU:
			set32(v, &l.mtu, hasMTU)
		case unix.IFLA_TXQLEN:
			set32(v, &l.txqlen, hasTxqlen)
		case unix.IFLA_GROUP:
			set32(v, &l.group, hasGroup)
		case unix.IFLA_OPERSTATE:
			set8(v, &l.operstate, hasOperstate)
		case unix.IFLA_LINKMODE:
			set8(v, &l.linkmode, hasLinkmode)
		case unix.IFLA_CARRIER:
			set8(v, &l.carrier, hasCarrier)
		case unix.IFLA_CARRIER_CHANGES:
			set32(v, &l.carrierChanges, hasCarrierChanges)
		case unix.IFLA_CARRIER_UP_COUNT:
			set32(v, &l.carrierUp, hasCarrierUp)
		case unix.IFLA_CARRIER_DOWN_COUNT:
			set32(v, &l.carrierDwn, hasCarrierDown)
		case unix.IFLA_LINK:
			if x, ok := u32(v); ok {
				l.iflink, l.has = int32(x), l.has|hasIflink
			}
		case unix.IFLA_STATS64:
			l.nstats = min(len(v)/8, linkStats)
			for i := range l.nstats {
				l.stats[i] = binary.NativeEndian.Uint64(v[i*8:])
			}
		}
	}
	return l, l.name != ""
}

// intern returns format(b), made once for the same bytes in every dump
// and kept in *m (at most maxNames of them).
func intern(m *map[string]string, b []byte, format func([]byte) string) string {
	if s, ok := (*m)[string(b)]; ok {
		return s
	}
	if *m == nil || len(*m) >= maxNames {
		*m = map[string]string{}
	}
	s := format(b)
	(*m)[string(b)] = s
	return s
}

// cString is b up to its first NUL.
func cString(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

// formatMAC formats a hardware address as sysfs does
// (sysfs_format_mac: lower-case hexadecimal bytes joined by colons, of
// any length).
func formatMAC(b []byte) string {
	const hex = "0123456789abcdef"
	if len(b) == 0 {
		return ""
	}
	out := make([]byte, 0, len(b)*3-1)
	for i, c := range b {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, hex[c>>4], hex[c&0xf])
	}
	return string(out)
}
