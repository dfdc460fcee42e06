package metrics

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

func init() { registerCollector("vmstat", newVmstatCollector) }

// vmstatFields is node_exporter's default --collector.vmstat.fields.
var vmstatFields = regexp.MustCompile(`^(oom_kill|pgpg|pswp|pg.*fault).*`)

// vmstatCollector exports the selected counters of /proc/vmstat (procfs
// has no parser for this file). The file is read into a reused buffer and
// whether a field is kept is decided once per field name, not matched
// against the filter on every scrape.
type vmstatCollector struct {
	h *host

	mu    sync.Mutex
	buf   []byte
	descs map[string]*prometheus.Desc // field -> desc, nil where filtered out
}

func newVmstatCollector(h *host) (collector, error) {
	return &vmstatCollector{h: h, descs: map[string]*prometheus.Desc{}}, nil
}

func (c *vmstatCollector) Update(ch emitter) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	path := c.h.procPath("vmstat")
	b, err := c.h.files.readFileReuse(path, c.buf)
	c.buf = b
	if err != nil {
		return fmt.Errorf("read vmstat: %w", err)
	}
	err = parseVmstat(b, func(name []byte) bool { return c.desc(name) != nil }, func(name []byte, v float64) {
		ch(c.h.series.metric(c.desc(name), prometheus.UntypedValue, v))
	})
	if err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}

// desc returns the descriptor of a /proc/vmstat field, or nil when
// node_exporter's default field filter drops it.
func (c *vmstatCollector) desc(name []byte) *prometheus.Desc {
	if d, ok := c.descs[string(name)]; ok {
		return d
	}
	n := string(name)
	var d *prometheus.Desc
	if vmstatFields.MatchString(n) {
		d = prometheus.NewDesc(prometheus.BuildFQName(namespace, "vmstat", n),
			fmt.Sprintf("/proc/vmstat information field %s.", n), nil, nil)
	}
	c.descs[n] = d
	return d
}

// parseVmstat reads /proc/vmstat's "name value" lines, calling emit for
// each whose name keep accepts.
func parseVmstat(b []byte, keep func(name []byte) bool, emit func(name []byte, v float64)) error {
	for line := 1; len(b) > 0; line++ {
		var l []byte
		l, b, _ = bytes.Cut(b, []byte("\n"))
		name, rest := nextField(l)
		if len(name) == 0 {
			continue
		}
		value, rest := nextField(rest)
		if extra, _ := nextField(rest); len(value) == 0 || len(extra) > 0 {
			return fmt.Errorf("line %d: malformed %q", line, l)
		}
		if !keep(name) {
			continue
		}
		v, err := strconv.ParseFloat(string(value), 64)
		if err != nil {
			return fmt.Errorf("line %d: value of %s: %w", line, name, err)
		}
		emit(name, v)
	}
	return nil
}
