package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/daemon"
	"github.com/hostd/hostd/internal/daemon/daemontest"
	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/metrics"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	code, body, err := httpTry(url)
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}

func httpTry(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestDaemonWithMetrics runs the real daemon with the metrics service and
// checks what a user sees: /metrics passes promtool, the supervisor's own
// metrics are stored and queryable, the dashboard is served, and the CLI's
// socket route answers.
func TestDaemonWithMetrics(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{
		Registrations: []daemon.Registration{daemon.Register("metrics", metrics.DefaultConfig, metrics.New)},
		Config: func(d *daemontest.Daemon) string {
			return d.HostdSection("log_format: text") + "metrics:\n  interval: 1s\n"
		},
	})
	base := "http://" + d.HTTP
	testenv.WaitFor(t, 30*time.Second, func() error {
		// Ready, and at least two scrapes stored.
		code, body, err := httpTry(base + `/api/v1/query?query=count_over_time(hostd_service_state{service="metrics",state="ready"}[1m])>=2`)
		if err != nil {
			return err
		}
		if code != 200 || !strings.Contains(body, `"value"`) {
			return fmt.Errorf("not yet: %d %s", code, body)
		}
		return nil
	})

	code, body := httpGet(t, base+"/metrics")
	if code != 200 || !strings.Contains(body, "node_cpu_seconds_total") || !strings.Contains(body, "hostd_metrics_tsdb_head_series") {
		t.Fatalf("/metrics: %d %.300s", code, body)
	}
	findings, err := testenv.PromtoolCheckMetrics(t, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		if !metrics.KernelNameFinding(f) {
			t.Errorf("promtool check metrics: %s", f)
		}
	}

	code, body = httpGet(t, base+`/api/v1/query?query=hostd_service_state{service="metrics",state="ready"}`)
	if code != 200 || !strings.Contains(body, `"1"]`) {
		t.Fatalf("supervisor state not stored: %d %s", code, body)
	}
	code, body = httpGet(t, base+"/")
	if code != 200 || !strings.Contains(body, "<title>hostd</title>") {
		t.Fatalf("dashboard: %d %.200s", code, body)
	}
	code, body = httpGet(t, base+"/api/v1/query?query=1%2B1")
	if code != 200 || !strings.HasPrefix(body, `{"status":"success","data":{"resultType":"scalar","result":[`) || !strings.HasSuffix(body, `,"2"]}}`) {
		t.Fatalf("grafana health check: %d %s", code, body)
	}

	raw, err := d.Client().Raw(context.Background(), "GET", api.RouteMetricsQuery+"?query=node_load1", nil)
	if err != nil {
		t.Fatalf("socket query: %v", err)
	}
	var table bytes.Buffer
	if err := metrics.WriteQueryTable(&table, raw); err != nil || !strings.Contains(table.String(), "node_load1") {
		t.Fatalf("socket query table: %v\n%s", err, table.String())
	}
	_, err = d.Client().Raw(context.Background(), "GET", api.RouteMetricsQuery+"?query=sum(", nil)
	var he *api.HTTPError
	if !errors.As(err, &he) || he.Code != 400 || !strings.Contains(he.Msg, "parse error") {
		t.Fatalf("bad query over the socket: %v", err)
	}
	// `hostd alerts`' route, and the Prometheus routes on the listener.
	raw, err = d.Client().Raw(context.Background(), "GET", api.RouteMetricsAlerts, nil)
	if err != nil || !strings.HasPrefix(string(raw), `{"status":"success","data":{"alerts":[`) {
		t.Fatalf("socket alerts: %v %s", err, raw)
	}
	for _, p := range []string{"/-/ready", "/api/v1/rules", "/api/v1/status/runtimeinfo", "/api/v1/targets"} {
		if code, body := httpGet(t, base+p); code != 200 {
			t.Fatalf("%s: %d %s", p, code, body)
		}
	}
	code, body = httpGet(t, base+"/api/v1/label/job/values")
	if code != 200 || !strings.Contains(body, `"hostd","node"`) {
		t.Fatalf("job values: %d %s", code, body)
	}

	// Every family of /metrics is stored: the node collectors' appended
	// straight to the TSDB, the service's own and the other registries'
	// gathered, and the node families under job="node" only.
	_, expo := httpGet(t, base+"/metrics")
	code, body = httpGet(t, base+"/api/v1/label/__name__/values")
	if code != 200 {
		t.Fatalf("names: %d %s", code, body)
	}
	var names struct{ Data []string }
	if err := json.Unmarshal([]byte(body), &names); err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, n := range names.Data {
		stored[n] = true
	}
	families := 0
	for _, line := range strings.Split(expo, "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		families++
		name := f[2]
		if f[3] == "summary" || f[3] == "histogram" {
			name += "_count"
		}
		if !stored[name] {
			t.Errorf("family %s of /metrics is not stored", name)
		}
	}
	if families < 100 {
		t.Errorf("/metrics has %d families", families)
	}
	code, body = httpGet(t, base+`/api/v1/query?query=count({__name__=~"node_.+",job!="node"})`)
	if code != 200 || !strings.Contains(body, `"result":[]`) {
		t.Errorf("node series stored under another job: %d %s", code, body)
	}
}
