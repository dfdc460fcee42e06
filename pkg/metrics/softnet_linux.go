package metrics

import (
	"fmt"
	"strconv"
	"sync"

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

// softnetCollector exports /proc/net/softnet_stat, one line per CPU,
// read through the kept files.
type softnetCollector struct {
	h *host

	mu  sync.Mutex // guards buf between concurrent gathers
	buf []byte
}

func newSoftnetCollector(h *host) (collector, error) { return &softnetCollector{h: h}, nil }

func (c *softnetCollector) Update(ch emitter) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	path := c.h.procPath("net", "softnet_stat")
	var err error
	if c.buf, err = c.h.files.readFileReuse(path, c.buf); err != nil {
		return fmt.Errorf("read softnet_stat: %w", err)
	}
	b := c.buf
	for i := 0; len(b) > 0; i++ {
		var line []byte
		line, b = nextLine(b)
		// processed, dropped, time_squeezed: the first three of at least
		// nine hexadecimal columns, as procfs reads them.
		var cols [3]uint64
		width := 0
		for rest := line; ; width++ {
			var f []byte
			if f, rest = nextField(rest); f == nil {
				break
			}
			if width < len(cols) {
				v, err := strconv.ParseUint(string(f), 16, 32)
				if err != nil {
					return fmt.Errorf("parse %s line %d: %w", path, i+1, err)
				}
				cols[width] = v
			}
		}
		if width < 9 {
			return fmt.Errorf("parse %s line %d: %d columns, want at least 9", path, i+1, width)
		}
		// node_exporter 1.5 numbers the lines, which is the CPU index on
		// hosts whose CPUs are all online.
		cpu := strconv.Itoa(i)
		ch(c.h.series.metric(softnetProcessedDesc, prometheus.CounterValue, float64(cols[0]), cpu))
		ch(c.h.series.metric(softnetDroppedDesc, prometheus.CounterValue, float64(cols[1]), cpu))
		ch(c.h.series.metric(softnetSqueezedDesc, prometheus.CounterValue, float64(cols[2]), cpu))
	}
	return nil
}
