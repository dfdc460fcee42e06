package metrics

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/hostd/hostd/internal/testenv"
)

// textfileFamilies gathers the textfile collector over dir.
func textfileFamilies(t *testing.T, dir string) map[string]*dto.MetricFamily {
	t.Helper()
	o := fixtureHostOptions()
	o.TextfileDir = dir
	h, err := newHost(o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	n, err := newNodeCollector(h, []string{"textfile"}, h.logger)
	if err != nil {
		t.Fatal(err)
	}
	return parseExposition(t, exposition(t, n))
}

// The real node_exporter, reading the same directory (three families of
// every type, a family with labels missing on some samples, a file that
// does not parse and one without the .prom suffix), exports exactly the
// same families, help, types, labels and values.
func TestTextfileMatchesNodeExporter(t *testing.T) {
	dir := fixturePath(t, "testdata/textfile")
	theirs := nodeExporterFamilies(t, testenv.StartNodeExporter(t, "--collector.disable-defaults", "--collector.textfile", "--collector.textfile.directory="+dir))
	ours := textfileFamilies(t, dir)
	skip := func(n string) bool {
		return strings.HasPrefix(n, "node_scrape_") || strings.HasPrefix(n, "go_") || strings.HasPrefix(n, "process_") ||
			strings.HasPrefix(n, "promhttp_") || n == "node_exporter_build_info"
	}
	compared := 0
	for _, set := range []map[string]*dto.MetricFamily{theirs, ours} {
		for n := range set {
			if skip(n) {
				continue
			}
			a, b := ours[n], theirs[n]
			if a == nil || b == nil {
				t.Errorf("%s: hostd %v, node_exporter %v", n, a != nil, b != nil)
				continue
			}
			compared++
			if a.GetHelp() != b.GetHelp() || a.GetType() != b.GetType() {
				t.Errorf("%s: %s %q, node_exporter has %s %q", n, a.GetType(), a.GetHelp(), b.GetType(), b.GetHelp())
			}
			if sa, sb := strings.Join(samples(a), "\n"), strings.Join(samples(b), "\n"); sa != sb {
				t.Errorf("%s:\nhostd:\n%s\nnode_exporter:\n%s", n, sa, sb)
			}
		}
	}
	if compared < 2*7 {
		t.Errorf("compared %d families (both ways), want 14", compared)
	}
	if v := ours["node_textfile_scrape_error"].GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("scrape_error %v with broken.prom, want 1", v)
	}
}

func TestTextfileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.prom", "x_total 1\n")
	write("b.prom", "x_total 2\n")         // the same family in two files
	write("c.prom", "y 1 1700000000000\n") // a client-side timestamp
	write("d.prom", "z 1\n")
	got := textfileFamilies(t, dir)
	if got["x_total"] == nil || got["x_total"].GetMetric()[0].GetUntyped().GetValue() != 1 {
		t.Errorf("x_total = %v, want the first file's", got["x_total"])
	}
	if got["y"] != nil || got["z"] == nil {
		t.Errorf("y %v (want none), z %v (want one)", got["y"], got["z"])
	}
	if v := got["node_textfile_scrape_error"].GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("scrape_error %v, want 1", v)
	}
	if n := len(got["node_textfile_mtime_seconds"].GetMetric()); n != 2 {
		t.Errorf("%d mtimes, want 2 (a and d)", n)
	}
	// No directory configured: no files, no error.
	if got := textfileFamilies(t, ""); len(got["node_textfile_scrape_error"].GetMetric()) != 1 ||
		got["node_textfile_scrape_error"].GetMetric()[0].GetGauge().GetValue() != 0 || got["node_textfile_mtime_seconds"] != nil {
		t.Errorf("without a directory: %v", got)
	}
	// A directory that does not exist is an error, as in node_exporter.
	if got := textfileFamilies(t, filepath.Join(dir, "missing")); got["node_textfile_scrape_error"].GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Errorf("missing directory: %v", got["node_textfile_scrape_error"])
	}
}
