package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"encoding/json"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hostd/hostd/internal/testenv"
)

// jsonShape lists the paths of v with their JSON types: "data.headStats.
// numSeries number". An array contributes the shape of its elements;
// objects whose keys are data (label sets, flags) contribute only
// "{...} string".
func jsonShape(v any, path string, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		out[path] = "object"
		last := path[strings.LastIndex(path, ".")+1:]
		switch last {
		case "labels", "annotations", "discoveredLabels", "droppedTargetCounts", "flags":
			out[path+".{...}"] = "value"
			return
		}
		for k, e := range x {
			jsonShape(e, path+"."+k, out)
		}
	case []any:
		out[path] = "array"
		for _, e := range x {
			jsonShape(e, path+"[]", out)
		}
	case string:
		out[path] = "string"
	case float64:
		out[path] = "number"
	case bool:
		out[path] = "bool"
	case nil:
		out[path] = "null"
	}
}

func getBody(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAPIShapesMatchPrometheus sends the same requests to hostd and to a
// real Prometheus scraping the same collectors and evaluating the same
// rule file, and requires the same status codes and, in every answer,
// each field Prometheus has with the same JSON type in hostd's.
func TestAPIShapesMatchPrometheus(t *testing.T) {
	ruleFile := filepath.Join(testenv.TempDir(t), "shape.rules.yml")
	if err := os.WriteFile(ruleFile, []byte(`groups:
  - name: shape
    interval: 1s
    rules:
      - record: shape:test_value:doubled
        expr: test_value * 2
      - alert: ShapeValueHigh
        expr: test_value > 1
        labels: {severity: page}
        annotations: {summary: "test_value is {{ $value }}"}
`), 0o644); err != nil {
		t.Fatal(err)
	}

	// Prometheus scrapes the fixture collectors and test_value.
	reg := prometheus.NewRegistry()
	reg.MustRegister(newFixtureCollector(t, nil, "loadavg", "meminfo"))
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_value", Help: "A value rules look at."})
	g.Set(2)
	reg.MustRegister(g)
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer target.Close()
	addr := strings.TrimPrefix(target.URL, "http://")
	prom := testenv.StartPrometheus(t, testenv.PrometheusOptions{ScrapeTargets: []string{addr}, RuleFiles: []string{ruleFile}})

	// hostd stores the same collectors and evaluates the same file.
	cfg := fixtureConfig()
	cfg.Collectors = []string{"loadavg", "meminfo"}
	cfg.Instance = addr
	cfg.Rules = RulesConfig{Files: []string{ruleFile}, EvaluationInterval: time.Second}
	rs := startService(t, t.TempDir(), cfg)
	hg := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_value", Help: "A value rules look at."})
	hg.Set(2)
	rs.reg.MustRegister(hg)
	if _, err := rs.Scrape(t.Context()); err != nil {
		t.Fatal(err)
	}
	hostd := httptest.NewServer(rs.PublicHTTP())
	defer hostd.Close()

	firing := func(base string) func() error {
		return func() error {
			_, r := promGet(t, base, "/api/v1/alerts", nil)
			if !strings.Contains(string(r.Data), `"state":"firing"`) {
				return fmt.Errorf("%s: no firing alert yet: %s", base, r.raw)
			}
			_, r = promGet(t, base, "/api/v1/rules", nil)
			if strings.Contains(string(r.Data), `"lastEvaluation":"0001-01-01T00:00:00Z"`) {
				return fmt.Errorf("%s: a rule was not evaluated yet: %s", base, r.raw)
			}
			_, r = promGet(t, base, "/api/v1/targets", nil)
			if !strings.Contains(string(r.Data), `"health":"up"`) {
				return fmt.Errorf("%s: target not up yet: %s", base, r.raw)
			}
			return nil
		}
	}
	testenv.WaitFor(t, 60*time.Second, firing(prom.URL))
	testenv.WaitFor(t, 30*time.Second, firing(hostd.URL))

	for _, req := range []struct {
		path string
		form url.Values
	}{
		{"/api/v1/status/runtimeinfo", nil},
		{"/api/v1/status/config", nil},
		{"/api/v1/status/flags", nil},
		{"/api/v1/status/tsdb", nil},
		{"/api/v1/status/tsdb", url.Values{"limit": {"3"}}},
		{"/api/v1/status/buildinfo", nil},
		{"/api/v1/rules", nil},
		{"/api/v1/rules", url.Values{"type": {"record"}}},
		// Prometheus 2.42 has neither exclude_alerts nor the tsdb limit
		// (hostd answers them as Prometheus 3 does; see TestAPIQueries).
		{"/api/v1/rules", url.Values{"type": {"alert"}}},
		{"/api/v1/rules", url.Values{"rule_name[]": {"ShapeValueHigh"}}},
		{"/api/v1/rules", url.Values{"type": {"bogus"}}},
		{"/api/v1/alerts", nil},
		{"/api/v1/targets", nil},
		{"/api/v1/targets", url.Values{"state": {"dropped"}}},
		{"/api/v1/format_query", url.Values{"query": {`sum(rate(node_cpu_seconds_total{mode!="idle"}[5m]))by(cpu)`}}},
		{"/api/v1/format_query", url.Values{"query": {"sum("}}},
	} {
		name := req.path + "?" + req.form.Encode()
		pc, pr := promGet(t, prom.URL, req.path, req.form)
		hc, hr := promGet(t, hostd.URL, req.path, req.form)
		if pc != hc || pr.Status != hr.Status || pr.ErrorType != hr.ErrorType {
			t.Errorf("%s: hostd %d %s %s, Prometheus %d %s %s", name, hc, hr.Status, hr.ErrorType, pc, pr.Status, pr.ErrorType)
			continue
		}
		if req.path == "/api/v1/format_query" && string(pr.Data) != string(hr.Data) {
			t.Errorf("%s: hostd %s, Prometheus %s", name, hr.Data, pr.Data)
		}
		var pv, hv any
		_ = json.Unmarshal(pr.raw, &pv)
		_ = json.Unmarshal(hr.raw, &hv)
		root := "data"
		if req.path == "/api/v1/status/flags" {
			root = "flags"
		}
		ps, hs := map[string]string{}, map[string]string{}
		jsonShape(pv.(map[string]any)["data"], root, ps)
		jsonShape(hv.(map[string]any)["data"], root, hs)
		var missing []string
		for p, typ := range ps {
			if hs[p] != typ {
				missing = append(missing, fmt.Sprintf("%s: Prometheus %s, hostd %q", p, typ, hs[p]))
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("%s: fields differ:\n  %s\nPrometheus: %s\nhostd: %s", name, strings.Join(missing, "\n  "), pr.raw, hr.raw)
		}
	}
	for _, p := range []string{"/-/healthy", "/-/ready"} {
		pc, pb := getBody(t, prom.URL+p)
		hc, hb := getBody(t, hostd.URL+p)
		if pc != hc || pb != hb {
			t.Errorf("%s: hostd %d %q, Prometheus %d %q", p, hc, hb, pc, pb)
		}
	}
}
