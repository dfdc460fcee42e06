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

// The collectors added for node_exporter parity, each against the real
// node_exporter on the same fixture files (copied from a real host, values
// changed to be non-zero).
func TestNewCollectorsMatchNodeExporter(t *testing.T) {
	proc := "--path.procfs=" + fixturePath(t, "testdata/proc")
	sys := "--path.sysfs=" + fixturePath(t, "testdata/sys")
	for _, tt := range []struct {
		collector, prefix string
		min               int
		args              []string
	}{
		{"entropy", "node_entropy_", 2, []string{proc}},
		{"conntrack", "node_nf_conntrack_", 10, []string{proc}},
		{"arp", "node_arp_", 1, []string{proc}},
		{"softnet", "node_softnet_", 3, []string{proc}},
		{"udp_queues", "node_udp_", 1, []string{proc}},
		{"time", "node_time_clocksource", 2, []string{sys}},
		{"time", "node_time_zone", 1, []string{sys}},
	} {
		t.Run(tt.collector+"/"+tt.prefix, func(t *testing.T) {
			sameAsNodeExporter(t, tt.collector, tt.prefix, tt.min, tt.args...)
		})
	}
}

// timex and os read the live host (adjtimex(2), /etc/os-release): their
// families must equal node_exporter's on this host, values included,
// except the clock's offset and error bounds, which move between the two
// reads.
func TestTimexAndOSMatchNodeExporter(t *testing.T) {
	theirs := nodeExporterFamilies(t, testenv.StartNodeExporter(t, "--collector.disable-defaults", "--collector.timex", "--collector.os"))
	c, err := NewNodeCollector(HostOptions{}, []string{"timex", "os"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ours := parseExposition(t, exposition(t, c))
	moving := map[string]bool{
		"node_timex_offset_seconds": true, "node_timex_frequency_adjustment_ratio": true,
		"node_timex_maxerror_seconds": true, "node_timex_estimated_error_seconds": true,
	}
	n := 0
	for name, b := range theirs {
		if !strings.HasPrefix(name, "node_timex_") && !strings.HasPrefix(name, "node_os_") {
			continue
		}
		n++
		a := ours[name]
		if a == nil {
			t.Errorf("%s: only node_exporter exports it", name)
			continue
		}
		if a.GetHelp() != b.GetHelp() || a.GetType() != b.GetType() || labelNames(a) != labelNames(b) {
			t.Errorf("%s: %s %q [%s], node_exporter has %s %q [%s]", name, a.GetType(), a.GetHelp(), labelNames(a), b.GetType(), b.GetHelp(), labelNames(b))
		}
		if sa, sb := strings.Join(samples(a), "\n"), strings.Join(samples(b), "\n"); !moving[name] && sa != sb {
			t.Errorf("%s:\nhostd:\n%s\nnode_exporter:\n%s", name, sa, sb)
		}
	}
	if n < 18 {
		t.Errorf("only %d timex and os families from node_exporter", n)
	}
}

// With the default excludes, hostd reports the same filesystems as the
// node_exporter on this host (label sets of every series); size and
// read-only state are stable enough to compare as values too.
func TestFilesystemExcludesMatchNodeExporter(t *testing.T) {
	theirs := nodeExporterFamilies(t, testenv.StartNodeExporter(t, "--collector.disable-defaults", "--collector.filesystem"))
	c, err := NewNodeCollector(HostOptions{}, []string{"filesystem"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ours := parseExposition(t, exposition(t, c))
	for _, name := range []string{"node_filesystem_size_bytes", "node_filesystem_readonly", "node_filesystem_device_error"} {
		if a, b := strings.Join(samples(ours[name]), "\n"), strings.Join(samples(theirs[name]), "\n"); a != b {
			t.Errorf("%s:\nhostd:\n%s\nnode_exporter:\n%s", name, a, b)
		}
	}
}
