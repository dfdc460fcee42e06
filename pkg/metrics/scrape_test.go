package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/hostd/hostd/internal/service/servicetest"
)

func TestBlockDurations(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		retention, minBlock time.Duration
		wantMin, wantMax    time.Duration
	}{
		{15 * day, 0, 2 * time.Hour, 36 * time.Hour},      // retention/10
		{365 * day, 0, 2 * time.Hour, 31 * day},           // capped at 31d
		{10 * time.Hour, 0, 2 * time.Hour, 2 * time.Hour}, // never below the head block
		{15 * day, time.Hour, time.Hour, 36 * time.Hour},
	}
	for _, tt := range tests {
		gotMin, gotMax := blockDurations(tt.retention, tt.minBlock)
		if gotMin != tt.wantMin || gotMax != tt.wantMax {
			t.Errorf("blockDurations(%s, %s) = %s, %s; want %s, %s", tt.retention, tt.minBlock, gotMin, gotMax, tt.wantMin, tt.wantMax)
		}
	}
}

// rawSamples reads every sample of the series matching name.
func rawSamples(t *testing.T, s *Storage, ms ...*labels.Matcher) map[string][][2]float64 {
	t.Helper()
	q, err := s.DB.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := map[string][][2]float64{}
	set := q.Select(context.Background(), true, nil, ms...)
	for set.Next() {
		ser := set.At()
		it := ser.Iterator(nil)
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			out[ser.Labels().String()] = append(out[ser.Labels().String()], [2]float64{float64(ts), v})
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestScraperAppendsAndMarksStale(t *testing.T) {
	store := openTestStorage(t)
	reg := prometheus.NewPedanticRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_gauge", Help: "A gauge."}, []string{"k"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "test_hist", Help: "A histogram.", Buckets: []float64{1, 5}})
	sm := prometheus.NewSummary(prometheus.SummaryOpts{Name: "test_sum", Help: "A summary.", Objectives: map[float64]float64{0.5: 0.05}})
	reg.MustRegister(g, h, sm)
	g.WithLabelValues("a").Set(1)
	g.WithLabelValues("b").Set(2)
	h.Observe(3)
	sm.Observe(4)

	clock := servicetest.NewFakeClock(time.UnixMilli(1_700_000_000_000))
	sc := &Scraper{Gatherer: reg, Storage: store.DB, Clock: clock}
	res, err := sc.Scrape(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// 2 gauges + 3 buckets (1, 5, +Inf) + sum + count + 1 quantile + sum + count.
	if res.Samples != 10 || res.Stale != 0 {
		t.Fatalf("first scrape = %+v, want 10 samples, 0 stale", res)
	}
	g.DeleteLabelValues("b")
	clock.Advance(15 * time.Second)
	res, err = sc.Scrape(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Samples != 9 || res.Stale != 1 {
		t.Fatalf("second scrape = %+v, want 9 samples, 1 stale", res)
	}
	got := rawSamples(t, store, labels.MustNewMatcher(labels.MatchEqual, "__name__", "test_gauge"))
	b := got[`{__name__="test_gauge", k="b"}`]
	if len(b) != 2 || b[0][1] != 2 || !value.IsStaleNaN(b[1][1]) || b[1][0] != 1_700_000_015_000 {
		t.Fatalf("series b = %v, want value 2 then a stale marker at the second scrape", b)
	}
	buckets := rawSamples(t, store, labels.MustNewMatcher(labels.MatchEqual, "__name__", "test_hist_bucket"))
	if v := buckets[`{__name__="test_hist_bucket", le="+Inf"}`]; len(v) != 2 || v[0][1] != 1 {
		t.Fatalf("+Inf bucket = %v", v)
	}
	if v := buckets[`{__name__="test_hist_bucket", le="1"}`]; len(v) != 2 || v[0][1] != 0 {
		t.Fatalf("le=1 bucket = %v", v)
	}
	md := sc.Metadata()
	if md["test_hist"].Type != "histogram" || md["test_gauge"].Help != "A gauge." || md["test_sum"].Type != "summary" {
		t.Fatalf("metadata = %+v", md)
	}
}

func TestScraperRejectsOutOfOrderQuietly(t *testing.T) {
	store := openTestStorage(t)
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_total", Help: "h"})
	reg.MustRegister(c)
	clock := servicetest.NewFakeClock(time.UnixMilli(1_700_000_000_000))
	sc := &Scraper{Gatherer: reg, Storage: store.DB, Clock: clock}
	if _, err := sc.Scrape(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A clock stepping backwards (NTP) must not fail the scrape.
	clock.Advance(-time.Minute)
	res, err := sc.Scrape(context.Background())
	if err != nil {
		t.Fatalf("scrape after clock step back: %v", err)
	}
	if res.Rejected != 1 || res.Samples != 0 {
		t.Fatalf("result = %+v, want the one sample rejected", res)
	}
}

// BenchmarkTSDBAppend measures scrape throughput into the embedded TSDB:
// one scrape of 2,000 series per iteration, reported as samples/s.
func BenchmarkTSDBAppend(b *testing.B) {
	store, err := OpenStorage(StorageOptions{Dir: b.TempDir(), Retention: 15 * 24 * time.Hour}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bench_gauge", Help: "h"}, []string{"series"})
	reg.MustRegister(g)
	const series = 2000
	for i := 0; i < series; i++ {
		g.WithLabelValues(strconv.Itoa(i)).Set(float64(i))
	}
	clock := servicetest.NewFakeClock(time.UnixMilli(1_700_000_000_000))
	sc := &Scraper{Gatherer: reg, Storage: store.DB, Clock: clock}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clock.Advance(time.Second)
		if _, err := sc.Scrape(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(series*b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkScrapeHost measures one full scrape of this host: every node
// collector, the gather and the TSDB append — the work hostd does per
// interval.
// BenchmarkScrapeHost scrapes this host's node collectors into a TSDB,
// gathered through a registry and appended directly (Scraper.Direct).
func BenchmarkScrapeHost(b *testing.B) {
	for _, direct := range []bool{false, true} {
		name := "registry"
		if direct {
			name = "direct"
		}
		b.Run(name, func(b *testing.B) {
			store, err := OpenStorage(StorageOptions{Dir: b.TempDir(), Retention: 15 * 24 * time.Hour}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			nc, err := NewNodeCollector(HostOptions{}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			nc.keepFilesOpen() // as the service does while it serves
			defer nc.closeFiles()
			clock := servicetest.NewFakeClock(time.Now())
			sc := &Scraper{Storage: store.DB, Clock: clock}
			if direct {
				sc.Direct = nc
			} else {
				reg := prometheus.NewRegistry()
				reg.MustRegister(nc)
				sc.Gatherer = reg
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			for i := 0; i < b.N; i++ {
				clock.Advance(time.Second)
				if _, err := sc.Scrape(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			// The process' CPU time, garbage collection included, which
			// wall time per op leaves out on two cores.
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// processCPU is the CPU time the process has used so far.
func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestCompactionAndRetention appends 12 hours of scrapes into a TSDB with
// 1h head blocks and 6h retention: blocks get cut and compacted, and
// blocks older than the retention are deleted.
func TestCompactionAndRetention(t *testing.T) {
	store, err := OpenStorage(StorageOptions{Dir: t.TempDir(), Retention: 6 * time.Hour, MinBlock: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if store.MaxBlock != time.Hour { // retention/10 = 36m, raised to the 1h head block
		t.Fatalf("max block %s, want 1h", store.MaxBlock)
	}
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_gauge", Help: "h"})
	reg.MustRegister(g)
	start := time.UnixMilli(1_700_000_000_000).Truncate(time.Hour)
	clock := servicetest.NewFakeClock(start)
	sc := &Scraper{Gatherer: reg, Storage: store.DB, Clock: clock}
	for i := 0; i < 12*6; i++ {
		g.Set(float64(i))
		if _, err := sc.Scrape(context.Background()); err != nil {
			t.Fatal(err)
		}
		clock.Advance(10 * time.Minute)
	}
	if err := store.DB.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	blocks := store.DB.Blocks()
	if len(blocks) == 0 {
		t.Fatal("no blocks were cut from the head")
	}
	newest := clock.Now().UnixMilli()
	for _, b := range blocks {
		m := b.Meta()
		if span := time.Duration(m.MaxTime-m.MinTime) * time.Millisecond; span > time.Hour {
			t.Errorf("block %s spans %s, more than the max block", m.ULID, span)
		}
		if m.MaxTime < newest-(6*time.Hour).Milliseconds()-time.Hour.Milliseconds() {
			t.Errorf("block %s ends at %d, older than the retention", m.ULID, m.MaxTime)
		}
	}
	got := rawSamples(t, store, labels.MustNewMatcher(labels.MatchEqual, "__name__", "test_gauge"))
	first := got[`{__name__="test_gauge"}`][0]
	if age := time.Duration(newest-int64(first[0])) * time.Millisecond; age > 8*time.Hour {
		t.Errorf("oldest sample is %s old with a 6h retention", age)
	}
}

// TestScraperKnownSeries: a series found by the identity of its label
// pairs (a vector's child, a node collector's cached series) is stored
// under the same labels as one built from scratch, and a series that
// comes back with new label pairs (a deleted and re-created child) or
// under another job is not mistaken for an old one.
func TestScraperKnownSeries(t *testing.T) {
	store := openTestStorage(t)
	reg := prometheus.NewRegistry()
	vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "node_thing", Help: "h"}, []string{"device"})
	fds := prometheus.NewGauge(prometheus.GaugeOpts{Name: "process_open_fds", Help: "h"})
	reg.MustRegister(vec, fds)
	clock := servicetest.NewFakeClock(time.UnixMilli(1_700_000_000_000))
	sc := &Scraper{Gatherer: reg, Storage: store.DB, Clock: clock, Targets: []ScrapeTarget{
		{Job: "node", Instance: "h", Families: func(n string) bool { return strings.HasPrefix(n, "node_") }, Also: isProcessFamily},
		{Job: "hostd", Instance: "h"},
	}}
	scrape := func(want ...string) {
		t.Helper()
		clock.Advance(time.Second)
		res, err := sc.Scrape(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got := rawSamples(t, store, labels.MustNewMatcher(labels.MatchRegexp, "__name__", "node_thing|process_open_fds"))
		var live []string
		for series, samples := range got {
			if last := samples[len(samples)-1]; last[0] == float64(clock.Now().UnixMilli()) && !value.IsStaleNaN(last[1]) {
				live = append(live, fmt.Sprintf("%s=%g", series, last[1]))
			}
		}
		sort.Strings(live)
		if strings.Join(live, " ") != strings.Join(want, " ") {
			t.Fatalf("after scrape (%+v):\n got %v\nwant %v", res, live, want)
		}
	}
	vec.WithLabelValues("a").Set(1)
	vec.WithLabelValues("b").Set(2)
	fds.Set(7)
	scrape(`{__name__="node_thing", device="a", instance="h", job="node"}=1`, `{__name__="node_thing", device="b", instance="h", job="node"}=2`,
		`{__name__="process_open_fds", instance="h", job="hostd"}=7`, `{__name__="process_open_fds", instance="h", job="node"}=7`)
	vec.WithLabelValues("a").Set(3)
	vec.DeleteLabelValues("b")
	vec.WithLabelValues("c").Set(4)
	fds.Set(8)
	scrape(`{__name__="node_thing", device="a", instance="h", job="node"}=3`, `{__name__="node_thing", device="c", instance="h", job="node"}=4`,
		`{__name__="process_open_fds", instance="h", job="hostd"}=8`, `{__name__="process_open_fds", instance="h", job="node"}=8`)
	vec.DeleteLabelValues("c")
	vec.WithLabelValues("b").Set(5)
	scrape(`{__name__="node_thing", device="a", instance="h", job="node"}=3`, `{__name__="node_thing", device="b", instance="h", job="node"}=5`,
		`{__name__="process_open_fds", instance="h", job="hostd"}=8`, `{__name__="process_open_fds", instance="h", job="node"}=8`)
	if len(sc.known) != 6 { // and up for both jobs
		t.Errorf("%d series known, want 6", len(sc.known))
	}
}

// failingCommit is a TSDB whose appenders fail to commit while fail is
// set, as a full disk fails the write-ahead log.
type failingCommit struct {
	storage.Appendable
	fail bool
}

func (f *failingCommit) Appender(ctx context.Context) storage.Appender {
	return &failingAppender{Appender: f.Appendable.Appender(ctx), fail: f.fail}
}

type failingAppender struct {
	storage.Appender
	fail bool
}

func (a *failingAppender) Commit() error {
	if a.fail {
		_ = a.Appender.Rollback()
		return errors.New("write-ahead log: no space left on device")
	}
	return a.Appender.Commit()
}

// TestScraperFailedScrape: a scrape whose commit fails stores nothing and
// is as if it had not happened. A series only it found is forgotten, not
// kept for ever; one that vanished in it is marked stale by the next.
func TestScraperFailedScrape(t *testing.T) {
	store := openTestStorage(t)
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_gauge", Help: "A gauge."}, []string{"k"})
	reg.MustRegister(g)
	clock := servicetest.NewFakeClock(time.UnixMilli(1_700_000_000_000))
	fc := &failingCommit{Appendable: store.DB}
	sc := &Scraper{Gatherer: reg, Storage: fc, Clock: clock}
	scrape := func(fail bool, set map[string]float64) error {
		g.Reset()
		for k, v := range set {
			g.WithLabelValues(k).Set(v)
		}
		fc.fail = fail
		clock.Advance(time.Second)
		_, err := sc.Scrape(context.Background())
		return err
	}
	if err := scrape(false, map[string]float64{"a": 1, "b": 2}); err != nil {
		t.Fatal(err)
	}
	if err := scrape(true, map[string]float64{"a": 3, "c": 4}); err == nil {
		t.Fatal("scrape whose commit failed: no error")
	}
	if len(sc.series) != 2 {
		t.Errorf("%d series remembered after the failed scrape, want a and b", len(sc.series))
	}
	if err := scrape(false, map[string]float64{"a": 5}); err != nil {
		t.Fatal(err)
	}
	got := rawSamples(t, store, labels.MustNewMatcher(labels.MatchEqual, "__name__", "test_gauge"))
	a, b := got[`{__name__="test_gauge", k="a"}`], got[`{__name__="test_gauge", k="b"}`]
	if len(a) != 2 || a[0][1] != 1 || a[1][1] != 5 {
		t.Errorf("a = %v, want 1 then 5", a)
	}
	if len(b) != 2 || b[0][1] != 2 || !value.IsStaleNaN(b[1][1]) || b[1][0] != 1_700_000_003_000 {
		t.Errorf("b = %v, want 2 then a stale marker at the third scrape", b)
	}
	if c, ok := got[`{__name__="test_gauge", k="c"}`]; ok {
		t.Errorf("c, found only by the failed scrape, stored: %v", c)
	}
	if len(sc.series) != 1 {
		t.Errorf("%d series remembered, want a", len(sc.series))
	}
}

// cacheCollector hands out the series cache's metrics, as the node
// collectors do, of one gauge family with a value per label value.
type cacheCollector struct {
	sc   *seriesCache
	desc *prometheus.Desc
	vals map[string]float64
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	c.CollectTo(func(m prometheus.Metric) { ch <- m })
}
func (c *cacheCollector) CollectTo(emit func(prometheus.Metric)) {
	for k, v := range c.vals {
		emit(c.sc.metric(c.desc, prometheus.GaugeValue, v, k))
	}
	c.sc.endRound()
}

// TestScrapersShareCachedSeries: two scrapers collecting the same cached
// series (each series keeps the entry of one scraper at a time) each
// store every value, mark a vanished series stale and store it again when
// it is back.
func TestScrapersShareCachedSeries(t *testing.T) {
	c := &cacheCollector{sc: &seriesCache{}, desc: prometheus.NewDesc("node_thing", "A thing.", []string{"k"}, nil)}
	clock := servicetest.NewFakeClock(time.UnixMilli(1_700_000_000_000))
	stores := []*Storage{openTestStorage(t), openTestStorage(t)}
	var scrapers []*Scraper
	for _, st := range stores {
		scrapers = append(scrapers, &Scraper{Direct: c, Storage: st.DB, Clock: clock,
			Targets: []ScrapeTarget{{Job: "node", Instance: "h"}}})
	}
	rounds := []map[string]float64{{"x": 1, "y": 2}, {"x": 3}, {"x": 4, "y": 5}, {"x": 6, "y": 7}}
	for _, vals := range rounds {
		c.vals = vals
		clock.Advance(time.Second)
		for _, sc := range scrapers {
			if _, err := sc.Scrape(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, st := range stores {
		got := rawSamples(t, st, labels.MustNewMatcher(labels.MatchEqual, "__name__", "node_thing"))
		var x, y []string
		for _, s := range got[`{__name__="node_thing", instance="h", job="node", k="x"}`] {
			x = append(x, fmt.Sprint(s[1]))
		}
		for _, s := range got[`{__name__="node_thing", instance="h", job="node", k="y"}`] {
			v := fmt.Sprint(s[1])
			if value.IsStaleNaN(s[1]) {
				v = "stale"
			}
			y = append(y, v)
		}
		if strings.Join(x, " ") != "1 3 4 6" || strings.Join(y, " ") != "2 stale 5 7" {
			t.Errorf("scraper %d stored x = %v, y = %v; want 1 3 4 6 and 2 stale 5 7", i, x, y)
		}
	}
}
