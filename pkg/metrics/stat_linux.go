package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

func init() { registerCollector("stat", newStatCollector) }

var (
	intrDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "intr_total"),
		"Total number of interrupts serviced.", nil, nil)
	contextSwitchesDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "context_switches_total"),
		"Total number of context switches.", nil, nil)
	forksDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "forks_total"),
		"Total number of forks.", nil, nil)
	bootTimeDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "boot_time_seconds"),
		"Node boot time, in unixtime.", nil, nil)
	procsRunningDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "procs_running"),
		"Number of processes in runnable state.", nil, nil)
	procsBlockedDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "procs_blocked"),
		"Number of processes blocked waiting for I/O to complete.", nil, nil)
)

// statCollector exports the kernel-wide counters of /proc/stat, including
// the boot time that uptime is derived from.
type statCollector struct {
	stat   statReader
	series *seriesCache
}

func newStatCollector(h *host) (collector, error) {
	return &statCollector{stat: statReader{path: h.procPath("stat"), files: h.files}, series: h.series}, nil
}

func (c *statCollector) Update(ch emitter) error {
	return c.stat.read(func(st *procStat) {
		for _, m := range statMetrics(st, c.series) {
			ch(m)
		}
	})
}

func statMetrics(s *procStat, sc *seriesCache) []prometheus.Metric {
	return []prometheus.Metric{
		sc.metric(intrDesc, prometheus.CounterValue, float64(s.intr)),
		sc.metric(contextSwitchesDesc, prometheus.CounterValue, float64(s.ctxt)),
		sc.metric(forksDesc, prometheus.CounterValue, float64(s.processes)),
		sc.metric(bootTimeDesc, prometheus.GaugeValue, float64(s.btime)),
		sc.metric(procsRunningDesc, prometheus.GaugeValue, float64(s.running)),
		sc.metric(procsBlockedDesc, prometheus.GaugeValue, float64(s.blocked)),
	}
}
