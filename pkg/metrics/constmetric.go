package metrics

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// seriesCache hands out the collectors' metrics, keeping each series'
// label pairs from one scrape to the next. prometheus.NewConstMetric
// builds a series' label pairs anew every time, three allocations per
// label, which were most of a scrape's allocations: a host's scrape is
// the same few hundred series every interval, so a series found in the
// cache only costs the metric that carries its value.
//
// A series not seen for sweepRounds collections is forgotten, so
// interfaces, mounts and textfile series that come and go do not pile
// up. The zero value is ready; a nil *seriesCache builds every metric
// with prometheus.NewConstMetric.
type seriesCache struct {
	mu    sync.Mutex
	seed  maphash.Seed
	m     map[seriesKey]*cachedSeries
	round uint64 // collections so far
}

// sweepRounds is how many collections a series is kept without being
// exported.
const sweepRounds = 16

type seriesKey struct {
	desc *prometheus.Desc
	hash uint64 // of the label values
}

type cachedSeries struct {
	desc   *prometheus.Desc
	values []string // the label values, to tell a hash collision
	pairs  []*dto.LabelPair
	used   uint64 // round of the last collection that exported it
	// slot is where the scraper that stores the series keeps its entry.
	slot atomic.Pointer[seriesSlot]
}

// metric returns a metric of desc with value v and the label values lvs,
// as prometheus.NewConstMetric does. Label values that desc does not
// accept (their number, invalid UTF-8 from a file or an interface alias)
// give an invalid metric, which fails the gather of that one series, not
// the process.
func (c *seriesCache) metric(desc *prometheus.Desc, typ prometheus.ValueType, v float64, lvs ...string) prometheus.Metric {
	if c == nil {
		m, err := prometheus.NewConstMetric(desc, typ, v, lvs...)
		if err != nil {
			return prometheus.NewInvalidMetric(desc, err)
		}
		return m
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[seriesKey]*cachedSeries{}
		c.seed = maphash.MakeSeed()
	}
	key := seriesKey{desc: desc, hash: c.hashValues(lvs)}
	s, ok := c.m[key]
	if !ok || !equalStrings(s.values, lvs) {
		m, err := prometheus.NewConstMetric(desc, typ, v, lvs...)
		if err != nil {
			c.mu.Unlock()
			return prometheus.NewInvalidMetric(desc, err)
		}
		var out dto.Metric
		if err := m.Write(&out); err != nil {
			c.mu.Unlock()
			return prometheus.NewInvalidMetric(desc, err)
		}
		s = &cachedSeries{desc: desc, values: append([]string(nil), lvs...), pairs: out.Label}
		c.m[key] = s
	}
	s.used = c.round
	c.mu.Unlock()
	return &cachedMetric{s: s, typ: typ, v: v}
}

func (c *seriesCache) hashValues(lvs []string) uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	for _, v := range lvs {
		h.WriteString(v)
		h.WriteByte(0xff)
	}
	return h.Sum64()
}

// endRound marks the end of a collection and, every sweepRounds, drops
// the series no collection exported since the last sweep.
func (c *seriesCache) endRound() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sweep(&c.round, c.m, func(s *cachedSeries) uint64 { return s.used }, nil)
}

// sweep advances *round and, every sweepRounds, deletes from m the
// entries not used (used) since the last sweep, handing each to gone
// first when gone is not nil.
func sweep[K comparable, V any](round *uint64, m map[K]V, used func(V) uint64, gone func(V)) {
	*round++
	if *round%sweepRounds != 0 {
		return
	}
	for k, v := range m {
		if *round-used(v) > sweepRounds {
			if gone != nil {
				gone(v)
			}
			delete(m, k)
		}
	}
}

// len is the number of series cached.
func (c *seriesCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// cachedMetric is a constant metric of a series of the seriesCache,
// whose descriptor and label pairs it shares. Nothing downstream changes
// label pairs (the registry copies unsorted ones before sorting), so
// sharing them is safe. It is the one allocation of a cached series per
// collection, so it holds only what changes: 24 bytes, not the 48 of
// the descriptor, pairs, type and value.
type cachedMetric struct {
	s   *cachedSeries
	typ prometheus.ValueType
	v   float64
}

var _ prometheus.Metric = (*cachedMetric)(nil)

func (m *cachedMetric) Desc() *prometheus.Desc { return m.s.desc }

// pairs returns the series' label pairs.
func (m *cachedMetric) pairs() []*dto.LabelPair { return m.s.pairs }

func (m *cachedMetric) Write(out *dto.Metric) error {
	// m is made for one collection and never changed: its value can be
	// pointed at.
	out.Label = m.s.pairs
	switch m.typ {
	case prometheus.CounterValue:
		out.Counter = &dto.Counter{Value: &m.v}
	case prometheus.GaugeValue:
		out.Gauge = &dto.Gauge{Value: &m.v}
	default:
		out.Untyped = &dto.Untyped{Value: &m.v}
	}
	return nil
}
