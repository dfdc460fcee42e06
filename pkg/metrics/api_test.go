package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hostd/hostd/internal/service/servicetest"
)

// t0 is the first scrape of the API fixtures.
var t0 = time.Unix(1_700_000_000, 0).UTC()

// newTestAPI fills a TSDB with 40 scrapes 15s apart of a counter growing
// by 10 per scrape, a gauge per device and a histogram, and serves it.
func newTestAPI(t testing.TB, opts APIOptions) (http.Handler, *Scraper) {
	t.Helper()
	store := openTestStorage(t)
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_requests_total", Help: "Requests served."}, []string{"code"})
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_temperature_celsius", Help: "Temperature."}, []string{"device"})
	reg.MustRegister(c, g)
	clock := servicetest.NewFakeClock(t0)
	sc := &Scraper{Gatherer: reg, Storage: store.DB, Clock: clock}
	for i := 0; i < 40; i++ {
		c.WithLabelValues("200").Add(10)
		c.WithLabelValues("500").Add(1)
		g.WithLabelValues("sda").Set(float64(30 + i%3))
		g.WithLabelValues("sdb").Set(40)
		if _, err := sc.Scrape(context.Background()); err != nil {
			t.Fatal(err)
		}
		clock.Advance(15 * time.Second)
	}
	opts.Now = func() time.Time { return t0.Add(10 * time.Minute) }
	return NewAPI(store.DB, sc.Metadata, opts, nil).Handler(), sc
}

func ts(d time.Duration) string { return fmt.Sprintf("%d", t0.Add(d).Unix()) }

func TestAPIQueries(t *testing.T) {
	h, _ := newTestAPI(t, APIOptions{})
	tests := []struct {
		name, method, path string
		form               url.Values
		wantCode           int
		wantData           string // exact JSON of data, when set
		wantErrType        string
		wantErr            string
	}{
		{name: "grafana health check", method: "GET", path: "/api/v1/query", form: url.Values{"query": {"1+1"}, "time": {ts(0)}},
			wantCode: 200, wantData: `{"resultType":"scalar","result":[1700000000,"2"]}`},
		{name: "instant vector", method: "GET", path: "/api/v1/query", form: url.Values{"query": {`test_temperature_celsius{device="sdb"}`}, "time": {ts(5 * time.Minute)}},
			wantCode: 200, wantData: `{"resultType":"vector","result":[{"metric":{"__name__":"test_temperature_celsius","device":"sdb"},"value":[1700000300,"40"]}]}`},
		{name: "rate over counter, form POST", method: "POST", path: "/api/v1/query", form: url.Values{"query": {`rate(test_requests_total{code="200"}[1m])`}, "time": {ts(5 * time.Minute)}},
			wantCode: 200, wantData: `{"resultType":"vector","result":[{"metric":{"code":"200"},"value":[1700000300,"0.6666666666666666"]}]}`},
		{name: "sum by", method: "GET", path: "/api/v1/query", form: url.Values{"query": {`sum by (code) (test_requests_total)`}, "time": {ts(0)}},
			wantCode: 200, wantData: `{"resultType":"vector","result":[{"metric":{"code":"200"},"value":[1700000000,"10"]},{"metric":{"code":"500"},"value":[1700000000,"1"]}]}`},
		{name: "range query", method: "GET", path: "/api/v1/query_range", form: url.Values{"query": {`test_temperature_celsius{device="sda"}`}, "start": {ts(0)}, "end": {ts(30 * time.Second)}, "step": {"15"}},
			wantCode: 200, wantData: `{"resultType":"matrix","result":[{"metric":{"__name__":"test_temperature_celsius","device":"sda"},"values":[[1700000000,"30"],[1700000015,"31"],[1700000030,"32"]]}]}`},
		{name: "malformed PromQL", method: "GET", path: "/api/v1/query", form: url.Values{"query": {"sum(rate(x[5m]"}},
			wantCode: 400, wantErrType: "bad_data", wantErr: `invalid parameter "query": 1:15: parse error: unclosed left parenthesis`},
		{name: "no query", method: "GET", path: "/api/v1/query", form: url.Values{},
			wantCode: 400, wantErrType: "bad_data", wantErr: `invalid parameter "query"`},
		{name: "bad time", method: "GET", path: "/api/v1/query", form: url.Values{"query": {"1"}, "time": {"yesterday"}},
			wantCode: 400, wantErrType: "bad_data", wantErr: `invalid parameter "time": cannot parse "yesterday" to a valid timestamp`},
		{name: "range end before start", method: "GET", path: "/api/v1/query_range", form: url.Values{"query": {"1"}, "start": {ts(time.Minute)}, "end": {ts(0)}, "step": {"15"}},
			wantCode: 400, wantErrType: "bad_data", wantErr: "end timestamp must not be before start time"},
		{name: "zero step", method: "GET", path: "/api/v1/query_range", form: url.Values{"query": {"1"}, "start": {ts(0)}, "end": {ts(time.Minute)}, "step": {"0"}},
			wantCode: 400, wantErrType: "bad_data", wantErr: "zero or negative query resolution step widths are not accepted"},
		{name: "too many points", method: "GET", path: "/api/v1/query_range", form: url.Values{"query": {"1"}, "start": {ts(0)}, "end": {ts(24 * time.Hour)}, "step": {"1"}},
			wantCode: 400, wantErrType: "bad_data", wantErr: "exceeded maximum resolution of 11000 points per timeseries"},
		{name: "range query of a range vector", method: "GET", path: "/api/v1/query_range", form: url.Values{"query": {"test_requests_total[1m]"}, "start": {ts(0)}, "end": {ts(time.Minute)}, "step": {"15"}},
			wantCode: 400, wantErrType: "bad_data", wantErr: "invalid parameter \"query\""},
		{name: "labels", method: "GET", path: "/api/v1/labels", wantCode: 200, wantData: `["__name__","code","device"]`},
		{name: "labels with match", method: "POST", path: "/api/v1/labels", form: url.Values{"match[]": {"test_requests_total"}}, wantCode: 200, wantData: `["__name__","code"]`},
		{name: "metric names", method: "GET", path: "/api/v1/label/__name__/values", wantCode: 200, wantData: `["test_requests_total","test_temperature_celsius"]`},
		{name: "label values with limit", method: "GET", path: "/api/v1/label/device/values", form: url.Values{"limit": {"1"}}, wantCode: 200, wantData: `["sda"]`},
		{name: "series", method: "GET", path: "/api/v1/series", form: url.Values{"match[]": {`{__name__=~"test_temp.*"}`}},
			wantCode: 200, wantData: `[{"__name__":"test_temperature_celsius","device":"sda"},{"__name__":"test_temperature_celsius","device":"sdb"}]`},
		{name: "series without match", method: "GET", path: "/api/v1/series", wantCode: 400, wantErrType: "bad_data", wantErr: "no match[] parameter provided"},
		{name: "series bad matcher", method: "GET", path: "/api/v1/series", form: url.Values{"match[]": {"{"}}, wantCode: 400, wantErrType: "bad_data"},
		{name: "metadata", method: "GET", path: "/api/v1/metadata", form: url.Values{"metric": {"test_requests_total"}},
			wantCode: 200, wantData: `{"test_requests_total":[{"type":"counter","help":"Requests served.","unit":""}]}`},
		{name: "exemplars", method: "GET", path: "/api/v1/query_exemplars", form: url.Values{"query": {"test_requests_total"}}, wantCode: 200, wantData: `[]`},
		{name: "unknown endpoint", method: "GET", path: "/api/v1/nonexistent", wantCode: 404, wantErrType: "not_found"},
		{name: "rules without a rule manager", method: "GET", path: "/api/v1/rules", wantCode: 200, wantData: `{"groups":[]}`},
		{name: "alerts without a rule manager", method: "GET", path: "/api/v1/alerts", wantCode: 200, wantData: `{"alerts":[]}`},
		{name: "format_query", method: "POST", path: "/api/v1/format_query", form: url.Values{"query": {"sum(rate(x[5m]))by(a)"}}, wantCode: 200, wantData: `"sum by (a) (rate(x[5m]))"`},
		{name: "format_query bad", method: "GET", path: "/api/v1/format_query", form: url.Values{"query": {"sum("}}, wantCode: 400, wantErrType: "bad_data"},
		{name: "tsdb limit", method: "GET", path: "/api/v1/status/tsdb", form: url.Values{"limit": {"0"}}, wantCode: 400, wantErrType: "bad_data"},
		{name: "rules bad type", method: "GET", path: "/api/v1/rules", form: url.Values{"type": {"x"}}, wantCode: 400, wantErrType: "bad_data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, r := apiCall(t, h, tt.method, tt.path, tt.form)
			if code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", code, tt.wantCode, r.raw)
			}
			if tt.wantCode == 200 {
				if r.Status != "success" {
					t.Fatalf("status field %q: %s", r.Status, r.raw)
				}
				if tt.wantData != "" && string(r.Data) != tt.wantData {
					t.Fatalf("data\n got %s\nwant %s", r.Data, tt.wantData)
				}
				return
			}
			if r.Status != "error" || r.ErrorType != tt.wantErrType || !strings.Contains(r.Error, tt.wantErr) {
				t.Fatalf("got %s, want errorType %q error containing %q", r.raw, tt.wantErrType, tt.wantErr)
			}
		})
	}
}

func TestAPIBuildInfo(t *testing.T) {
	h, _ := newTestAPI(t, APIOptions{})
	code, r := apiCall(t, h, "GET", "/api/v1/status/buildinfo", nil)
	var bi map[string]string
	if err := json.Unmarshal(r.Data, &bi); code != 200 || err != nil {
		t.Fatalf("buildinfo: %d %s", code, r.raw)
	}
	for _, k := range []string{"version", "revision", "branch", "buildUser", "buildDate", "goVersion"} {
		if _, ok := bi[k]; !ok {
			t.Errorf("buildinfo lacks %q", k)
		}
	}
	if bi["version"] != Version {
		t.Errorf("version %q", bi["version"])
	}
	for mod, want := range map[string]string{"v0.42.0": "2.42.0", "v0.316.0": "3.16.0", "v0.316.1-rc.0": "3.16.1", "v1.0.0": "x"} {
		if got := prometheusVersion(mod, "x"); got != want {
			t.Errorf("prometheusVersion(%s) = %s, want %s", mod, got, want)
		}
	}
}

// TestVersionMatchesGoMod checks that buildinfo names the Prometheus
// release whose packages go.mod requires.
func TestVersionMatchesGoMod(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/prometheus/prometheus (v\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod does not require github.com/prometheus/prometheus")
	}
	if want := prometheusVersion(string(m[1]), ""); Version != want {
		t.Fatalf("Version = %s, but go.mod requires prometheus %s, release %s", Version, m[1], want)
	}
}

// TestAPILimits checks that queries over the limits are refused with
// Prometheus' error types instead of running.
func TestAPILimits(t *testing.T) {
	h, _ := newTestAPI(t, APIOptions{MaxSamples: 50, MaxPoints: 100})
	tests := []struct {
		name        string
		path        string
		form        url.Values
		code        int
		errType     string
		errContains string
	}{
		{"samples over max_samples", "/api/v1/query", url.Values{"query": {"test_requests_total[10m]"}, "time": {ts(10 * time.Minute)}},
			422, "execution", "query processing would load too many samples into memory"},
		{"points over max_points", "/api/v1/query_range", url.Values{"query": {"1"}, "start": {ts(0)}, "end": {ts(time.Hour)}, "step": {"15"}},
			400, "bad_data", "exceeded maximum resolution of 100 points"},
		{"negative timeout", "/api/v1/query", url.Values{"query": {"1"}, "timeout": {"-1s"}},
			400, "bad_data", `invalid parameter "timeout"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, r := apiCall(t, h, "GET", tt.path, tt.form)
			if code != tt.code || r.ErrorType != tt.errType || !strings.Contains(r.Error, tt.errContains) {
				t.Fatalf("got %d %s, want %d %s containing %q", code, r.raw, tt.code, tt.errType, tt.errContains)
			}
		})
	}
	// Within the limit the same engine answers.
	code, r := apiCall(t, h, "GET", "/api/v1/query", url.Values{"query": {`test_requests_total{code="200"}[1m]`}, "time": {ts(10 * time.Minute)}})
	if code != 200 {
		t.Fatalf("small query refused: %d %s", code, r.raw)
	}
}

func FuzzAPIQuery(f *testing.F) {
	h, _ := newTestAPI(f, APIOptions{MaxSamples: 10000, Timeout: 2 * time.Second})
	for _, s := range []string{"1+1", "rate(test_requests_total[1m])", "sum(", `{__name__=~".+"}`, "test_temperature_celsius offset -1m", "histogram_quantile(0.9, x)", "label_replace(up, \"a\", \"$1\", \"b\", \"(.*)\")"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		code, r := apiCall(t, h, "GET", "/api/v1/query", url.Values{"query": {q}, "time": {ts(5 * time.Minute)}})
		switch {
		case code == 200 && r.Status == "success":
		case code == 400 && r.ErrorType == "bad_data":
		case code == 422 && r.ErrorType == "execution":
		default:
			t.Fatalf("query %q: unexpected answer %d %s", q, code, r.raw)
		}
	})
}
