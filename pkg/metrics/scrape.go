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
type Scraper struct {
	Gatherer prometheus.Gatherer
	Storage  storage.Appendable
	Now      func() time.Time
	// OnSamples, if set, receives every scrape's samples (stale markers
	// included) after they were committed; the remote writer hooks in here.
	OnSamples func([]Sample)

	scrapeMu sync.Mutex // one scrape at a time
	prev     map[uint64]labels.Labels
	spare    map[uint64]labels.Labels
	// refs remembers the storage reference of each series so appends skip
	// the label lookup, as Prometheus' scrape cache does.
	refs map[uint64]storage.SeriesRef

	mu   sync.RWMutex
	meta map[string]Metadata
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
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	start := now()
	ts := start.UnixMilli()
	mfs, gatherErr := s.Gatherer.Gather()
	if gatherErr != nil && len(mfs) == 0 {
		return ScrapeResult{}, fmt.Errorf("gather metrics: %w", gatherErr)
	}
	samples, meta := familiesToSamples(mfs, ts)

	// The series of this scrape, keyed by label hash; the map of the
	// scrape before last is reused to spare the allocation.
	cur := s.spare
	if cur == nil {
		cur = make(map[uint64]labels.Labels, len(samples))
	}
	clear(cur)
	hashes := make([]uint64, len(samples))
	for i, smp := range samples {
		hashes[i] = smp.Labels.Hash()
		cur[hashes[i]] = smp.Labels
	}
	var stale []Sample
	for h, ls := range s.prev {
		if _, ok := cur[h]; !ok {
			stale = append(stale, Sample{Labels: ls, T: ts, V: math.Float64frombits(value.StaleNaN)})
		}
	}
	sort.Slice(stale, func(i, j int) bool { return labels.Compare(stale[i].Labels, stale[j].Labels) < 0 })

	res := ScrapeResult{}
	if s.refs == nil {
		s.refs = map[uint64]storage.SeriesRef{}
	}
	newRefs := make(map[uint64]storage.SeriesRef, len(cur))
	app := s.Storage.Appender(ctx)
	for bi, batch := range [][]Sample{samples, stale} {
		for i, smp := range batch {
			var h uint64
			if bi == 0 {
				h = hashes[i]
			} else {
				h = smp.Labels.Hash()
			}
			ref, err := app.Append(s.refs[h], smp.Labels, smp.T, smp.V)
			if err == nil {
				if _, live := cur[h]; live {
					newRefs[h] = ref
				}
			}
			if err != nil {
				if errors.Is(err, storage.ErrOutOfOrderSample) || errors.Is(err, storage.ErrDuplicateSampleForTimestamp) ||
					errors.Is(err, storage.ErrOutOfBounds) || errors.Is(err, storage.ErrTooOldSample) {
					res.Rejected++
					continue
				}
				_ = app.Rollback()
				return res, fmt.Errorf("append %s: %w", smp.Labels, err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		return res, fmt.Errorf("commit scrape: %w", err)
	}
	res.Samples = len(samples) - res.Rejected
	res.Stale = len(stale)
	s.prev, s.spare = cur, s.prev
	s.refs = newRefs
	s.mu.Lock()
	s.meta = meta
	s.mu.Unlock()
	if s.OnSamples != nil {
		s.OnSamples(append(samples, stale...))
	}
	res.Duration = now().Sub(start)
	return res, nil
}

// familiesToSamples flattens gathered families into samples the way the
// text exposition format spells them: summaries and classic histograms
// become their _sum, _count, quantile and _bucket series.
func familiesToSamples(mfs []*dto.MetricFamily, ts int64) ([]Sample, map[string]Metadata) {
	var out []Sample
	meta := make(map[string]Metadata, len(mfs))
	b := labels.NewScratchBuilder(16)
	for _, mf := range mfs {
		name := mf.GetName()
		meta[name] = Metadata{Type: metricTypeName(mf.GetType()), Help: mf.GetHelp(), Unit: mf.GetUnit()}
		for _, m := range mf.GetMetric() {
			t := ts
			add := func(n string, v float64, extra ...string) {
				b.Reset()
				b.Add(labels.MetricName, n)
				for _, l := range m.GetLabel() {
					b.Add(l.GetName(), l.GetValue())
				}
				for i := 0; i+1 < len(extra); i += 2 {
					b.Add(extra[i], extra[i+1])
				}
				b.Sort()
				out = append(out, Sample{Labels: b.Labels(), T: t, V: v})
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				add(name, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(name, m.GetGauge().GetValue())
			case dto.MetricType_SUMMARY:
				sm := m.GetSummary()
				for _, q := range sm.GetQuantile() {
					add(name, q.GetValue(), "quantile", formatFloat(q.GetQuantile()))
				}
				add(name+"_sum", sm.GetSampleSum())
				add(name+"_count", float64(sm.GetSampleCount()))
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				inf := false
				for _, b := range h.GetBucket() {
					if math.IsInf(b.GetUpperBound(), 1) {
						inf = true
					}
					add(name+"_bucket", float64(b.GetCumulativeCount()), "le", formatFloat(b.GetUpperBound()))
				}
				if !inf {
					add(name+"_bucket", float64(h.GetSampleCount()), "le", "+Inf")
				}
				add(name+"_sum", h.GetSampleSum())
				add(name+"_count", float64(h.GetSampleCount()))
			default:
				add(name, m.GetUntyped().GetValue())
			}
		}
	}
	return out, meta
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
