package metrics

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

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
// it from netlink, hostd from /sys/class/net/<dev>/statistics.
var nohandlerDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "network", "receive_nohandler_total"),
	"Network device statistic receive_nohandler.", []string{"device"}, nil)

// netdevCollector exports per-interface counters from /proc/net/dev.
type netdevCollector struct{ h *host }

func newNetdevCollector(h *host) (collector, error) { return &netdevCollector{h: h}, nil }

func (c *netdevCollector) Update(ch emitter) error {
	nd, err := c.h.proc.NetDev()
	if err != nil {
		return fmt.Errorf("read %s: %w", c.h.procPath("net", "dev"), err)
	}
	for name := range nd {
		if c.loopback(name) {
			delete(nd, name)
		}
	}
	for _, m := range netdevMetrics(nd, c.h.series) {
		ch(m)
	}
	for name := range nd {
		// Opened on every read, not kept (h.files): after two interfaces
		// swap names, a kept descriptor would read the other one.
		if v, err := (*openFiles)(nil).readNumberFile(c.h.sysPath("class", "net", name, "statistics", "rx_nohandler")); err == nil {
			ch(c.h.series.metric(nohandlerDesc, prometheus.CounterValue, v, name))
		}
	}
	return nil
}

// loopback reports whether the interface has IFF_LOOPBACK set: like
// node_exporter (which reads netlink and skips loopback), the counters of
// lo are not exported.
// The flags file is read into a small buffer with plain open/read:
// os.ReadFile would allocate a page-sized buffer per interface and scrape.
func (c *netdevCollector) loopback(name string) bool {
	fd, err := unix.Open(c.h.sysPath("class", "net", name, "flags"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return name == "lo"
	}
	var buf [32]byte
	n, err := unix.Read(fd, buf[:])
	_ = unix.Close(fd)
	if err != nil || n <= 0 {
		return name == "lo"
	}
	flags, err := strconv.ParseInt(strings.TrimSpace(string(buf[:n])), 0, 64)
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
