package metrics

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

func init() { registerCollector("meminfo", newMeminfoCollector) }

// meminfoCollector exports every field of /proc/meminfo as
// node_memory_<Field>[_bytes]. It parses the file itself rather than through
// procfs.Meminfo because node_exporter exports whatever fields the running
// kernel has, and dashboards rely on those exact names. The file is read
// into a reused buffer and each field's name is worked out once.
type meminfoCollector struct {
	h *host

	mu       sync.Mutex
	buf      []byte
	descs    map[string]*prometheus.Desc // fields without a unit
	descsKB  map[string]*prometheus.Desc // fields in kB, exported in bytes
	counters map[*prometheus.Desc]bool
}

func newMeminfoCollector(h *host) (collector, error) {
	return &meminfoCollector{h: h, descs: map[string]*prometheus.Desc{}, descsKB: map[string]*prometheus.Desc{},
		counters: map[*prometheus.Desc]bool{}}, nil
}

func (c *meminfoCollector) Update(ch emitter) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	path := c.h.procPath("meminfo")
	b, err := c.h.files.readFileReuse(path, c.buf)
	c.buf = b
	if err != nil {
		return fmt.Errorf("read meminfo: %w", err)
	}
	err = parseMeminfo(b, func(field []byte, kB bool, v float64) {
		d := c.desc(field, kB)
		typ := prometheus.GaugeValue
		if c.counters[d] {
			typ = prometheus.CounterValue
		}
		ch(c.h.series.metric(d, typ, v))
	})
	if err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}

func (c *meminfoCollector) desc(field []byte, kB bool) *prometheus.Desc {
	m := c.descs
	if kB {
		m = c.descsKB
	}
	if d, ok := m[string(field)]; ok {
		return d
	}
	name := meminfoName(string(field), kB)
	d := prometheus.NewDesc(prometheus.BuildFQName(namespace, "memory", name),
		fmt.Sprintf("Memory information field %s.", name), nil, nil)
	m[string(field)] = d
	c.counters[d] = strings.HasSuffix(name, "_total")
	return d
}

// meminfoKeyReplacer turns "Active(anon)" into "Active_anon".
var meminfoKeyReplacer = strings.NewReplacer("(", "_", ")", "")

// meminfoName is the metric name of a /proc/meminfo field: "Active(anon)"
// in kB is Active_anon_bytes.
func meminfoName(field string, kB bool) string {
	name := meminfoKeyReplacer.Replace(field)
	if kB {
		name += "_bytes"
	}
	return name
}

// parseMeminfo reads lines like "Active(anon):   12 kB", calling emit with
// the field ("Active(anon)"), whether it was in kB, and its value (in
// bytes when it was in kB).
func parseMeminfo(b []byte, emit func(field []byte, kB bool, v float64)) error {
	for line := 1; len(b) > 0; line++ {
		var l []byte
		l, b, _ = bytes.Cut(b, []byte("\n"))
		key, rest := nextField(l)
		if len(key) == 0 {
			continue
		}
		value, rest := nextField(rest)
		unit, rest := nextField(rest)
		if extra, _ := nextField(rest); len(value) == 0 || len(extra) > 0 || key[len(key)-1] != ':' {
			return fmt.Errorf("line %d: malformed %q", line, l)
		}
		v, err := strconv.ParseFloat(string(value), 64)
		if err != nil {
			return fmt.Errorf("line %d: value of %s: %w", line, key, err)
		}
		kB := false
		if len(unit) > 0 {
			if string(unit) != "kB" {
				return fmt.Errorf("line %d: unknown unit %q", line, unit)
			}
			kB = true
			v *= 1024
		}
		emit(key[:len(key)-1], kB, v)
	}
	return nil
}
