package metrics

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
)

// directFamily is what the scraper knows of one descriptor of its Direct
// collector.
type directFamily struct {
	name, help, unit string
	err              error          // the descriptor is invalid: its metrics are dropped
	typ              dto.MetricType // of the last metric collected
	round            uint64         // the last scrape that collected it
	listed           uint64         // the last scrape that stored a series of it
	targets          []*ScrapeTarget
}

// DirectCollector is a collector that can hand its metrics to a function
// in the caller's goroutine instead of sending them on a channel, as
// NodeCollector does.
type DirectCollector interface {
	CollectTo(emit func(prometheus.Metric))
}

// collectorList is a Direct collector made of collectors the scraper
// collects one after the other (collectors, collectorsFunc).
type collectorList interface {
	collectorList() []prometheus.Collector
}

// collectDirect collects s.Direct and appends what it hands out as it
// comes, in the scraper's goroutine (collectEach). It returns when the
// collector has returned, with the errors of the metrics it dropped.
func (s *Scraper) collectDirect(ts int64) error {
	s.seen = s.seen[:0]
	var errs []error
	emit := func(m prometheus.Metric) {
		if err := s.addDirect(m, ts); err != nil && len(errs) < 10 {
			errs = append(errs, err)
		}
	}
	var err error
	if l, ok := s.Direct.(collectorList); ok {
		err = collectEach(l.collectorList(), emit, &s.chans)
	} else {
		err = collectTo(s.Direct, emit, &s.chans)
	}
	s.target = nil
	if s.round%sweepRounds == 0 {
		for d, f := range s.direct {
			if s.round-f.round > sweepRounds {
				delete(s.direct, d)
			}
		}
	}
	return errors.Join(append(errs, err)...)
}

// collectEach hands the metrics of each of cs to emit in the caller's
// goroutine (collectTo). One that panics loses what it had not handed
// out, not the others' metrics, as in a registry's gather.
func collectEach(cs []prometheus.Collector, emit func(prometheus.Metric), cc *chanCollector) error {
	var errs []error
	for _, c := range cs {
		if err := collectTo(c, emit, cc); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// collectTo hands every metric of c to emit in the caller's goroutine:
// a DirectCollector hands them over itself; a client_golang metric (a
// Gauge, a Counter, a GaugeFunc), which is its own collector and its only
// metric, is handed over as it is; any other collector sends them on
// cc's channel. A collector that panics drops what it had not handed
// out, as a registry's gather does; the scrape and the process go on.
func collectTo(c prometheus.Collector, emit func(prometheus.Metric), cc *chanCollector) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("collector %T panicked: %v", c, r)
		}
	}()
	switch m := c.(type) {
	case DirectCollector:
		m.CollectTo(emit)
	case prometheus.Metric:
		emit(m)
	default:
		return cc.collect(c, emit)
	}
	return nil
}

// chanCollector collects a collector that only sends its metrics on a
// channel (client_golang's vectors, its Go and process collectors) in the
// caller's goroutine, on a channel with room for all it sends.
//
// A registry's gather, and this scraper before, ran each such collector
// in a goroutine of its own and took its metrics off the channel as they
// came. Each of those goroutines, and each metric that found the
// receiver waiting, woke another thread of the process, which on a small
// virtual machine cost more than collecting the metrics. Here the
// channel holds twice as many as the collector sent last time, so it
// never blocks; one that sends more than that blocks until rescueAfter,
// when a goroutine started by a timer (armed for every collection,
// started only then) empties the channel until the collector returns.
// The zero value is ready; one collection at a time.
type chanCollector struct {
	ch   chan prometheus.Metric
	sent int // the most metrics a collection sent, for the channel's room
	// rescue runs drain when a collection blocks; stop ends it, drained
	// tells it ended. overflow is what it took off the channel.
	rescue   *time.Timer
	stop     chan struct{}
	drained  chan struct{}
	overflow []prometheus.Metric
}

const (
	// minChanRoom and maxChanRoom bound the channel's room.
	minChanRoom, maxChanRoom = 256, 1 << 16
	// rescueAfter is how long a collection may run before its channel is
	// emptied by another goroutine.
	rescueAfter = 20 * time.Millisecond
)

// collect collects c on the channel and hands what it sent to emit, in
// the order sent.
func (cc *chanCollector) collect(c prometheus.Collector, emit func(prometheus.Metric)) error {
	// What a collection that panicked in emit left is dropped.
	for len(cc.ch) > 0 {
		<-cc.ch
	}
	clear(cc.overflow)
	cc.overflow = cc.overflow[:0]
	if room := min(max(minChanRoom, 2*cc.sent), maxChanRoom); cap(cc.ch) < room {
		cc.ch = make(chan prometheus.Metric, room)
	}
	if cc.rescue == nil {
		cc.stop, cc.drained = make(chan struct{}, 1), make(chan struct{}, 1)
		cc.rescue = time.AfterFunc(rescueAfter, cc.drain)
	} else {
		cc.rescue.Reset(rescueAfter)
	}
	var panicked any
	func() {
		defer func() { panicked = recover() }()
		c.Collect(cc.ch)
	}()
	if !cc.rescue.Stop() {
		// The rescue runs, or ran: end it, and take what it took.
		cc.stop <- struct{}{}
		<-cc.drained
	}
	n := len(cc.overflow) + len(cc.ch)
	for i, m := range cc.overflow {
		cc.overflow[i] = nil
		emit(m)
	}
	cc.overflow = cc.overflow[:0]
	for len(cc.ch) > 0 {
		emit(<-cc.ch)
	}
	cc.sent = max(cc.sent, n)
	if panicked != nil {
		return fmt.Errorf("collector %T panicked: %v", c, panicked)
	}
	return nil
}

// drain takes metrics off the channel into overflow until told to stop.
func (cc *chanCollector) drain() {
	defer func() { cc.drained <- struct{}{} }()
	for {
		select {
		case m := <-cc.ch:
			cc.overflow = append(cc.overflow, m)
		case <-cc.stop:
			return
		}
	}
}

// addDirect appends the samples of one metric of the Direct collector.
func (s *Scraper) addDirect(m prometheus.Metric, ts int64) error {
	f := s.directFamily(m.Desc())
	if f.err != nil {
		return f.err
	}
	if cm, ok := m.(*cachedMetric); ok {
		// The series cache's metrics carry their label pairs, checked
		// when the series was first made, and their value as it is.
		f.typ = valueTypeDTO(cm.typ)
		s.list(f)
		if len(f.targets) > 1 {
			s.forTargets(f.targets, func() { s.add(ts, f.name, cm.pairs(), cm.v, "", "") })
			return nil
		}
		s.target = nil
		if len(f.targets) == 1 {
			s.target = f.targets[0]
		}
		// Stored under one target (or none), as nearly all are: the
		// series keeps its entry, found again without a map.
		slot := cm.s.slot.Load()
		if slot != nil && slot.s == s && slot.target == s.target && !slot.e.gone {
			s.use(slot.e, ts, cm.v)
			return nil
		}
		e := s.add(ts, f.name, cm.pairs(), cm.v, "", "")
		cm.s.slot.Store(&seriesSlot{s: s, target: s.target, e: e})
		return nil
	}
	s.dm.Reset()
	if err := m.Write(&s.dm); err != nil {
		return fmt.Errorf("collect %s: %w", f.name, err)
	}
	switch {
	case s.dm.Counter != nil:
		f.typ = dto.MetricType_COUNTER
	case s.dm.Gauge != nil:
		f.typ = dto.MetricType_GAUGE
	case s.dm.Summary != nil:
		f.typ = dto.MetricType_SUMMARY
	case s.dm.Histogram != nil:
		f.typ = dto.MetricType_HISTOGRAM
	case s.dm.Untyped != nil:
		f.typ = dto.MetricType_UNTYPED
	default:
		return fmt.Errorf("collect %s: a metric without a value", f.name)
	}
	if err := checkPairs(f.name, s.dm.Label); err != nil {
		return err
	}
	s.list(f)
	s.forTargets(f.targets, func() { s.flattenMetric(f.typ, &s.dm, f.name, ts) })
	return nil
}

// list enters f in the families of this scrape (its metadata), once.
func (s *Scraper) list(f *directFamily) {
	if f.listed != s.round {
		f.listed = s.round
		s.seen = append(s.seen, f)
	}
}

// checkPairs refuses label pairs a registry's gather refuses: a name that
// is not a label name, or reserved, a value that is not UTF-8. Constant
// metrics were checked when they were made; this guards other metrics.
func checkPairs(family string, pairs []*dto.LabelPair) error {
	for _, p := range pairs {
		if err := checkPair(p.GetName(), p.GetValue()); err != nil {
			return fmt.Errorf("collect %s: %w", family, err)
		}
	}
	return nil
}

// directFamily returns what the scraper knows of d, learning it the first
// time d is collected, and its targets afresh in each scrape (the
// textfile collector's families change with its files).
func (s *Scraper) directFamily(d *prometheus.Desc) *directFamily {
	f, ok := s.direct[d]
	if !ok {
		f = &directFamily{}
		f.name, f.help, f.unit, f.err = descFields(d)
		if s.direct == nil {
			s.direct = map[*prometheus.Desc]*directFamily{}
		}
		s.direct[d] = f
	}
	if f.round != s.round {
		f.round = s.round
		f.targets = s.targetsOf(f.name, f.targets[:0])
	}
	return f
}

// descFields reads a descriptor's metric name, help and unit, which
// prometheus.Desc keeps to itself but for its String form,
// `Desc{fqName: "name", help: "help", unit: "unit", ...}`, read once per
// descriptor.
func descFields(d *prometheus.Desc) (name, help, unit string, err error) {
	str := d.String()
	name, rest, err := quotedField(str, "Desc{fqName: ")
	if err == nil {
		help, rest, err = quotedField(rest, ", help: ")
	}
	if err == nil {
		unit, _, err = quotedField(rest, ", unit: ")
	}
	if err != nil || name == "" {
		return "", "", "", fmt.Errorf("invalid metric descriptor %s", str)
	}
	return name, help, unit, nil
}

// quotedField reads the Go-quoted string after prefix at the start of s,
// and returns it unquoted with what follows it.
func quotedField(s, prefix string) (string, string, error) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return "", "", errors.New("no " + strings.TrimSpace(prefix))
	}
	q, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return "", "", err
	}
	v, err := strconv.Unquote(q)
	return v, rest[len(q):], err
}

func valueTypeDTO(t prometheus.ValueType) dto.MetricType {
	switch t {
	case prometheus.CounterValue:
		return dto.MetricType_COUNTER
	case prometheus.GaugeValue:
		return dto.MetricType_GAUGE
	}
	return dto.MetricType_UNTYPED
}

// checkPair tells whether a label pair is one a registry's gather accepts:
// a valid name that is not reserved (__), a UTF-8 value.
func checkPair(name, value string) error {
	if !model.UTF8Validation.IsValidLabelName(name) || strings.HasPrefix(name, model.ReservedLabelPrefix) {
		return fmt.Errorf("invalid label name %q", name)
	}
	if !utf8.ValidString(value) {
		return fmt.Errorf("label %s: value is not UTF-8: %q", name, value)
	}
	return nil
}
