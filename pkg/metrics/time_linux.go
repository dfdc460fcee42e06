package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

func init() { registerCollector("time", newTimeCollector) }

var timeDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "time_seconds"),
	"System time in seconds since epoch (1970).", nil, nil)

// timeCollector exports the system clock; with node_boot_time_seconds it
// gives the uptime dashboards show.
type timeCollector struct{ h *host }

func newTimeCollector(h *host) (collector, error) { return &timeCollector{h: h}, nil }

func (c *timeCollector) Update(ch chan<- prometheus.Metric) error {
	now := c.h.opts.Now()
	ch <- prometheus.MustNewConstMetric(timeDesc, prometheus.GaugeValue, float64(now.UnixNano())/1e9)
	return nil
}
