package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hostd/hostd/internal/testenv"
)

func parseExposition(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return mfs
}

// nodeExporterFamilies scrapes a running node_exporter.
func nodeExporterFamilies(t *testing.T, ne *testenv.NodeExporter) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(ne.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return parseExposition(t, string(body))
}

func labelNames(mf *dto.MetricFamily) string {
	set := map[string]bool{}
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			set[l.GetName()] = true
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// leftOut says why hostd does not export a family node_exporter does, or
// "" if it should.
func leftOut(name string) string {
	for _, lo := range []struct{ prefix, why string }{
		{"go_", "node_exporter's own Go runtime; hostd's are under job hostd"},
		{"process_", "node_exporter's own process; hostd's are under job hostd"},
		{"promhttp_", "node_exporter's own HTTP handler"},
		{"node_exporter_build_info", "node_exporter's version; hostd has hostd_build_info"},
	} {
		if strings.HasPrefix(name, lo.prefix) {
			return lo.why
		}
	}
	return ""
}

// TestMatchesNodeExporter runs the real node_exporter on this host next to
// hostd's collectors and requires every metric family both export to have
// the same help text, type and label names, so dashboards built for
// node_exporter work on hostd unchanged.
func TestMatchesNodeExporter(t *testing.T) {
	theirs := nodeExporterFamilies(t, testenv.StartNodeExporter(t))
	c, err := NewNodeCollector(HostOptions{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ours := parseExposition(t, exposition(t, c))

	compared := 0
	var onlyOurs []string
	for name, mf := range ours {
		ne, ok := theirs[name]
		if !ok {
			onlyOurs = append(onlyOurs, name)
			continue
		}
		compared++
		if mf.GetHelp() != ne.GetHelp() {
			t.Errorf("%s: help %q, node_exporter has %q", name, mf.GetHelp(), ne.GetHelp())
		}
		if mf.GetType() != ne.GetType() {
			t.Errorf("%s: type %s, node_exporter has %s", name, mf.GetType(), ne.GetType())
		}
		if name == "node_scrape_collector_duration_seconds" || name == "node_scrape_collector_success" {
			continue
		}
		if a, b := labelNames(mf), labelNames(ne); a != b {
			t.Errorf("%s: labels [%s], node_exporter has [%s]", name, a, b)
		}
	}
	sort.Strings(onlyOurs)
	t.Logf("compared %d metric families with node_exporter", compared)
	var missing []string
	for name := range theirs {
		if _, ok := ours[name]; !ok && leftOut(name) == "" {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("node_exporter families hostd lacks on this host: %v", missing)
	}
	if len(onlyOurs) > 0 {
		t.Errorf("families node_exporter does not export on this host: %v", onlyOurs)
	}
	// These must exist on any Linux host both run on.
	for _, must := range []string{
		"node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "node_load1",
		"node_filesystem_avail_bytes", "node_network_receive_bytes_total",
		"node_boot_time_seconds", "node_uname_info", "node_filefd_allocated",
		"node_sockstat_sockets_used", "node_vmstat_pgfault", "node_time_seconds",
	} {
		if _, ok := ours[must]; !ok {
			t.Errorf("hostd does not export %s", must)
		}
		if _, ok := theirs[must]; !ok {
			t.Errorf("node_exporter does not export %s", must)
		}
	}
	if compared < 60 {
		t.Errorf("only %d families in common with node_exporter", compared)
	}
}

// TestPrometheusScrapesCollectors points a real Prometheus at the node
// collectors served the way the daemon serves /metrics: it scrapes them
// like a node_exporter target, with no scrape errors.
func TestPrometheusScrapesCollectors(t *testing.T) {
	nc, err := NewNodeCollector(HostOptions{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(nc)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	defer srv.Close()
	prom := testenv.StartPrometheus(t, testenv.PrometheusOptions{ScrapeTargets: []string{strings.TrimPrefix(srv.URL, "http://")}})
	testenv.WaitFor(t, 30*time.Second, func() error {
		_, r := promGet(t, prom.URL, "/api/v1/query", url.Values{"query": {`up{job="node"} == 1 and on() count(node_cpu_seconds_total) > 0 and on() scrape_samples_scraped{job="node"} > 300`}})
		if !strings.Contains(string(r.Data), `"up"`) {
			return fmt.Errorf("not scraped yet: %s", r.raw)
		}
		return nil
	})
}
