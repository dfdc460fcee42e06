package metrics

import (
	"context"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/hostd/hostd/internal/service/servicetest"
)

// replay sends the metrics of one collection again, so that two scrapers
// see the very same metrics (series cache's and others).
type replay struct{ ms []prometheus.Metric }

func (r *replay) Describe(chan<- *prometheus.Desc) {}

func (r *replay) Collect(ch chan<- prometheus.Metric) {
	for _, m := range r.ms {
		ch <- m
	}
}

// CollectTo makes replay a DirectCollector, as NodeCollector is: the
// scraper takes its metrics in its own goroutine.
func (r *replay) CollectTo(emit func(prometheus.Metric)) {
	for _, m := range r.ms {
		emit(m)
	}
}

func (r *replay) record(c prometheus.Collector) {
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
	r.ms = r.ms[:0]
	for m := range ch {
		r.ms = append(r.ms, m)
	}
}

// extraMetrics are metrics no node collector makes: a histogram, a
// summary with labels, a label value that is not UTF-8 and an invalid
// metric, which the registry drops from its gather, and so must the direct
// path.
type extraMetrics struct{}

var (
	extraHistDesc  = prometheus.NewDesc("node_extra_seconds", "A \"quoted\" help,\non two lines.", []string{"op"}, prometheus.Labels{"c": "1"})
	extraSumDesc   = prometheus.NewDesc("node_extra_summary", "A summary.", []string{"op"}, nil)
	extraBadDesc   = prometheus.NewDesc("node_extra_bad", "Bad.", []string{"v"}, nil)
	extraOtherDesc = prometheus.NewDesc("node_extra_invalid", "Invalid.", nil, nil)
)

func (extraMetrics) Describe(chan<- *prometheus.Desc) {}

func (extraMetrics) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstHistogram(extraHistDesc, 4, 10, map[float64]uint64{1: 1, 5: 3}, "read")
	ch <- prometheus.MustNewConstSummary(extraSumDesc, 2, 3, map[float64]float64{0.5: 1.5}, "write")
	ch <- (*seriesCache)(nil).metric(extraBadDesc, prometheus.GaugeValue, 1, "\xff")
	ch <- prometheus.NewInvalidMetric(extraOtherDesc, errNoData)
	ch <- (&seriesCache{}).metric(extraBadDesc, prometheus.GaugeValue, 2, "fine")
}

// TestDirectMatchesRegistry: the node collectors' metrics appended
// directly (Scraper.Direct) are stored as the same series, labels, values
// and metadata as when a registry gathers them, with targets, exported_job
// and the families of other registries, over two scrapes (the second
// finding its series from the first).
func TestDirectMatchesRegistry(t *testing.T) {
	opts := fixtureHostOptions()
	opts.TextfileDir = "testdata/textfile"
	h, err := newHost(opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	node, err := newNodeCollector(h, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rec := &replay{}

	// Others: what the other registries give, stored under both paths.
	others := prometheus.NewRegistry()
	fds := prometheus.NewGauge(prometheus.GaugeOpts{Name: "process_open_fds", Help: "Open fds."})
	own := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hostd_thing", Help: "A thing."}, []string{"job"})
	others.MustRegister(fds, own)
	fds.Set(9)
	own.WithLabelValues("nightly").Set(1)

	viaRegistry := prometheus.NewRegistry()
	viaRegistry.MustRegister(rec)
	targets := func() []ScrapeTarget {
		return []ScrapeTarget{
			{Job: JobNode, Instance: "host-a", Families: node.Owns, Also: isProcessFamily},
			{Job: JobHostd, Instance: "host-a"},
		}
	}
	storeA, storeB := openTestStorage(t), openTestStorage(t)
	clock := servicetest.NewFakeClock(time.UnixMilli(1_700_000_000_000))
	a := &Scraper{Gatherer: prometheus.Gatherers{viaRegistry, others}, Storage: storeA.DB, Clock: clock, Targets: targets()}
	b := &Scraper{Gatherer: others, Direct: rec, Storage: storeB.DB, Clock: clock, Targets: targets()}
	for i := range 3 {
		recordAll(rec, node, extraMetrics{})
		ra, err := a.Scrape(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		rb, err := b.Scrape(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ra.Samples != rb.Samples || ra.Stale != rb.Stale || ra.Rejected != rb.Rejected {
			t.Fatalf("scrape %d: registry %+v, direct %+v", i, ra, rb)
		}
		if ra.Samples < 400 {
			t.Fatalf("scrape %d: %d samples: the fixtures should give more", i, ra.Samples)
		}
		clock.Advance(time.Second)
	}
	all := labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")
	got, want := rawSamples(t, storeB, all), rawSamples(t, storeA, all)
	for k, w := range want {
		if g := got[k]; !slices.Equal(g, w) {
			t.Errorf("%s: direct %v, registry %v", k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: stored by the direct path only: %v", k, g)
		}
	}
	for _, k := range []string{
		`{__name__="node_extra_seconds_bucket", c="1", instance="host-a", job="node", le="+Inf", op="read"}`,
		`{__name__="node_extra_summary", instance="host-a", job="node", op="write", quantile="0.5"}`,
		`{__name__="backup_last_run_seconds", exported_job="home", instance="host-a", job="node"}`,
		`{__name__="process_open_fds", instance="host-a", job="node"}`,
		`{__name__="node_extra_bad", instance="host-a", job="node", v="fine"}`,
	} {
		if len(got[k]) != 3 {
			t.Errorf("%s: %v, want 3 samples", k, got[k])
		}
	}
	for k := range got {
		if strings.Contains(k, "node_extra_invalid") || strings.Contains(k, `\xff`) || strings.Contains(k, "\xff") {
			t.Errorf("%s stored: an invalid metric must be dropped", k)
		}
	}
	if ma, mb := a.Metadata(), b.Metadata(); !maps.Equal(ma, mb) {
		for k, v := range ma {
			if mb[k] != v {
				t.Errorf("metadata %s: direct %+v, registry %+v", k, mb[k], v)
			}
		}
		for k, v := range mb {
			if _, ok := ma[k]; !ok {
				t.Errorf("metadata %s: direct only %+v", k, v)
			}
		}
	}
	if md := b.Metadata()["node_extra_seconds"]; md.Help != "A \"quoted\" help,\non two lines." || md.Type != "histogram" {
		t.Errorf("metadata node_extra_seconds = %+v", md)
	}
}

func recordAll(r *replay, cs ...prometheus.Collector) {
	var ms []prometheus.Metric
	for _, c := range cs {
		r.record(c)
		ms = append(ms, r.ms...)
	}
	r.ms = ms
}

// panicky sends one metric, then panics.
type panicky struct{}

func (panicky) Describe(chan<- *prometheus.Desc) {}

func (panicky) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(extraOtherDesc, prometheus.GaugeValue, 1)
	panic("collector bug")
}

// panickyDirect hands out one metric, then panics, in the scraper's
// goroutine.
type panickyDirect struct{ panicky }

func (panickyDirect) CollectTo(emit func(prometheus.Metric)) {
	emit(prometheus.MustNewConstMetric(extraOtherDesc, prometheus.GaugeValue, 1))
	panic("collector bug")
}

// sendsOne sends one metric on the channel.
type sendsOne struct{}

func (sendsOne) Describe(chan<- *prometheus.Desc) {}

func (sendsOne) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("hostd_sent", "Sent on a channel.", nil, nil), prometheus.GaugeValue, 1)
}

// A Direct collector that panics, in its own goroutine or in the
// scraper's, costs the metrics it had not sent, not the scrape or the
// process: what it sent and what was gathered are stored; in a set of
// collectors, the others' metrics too.
func TestDirectCollectorPanics(t *testing.T) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "hostd_thing", Help: "A thing."})
	other := prometheus.NewGauge(prometheus.GaugeOpts{Name: "hostd_other", Help: "Another."})
	for _, tc := range []struct {
		name   string
		direct prometheus.Collector
		want   int
	}{
		{"channel", panicky{}, 2},
		{"direct", panickyDirect{}, 2},
		{"set", collectors{panickyDirect{}, other}, 3},
		{"set on a channel", collectors{panicky{}, other, sendsOne{}}, 4},
		{"a function that panics", collectors{prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hostd_bad", Help: "Panics."}, func() float64 { panic("bug") }), other}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := openTestStorage(t)
			reg := prometheus.NewRegistry()
			reg.MustRegister(g)
			clock := servicetest.NewFakeClock(time.UnixMilli(1_700_000_000_000))
			sc := &Scraper{Gatherer: reg, Direct: tc.direct, Storage: store.DB, Clock: clock}
			res, err := sc.Scrape(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Samples != tc.want {
				t.Fatalf("scrape = %+v, want %d samples", res, tc.want)
			}
		})
	}
}

func TestDescFields(t *testing.T) {
	for _, tc := range []struct {
		desc             *prometheus.Desc
		name, help, unit string
		bad              bool
	}{
		{prometheus.NewDesc("a_b", "Plain.", nil, nil), "a_b", "Plain.", "", false},
		{extraHistDesc, "node_extra_seconds", "A \"quoted\" help,\non two lines.", "", false},
		{prometheus.V2.NewDesc("go_gc_gogc_percent", "GOGC.", prometheus.UnconstrainedLabels(nil), nil, prometheus.WithUnit("percent")), "go_gc_gogc_percent", "GOGC.", "percent", false},
		{prometheus.NewDesc("x", `Desc{fqName: "y", help: "z", unit: "u"}`, []string{"l"}, prometheus.Labels{"k": `", help: "`}), "x", `Desc{fqName: "y", help: "z", unit: "u"}`, "", false},
		{prometheus.NewInvalidDesc(errNoData), "", "", "", true},
	} {
		name, help, unit, err := descFields(tc.desc)
		if (err != nil) != tc.bad || name != tc.name || help != tc.help || unit != tc.unit {
			t.Errorf("descFields(%s) = %q, %q, %q, %v", tc.desc, name, help, unit, err)
		}
	}
}

// sendsN sends n gauges hostd_n{i="0"} .. {i="n-1"} in order, and notes
// the goroutine it collects in.
type sendsN struct {
	n         int
	goroutine *string
}

// goroutineID is the caller's goroutine, as runtime.Stack names it.
func goroutineID() string {
	var buf [64]byte
	id, _, _ := strings.Cut(strings.TrimPrefix(string(buf[:runtime.Stack(buf[:], false)]), "goroutine "), " ")
	return id
}

var sendsNDesc = prometheus.NewDesc("hostd_n", "Sent in order.", []string{"i"}, nil)

func (sendsN) Describe(chan<- *prometheus.Desc) {}

func (c sendsN) Collect(ch chan<- prometheus.Metric) {
	if c.goroutine != nil {
		*c.goroutine = goroutineID()
	}
	for i := range c.n {
		ch <- prometheus.MustNewConstMetric(sendsNDesc, prometheus.GaugeValue, float64(i), strconv.Itoa(i))
	}
}

// A collector that sends on a channel is collected in the scraper's
// goroutine, without a goroutine of its own; one that sends more than the
// channel has room for is emptied by the rescue, and everything it sent
// comes out in order; the next collection has room for it.
func TestChanCollectorInCallersGoroutine(t *testing.T) {
	var cc chanCollector
	collect := func(c prometheus.Collector) []float64 {
		t.Helper()
		var got []float64
		err := collectTo(c, func(m prometheus.Metric) {
			var out dto.Metric
			if err := m.Write(&out); err != nil {
				t.Fatal(err)
			}
			got = append(got, out.GetGauge().GetValue())
		}, &cc)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	inOrder := func(got []float64, n int) {
		t.Helper()
		if len(got) != n {
			t.Fatalf("%d metrics handed out, %d sent", len(got), n)
		}
		for i, v := range got {
			if v != float64(i) {
				t.Fatalf("metric %d is %v: out of order", i, v)
			}
		}
	}

	caller := goroutineID()
	var in string
	inOrder(collect(sendsN{n: 10, goroutine: &in}), 10)
	if in != caller {
		t.Fatalf("collected in goroutine %s, called from %s", in, caller)
	}

	start := time.Now()
	inOrder(collect(sendsN{n: 3 * minChanRoom}), 3*minChanRoom)
	if took := time.Since(start); took < rescueAfter {
		t.Fatalf("collected %d metrics in %v, before the rescue", 3*minChanRoom, took)
	}
	if cap(cc.ch) >= 3*minChanRoom {
		t.Fatalf("room for %d before the collection that needed it", cap(cc.ch))
	}
	inOrder(collect(sendsN{n: 3 * minChanRoom, goroutine: &in}), 3*minChanRoom)
	if cap(cc.ch) < 3*minChanRoom || in != caller {
		t.Fatalf("room for %d, collected in goroutine %s (called from %s) after a collection sent %d", cap(cc.ch), in, caller, 3*minChanRoom)
	}
}
