package metrics

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
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
type cpuCollector struct{ h *host }

func newCPUCollector(h *host) (collector, error) { return &cpuCollector{h: h}, nil }

func (c *cpuCollector) Update(ch chan<- prometheus.Metric) error {
	stat, err := c.h.proc.Stat()
	if err != nil {
		return fmt.Errorf("read %s: %w", c.h.procPath("stat"), err)
	}
	for _, m := range cpuMetrics(stat.CPU) {
		ch <- m
	}
	return nil
}

// cpuMetrics turns parsed /proc/stat CPU lines into node_cpu_* metrics.
func cpuMetrics(cpus map[int64]procfs.CPUStat) []prometheus.Metric {
	ids := make([]int64, 0, len(cpus))
	for id := range cpus {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	out := make([]prometheus.Metric, 0, len(ids)*10)
	for _, id := range ids {
		s := cpus[id]
		cpu := strconv.FormatInt(id, 10)
		for _, m := range []struct {
			mode string
			v    float64
		}{
			{"user", s.User}, {"nice", s.Nice}, {"system", s.System}, {"idle", s.Idle},
			{"iowait", s.Iowait}, {"irq", s.IRQ}, {"softirq", s.SoftIRQ}, {"steal", s.Steal},
		} {
			out = append(out, prometheus.MustNewConstMetric(cpuSecondsDesc, prometheus.CounterValue, m.v, cpu, m.mode))
		}
		out = append(out,
			prometheus.MustNewConstMetric(cpuGuestSecondsDesc, prometheus.CounterValue, s.Guest, cpu, "user"),
			prometheus.MustNewConstMetric(cpuGuestSecondsDesc, prometheus.CounterValue, s.GuestNice, cpu, "nice"),
		)
	}
	return out
}
