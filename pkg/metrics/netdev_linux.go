package metrics

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

func init() { registerCollector("netdev", newNetdevCollector) }

// netdevStats lists node_exporter's /proc/net/dev statistic names.
var netdevStats = []struct {
	name string
	get  func(l procfs.NetDevLine) uint64
}{
	{"receive_bytes", func(l procfs.NetDevLine) uint64 { return l.RxBytes }},
	{"receive_packets", func(l procfs.NetDevLine) uint64 { return l.RxPackets }},
	{"receive_errs", func(l procfs.NetDevLine) uint64 { return l.RxErrors }},
	{"receive_drop", func(l procfs.NetDevLine) uint64 { return l.RxDropped }},
	{"receive_fifo", func(l procfs.NetDevLine) uint64 { return l.RxFIFO }},
	{"receive_frame", func(l procfs.NetDevLine) uint64 { return l.RxFrame }},
	{"receive_compressed", func(l procfs.NetDevLine) uint64 { return l.RxCompressed }},
	{"receive_multicast", func(l procfs.NetDevLine) uint64 { return l.RxMulticast }},
	{"transmit_bytes", func(l procfs.NetDevLine) uint64 { return l.TxBytes }},
	{"transmit_packets", func(l procfs.NetDevLine) uint64 { return l.TxPackets }},
	{"transmit_errs", func(l procfs.NetDevLine) uint64 { return l.TxErrors }},
	{"transmit_drop", func(l procfs.NetDevLine) uint64 { return l.TxDropped }},
	{"transmit_fifo", func(l procfs.NetDevLine) uint64 { return l.TxFIFO }},
	{"transmit_colls", func(l procfs.NetDevLine) uint64 { return l.TxCollisions }},
	{"transmit_carrier", func(l procfs.NetDevLine) uint64 { return l.TxCarrier }},
	{"transmit_compressed", func(l procfs.NetDevLine) uint64 { return l.TxCompressed }},
}

var netdevDescs = func() map[string]*prometheus.Desc {
	m := make(map[string]*prometheus.Desc, len(netdevStats))
	for _, s := range netdevStats {
		m[s.name] = prometheus.NewDesc(prometheus.BuildFQName(namespace, "network", s.name+"_total"),
			fmt.Sprintf("Network device statistic %s.", s.name), []string{"device"}, nil)
	}
	return m
}()

// nohandlerDesc is the one counter /proc/net/dev lacks; node_exporter gets
// it from netlink, hostd from the link dump or
// /sys/class/net/<dev>/statistics.
var nohandlerDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "network", "receive_nohandler_total"),
	"Network device statistic receive_nohandler.", []string{"device"}, nil)

// netdevCollector exports per-interface counters. On the host's /proc
// and /sys they come from the link dump the netclass collector shares
// (linkDumper), as node_exporter takes them from netlink. Otherwise (a
// fixture, or no netlink) from /proc/net/dev: it parses the file itself
// into maps it keeps (procfs allocates a line, its fields and a map per
// scrape), and reads each interface's flags and rx_nohandler through
// files kept open under the inode of its entry in /sys/class/net.
type netdevCollector struct {
	h *host

	mu    sync.Mutex // guards what follows between concurrent gathers
	buf   []byte
	nd    procfs.NetDev
	names map[string]string // interface names seen, to reuse their strings
	inos  map[string]uint64 // /sys/class/net's entries in this scrape
}

func newNetdevCollector(h *host) (collector, error) {
	return &netdevCollector{h: h, nd: procfs.NetDev{}, names: map[string]string{}, inos: map[string]uint64{}}, nil
}

func (c *netdevCollector) Update(ch emitter) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if links, ok, err := c.h.netLinks(); ok && err == nil {
		c.fromLinks(links)
		for _, m := range netdevMetrics(c.nd, c.h.series) {
			ch(m)
		}
		for _, l := range links {
			if _, ok := c.nd[l.name]; ok && l.nstats > statRxNohandler {
				ch(c.h.series.metric(nohandlerDesc, prometheus.CounterValue, float64(l.stats[statRxNohandler]), l.name))
			}
		}
		return nil
	}
	// Without the dump (a sandbox without netlink, or fixtures):
	// /proc/net/dev and sysfs.
	path := c.h.procPath("net", "dev")
	var err error
	if c.buf, err = c.h.files.readFileReuse(path, c.buf); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := c.parse(c.buf); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	classDir := c.h.sysPath("class", "net")
	clear(c.inos)
	if entries, err := readDirInodes(classDir); err == nil {
		for _, e := range entries {
			c.inos[e.name] = e.ino
		}
	}
	for name := range c.nd {
		if c.loopback(classDir, name) {
			delete(c.nd, name)
		}
	}
	for _, m := range netdevMetrics(c.nd, c.h.series) {
		ch(m)
	}
	for name := range c.nd {
		var buf [64]byte
		if b, err := c.sysFile(classDir, name, "statistics/rx_nohandler", buf[:]); err == nil {
			if v, err := strconv.ParseFloat(string(b), 64); err == nil {
				ch(c.h.series.metric(nohandlerDesc, prometheus.CounterValue, v, name))
			}
		}
	}
	return nil
}

// parse reads /proc/net/dev's interface lines ("name: 16 counters")
// into c.nd, as procfs' NetDev does.
func (c *netdevCollector) parse(b []byte) error {
	clear(c.nd)
	for n := 1; len(b) > 0; n++ {
		var line []byte
		line, b = nextLine(b)
		nameB, rest, ok := bytes.Cut(line, []byte(":"))
		if n <= 2 || !ok {
			continue // the two header lines
		}
		nameB = bytes.TrimSpace(nameB)
		name, seen := c.names[string(nameB)]
		if !seen {
			if len(c.names) >= maxNames {
				clear(c.names)
			}
			name = string(nameB)
			c.names[name] = name
		}
		l := procfs.NetDevLine{Name: name}
		for _, dst := range []*uint64{&l.RxBytes, &l.RxPackets, &l.RxErrors, &l.RxDropped, &l.RxFIFO, &l.RxFrame, &l.RxCompressed, &l.RxMulticast,
			&l.TxBytes, &l.TxPackets, &l.TxErrors, &l.TxDropped, &l.TxFIFO, &l.TxCollisions, &l.TxCarrier, &l.TxCompressed} {
			var f []byte
			if f, rest = nextField(rest); f == nil {
				return fmt.Errorf("line %d (%s): fewer than 16 counters", n, name)
			}
			v, err := strconv.ParseUint(string(f), 10, 64)
			if err != nil {
				return fmt.Errorf("line %d (%s): %w", n, name, err)
			}
			*dst = v
		}
		c.nd[name] = l
	}
	return nil
}

// fromLinks fills c.nd from the dump's counters (struct
// rtnl_link_stats64), summed into /proc/net/dev's columns as the kernel
// sums them there (dev_seq_printf_stats) and node_exporter from netlink:
// drop is rx_dropped and rx_missed_errors, frame the four receive
// framing errors, carrier the four transmit line errors. Loopback
// interfaces (IFF_LOOPBACK), and any without the 23 counters /proc/net/dev
// shows, are left out.
func (c *netdevCollector) fromLinks(links []netLink) {
	clear(c.nd)
	for _, l := range links {
		if l.flags&unix.IFF_LOOPBACK != 0 || l.nstats <= statTxCompressed {
			continue
		}
		s := &l.stats
		c.nd[l.name] = procfs.NetDevLine{
			Name:         l.name,
			RxBytes:      s[statRxBytes],
			RxPackets:    s[statRxPackets],
			RxErrors:     s[statRxErrors],
			RxDropped:    s[statRxDropped] + s[statRxMissedErrors],
			RxFIFO:       s[statRxFIFOErrors],
			RxFrame:      s[statRxLengthErrors] + s[statRxOverErrors] + s[statRxCRCErrors] + s[statRxFrameErrors],
			RxCompressed: s[statRxCompressed],
			RxMulticast:  s[statMulticast],
			TxBytes:      s[statTxBytes],
			TxPackets:    s[statTxPackets],
			TxErrors:     s[statTxErrors],
			TxDropped:    s[statTxDropped],
			TxFIFO:       s[statTxFIFOErrors],
			TxCollisions: s[statCollisions],
			TxCarrier:    s[statTxCarrierErrors] + s[statTxAbortedErrors] + s[statTxWindowErrors] + s[statTxHeartbeatErrors],
			TxCompressed: s[statTxCompressed],
		}
	}
}

// sysFile reads the file /sys/class/net/<name>/<file>, trimmed: kept
// open under the inode of the interface's entry, or opened for this read
// when the entry was not listed (an interface made since).
func (c *netdevCollector) sysFile(classDir, name, file string, buf []byte) ([]byte, error) {
	files := c.h.files
	ino, ok := c.inos[name]
	if !ok {
		files = nil
	}
	b, err := files.read(classDir+"/"+name+"/"+file, ino, buf, true)
	return bytes.TrimSpace(b), err
}

// loopback reports whether the interface has IFF_LOOPBACK set: like
// node_exporter (which reads netlink and skips loopback), the counters of
// lo are not exported.
func (c *netdevCollector) loopback(classDir, name string) bool {
	var buf [64]byte
	b, err := c.sysFile(classDir, name, "flags", buf[:])
	if err != nil {
		return name == "lo"
	}
	flags, err := strconv.ParseInt(string(b), 0, 64) // hexadecimal: 0x1003
	return err == nil && flags&unix.IFF_LOOPBACK != 0
}

func netdevMetrics(nd procfs.NetDev, sc *seriesCache) []prometheus.Metric {
	names := make([]string, 0, len(nd))
	for n := range nd {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]prometheus.Metric, 0, len(names)*len(netdevStats))
	for _, n := range names {
		for _, s := range netdevStats {
			out = append(out, sc.metric(netdevDescs[s.name], prometheus.CounterValue, float64(s.get(nd[n])), n))
		}
	}
	return out
}
