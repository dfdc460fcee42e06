package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/internal/testenv"
)

// TestDashboardInChromium loads the dashboard in headless Chromium over an
// hour of scrapes of this host, checks the charts and the service tree
// were drawn, and writes phone and desktop screenshots to the test's
// artifact directory (go test -artifacts keeps them).
func TestDashboardInChromium(t *testing.T) {
	chromium := testenv.LookPath(t, "chromium")
	clock := servicetest.NewFakeClock(time.Now().Add(-time.Hour))
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	// The scrape loop's next scrape is a day away on the fake clock: the
	// test's hand-made hour of scrapes is all there is.
	cfg.Interval = 24 * time.Hour
	// One alert that always fires, shown at the top of the page.
	ruleFile := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	if err := os.WriteFile(ruleFile, []byte("groups:\n  - name: dashboard\n    rules:\n      - alert: DashboardAlert\n        expr: vector(1)\n        labels: {severity: warning}\n        annotations: {summary: the dashboard shows firing alerts}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Rules.Files = []string{ruleFile}
	cfg.Rules.EvaluationInterval = time.Second
	s, err := New(service.Env{
		Logger: slog.New(slog.DiscardHandler), Clock: clock, StateDir: t.TempDir(),
		Metrics: reg, Gatherer: reg, Health: &servicetest.Health{},
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	testenv.WaitFor(t, 30*time.Second, func() error {
		_, err := s.Scrape(context.Background())
		return err
	})
	// An hour of history, one scrape every 15s, of this host's real values.
	for i := 0; i < 240; i++ {
		clock.Advance(15 * time.Second)
		if _, err := s.Scrape(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	testenv.WaitFor(t, 30*time.Second, func() error {
		if as := ActiveAlerts(s.RuleGroups()); len(as) == 0 || as[0].State != "firing" {
			return fmt.Errorf("alerts %+v", as)
		}
		return nil
	})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		since := time.Now().Add(-42 * time.Minute)
		st := s.Status()
		details, _ := json.Marshal(st.Details)
		api.WriteJSON(w, http.StatusOK, api.Status{Ready: false, Services: []api.ServiceStatus{
			{Name: "metrics", State: "ready", Since: since, Summary: st.Summary, Details: details},
			{Name: "backup", State: "degraded", Since: since, Restarts: 2, Summary: "last run 3h ago", LastError: "repository locked"},
			{Name: "proxy", State: "ready", Since: since, Summary: "2 outbounds"},
		}})
	})
	mux.Handle("/", s.PublicHTTP())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	run := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=10000", "--run-all-compositor-stages-before-draw"}
		cmd := exec.CommandContext(ctx, chromium, append(base, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
		}
		return out
	}
	dom := string(run("--dump-dom", srv.URL+"/"))
	for _, want := range []string{`data-loaded="1"`, "<svg", ">metrics<", ">degraded<", "repository locked", "<path d=\"M",
		`<span class="state firing">firing</span><strong> DashboardAlert </strong>`, "the dashboard shows firing alerts"} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	if n := strings.Count(dom, "<svg"); n != 5 {
		t.Errorf("%d charts drawn, want 5", n)
	}
	if strings.Contains(dom, "error:") || strings.Contains(dom, "no data yet") {
		t.Errorf("a panel shows an error:\n%s", dom)
	}
	dir := t.ArtifactDir()
	for _, shot := range []struct{ name, size string }{{"dashboard-phone.png", "390,1800"}, {"dashboard-desktop.png", "1366,1000"}} {
		path := filepath.Join(dir, shot.name)
		run("--screenshot="+path, "--window-size="+shot.size, srv.URL+"/")
		f, err := os.Open(path)
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("decode %s: %v", path, err)
		}
		t.Logf("screenshot %s (%dx%d)", path, img.Bounds().Dx(), img.Bounds().Dy())
	}
}
