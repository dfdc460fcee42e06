package daemon

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/hostd/hostd/pkg/metrics"
)

// The daemon's gatherer returns what prometheus.Gatherers returns over the
// same registries: the same families in the same order when their names
// are distinct, and the same errors when two registries collide (the same
// series twice, or a counter named like another registry's summary's
// _count series).
func TestGathererMatchesGatherers(t *testing.T) {
	counter := func(name string, labels prometheus.Labels) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: name + " help", ConstLabels: labels})
		c.Add(3)
		return c
	}
	cases := []struct {
		name    string
		root    []prometheus.Collector
		svcs    map[string][]prometheus.Collector
		wantErr bool
	}{
		{"distinct families", []prometheus.Collector{collectors.NewGoCollector(), counter("hostd_a_total", nil)},
			map[string][]prometheus.Collector{
				"metrics": {counter("zz_total", nil), counter("node_b_total", prometheus.Labels{"x": "1"})},
				"backup":  {counter("hostd_backup_total", nil), prometheus.NewSummary(prometheus.SummaryOpts{Name: "m_seconds", Help: "h"})},
			}, false},
		{"one family in two registries", []prometheus.Collector{counter("shared_total", prometheus.Labels{"a": "1"})},
			map[string][]prometheus.Collector{"metrics": {counter("shared_total", prometheus.Labels{"a": "2"})}}, false},
		{"the same series in two registries", []prometheus.Collector{counter("shared_total", nil)},
			map[string][]prometheus.Collector{"metrics": {counter("shared_total", nil)}}, true},
		{"a counter named like a summary's _count", []prometheus.Collector{prometheus.NewSummary(prometheus.SummaryOpts{Name: "op_seconds", Help: "h"})},
			map[string][]prometheus.Collector{"metrics": {counter("op_seconds_count", nil)}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := newRegistry()
			root.MustRegister(tc.root...)
			g := newGatherer(root)
			for name, cs := range tc.svcs {
				g.fresh(name).MustRegister(cs...)
			}
			got, gotErr := g.Gather()
			want, wantErr := g.registries(nil).Gather()
			if (gotErr != nil) != tc.wantErr || (wantErr != nil) != tc.wantErr {
				t.Fatalf("errors: gatherer %v, prometheus.Gatherers %v; want an error: %v", gotErr, wantErr, tc.wantErr)
			}
			if gotErr != nil && gotErr.Error() != wantErr.Error() {
				t.Errorf("gatherer error %q, prometheus.Gatherers %q", gotErr, wantErr)
			}
			assertSameFamilies(t, got, want)
		})
	}
}

func assertSameFamilies(t *testing.T, got, want []*dto.MetricFamily) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d families, prometheus.Gatherers %d", len(got), len(want))
	}
	for i := range got {
		// The Go collector's figures move between the two gathers: compare
		// names, types and series labels, and values of the others.
		if got[i].GetName() != want[i].GetName() || got[i].GetType() != want[i].GetType() || len(got[i].GetMetric()) != len(want[i].GetMetric()) {
			t.Fatalf("family %d: %s %s with %d series, prometheus.Gatherers %s %s with %d", i,
				got[i].GetName(), got[i].GetType(), len(got[i].GetMetric()), want[i].GetName(), want[i].GetType(), len(want[i].GetMetric()))
		}
		for j, m := range got[i].GetMetric() {
			w := want[i].GetMetric()[j]
			if len(m.GetLabel()) != len(w.GetLabel()) {
				t.Fatalf("%s series %d: labels %v, want %v", got[i].GetName(), j, m.GetLabel(), w.GetLabel())
			}
			for k := range m.GetLabel() {
				if !proto.Equal(m.GetLabel()[k], w.GetLabel()[k]) {
					t.Fatalf("%s series %d: labels %v, want %v", got[i].GetName(), j, m.GetLabel(), w.GetLabel())
				}
			}
			if !strings.HasPrefix(got[i].GetName(), "go_") && m.GetCounter().GetValue() != w.GetCounter().GetValue() {
				t.Errorf("%s series %d: %v, want %v", got[i].GetName(), j, m.GetCounter().GetValue(), w.GetCounter().GetValue())
			}
		}
	}
}

// The daemon's process collector exports the families, help texts and
// types of client_golang's, less process_network_* (node_netstat's
// IpExt octets under another name), with the same start time and limits.
func TestProcessCollectorMatchesClientGolang(t *testing.T) {
	for range 50 { // descriptors enough that a wrong count shows
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	ours, theirs := prometheus.NewRegistry(), prometheus.NewRegistry()
	ours.MustRegister(newProcessCollector())
	theirs.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	got, err := ours.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want, err := theirs.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range got {
		byName[mf.GetName()] = mf
	}
	for _, w := range want {
		g, ok := byName[w.GetName()]
		if strings.HasPrefix(w.GetName(), "process_network_") {
			if ok {
				t.Errorf("%s exported; node_netstat_IpExt_* has it", w.GetName())
			}
			continue
		}
		if !ok {
			t.Errorf("%s missing", w.GetName())
			continue
		}
		delete(byName, w.GetName())
		if g.GetHelp() != w.GetHelp() || g.GetType() != w.GetType() {
			t.Errorf("%s: %s %q, client_golang %s %q", w.GetName(), g.GetType(), g.GetHelp(), w.GetType(), w.GetHelp())
		}
		switch w.GetName() {
		case "process_start_time_seconds", "process_max_fds", "process_virtual_memory_max_bytes":
			if gv, wv := g.GetMetric()[0].GetGauge().GetValue(), w.GetMetric()[0].GetGauge().GetValue(); gv != wv {
				t.Errorf("%s = %v, client_golang %v", w.GetName(), gv, wv)
			}
		case "process_virtual_memory_bytes", "process_resident_memory_bytes":
			// Read from statm, not stat: the same page counts, read a
			// moment apart.
			if gv, wv := g.GetMetric()[0].GetGauge().GetValue(), w.GetMetric()[0].GetGauge().GetValue(); gv < wv*0.8 || gv > wv*1.2 {
				t.Errorf("%s = %v, client_golang %v", w.GetName(), gv, wv)
			}
		case "process_open_fds":
			// client_golang counts the entries of /proc/self/fd, with the
			// descriptor it lists them through; ours is stat's size.
			if gv, wv := g.GetMetric()[0].GetGauge().GetValue(), w.GetMetric()[0].GetGauge().GetValue(); gv < 50 || gv < wv-2 || gv > wv+2 {
				t.Errorf("%s = %v, client_golang %v", w.GetName(), gv, wv)
			}
		case "process_cpu_seconds_total":
			// getrusage against /proc/self/stat's clock ticks.
			if gv, wv := g.GetMetric()[0].GetCounter().GetValue(), w.GetMetric()[0].GetCounter().GetValue(); gv <= 0 || gv > wv+0.5 || gv < wv-0.5 {
				t.Errorf("%s = %v, client_golang %v", w.GetName(), gv, wv)
			}
		}
	}
	for name := range byName {
		t.Errorf("%s exported, client_golang has no such family", name)
	}
}

// Gathering the daemon's registries checks each metric once, in its own
// registry: prometheus.Gatherers checked every metric a second time (a
// hash per series, a family copy per family), a tenth of the metrics
// service's CPU at a one-second interval. Counted in allocations, not
// time.
func TestGathererChecksOnce(t *testing.T) {
	root := newRegistry()
	g := newGatherer(root)
	vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "node_things", Help: "h"}, []string{"i"})
	for i := range 500 {
		vec.WithLabelValues(strconv.Itoa(i)).Set(float64(i))
	}
	g.fresh("metrics").MustRegister(vec)
	ours := testing.AllocsPerRun(20, func() { _, _ = g.Gather() })
	theirs := testing.AllocsPerRun(20, func() { _, _ = g.registries(nil).Gather() })
	t.Logf("allocations per gather of 500 series: %.0f, prometheus.Gatherers %.0f", ours, theirs)
	if ours > theirs-500 {
		t.Errorf("%.0f allocations per gather, prometheus.Gatherers %.0f: want at least one fewer per series", ours, theirs)
	}
}

var _ metrics.ExceptCollectors = (*gatherer)(nil)

// CollectorsExcept lists the collectors of every registry but the one it
// is given, in the order of the registries (root first, then the
// services' by name) and of registration: the metrics service collects
// them straight into its TSDB. A collector unregistered is left out; a
// registration refused is not listed.
func TestGathererCollectorsExcept(t *testing.T) {
	counter := func(name string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: name + " help"})
	}
	root := newRegistry()
	rootC, gone := counter("hostd_root_total"), counter("hostd_gone_total")
	root.MustRegister(rootC, gone)
	if err := root.Register(counter("hostd_root_total")); err == nil {
		t.Fatal("a second hostd_root_total registered")
	}
	if !root.Unregister(gone) {
		t.Fatal("unregister hostd_gone_total")
	}
	g := newGatherer(root)
	backup := counter("hostd_backup_total")
	g.fresh("backup").MustRegister(backup)
	skip := g.fresh("metrics")
	nodeA, own := counter("node_a_total"), counter("hostd_metrics_total")
	skip.MustRegister(nodeA, own)
	names := func(cs []prometheus.Collector) string {
		var out []string
		for _, c := range cs {
			out = append(out, c.(prometheus.Metric).Desc().String())
		}
		return strings.Join(out, "\n")
	}
	descs := func(cs ...prometheus.Counter) []prometheus.Collector {
		out := make([]prometheus.Collector, len(cs))
		for i, c := range cs {
			out[i] = c
		}
		return out
	}
	if got, want := names(g.CollectorsExcept(skip)), names(descs(rootC, backup)); got != want {
		t.Errorf("CollectorsExcept(metrics):\n%s\nwant\n%s", got, want)
	}
	if got, want := names(g.CollectorsExcept(newRegistry())), names(descs(rootC, backup, nodeA, own)); got != want {
		t.Errorf("CollectorsExcept of a registry it does not hold:\n%s\nwant\n%s", got, want)
	}
	g.drop("backup")
	if got, want := names(g.CollectorsExcept(skip)), names(descs(rootC)); got != want {
		t.Errorf("after the backup service was dropped:\n%s\nwant\n%s", got, want)
	}
}
