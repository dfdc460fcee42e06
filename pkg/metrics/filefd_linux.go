package metrics

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

func init() { registerCollector("filefd", newFilefdCollector) }

var (
	filefdAllocatedDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "filefd", "allocated"),
		"File descriptor statistics: allocated.", nil, nil)
	filefdMaximumDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "filefd", "maximum"),
		"File descriptor statistics: maximum.", nil, nil)
)

// filefdCollector exports /proc/sys/fs/file-nr.
type filefdCollector struct{ h *host }

func newFilefdCollector(h *host) (collector, error) { return &filefdCollector{h: h}, nil }

func (c *filefdCollector) Update(ch emitter) error {
	path := c.h.procPath("sys", "fs", "file-nr")
	var buf [128]byte
	b, err := c.h.files.readSmallFile(path, buf[:])
	if err != nil {
		return fmt.Errorf("read file-nr: %w", err)
	}
	alloc, max, err := parseFileNr(string(b))
	if err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	ch(c.h.series.metric(filefdAllocatedDesc, prometheus.GaugeValue, alloc))
	ch(c.h.series.metric(filefdMaximumDesc, prometheus.GaugeValue, max))
	return nil
}

// parseFileNr parses "allocated unused maximum".
func parseFileNr(s string) (alloc, max float64, err error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return 0, 0, fmt.Errorf("want 3 fields, got %d in %q", len(f), strings.TrimSpace(s))
	}
	if alloc, err = strconv.ParseFloat(f[0], 64); err != nil {
		return 0, 0, fmt.Errorf("allocated: %w", err)
	}
	if max, err = strconv.ParseFloat(f[2], 64); err != nil {
		return 0, 0, fmt.Errorf("maximum: %w", err)
	}
	return alloc, max, nil
}
