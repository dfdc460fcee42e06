package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/confkit"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/testenv"
)

// TestDefaultRulesPromtool runs `promtool check rules` on the built-in
// rule file and `promtool test rules` on testdata/hostd.rules.test.yml,
// which fires every alert of the file on made-up series.
func TestDefaultRulesPromtool(t *testing.T) {
	bin := testenv.LookPath(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", "rules/hostd.rules.yml"},
		{"test", "rules", "testdata/hostd.rules.test.yml"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// webhookRecorder is a plain webhook receiver that keeps every body.
type webhookRecorder struct {
	mu     sync.Mutex
	alerts []postableAlert
}

func (w *webhookRecorder) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var batch []postableAlert
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &batch); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	w.alerts = append(w.alerts, batch...)
	w.mu.Unlock()
}

func (w *webhookRecorder) last(name string) (postableAlert, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.alerts) - 1; i >= 0; i-- {
		if w.alerts[i].Labels["alertname"] == name {
			return w.alerts[i], true
		}
	}
	return postableAlert{}, false
}

// TestAlertsReachAlertmanagerAndWebhook evaluates a rule file in-process
// and checks that a real Alertmanager and a webhook receive the alert with
// its labels (job, instance, external labels), that the API and the
// dashboard's source list it, and that it resolves.
func TestAlertsReachAlertmanagerAndWebhook(t *testing.T) {
	am := testenv.StartAlertmanager(t)
	hook := &webhookRecorder{}
	hookSrv := httptest.NewServer(hook)
	defer hookSrv.Close()

	ruleFile := filepath.Join(t.TempDir(), "test.rules.yml")
	if err := os.WriteFile(ruleFile, []byte(`groups:
  - name: test
    interval: 1s
    rules:
      - alert: TestValueHigh
        expr: test_value > 1
        labels: {severity: page}
        annotations: {summary: "test_value is {{ $value }} on {{ $labels.instance }}"}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fixtureConfig()
	cfg.Instance = "host-a"
	cfg.ExternalLabels = map[string]string{"region": "eu"}
	cfg.Rules = RulesConfig{Default: false, Files: []string{ruleFile}, EvaluationInterval: time.Second}
	cfg.Alerting.Alertmanagers = []NotifyConfig{{URL: am.URL, Timeout: 5 * time.Second}}
	cfg.Alerting.Webhooks = []NotifyConfig{{URL: hookSrv.URL + "/hook", Timeout: 5 * time.Second}}
	rs := startService(t, t.TempDir(), cfg)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_value", Help: "A value rules look at."})
	rs.reg.MustRegister(g)
	g.Set(2)
	if _, err := rs.Scrape(context.Background()); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{"alertname": "TestValueHigh", "severity": "page", "job": "hostd", "instance": "host-a", "region": "eu"}
	testenv.WaitFor(t, 30*time.Second, func() error {
		as, err := am.Alerts(context.Background())
		if err != nil {
			return err
		}
		for _, a := range as {
			if fmt.Sprint(a.Labels) == fmt.Sprint(want) && a.Annotations["summary"] == "test_value is 2 on host-a" {
				return nil
			}
		}
		return fmt.Errorf("alertmanager holds %+v", as)
	})
	if a, ok := hook.last("TestValueHigh"); !ok || fmt.Sprint(a.Labels) != fmt.Sprint(want) || a.StartsAt.IsZero() {
		t.Fatalf("webhook got %+v", a)
	}

	srv := httptest.NewServer(rs.PublicHTTP())
	defer srv.Close()
	_, r := promGet(t, srv.URL, "/api/v1/alerts", nil)
	if !strings.Contains(string(r.Data), `"state":"firing"`) || !strings.Contains(string(r.Data), `"alertname":"TestValueHigh"`) {
		t.Fatalf("/api/v1/alerts: %s", r.raw)
	}
	_, r = promGet(t, srv.URL, "/api/v1/rules", url.Values{"type": {"alert"}})
	if !strings.Contains(string(r.Data), `"file":"`+ruleFile+`"`) || !strings.Contains(string(r.Data), `"health":"ok"`) {
		t.Fatalf("/api/v1/rules: %s", r.raw)
	}
	// `hostd alerts` reads the same through the daemon's socket.
	rec := httptest.NewRecorder()
	rs.LocalAPI().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, api.RouteMetricsAlerts, nil))
	var table strings.Builder
	if err := WriteAlertsTable(&table, rec.Body.Bytes()); err != nil {
		t.Fatal(err)
	}
	if out := table.String(); !strings.Contains(out, "STATE") || !regexp.MustCompile(`firing +TestValueHigh +\S+ \S+ +instance="host-a",job="hostd",severity="page" +test_value is 2 on host-a`).MatchString(out) {
		t.Fatalf("alerts table:\n%s", out)
	}

	// The rule manager stores ALERTS as Prometheus does (after sending).
	testenv.WaitFor(t, 10*time.Second, func() error {
		_, r = promGet(t, srv.URL, "/api/v1/query", url.Values{"query": {`ALERTS{alertname="TestValueHigh",alertstate="firing"}`}})
		if !strings.Contains(string(r.Data), `"alertstate":"firing"`) {
			return fmt.Errorf("ALERTS: %s", r.raw)
		}
		return nil
	})

	g.Set(0)
	if _, err := rs.Scrape(context.Background()); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, func() error {
		as, err := am.Alerts(context.Background())
		if err != nil {
			return err
		}
		for _, a := range as {
			if a.Labels["alertname"] == "TestValueHigh" && a.EndsAt.After(time.Now()) {
				return fmt.Errorf("still active in alertmanager: %+v", a)
			}
		}
		return nil
	})
	testenv.WaitFor(t, 10*time.Second, func() error {
		if a, ok := hook.last("TestValueHigh"); !ok || a.EndsAt.IsZero() || a.EndsAt.After(time.Now()) {
			return fmt.Errorf("webhook's last alert %+v is not resolved", a)
		}
		return nil
	})
	st := rs.notifier.Status()
	if len(st) != 2 || st[0].Sent < 2 || st[1].Sent < 2 || st[0].LastError != "" {
		t.Fatalf("notifier status %+v", st)
	}
}

// TestDefaultRulesEvaluate runs the built-in rules in the service and
// checks every one evaluates without error.
func TestDefaultRulesEvaluate(t *testing.T) {
	cfg := fixtureConfig()
	cfg.Rules.EvaluationInterval = time.Second
	rs := startService(t, t.TempDir(), cfg)
	srv := httptest.NewServer(rs.PublicHTTP())
	defer srv.Close()
	testenv.WaitFor(t, 30*time.Second, func() error {
		_, r := promGet(t, srv.URL, "/api/v1/rules", nil)
		var d struct {
			Groups []struct {
				File  string `json:"file"`
				Rules []struct {
					Name, Health, LastError string
				} `json:"rules"`
			} `json:"groups"`
		}
		if err := json.Unmarshal(r.Data, &d); err != nil {
			return err
		}
		n := 0
		for _, g := range d.Groups {
			for _, rl := range g.Rules {
				if rl.Health != "ok" {
					return fmt.Errorf("rule %s of %s: health %q %s", rl.Name, g.File, rl.Health, rl.LastError)
				}
				n++
			}
		}
		if n != 8 {
			return fmt.Errorf("%d rules evaluated, want 8: %s", n, r.raw)
		}
		return nil
	})
}

func TestAlertingConfigErrors(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ExternalLabels = map[string]string{"__x": "a", "1b": "c", "ok": ""}
	cfg.Rules.Files = []string{"rules/*.yml"}
	cfg.Rules.EvaluationInterval = 0
	cfg.Alerting.Alertmanagers = []NotifyConfig{{URL: "ftp://x"}, {}}
	cfg.Alerting.Webhooks = []NotifyConfig{{URL: "http://h/", Timeout: -1}}
	v := confkit.NewValidator("metrics")
	cfg.Validate(v)
	var got []string
	for _, e := range v.Errors() {
		got = append(got, e.Path+": "+e.Msg)
	}
	for _, want := range []string{
		"external_labels.1b: invalid label name",
		"external_labels.__x: label names starting with __ are reserved",
		"external_labels.ok: must not be empty",
		"rules.evaluation_interval: must be at least 1s",
		`rules.files[0]: must be an absolute path or glob, not "rules/*.yml"`,
		`alerting.alertmanagers[0].url: must be an http:// or https:// URL, not "ftp://x"`,
		"alerting.alertmanagers[1].url: is required",
		"alerting.webhooks[0].timeout: must not be negative",
	} {
		found := false
		for _, g := range got {
			found = found || strings.Contains(g, want)
		}
		if !found {
			t.Errorf("no error %q in:\n%s", want, strings.Join(got, "\n"))
		}
	}
}

func TestBadRuleFileRefused(t *testing.T) {
	f := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(f, []byte("groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: sum(\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fixtureConfig()
	cfg.Rules.Files = []string{f}
	_, err := New(service.Env{StateDir: t.TempDir()}, cfg)
	if err == nil || !strings.Contains(err.Error(), f) || !strings.Contains(err.Error(), "parse error") {
		t.Fatalf("New with a bad rule file: %v", err)
	}
}
