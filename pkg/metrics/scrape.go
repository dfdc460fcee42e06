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
	// prev holds the series of the last scrape by label hash; spare is the
	// map of the scrape before, cleared and reused for the next one.
	prev, spare map[uint64]scrapedSeries
	samples     []Sample // this scrape's samples, reused
	hashes      []uint64 // label hash of each sample, reused
	builder     labels.ScratchBuilder
	target      *ScrapeTarget   // the target of the family being flattened
	famTargets  []*ScrapeTarget // the targets of the family being flattened, reused
	scratch     labels.Labels   // the builder's output before it is known to be new
	// known and spareKnown map a gathered series, by the identity of its
	// label pairs, to its label hash: the node collectors and client
	// metric vectors hand out the same label pairs every scrape, so a
	// series seen last scrape is found without building, sorting and
	// hashing its labels. known is the last scrape's; entries hold on to
	// their label pairs, so their address cannot be reused by another
	// series while the entry exists.
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
	hash  uint64
	pairs []*dto.LabelPair // kept so the address stays this series'
}

// scrapedSeries is what the scraper remembers of one series between
// scrapes.
type scrapedSeries struct {
	labels labels.Labels
	ref    storage.SeriesRef // 0 until the storage returned one
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

	// The series of this scrape, keyed by label hash; the map of the
	// scrape before last is reused to spare the allocation.
	cur := s.spare
	if cur == nil {
		cur = make(map[uint64]scrapedSeries, len(s.prev))
	}
	clear(cur)
	if s.spareKnown == nil {
		s.spareKnown = make(map[seriesIdentity]knownSeries, len(s.known))
	}
	clear(s.spareKnown)
	s.flatten(mfs, ts, cur)
	if s.Direct != nil {
		// A metric the collector could not make (a label value that is
		// not UTF-8) drops that series, as a registry's gather does; a
		// panic drops what the collector had not yet sent.
		_ = s.collectDirect(ts, cur)
	}
	// up is 1 for every target: gathering in-process either returns
	// families or fails the scrape above.
	for i := range s.Targets {
		s.target = &s.Targets[i]
		s.add(cur, ts, "up", nil, 1, "", "")
	}
	s.target = nil
	samples := s.samples
	var stale []Sample
	var staleRefs []storage.SeriesRef
	for h, sr := range s.prev {
		if _, ok := cur[h]; !ok {
			stale = append(stale, Sample{Labels: sr.labels, T: ts, V: math.Float64frombits(value.StaleNaN)})
		}
	}
	sort.Slice(stale, func(i, j int) bool { return labels.Compare(stale[i].Labels, stale[j].Labels) < 0 })
	for _, smp := range stale {
		staleRefs = append(staleRefs, s.prev[smp.Labels.Hash()].ref)
	}

	res := ScrapeResult{}
	app := s.Storage.Appender(ctx)
	for i, smp := range samples {
		h := s.hashes[i]
		ref, err := app.Append(cur[h].ref, smp.Labels, smp.T, smp.V)
		if err != nil {
			if rejected(err) {
				res.Rejected++
				continue
			}
			_ = app.Rollback()
			return res, fmt.Errorf("append %s: %w", smp.Labels, err)
		}
		cur[h] = scrapedSeries{labels: smp.Labels, ref: ref}
	}
	for i, smp := range stale {
		if _, err := app.Append(staleRefs[i], smp.Labels, smp.T, smp.V); err != nil {
			if rejected(err) {
				res.Rejected++
				continue
			}
			_ = app.Rollback()
			return res, fmt.Errorf("append %s: %w", smp.Labels, err)
		}
	}
	if err := app.Commit(); err != nil {
		return res, fmt.Errorf("commit scrape: %w", err)
	}
	res.Samples = len(samples) - res.Rejected
	res.Stale = len(stale)
	s.prev, s.spare = cur, s.prev
	s.known, s.spareKnown = s.spareKnown, s.known
	if meta, changed := s.familiesMetadata(mfs, s.Metadata()); changed {
		s.mu.Lock()
		s.meta = meta
		s.mu.Unlock()
	}
	if s.OnSamples != nil {
		s.OnSamples(append(samples, stale...))
	}
	res.Duration = clock.Now().Sub(start)
	return res, nil
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
// reference; each series is entered into cur.
func (s *Scraper) flatten(mfs []*dto.MetricFamily, ts int64, cur map[uint64]scrapedSeries) {
	s.samples, s.hashes = s.samples[:0], s.hashes[:0]
	for _, mf := range mfs {
		name := mf.GetName()
		s.famTargets = s.targetsOf(name, s.famTargets[:0])
		s.forTargets(s.famTargets, func() { s.flattenFamily(mf, name, ts, cur) })
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
func (s *Scraper) flattenFamily(mf *dto.MetricFamily, name string, ts int64, cur map[uint64]scrapedSeries) {
	typ := mf.GetType()
	for _, m := range mf.GetMetric() {
		s.flattenMetric(typ, m, name, ts, cur)
	}
}

// flattenMetric appends the samples of one metric of a family of type typ
// under s.target.
func (s *Scraper) flattenMetric(typ dto.MetricType, m *dto.Metric, name string, ts int64, cur map[uint64]scrapedSeries) {
	pairs := m.GetLabel()
	switch typ {
	case dto.MetricType_COUNTER:
		s.add(cur, ts, name, pairs, m.GetCounter().GetValue(), "", "")
	case dto.MetricType_GAUGE:
		s.add(cur, ts, name, pairs, m.GetGauge().GetValue(), "", "")
	case dto.MetricType_SUMMARY:
		sm := m.GetSummary()
		for _, q := range sm.GetQuantile() {
			s.add(cur, ts, name, pairs, q.GetValue(), "quantile", formatFloat(q.GetQuantile()))
		}
		s.add(cur, ts, name+"_sum", pairs, sm.GetSampleSum(), "", "")
		s.add(cur, ts, name+"_count", pairs, float64(sm.GetSampleCount()), "", "")
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		h := m.GetHistogram()
		inf := false
		for _, b := range h.GetBucket() {
			if math.IsInf(b.GetUpperBound(), 1) {
				inf = true
			}
			s.add(cur, ts, name+"_bucket", pairs, float64(b.GetCumulativeCount()), "le", formatFloat(b.GetUpperBound()))
		}
		if !inf {
			s.add(cur, ts, name+"_bucket", pairs, float64(h.GetSampleCount()), "le", "+Inf")
		}
		s.add(cur, ts, name+"_sum", pairs, h.GetSampleSum(), "", "")
		s.add(cur, ts, name+"_count", pairs, float64(h.GetSampleCount()), "", "")
	default:
		s.add(cur, ts, name, pairs, m.GetUntyped().GetValue(), "", "")
	}
}

// add appends one sample of series name with the labels pairs plus, if ln
// is set, the label ln=lv.
func (s *Scraper) add(cur map[uint64]scrapedSeries, ts int64, name string, pairs []*dto.LabelPair, v float64, ln, lv string) {
	id := seriesIdentity{n: len(pairs), name: name, ln: ln, lv: lv, target: s.target}
	if len(pairs) > 0 {
		id.pairs = pairs[0]
	}
	if k, ok := s.known[id]; ok {
		if sr, ok := s.prev[k.hash]; ok {
			s.spareKnown[id] = k
			cur[k.hash] = sr
			s.samples = append(s.samples, Sample{Labels: sr.labels, T: ts, V: v})
			s.hashes = append(s.hashes, k.hash)
			return
		}
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
	sr, known := s.prev[h]
	if !known || !labels.Equal(sr.labels, s.scratch) {
		sr = scrapedSeries{labels: s.scratch.Copy()}
	}
	cur[h] = sr
	s.spareKnown[id] = knownSeries{hash: h, pairs: pairs}
	s.samples = append(s.samples, Sample{Labels: sr.labels, T: ts, V: v})
	s.hashes = append(s.hashes, h)
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
