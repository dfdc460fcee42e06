package metrics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func writeMetric(t *testing.T, m prometheus.Metric) *dto.Metric {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatalf("write %v: %v", m.Desc(), err)
	}
	return &out
}

// A series seen again reuses its label pairs; its value and type are the
// new ones; a series no collection exports is dropped after sweepRounds.
func TestSeriesCache(t *testing.T) {
	d := prometheus.NewDesc("test_metric", "h", []string{"device", "mode"}, prometheus.Labels{"c": "1"})
	sc := &seriesCache{}
	a := writeMetric(t, sc.metric(d, prometheus.CounterValue, 1, "sda", "read"))
	b := writeMetric(t, sc.metric(d, prometheus.GaugeValue, 2, "sda", "read"))
	other := writeMetric(t, sc.metric(d, prometheus.UntypedValue, 3, "sdb", "read"))
	if &a.Label[0] != &b.Label[0] {
		t.Error("the same series got new label pairs")
	}
	if a.GetCounter().GetValue() != 1 || b.GetGauge().GetValue() != 2 || other.GetUntyped().GetValue() != 3 {
		t.Errorf("values: %v %v %v", a, b, other)
	}
	var names []string
	for _, l := range other.Label {
		names = append(names, l.GetName()+"="+l.GetValue())
	}
	if got := strings.Join(names, ","); got != "c=1,device=sdb,mode=read" {
		t.Errorf("labels %s", got)
	}
	// The same as NewConstMetric.
	want, _ := prometheus.NewConstMetric(d, prometheus.GaugeValue, 2, "sda", "read")
	if w := writeMetric(t, want); w.String() != b.String() {
		t.Errorf("cached %v, NewConstMetric %v", b, w)
	}
	if sc.len() != 2 {
		t.Fatalf("%d series cached, want 2", sc.len())
	}
	for i := 0; i < 2*sweepRounds; i++ {
		sc.metric(d, prometheus.GaugeValue, 1, "sda", "read") // still exported
		sc.endRound()
	}
	if sc.len() != 1 {
		t.Errorf("%d series cached after sdb went away, want 1", sc.len())
	}
	// A nil cache builds plain constant metrics.
	var none *seriesCache
	if w := writeMetric(t, none.metric(d, prometheus.GaugeValue, 2, "sda", "read")); w.String() != b.String() {
		t.Errorf("nil cache: %v", w)
	}
	none.endRound()
}

// Label values from outside (an interface alias, a file name) that a
// metric cannot carry give an invalid metric, not a panic.
func TestSeriesCacheInvalidLabelValues(t *testing.T) {
	d := prometheus.NewDesc("test_metric", "h", []string{"device"}, nil)
	for _, sc := range []*seriesCache{{}, nil} {
		for _, lvs := range [][]string{{"\xff\xfe"}, {"a", "b"}, nil} {
			var out dto.Metric
			if err := sc.metric(d, prometheus.GaugeValue, 1, lvs...).Write(&out); err == nil {
				t.Errorf("label values %q: no error", lvs)
			}
		}
	}
}

// An interface alias that is not UTF-8 (ip link set eth0 alias $'\xff')
// used to panic the netclass collector (MustNewConstMetric): in its own
// goroutine that took hostd down, and caught by the registry it loses the
// whole node scrape. Now only that interface's node_network_info fails to
// gather.
func TestNetclassAliasNotUTF8(t *testing.T) {
	sys := t.TempDir()
	dev := filepath.Join(sys, "class", "net", "eth9")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"operstate": "up", "ifalias": "\xff\xfe\n", "address": "02:00:00:00:00:01", "mtu": "1500"} {
		if err := os.WriteFile(filepath.Join(dev, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nc, err := NewNodeCollector(HostOptions{SysPath: sys, ProcPath: t.TempDir()}, []string{"netclass"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(nc)
	mfs, err := reg.Gather()
	if err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("gather error %v, want the alias named", err)
	}
	var got []string
	for _, mf := range mfs {
		got = append(got, mf.GetName())
	}
	if s := strings.Join(got, " "); !strings.Contains(s, "node_network_up") || !strings.Contains(s, "node_network_mtu_bytes") {
		t.Errorf("families %s", s)
	}
}
