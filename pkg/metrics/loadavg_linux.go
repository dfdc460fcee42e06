package metrics

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
)

func init() { registerCollector("loadavg", newLoadavgCollector) }

var loadDescs = [3]*prometheus.Desc{
	prometheus.NewDesc(namespace+"_load1", "1m load average.", nil, nil),
	prometheus.NewDesc(namespace+"_load5", "5m load average.", nil, nil),
	prometheus.NewDesc(namespace+"_load15", "15m load average.", nil, nil),
}

// loadavgCollector exports /proc/loadavg, read through the kept files.
type loadavgCollector struct{ h *host }

func newLoadavgCollector(h *host) (collector, error) { return &loadavgCollector{h: h}, nil }

func (c *loadavgCollector) Update(ch emitter) error {
	path := c.h.procPath("loadavg")
	var buf [128]byte
	b, err := c.h.files.readSmallFile(path, buf[:])
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	l, err := parseLoadavg(b)
	if err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
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

// parseLoadavg reads the three load averages that begin /proc/loadavg.
func parseLoadavg(b []byte) (*procfs.LoadAvg, error) {
	var loads [3]float64
	b, _, _ = bytes.Cut(b, []byte("\n"))
	rest := b
	for i := range loads {
		var f []byte
		if f, rest = nextField(rest); f == nil {
			return nil, fmt.Errorf("%d fields in %q, want at least 3", i, b)
		}
		v, err := strconv.ParseFloat(string(f), 64)
		if err != nil {
			return nil, err
		}
		loads[i] = v
	}
	return &procfs.LoadAvg{Load1: loads[0], Load5: loads[1], Load15: loads[2]}, nil
}
