package metrics

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

func init() { registerCollector("meminfo", newMeminfoCollector) }

// meminfoCollector exports every field of /proc/meminfo as
// node_memory_<Field>[_bytes]. It parses the file itself rather than through
// procfs.Meminfo because node_exporter exports whatever fields the running
// kernel has, and dashboards rely on those exact names.
type meminfoCollector struct {
	h     *host
	descs descCache
}

func newMeminfoCollector(h *host) (collector, error) { return &meminfoCollector{h: h}, nil }

func (c *meminfoCollector) Update(ch chan<- prometheus.Metric) error {
	path := c.h.procPath("meminfo")
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read meminfo: %w", err)
	}
	defer f.Close()
	fields, err := parseMeminfo(f)
	if err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	for _, fv := range fields {
		typ := prometheus.GaugeValue
		if strings.HasSuffix(fv.name, "_total") {
			typ = prometheus.CounterValue
		}
		d := c.descs.get(fv.name, func() *prometheus.Desc {
			return prometheus.NewDesc(prometheus.BuildFQName(namespace, "memory", fv.name),
				fmt.Sprintf("Memory information field %s.", fv.name), nil, nil)
		})
		ch <- prometheus.MustNewConstMetric(d, typ, fv.value)
	}
	return nil
}

// meminfoKeyReplacer turns "Active(anon)" into "Active_anon".
var meminfoKeyReplacer = strings.NewReplacer("(", "_", ")", "")

type memField struct {
	name  string
	value float64
}

// parseMeminfo reads lines like "Active(anon):   12 kB" into
// {Active_anon_bytes 12288}.
func parseMeminfo(r io.Reader) ([]memField, error) {
	var out []memField
	s := bufio.NewScanner(r)
	line := 0
	for s.Scan() {
		line++
		parts := strings.Fields(s.Text())
		if len(parts) == 0 {
			continue
		}
		if len(parts) < 2 || len(parts) > 3 || !strings.HasSuffix(parts[0], ":") {
			return nil, fmt.Errorf("line %d: malformed %q", line, s.Text())
		}
		v, err := strconv.ParseFloat(parts[1], 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: value of %s: %w", line, parts[0], err)
		}
		key := strings.TrimSuffix(parts[0], ":")
		key = meminfoKeyReplacer.Replace(key)
		if len(parts) == 3 {
			if parts[2] != "kB" {
				return nil, fmt.Errorf("line %d: unknown unit %q", line, parts[2])
			}
			key += "_bytes"
			v *= 1024
		}
		out = append(out, memField{name: key, value: v})
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
