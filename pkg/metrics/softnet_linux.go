package metrics

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

func init() { registerCollector("softnet", newSoftnetCollector) }

var (
	softnetProcessedDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "softnet", "processed_total"),
		"Number of processed packets", []string{"cpu"}, nil)
	softnetDroppedDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "softnet", "dropped_total"),
		"Number of dropped packets", []string{"cpu"}, nil)
	softnetSqueezedDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "softnet", "times_squeezed_total"),
		"Number of times processing packets ran out of quota", []string{"cpu"}, nil)
)

// softnetCollector exports /proc/net/softnet_stat, one line per CPU.
type softnetCollector struct{ h *host }

func newSoftnetCollector(h *host) (collector, error) { return &softnetCollector{h: h}, nil }

func (c *softnetCollector) Update(ch emitter) error {
	stats, err := c.h.proc.NetSoftnetStat()
	if err != nil {
		return fmt.Errorf("read softnet_stat: %w", err)
	}
	for i, s := range stats {
		// node_exporter 1.5 numbers the lines, which is the CPU index on
		// hosts whose CPUs are all online.
		cpu := strconv.Itoa(i)
		ch(c.h.series.metric(softnetProcessedDesc, prometheus.CounterValue, float64(s.Processed), cpu))
		ch(c.h.series.metric(softnetDroppedDesc, prometheus.CounterValue, float64(s.Dropped), cpu))
		ch(c.h.series.metric(softnetSqueezedDesc, prometheus.CounterValue, float64(s.TimeSqueezed), cpu))
	}
	return nil
}
