package metrics

import (
	"errors"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
)

func init() { registerCollector("pressure", newPressureCollector) }

var (
	psiCPUWaitingDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "pressure", "cpu_waiting_seconds_total"),
		"Total time in seconds that processes have waited for CPU time", nil, nil)
	psiIOWaitingDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "pressure", "io_waiting_seconds_total"),
		"Total time in seconds that processes have waited due to IO congestion", nil, nil)
	psiIOStalledDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "pressure", "io_stalled_seconds_total"),
		"Total time in seconds no process could make progress due to IO congestion", nil, nil)
	psiMemWaitingDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "pressure", "memory_waiting_seconds_total"),
		"Total time in seconds that processes have waited for memory", nil, nil)
	psiMemStalledDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "pressure", "memory_stalled_seconds_total"),
		"Total time in seconds no process could make progress due to memory congestion", nil, nil)
)

// pressureCollector exports pressure stall information from /proc/pressure.
type pressureCollector struct{ h *host }

func newPressureCollector(h *host) (collector, error) { return &pressureCollector{h: h}, nil }

func (c *pressureCollector) Update(ch chan<- prometheus.Metric) error {
	for _, res := range []string{"cpu", "io", "memory"} {
		s, err := c.h.proc.PSIStatsForResource(res)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return errNoData // kernel without CONFIG_PSI
			}
			return fmt.Errorf("read %s: %w", c.h.procPath("pressure", res), err)
		}
		for _, m := range pressureMetrics(res, s) {
			ch <- m
		}
	}
	return nil
}

func pressureMetrics(resource string, s procfs.PSIStats) []prometheus.Metric {
	var out []prometheus.Metric
	add := func(d *prometheus.Desc, l *procfs.PSILine) {
		if l != nil {
			out = append(out, prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(l.Total)/1e6))
		}
	}
	switch resource {
	case "cpu":
		add(psiCPUWaitingDesc, s.Some)
	case "io":
		add(psiIOWaitingDesc, s.Some)
		add(psiIOStalledDesc, s.Full)
	case "memory":
		add(psiMemWaitingDesc, s.Some)
		add(psiMemStalledDesc, s.Full)
	}
	return out
}
