package metrics

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

func init() { registerCollector("vmstat", newVmstatCollector) }

// vmstatFields is node_exporter's default --collector.vmstat.fields.
var vmstatFields = regexp.MustCompile(`^(oom_kill|pgpg|pswp|pg.*fault).*`)

// vmstatCollector exports the selected counters of /proc/vmstat (procfs
// has no parser for this file).
type vmstatCollector struct {
	h     *host
	descs descCache
}

func newVmstatCollector(h *host) (collector, error) { return &vmstatCollector{h: h}, nil }

func (c *vmstatCollector) Update(ch chan<- prometheus.Metric) error {
	path := c.h.procPath("vmstat")
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read vmstat: %w", err)
	}
	defer f.Close()
	fields, err := parseVmstat(f)
	if err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	for _, fv := range fields {
		d := c.descs.get(fv.name, func() *prometheus.Desc {
			return prometheus.NewDesc(prometheus.BuildFQName(namespace, "vmstat", fv.name),
				fmt.Sprintf("/proc/vmstat information field %s.", fv.name), nil, nil)
		})
		ch <- prometheus.MustNewConstMetric(d, prometheus.UntypedValue, fv.value)
	}
	return nil
}

func parseVmstat(r io.Reader) ([]memField, error) {
	var out []memField
	s := bufio.NewScanner(r)
	line := 0
	for s.Scan() {
		line++
		parts := strings.Fields(s.Text())
		if len(parts) == 0 {
			continue
		}
		if len(parts) != 2 {
			return nil, fmt.Errorf("line %d: malformed %q", line, s.Text())
		}
		if !vmstatFields.MatchString(parts[0]) {
			continue
		}
		v, err := strconv.ParseFloat(parts[1], 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: value of %s: %w", line, parts[0], err)
		}
		out = append(out, memField{name: parts[0], value: v})
	}
	return out, s.Err()
}
