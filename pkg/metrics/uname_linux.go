package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

func init() { registerCollector("uname", newUnameCollector) }

var unameDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "uname", "info"),
	"Labeled system information as provided by the uname system call.",
	[]string{"sysname", "release", "version", "machine", "nodename", "domainname"}, nil)

// unameCollector exports uname(2) as node_uname_info.
type unameCollector struct{ h *host }

func newUnameCollector(h *host) (collector, error) { return &unameCollector{h: h}, nil }

func (c *unameCollector) Update(ch emitter) error {
	u, err := c.h.uname()
	if err != nil {
		return fmt.Errorf("uname: %w", err)
	}
	ch(unameMetric(u, c.h.series))
	return nil
}

func unameMetric(u unix.Utsname, sc *seriesCache) prometheus.Metric {
	return sc.metric(unameDesc, prometheus.GaugeValue, 1,
		unix.ByteSliceToString(u.Sysname[:]), unix.ByteSliceToString(u.Release[:]),
		unix.ByteSliceToString(u.Version[:]), unix.ByteSliceToString(u.Machine[:]),
		unix.ByteSliceToString(u.Nodename[:]), unix.ByteSliceToString(u.Domainname[:]))
}
