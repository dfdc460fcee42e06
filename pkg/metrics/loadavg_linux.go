package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
)

func init() { registerCollector("loadavg", newLoadavgCollector) }

var loadDescs = [3]*prometheus.Desc{
	prometheus.NewDesc(namespace+"_load1", "1m load average.", nil, nil),
	prometheus.NewDesc(namespace+"_load5", "5m load average.", nil, nil),
	prometheus.NewDesc(namespace+"_load15", "15m load average.", nil, nil),
}

// loadavgCollector exports /proc/loadavg.
type loadavgCollector struct{ h *host }

func newLoadavgCollector(h *host) (collector, error) { return &loadavgCollector{h: h}, nil }

func (c *loadavgCollector) Update(ch chan<- prometheus.Metric) error {
	l, err := c.h.proc.LoadAvg()
	if err != nil {
		return fmt.Errorf("read %s: %w", c.h.procPath("loadavg"), err)
	}
	for _, m := range loadavgMetrics(l) {
		ch <- m
	}
	return nil
}

func loadavgMetrics(l *procfs.LoadAvg) []prometheus.Metric {
	return []prometheus.Metric{
		prometheus.MustNewConstMetric(loadDescs[0], prometheus.GaugeValue, l.Load1),
		prometheus.MustNewConstMetric(loadDescs[1], prometheus.GaugeValue, l.Load5),
		prometheus.MustNewConstMetric(loadDescs[2], prometheus.GaugeValue, l.Load15),
	}
}
