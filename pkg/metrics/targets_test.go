package metrics

import (
	"context"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/hostd/hostd/internal/service/servicetest"
)

func TestScraperTargetLabelsAndUp(t *testing.T) {
	store := openTestStorage(t)
	reg := prometheus.NewRegistry()
	node := prometheus.NewGauge(prometheus.GaugeOpts{Name: "node_load1", Help: "1m load average."})
	own := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hostd_thing", Help: "A thing."}, []string{"job"})
	fds := prometheus.NewGauge(prometheus.GaugeOpts{Name: "process_open_fds", Help: "Open fds."})
	reg.MustRegister(node, own, fds)
	node.Set(0.5)
	own.WithLabelValues("nightly").Set(1)
	fds.Set(9)
	clock := servicetest.NewFakeClock(time.UnixMilli(1_700_000_000_000))
	sc := &Scraper{Gatherer: reg, Storage: store.DB, Clock: clock, Targets: []ScrapeTarget{
		{Job: "node", Instance: "host-a", Families: func(n string) bool { return strings.HasPrefix(n, "node_") }, Also: isProcessFamily},
		{Job: "hostd", Instance: "host-a"},
	}}
	if _, err := sc.Scrape(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := rawSamples(t, store, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	for _, want := range []string{
		`{__name__="node_load1", instance="host-a", job="node"}`,
		// A series' own job label is kept as exported_job, as Prometheus
		// does without honor_labels.
		`{__name__="hostd_thing", exported_job="nightly", instance="host-a", job="hostd"}`,
		`{__name__="up", instance="host-a", job="node"}`,
		`{__name__="up", instance="host-a", job="hostd"}`,
		// The exporting process' own metrics under both jobs, as a
		// Prometheus scraping node_exporter stores node_exporter's.
		`{__name__="process_open_fds", instance="host-a", job="hostd"}`,
		`{__name__="process_open_fds", instance="host-a", job="node"}`,
	} {
		if v := got[want]; len(v) != 1 || (strings.Contains(want, "up") && v[0][1] != 1) {
			t.Errorf("series %s = %v, want one sample", want, v)
		}
	}
	if len(got) != 6 {
		t.Errorf("stored %d series, want 6: %v", len(got), got)
	}
}

func TestServiceJobInstanceAndUp(t *testing.T) {
	cfg := fixtureConfig()
	cfg.Instance = "host-a:9273"
	cfg.Collectors = append(cfg.Collectors, "textfile")
	cfg.TextfileDirectory = fixturePath(t, "testdata/textfile")
	rs := startService(t, t.TempDir(), cfg)
	srv := httptest.NewServer(rs.PublicHTTP())
	defer srv.Close()
	_, r := promGet(t, srv.URL, "/api/v1/label/job/values", nil)
	if string(r.Data) != `["hostd","node"]` {
		t.Fatalf("job values = %s", r.raw)
	}
	_, r = promGet(t, srv.URL, "/api/v1/query", url.Values{"query": {`up{instance="host-a:9273"} == 1`}})
	if n := strings.Count(string(r.Data), `"__name__":"up"`); n != 2 {
		t.Fatalf("up: %s", r.raw)
	}
	// Node collectors under job node, the service's own metrics under hostd.
	_, r = promGet(t, srv.URL, "/api/v1/query", url.Values{"query": {`count by (job) (node_load1) or count by (job) (hostd_metrics_tsdb_head_series)`}})
	if !strings.Contains(string(r.Data), `{"job":"node"}`) || !strings.Contains(string(r.Data), `{"job":"hostd"}`) {
		t.Fatalf("jobs: %s", r.raw)
	}
	// Families of textfiles belong to the node job, as in node_exporter;
	// their own job label is kept as exported_job.
	_, r = promGet(t, srv.URL, "/api/v1/query", url.Values{"query": {`backup_last_run_seconds{job="node",exported_job="home",instance="host-a:9273"}`}})
	if !strings.Contains(string(r.Data), `"1700000000"`) {
		t.Fatalf("textfile series: %s", r.raw)
	}
}

func TestExternalLabelsSentWithRemoteWrite(t *testing.T) {
	a := labels.FromStrings("__name__", "m", "instance", "h", "region", "own")
	body, err := encodeWriteRequest([]Sample{{a, 1000, 1}}, labels.FromStrings("region", "eu", "cluster", "c1"))
	if err != nil {
		t.Fatal(err)
	}
	req, err := decodeWriteRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range req.Timeseries[0].Labels {
		got = append(got, l.Name+"="+l.Value)
	}
	// Sorted, the series' own region kept.
	if s := strings.Join(got, ","); s != "__name__=m,cluster=c1,instance=h,region=own" {
		t.Fatalf("labels = %s", s)
	}
}
