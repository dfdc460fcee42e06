package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

func init() { registerCollector("entropy", newEntropyCollector) }

var (
	entropyAvailDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "entropy", "available_bits"),
		"Bits of available entropy.", nil, nil)
	entropyPoolDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "entropy", "pool_size_bits"),
		"Bits of entropy pool.", nil, nil)
)

// entropyCollector exports /proc/sys/kernel/random/{entropy_avail,poolsize}.
type entropyCollector struct{ h *host }

func newEntropyCollector(h *host) (collector, error) { return &entropyCollector{h: h}, nil }

func (c *entropyCollector) Update(ch emitter) error {
	avail, err := c.h.files.readNumberFile(c.h.procPath("sys", "kernel", "random", "entropy_avail"))
	if err != nil {
		return fmt.Errorf("read entropy: %w", err)
	}
	pool, err := c.h.files.readNumberFile(c.h.procPath("sys", "kernel", "random", "poolsize"))
	if err != nil {
		return fmt.Errorf("read entropy pool size: %w", err)
	}
	ch(c.h.series.metric(entropyAvailDesc, prometheus.GaugeValue, avail))
	ch(c.h.series.metric(entropyPoolDesc, prometheus.GaugeValue, pool))
	return nil
}
