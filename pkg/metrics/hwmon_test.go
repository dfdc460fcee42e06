package metrics

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/hostd/hostd/internal/testenv"
)

// samples renders a family's samples as sorted "labels value" lines.
func samples(mf *dto.MetricFamily) []string {
	var out []string
	for _, m := range mf.GetMetric() {
		var ls []string
		for _, l := range m.GetLabel() {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		sort.Strings(ls)
		v := m.GetGauge().GetValue()
		if m.GetCounter() != nil {
			v = m.GetCounter().GetValue()
		}
		out = append(out, fmt.Sprintf("{%s} %v", strings.Join(ls, ","), v))
	}
	sort.Strings(out)
	return out
}

// The real node_exporter, pointed at the same sysfs fixture (two chips:
// temperatures, voltages, fans, currents, power, energy, humidity, PWM,
// alarms, faults, beeps, labels), exports exactly the hwmon families,
// help texts, types, labels and values hostd does.
func TestHwmonMatchesNodeExporter(t *testing.T) {
	sys, err := filepath.Abs("testdata/sys")
	if err != nil {
		t.Fatal(err)
	}
	ne := testenv.StartNodeExporter(t, "--path.sysfs="+sys, "--collector.disable-defaults", "--collector.hwmon")
	resp, err := http.Get(ne.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	theirs := parseExposition(t, string(body))
	ours := parseExposition(t, exposition(t, newFixtureCollector(t, nil, "hwmon")))
	names := map[string]bool{}
	for _, set := range []map[string]*dto.MetricFamily{theirs, ours} {
		for n := range set {
			if strings.HasPrefix(n, "node_hwmon_") {
				names[n] = true
			}
		}
	}
	if len(names) < 30 {
		t.Fatalf("only %d hwmon families on the fixture", len(names))
	}
	for n := range names {
		a, b := ours[n], theirs[n]
		switch {
		case a == nil:
			t.Errorf("%s: only node_exporter exports it: %v", n, samples(b))
			continue
		case b == nil:
			t.Errorf("%s: only hostd exports it: %v", n, samples(a))
			continue
		}
		if a.GetHelp() != b.GetHelp() || a.GetType() != b.GetType() {
			t.Errorf("%s: %s %q, node_exporter has %s %q", n, a.GetType(), a.GetHelp(), b.GetType(), b.GetHelp())
		}
		if sa, sb := strings.Join(samples(a), "\n"), strings.Join(samples(b), "\n"); sa != sb {
			t.Errorf("%s:\nhostd:\n%s\nnode_exporter:\n%s", n, sa, sb)
		}
	}
}
