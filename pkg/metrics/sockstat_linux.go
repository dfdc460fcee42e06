package metrics

import (
	"errors"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
)

func init() { registerCollector("sockstat", newSockstatCollector) }

var sockstatUsedDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "sockstat", "sockets_used"),
	"Number of IPv4 sockets in use.", nil, nil)

// sockstatCollector exports /proc/net/sockstat and /proc/net/sockstat6.
type sockstatCollector struct {
	h     *host
	descs descCache
}

func newSockstatCollector(h *host) (collector, error) { return &sockstatCollector{h: h}, nil }

func (c *sockstatCollector) Update(ch emitter) error {
	s4, err := c.h.proc.NetSockstat()
	if err != nil {
		return fmt.Errorf("read %s: %w", c.h.procPath("net", "sockstat"), err)
	}
	s6, err := c.h.proc.NetSockstat6()
	if err != nil && !errors.Is(err, os.ErrNotExist) { // IPv6 may be disabled
		return fmt.Errorf("read %s: %w", c.h.procPath("net", "sockstat6"), err)
	}
	for _, m := range sockstatMetrics(s4, c.h.pageSz, &c.descs, c.h.series) {
		ch(m)
	}
	if s6 != nil {
		for _, m := range sockstatMetrics(s6, c.h.pageSz, &c.descs, c.h.series) {
			ch(m)
		}
	}
	return nil
}

// sockstatMetrics converts one sockstat file; procfs already names the IPv6
// protocols "TCP6", "UDP6", ... as node_exporter does.
func sockstatMetrics(s *procfs.NetSockstat, pageSize int, descs *descCache, sc *seriesCache) []prometheus.Metric {
	var out []prometheus.Metric
	if s.Used != nil {
		out = append(out, sc.metric(sockstatUsedDesc, prometheus.GaugeValue, float64(*s.Used)))
	}
	for _, p := range s.Protocols {
		proto := p.Protocol
		add := func(state string, v float64) {
			d := descs.get(proto+"_"+state, func() *prometheus.Desc {
				return prometheus.NewDesc(prometheus.BuildFQName(namespace, "sockstat", proto+"_"+state),
					fmt.Sprintf("Number of %s sockets in state %s.", proto, state), nil, nil)
			})
			out = append(out, sc.metric(d, prometheus.GaugeValue, v))
		}
		add("inuse", float64(p.InUse))
		if p.Orphan != nil {
			add("orphan", float64(*p.Orphan))
		}
		if p.TW != nil {
			add("tw", float64(*p.TW))
		}
		if p.Alloc != nil {
			add("alloc", float64(*p.Alloc))
		}
		if p.Mem != nil {
			add("mem", float64(*p.Mem))
			add("mem_bytes", float64(*p.Mem*pageSize))
		}
		if p.Memory != nil {
			add("memory", float64(*p.Memory))
		}
	}
	return out
}
