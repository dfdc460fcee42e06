package metrics

import (
	"fmt"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

func init() { registerCollector("arp", newARPCollector) }

var arpEntriesDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "arp", "entries"),
	"ARP entries by device", []string{"device"}, nil)

// arpCollector counts /proc/net/arp's entries per device. It counts the
// device column of the file itself (procfs parses each entry's addresses,
// which the count does not use).
type arpCollector struct {
	h *host

	mu     sync.Mutex // guards what follows between concurrent gathers
	buf    []byte
	counts map[string]int
}

func newARPCollector(h *host) (collector, error) {
	return &arpCollector{h: h, counts: map[string]int{}}, nil
}

func (c *arpCollector) Update(ch emitter) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	path := c.h.procPath("net", "arp")
	var err error
	if c.buf, err = c.h.files.readFileReuse(path, c.buf); err != nil {
		return fmt.Errorf("read arp table: %w", err)
	}
	clear(c.counts)
	if err := countARPEntries(c.buf, c.counts); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	devs := make([]string, 0, len(c.counts))
	for d := range c.counts {
		devs = append(devs, d)
	}
	sort.Strings(devs)
	for _, d := range devs {
		ch(c.h.series.metric(arpEntriesDesc, prometheus.GaugeValue, float64(c.counts[d]), d))
	}
	return nil
}

// countARPEntries adds the entries of /proc/net/arp to counts by device
// (the sixth column). As procfs, it takes a line of nine fields for the
// header and refuses lines of any other width than six.
func countARPEntries(b []byte, counts map[string]int) error {
	var fields [10][]byte
	for n := 1; len(b) > 0; n++ {
		var line []byte
		line, b = nextLine(b)
		width := 0
		for rest := line; width < len(fields); width++ {
			if fields[width], rest = nextField(rest); fields[width] == nil {
				break
			}
		}
		switch width {
		case 0, 9:
		case 6:
			counts[string(fields[5])]++
		default:
			return fmt.Errorf("line %d: %d columns, want 6", n, width)
		}
	}
	return nil
}
