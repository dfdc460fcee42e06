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

func (c *loadavgCollector) Update(ch emitter) error {
	l, err := c.h.proc.LoadAvg()
	if err != nil {
		return fmt.Errorf("read %s: %w", c.h.procPath("loadavg"), err)
	}
	for _, m := range loadavgMetrics(l, c.h.series) {
		ch(m)
	}
	return nil
}

func loadavgMetrics(l *procfs.LoadAvg, sc *seriesCache) []prometheus.Metric {
	return []prometheus.Metric{
		sc.metric(loadDescs[0], prometheus.GaugeValue, l.Load1),
		sc.metric(loadDescs[1], prometheus.GaugeValue, l.Load5),
		sc.metric(loadDescs[2], prometheus.GaugeValue, l.Load15),
	}
}
