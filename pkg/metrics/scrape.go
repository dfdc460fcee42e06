package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"

	"github.com/hostd/hostd/internal/service"
)

// Sample is one appended value.
type Sample struct {
	Labels labels.Labels
	T      int64 // milliseconds since the epoch
	V      float64
}

// Metadata describes a metric family as /api/v1/metadata reports it.
type Metadata struct {
	Type string `json:"type"`
	Help string `json:"help"`
	Unit string `json:"unit"`
}

// ScrapeResult tells what one scrape appended.
type ScrapeResult struct {
	Samples  int // samples appended
	Stale    int // stale markers written for series that disappeared
	Rejected int // samples the TSDB refused (out of order, duplicate)
	Duration time.Duration
}

// Scraper gathers a prometheus.Gatherer and appends the result to storage
// as one scrape, the way Prometheus scrapes a target: every sample gets the
// scrape's timestamp, and a series present in the previous scrape but not
// in this one gets a stale marker so queries stop returning it at once.
//
// One host's scrape is the same few hundred series every interval, so the
// scraper keeps what it learned about each series (its labels and storage
// reference, as Prometheus' scrape cache does) and reuses its buffers:
// a scrape that finds the same series as the last one allocates no labels.
type Scraper struct {
	Gatherer prometheus.Gatherer
	// Direct, if set, is a collector whose metrics the scraper appends
	// as they are collected, without a registry's gather: no protobuf
	// copy of each metric, no per-scrape family maps, checks and sorting.
	// Its series are stored exactly as a registry gathering it would have
	// given them (TestDirectMatchesRegistry). Gatherer must not gather it
	// too. The node collectors, most of a host's series, go this way;
	// /metrics still serves them through the registry.
	Direct  prometheus.Collector
	Storage storage.Appendable
	// Clock gives each scrape its timestamp and measures its duration.
	// Default: the real clock.
	Clock service.Clock
	// OnSamples, if set, receives every scrape's samples (stale markers
	// included) after they were committed; the remote writer hooks in here.
	// The slice is reused by the next scrape: copy what you keep.
	OnSamples func([]Sample)
	// Targets, if set, give every stored series the job and instance
	// labels Prometheus gives a scraped target's series, and add one
	// up{job,instance} series per target. A family goes to the first
	// target whose Families accepts it; a family no target accepts is
	// stored without job and instance. Nil stores the series as
	// gathered, without up.
	Targets []ScrapeTarget

	scrapeMu sync.Mutex // one scrape at a time; guards the fields below
	// series holds the series of the last scrape (and those this scrape
	// found so far) by label hash; last lists the last scrape's and cur
	// this one's, reused in turn. An entry lives from the scrape that
	// first has its series to the one that marks it stale, so a series
	// found again costs no map update.
	series     map[uint64]*seriesEntry
	last, cur  []*seriesEntry
	samples    []Sample       // this scrape's samples, reused
	entries    []*seriesEntry // the series of each sample, reused
	builder    labels.ScratchBuilder
	target     *ScrapeTarget   // the target of the family being flattened
	famTargets []*ScrapeTarget // the targets of the family being flattened, reused
	scratch    labels.Labels   // the builder's output before it is known to be new
	// known and spareKnown map a gathered series, by the identity of its
	// label pairs, to its entry: client metric vectors hand out the same
	// label pairs every scrape, so a series seen last scrape is found
	// without building, sorting and hashing its labels. known is the
	// last scrape's; entries hold on to their label pairs, so their
	// address cannot be reused by another series while the entry exists.
	// The series cache's metrics skip even that: their cachedSeries
	// points to the entry (seriesSlot).
	known, spareKnown map[seriesIdentity]knownSeries
	// direct holds what the scraper learned of each descriptor Direct
	// collects (name, help, type, targets); round counts the scrapes, and
	// seen lists the families collected in this one.
	direct map[*prometheus.Desc]*directFamily
	round  uint64
	seen   []*directFamily
	dm     dto.Metric          // a Direct metric that is not the series cache's, reused
	chans  chanCollector       // collects Direct's collectors that send on a channel
	names  map[string]struct{} // family names of this scrape, reused

	mu   sync.RWMutex
	meta map[string]Metadata
}

// ScrapeTarget is one job of the in-process scrape, as a scrape_config's
// target is in Prometheus.
type ScrapeTarget struct {
	Job      string // value of the job label
	Instance string // value of the instance label
	// Families tells whether a metric family (by name) belongs to this
	// target; nil accepts every family.
	Families func(name string) bool
	// Also tells whether a family that belongs to another target is
	// stored under this one too; nil takes none.
	Also func(name string) bool
}

// seriesIdentity tells a gathered series apart by the address of its
// label pairs, its name (a family's series, or its _sum, _count, _bucket),
// the extra label of summaries and histograms, and its target.
type seriesIdentity struct {
	pairs  *dto.LabelPair // the first label pair; nil without labels
	n      int            // number of label pairs
	name   string
	ln, lv string
	target *ScrapeTarget
}

type knownSeries struct {
	e     *seriesEntry
	pairs []*dto.LabelPair // kept so the address stays this series'
}

// seriesEntry is what the scraper remembers of one series between
// scrapes.
type seriesEntry struct {
	labels labels.Labels
	hash   uint64
	ref    storage.SeriesRef // 0 until the storage returned one
	// born is the scrape that first had the series, round the last one
	// that had it; gone is set once it was marked stale and left
	// Scraper.series.
	born, round uint64
	gone        bool
}

// seriesSlot is where a series of the series cache keeps its entry in
// the scraper that stores it (cachedSeries.slot): the scraper, the
// target it stored the series under, and the entry. A slot is never
// changed, only replaced: another scraper collecting the same series
// finds a slot that is not its own and takes the slower way.
type seriesSlot struct {
	s      *Scraper
	target *ScrapeTarget
	e      *seriesEntry
}

// Metadata returns the metric families seen in the last scrape.
func (s *Scraper) Metadata() map[string]Metadata {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.meta
}

// Scrape gathers once and appends. A gather error that still returned
// families (one collector failed) appends what was gathered.
func (s *Scraper) Scrape(ctx context.Context) (ScrapeResult, error) {
	s.scrapeMu.Lock()
	defer s.scrapeMu.Unlock()
	s.round++
	clock := s.Clock
	if clock == nil {
		clock = service.RealClock{}
	}
	start := clock.Now()
	ts := start.UnixMilli()
	var (
		mfs       []*dto.MetricFamily
		gatherErr error
	)
	if s.Gatherer != nil {
		mfs, gatherErr = s.Gatherer.Gather()
		if gatherErr != nil && len(mfs) == 0 && s.Direct == nil {
			return ScrapeResult{}, fmt.Errorf("gather metrics: %w", gatherErr)
		}
	}

	if s.series == nil {
		s.series = map[uint64]*seriesEntry{}
	}
	clear(s.cur)
	s.cur = s.cur[:0]
	if s.spareKnown == nil {
		s.spareKnown = make(map[seriesIdentity]knownSeries, len(s.known))
	}
	clear(s.spareKnown)
	s.flatten(mfs, ts)
	if s.Direct != nil {
		// A metric the collector could not make (a label value that is
		// not UTF-8) drops that series, as a registry's gather does; a
		// panic drops what the collector had not yet sent.
		_ = s.collectDirect(ts)
	}
	// up is 1 for every target: gathering in-process either returns
	// families or fails the scrape above.
	for i := range s.Targets {
		s.target = &s.Targets[i]
		s.add(ts, "up", nil, 1, "", "")
	}
	s.target = nil
	samples := s.samples
	var stale []*seriesEntry
	for _, e := range s.last {
		if e.round != s.round {
			stale = append(stale, e)
		}
	}
	sort.Slice(stale, func(i, j int) bool { return labels.Compare(stale[i].labels, stale[j].labels) < 0 })

	res := ScrapeResult{}
	app := s.Storage.Appender(ctx)
	for i, smp := range samples {
		e := s.entries[i]
		ref, err := app.Append(e.ref, smp.Labels, smp.T, smp.V)
		if err != nil {
			if rejected(err) {
				res.Rejected++
				continue
			}
			_ = app.Rollback()
			s.forgetNew()
			return res, fmt.Errorf("append %s: %w", smp.Labels, err)
		}
		e.ref = ref
	}
	staleSamples := make([]Sample, len(stale))
	for i, e := range stale {
		smp := Sample{Labels: e.labels, T: ts, V: math.Float64frombits(value.StaleNaN)}
		staleSamples[i] = smp
		if _, err := app.Append(e.ref, smp.Labels, smp.T, smp.V); err != nil {
			if rejected(err) {
				res.Rejected++
				continue
			}
			_ = app.Rollback()
			s.forgetNew()
			return res, fmt.Errorf("append %s: %w", smp.Labels, err)
		}
	}
	if err := app.Commit(); err != nil {
		s.forgetNew()
		return res, fmt.Errorf("commit scrape: %w", err)
	}
	res.Samples = len(samples) - res.Rejected
	res.Stale = len(stale)
	for _, e := range stale {
		if s.series[e.hash] == e {
			delete(s.series, e.hash)
		}
		e.gone = true
	}
	s.last, s.cur = s.cur, s.last
	s.known, s.spareKnown = s.spareKnown, s.known
	if meta, changed := s.familiesMetadata(mfs, s.Metadata()); changed {
		s.mu.Lock()
		s.meta = meta
		s.mu.Unlock()
	}
	if s.OnSamples != nil {
		s.OnSamples(append(samples, staleSamples...))
	}
	res.Duration = clock.Now().Sub(start)
	return res, nil
}

// forgetNew undoes what a scrape that failed learned of new series: they
// leave Scraper.series, as if the scrape had not happened. The last
// scrape's series stay the last: the next scrape marks those it does not
// find stale.
func (s *Scraper) forgetNew() {
	for _, e := range s.cur {
		if e.born == s.round {
			if s.series[e.hash] == e {
				delete(s.series, e.hash)
			}
			e.gone = true
		}
	}
}

// rejected tells the append errors that refuse one sample (out of order,
// duplicate, too old) from those that fail the scrape.
func rejected(err error) bool {
	return errors.Is(err, storage.ErrOutOfOrderSample) || errors.Is(err, storage.ErrDuplicateSampleForTimestamp) ||
		errors.Is(err, storage.ErrOutOfBounds) || errors.Is(err, storage.ErrTooOldSample)
}

// flatten turns gathered families into s.samples (and their label hashes
// into s.hashes) the way the text exposition format spells them: summaries
// and classic histograms become their _sum, _count, quantile and _bucket
// series. A series the last scrape had keeps its labels and storage
// reference.
func (s *Scraper) flatten(mfs []*dto.MetricFamily, ts int64) {
	s.samples, s.entries = s.samples[:0], s.entries[:0]
	for _, mf := range mfs {
		name := mf.GetName()
		s.famTargets = s.targetsOf(name, s.famTargets[:0])
		s.forTargets(s.famTargets, func() { s.flattenFamily(mf, name, ts) })
	}
	s.target = nil
}

// forTargets runs f with s.target set to each of targets in turn, or once
// with no target when there are none.
func (s *Scraper) forTargets(targets []*ScrapeTarget, f func()) {
	if len(targets) == 0 {
		s.target = nil
		f()
		return
	}
	for _, t := range targets {
		s.target = t
		f()
	}
}

// targetsOf appends to dst the targets a family is stored under: the first
// target whose Families accepts it, then those whose Also takes it.
func (s *Scraper) targetsOf(name string, dst []*ScrapeTarget) []*ScrapeTarget {
	n := len(dst)
	for i := range s.Targets {
		if f := s.Targets[i].Families; f == nil || f(name) {
			dst = append(dst, &s.Targets[i])
			break
		}
	}
	for i := range s.Targets {
		t := &s.Targets[i]
		if t.Also != nil && t.Also(name) && (len(dst) == n || dst[n] != t) {
			dst = append(dst, t)
		}
	}
	return dst
}

// flattenFamily appends the samples of one family under s.target.
func (s *Scraper) flattenFamily(mf *dto.MetricFamily, name string, ts int64) {
	typ := mf.GetType()
	for _, m := range mf.GetMetric() {
		s.flattenMetric(typ, m, name, ts)
	}
}

// flattenMetric appends the samples of one metric of a family of type typ
// under s.target.
func (s *Scraper) flattenMetric(typ dto.MetricType, m *dto.Metric, name string, ts int64) {
	pairs := m.GetLabel()
	switch typ {
	case dto.MetricType_COUNTER:
		s.add(ts, name, pairs, m.GetCounter().GetValue(), "", "")
	case dto.MetricType_GAUGE:
		s.add(ts, name, pairs, m.GetGauge().GetValue(), "", "")
	case dto.MetricType_SUMMARY:
		sm := m.GetSummary()
		for _, q := range sm.GetQuantile() {
			s.add(ts, name, pairs, q.GetValue(), "quantile", formatFloat(q.GetQuantile()))
		}
		s.add(ts, name+"_sum", pairs, sm.GetSampleSum(), "", "")
		s.add(ts, name+"_count", pairs, float64(sm.GetSampleCount()), "", "")
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		h := m.GetHistogram()
		inf := false
		for _, b := range h.GetBucket() {
			if math.IsInf(b.GetUpperBound(), 1) {
				inf = true
			}
			s.add(ts, name+"_bucket", pairs, float64(b.GetCumulativeCount()), "le", formatFloat(b.GetUpperBound()))
		}
		if !inf {
			s.add(ts, name+"_bucket", pairs, float64(h.GetSampleCount()), "le", "+Inf")
		}
		s.add(ts, name+"_sum", pairs, h.GetSampleSum(), "", "")
		s.add(ts, name+"_count", pairs, float64(h.GetSampleCount()), "", "")
	default:
		s.add(ts, name, pairs, m.GetUntyped().GetValue(), "", "")
	}
}

// add appends one sample of series name with the labels pairs plus, if ln
// is set, the label ln=lv, and returns the series' entry.
func (s *Scraper) add(ts int64, name string, pairs []*dto.LabelPair, v float64, ln, lv string) *seriesEntry {
	id := seriesIdentity{n: len(pairs), name: name, ln: ln, lv: lv, target: s.target}
	if len(pairs) > 0 {
		id.pairs = pairs[0]
	}
	if k, ok := s.known[id]; ok && !k.e.gone {
		s.spareKnown[id] = k
		s.use(k.e, ts, v)
		return k.e
	}
	b := &s.builder
	b.Reset()
	b.Add(labels.MetricName, name)
	for _, l := range pairs {
		n := l.GetName()
		if s.target != nil && (n == "job" || n == "instance") {
			// Prometheus keeps a target's own job and instance labels
			// under exported_ when honor_labels is off.
			n = "exported_" + n
		}
		b.Add(n, l.GetValue())
	}
	if ln != "" {
		b.Add(ln, lv)
	}
	if t := s.target; t != nil {
		b.Add("instance", t.Instance)
		b.Add("job", t.Job)
	}
	b.Sort()
	b.Overwrite(&s.scratch)
	h := s.scratch.Hash()
	e := s.series[h]
	if e == nil || !labels.Equal(e.labels, s.scratch) {
		// A new series, or one whose hash another has (it takes the
		// hash's place; the other is found again by its labels).
		e = &seriesEntry{labels: s.scratch.Copy(), hash: h, born: s.round}
		s.series[h] = e
	}
	s.spareKnown[id] = knownSeries{e: e, pairs: pairs}
	s.use(e, ts, v)
	return e
}

// use appends one sample of the series of e.
func (s *Scraper) use(e *seriesEntry, ts int64, v float64) {
	if e.round != s.round {
		e.round = s.round
		s.cur = append(s.cur, e)
	}
	s.samples = append(s.samples, Sample{Labels: e.labels, T: ts, V: v})
	s.entries = append(s.entries, e)
}

// familiesMetadata returns the metadata of the families of this scrape
// (gathered and collected directly), and whether it differs from last:
// an unchanged set keeps the map the API already holds instead of
// building a new one every scrape.
func (s *Scraper) familiesMetadata(mfs []*dto.MetricFamily, last map[string]Metadata) (map[string]Metadata, bool) {
	if s.names == nil {
		s.names = make(map[string]struct{}, len(last))
	}
	clear(s.names)
	same := true
	check := func(name string, md Metadata) {
		s.names[name] = struct{}{}
		if same {
			old, ok := last[name]
			same = ok && old == md
		}
	}
	for _, mf := range mfs {
		check(mf.GetName(), Metadata{Type: metricTypeName(mf.GetType()), Help: mf.GetHelp(), Unit: mf.GetUnit()})
	}
	for _, f := range s.seen {
		check(f.name, Metadata{Type: metricTypeName(f.typ), Help: f.help, Unit: f.unit})
	}
	if same && len(s.names) == len(last) {
		return last, false
	}
	meta := make(map[string]Metadata, len(s.names))
	for _, mf := range mfs {
		meta[mf.GetName()] = Metadata{Type: metricTypeName(mf.GetType()), Help: mf.GetHelp(), Unit: mf.GetUnit()}
	}
	for _, f := range s.seen {
		if _, ok := meta[f.name]; !ok {
			meta[f.name] = Metadata{Type: metricTypeName(f.typ), Help: f.help, Unit: f.unit}
		}
	}
	return meta, true
}

func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func metricTypeName(t dto.MetricType) string {
	switch t {
	case dto.MetricType_COUNTER:
		return "counter"
	case dto.MetricType_GAUGE:
		return "gauge"
	case dto.MetricType_SUMMARY:
		return "summary"
	case dto.MetricType_HISTOGRAM:
		return "histogram"
	case dto.MetricType_GAUGE_HISTOGRAM:
		return "gaugehistogram"
	}
	return "unknown"
}
