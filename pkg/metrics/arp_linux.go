package metrics

import (
	"fmt"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

func init() { registerCollector("arp", newARPCollector) }

var arpEntriesDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "arp", "entries"),
	"ARP entries by device", []string{"device"}, nil)

// arpCollector counts /proc/net/arp's entries per device.
type arpCollector struct{ h *host }

func newARPCollector(h *host) (collector, error) { return &arpCollector{h: h}, nil }

func (c *arpCollector) Update(ch emitter) error {
	entries, err := c.h.proc.GatherARPEntries()
	if err != nil {
		return fmt.Errorf("read arp table: %w", err)
	}
	counts := map[string]int{}
	for _, e := range entries {
		counts[e.Device]++
	}
	devs := make([]string, 0, len(counts))
	for d := range counts {
		devs = append(devs, d)
	}
	sort.Strings(devs)
	for _, d := range devs {
		ch(c.h.series.metric(arpEntriesDesc, prometheus.GaugeValue, float64(counts[d]), d))
	}
	return nil
}
