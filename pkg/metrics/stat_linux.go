package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
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
type statCollector struct{ h *host }

func newStatCollector(h *host) (collector, error) { return &statCollector{h: h}, nil }

func (c *statCollector) Update(ch chan<- prometheus.Metric) error {
	s, err := c.h.proc.Stat()
	if err != nil {
		return fmt.Errorf("read %s: %w", c.h.procPath("stat"), err)
	}
	for _, m := range statMetrics(s) {
		ch <- m
	}
	return nil
}

func statMetrics(s procfs.Stat) []prometheus.Metric {
	return []prometheus.Metric{
		prometheus.MustNewConstMetric(intrDesc, prometheus.CounterValue, float64(s.IRQTotal)),
		prometheus.MustNewConstMetric(contextSwitchesDesc, prometheus.CounterValue, float64(s.ContextSwitches)),
		prometheus.MustNewConstMetric(forksDesc, prometheus.CounterValue, float64(s.ProcessCreated)),
		prometheus.MustNewConstMetric(bootTimeDesc, prometheus.GaugeValue, float64(s.BootTime)),
		prometheus.MustNewConstMetric(procsRunningDesc, prometheus.GaugeValue, float64(s.ProcessesRunning)),
		prometheus.MustNewConstMetric(procsBlockedDesc, prometheus.GaugeValue, float64(s.ProcessesBlocked)),
	}
}
