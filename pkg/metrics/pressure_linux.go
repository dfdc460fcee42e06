package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"

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
type pressureCollector struct {
	h   *host
	mu  sync.Mutex // guards buf between concurrent gathers
	buf []byte     // the last file read, reused
}

func newPressureCollector(h *host) (collector, error) { return &pressureCollector{h: h}, nil }

func (c *pressureCollector) Update(ch emitter) error {
	for _, res := range []string{"cpu", "io", "memory"} {
		path := c.h.procPath("pressure", res)
		s, err := c.read(path)
		if errors.Is(err, os.ErrNotExist) {
			return errNoData // kernel without CONFIG_PSI
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		for _, m := range pressureMetrics(res, s, c.h.series) {
			ch(m)
		}
	}
	return nil
}

func (c *pressureCollector) read(path string) (procfs.PSIStats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	if c.buf, err = c.h.files.readFileReuse(path, c.buf); err != nil {
		return procfs.PSIStats{}, err
	}
	return parsePSITotals(c.buf)
}

// parsePSITotals reads the total= fields of a /proc/pressure file ("some
// avg10=0.00 avg60=0.00 avg300=0.00 total=123"), all the collector
// exports, into a procfs.PSIStats, without the 4 KiB line scanner per
// file that procfs allocates. A some or full line without a valid total
// is an error, as it is in procfs.
func parsePSITotals(b []byte) (procfs.PSIStats, error) {
	var s procfs.PSIStats
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte("\n"))
		kind, rest, _ := bytes.Cut(line, []byte(" "))
		var dst **procfs.PSILine
		switch string(kind) {
		case "some":
			dst = &s.Some
		case "full":
			dst = &s.Full
		default:
			continue
		}
		_, total, ok := bytes.Cut(rest, []byte("total="))
		if !ok {
			return s, fmt.Errorf("%s line without total: %q", kind, line)
		}
		if i := bytes.IndexByte(total, ' '); i >= 0 {
			total = total[:i]
		}
		v, err := strconv.ParseUint(string(total), 10, 64)
		if err != nil {
			return s, fmt.Errorf("%s line: total %q: %w", kind, total, err)
		}
		*dst = &procfs.PSILine{Total: v}
	}
	return s, nil
}

func pressureMetrics(resource string, s procfs.PSIStats, sc *seriesCache) []prometheus.Metric {
	var out []prometheus.Metric
	add := func(d *prometheus.Desc, l *procfs.PSILine) {
		if l != nil {
			out = append(out, sc.metric(d, prometheus.CounterValue, float64(l.Total)/1e6))
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
