package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

func init() { registerCollector("cpu", newCPUCollector) }

var (
	cpuSecondsDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "cpu", "seconds_total"),
		"Seconds the CPUs spent in each mode.",
		[]string{"cpu", "mode"}, nil,
	)
	cpuGuestSecondsDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "cpu", "guest_seconds_total"),
		"Seconds the CPUs spent in guests (VMs) for each mode.",
		[]string{"cpu", "mode"}, nil,
	)
)

// cpuCollector exports per-CPU time from /proc/stat.
type cpuCollector struct {
	stat   statReader
	series *seriesCache
}

func newCPUCollector(h *host) (collector, error) {
	return &cpuCollector{stat: statReader{path: h.procPath("stat"), files: h.files}, series: h.series}, nil
}

func (c *cpuCollector) Update(ch emitter) error {
	return c.stat.read(func(st *procStat) {
		for _, m := range cpuMetrics(st.cpus, c.series) {
			ch(m)
		}
	})
}

// cpuMetrics turns parsed /proc/stat CPU lines into node_cpu_* metrics.
func cpuMetrics(cpus []cpuTimes, sc *seriesCache) []prometheus.Metric {
	out := make([]prometheus.Metric, 0, len(cpus)*10)
	for _, s := range cpus {
		for _, m := range [...]struct {
			mode string
			v    float64
		}{
			{"user", s.user}, {"nice", s.nice}, {"system", s.system}, {"idle", s.idle},
			{"iowait", s.iowait}, {"irq", s.irq}, {"softirq", s.softirq}, {"steal", s.steal},
		} {
			out = append(out, sc.metric(cpuSecondsDesc, prometheus.CounterValue, m.v, s.id, m.mode))
		}
		out = append(out,
			sc.metric(cpuGuestSecondsDesc, prometheus.CounterValue, s.guest, s.id, "user"),
			sc.metric(cpuGuestSecondsDesc, prometheus.CounterValue, s.guestNice, s.id, "nice"),
		)
	}
	return out
}
