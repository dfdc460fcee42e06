package metrics

import (
	"fmt"
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

// sameAsNodeExporter runs the real node_exporter with only collector
// enabled and args (fixture paths), and requires every family starting
// with prefix to be the same in hostd's collector over the fixtures:
// names, help texts, types, labels and values. At least min families
// must be compared.
func sameAsNodeExporter(t *testing.T, collector, prefix string, min int, args ...string) {
	t.Helper()
	theirs := nodeExporterFamilies(t, testenv.StartNodeExporter(t, append([]string{"--collector.disable-defaults", "--collector." + collector}, args...)...))
	ours := parseExposition(t, exposition(t, newFixtureCollector(t, nil, collector)))
	names := map[string]bool{}
	for _, set := range []map[string]*dto.MetricFamily{theirs, ours} {
		for n := range set {
			if strings.HasPrefix(n, prefix) {
				names[n] = true
			}
		}
	}
	if len(names) < min {
		t.Fatalf("only %d %s* families on the fixture, want at least %d", len(names), prefix, min)
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

func fixturePath(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(rel)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The real node_exporter, pointed at the same sysfs fixture (two chips:
// temperatures, voltages, fans, currents, power, energy, humidity, PWM,
// alarms, faults, beeps, labels), exports exactly hostd's hwmon families.
func TestHwmonMatchesNodeExporter(t *testing.T) {
	sameAsNodeExporter(t, "hwmon", "node_hwmon_", 30, "--path.sysfs="+fixturePath(t, "testdata/sys"))
}

// The same for the protocol counters of /proc/net/{netstat,snmp,snmp6}
// (copied from a real host).
func TestNetstatMatchesNodeExporter(t *testing.T) {
	sameAsNodeExporter(t, "netstat", "node_netstat_", 30, "--path.procfs="+fixturePath(t, "testdata/proc"))
}
