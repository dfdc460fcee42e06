package metrics

import (
	"encoding/json"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestGrafanaDashboardQueries evaluates every query of
// configs/grafana/hostd.json against hostd's API over a real scrape of
// this host, with Grafana's variables filled in: each must parse and
// run, and the node panels must return data.
func TestGrafanaDashboardQueries(t *testing.T) {
	b, err := os.ReadFile("../../configs/grafana/hostd.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("configs/grafana/hostd.json: %v", err)
	}
	cfg := fixtureConfig()
	cfg.ProcPath, cfg.SysPath = "/proc", "/sys"
	cfg.Collectors = nil
	rs := startService(t, t.TempDir(), cfg)
	for i := 0; i < 3; i++ {
		if _, err := rs.Scrape(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	h := rs.PublicHTTP()
	queries := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			queries++
			q := strings.NewReplacer("$__rate_interval", "1m", "$instance", ".*").Replace(tg.Expr)
			code, r := apiCall(t, h, "GET", "/api/v1/query", url.Values{
				"query": {q}, "time": {ts2(time.Now().Add(time.Second))}})
			if code != 200 {
				t.Errorf("panel %q: %s: %d %s", p.Title, q, code, r.raw)
				continue
			}
			if regexp.MustCompile(`hostd_(service|backup|netcfg|proxy|containers)|ALERTS|rate\(|increase\(`).MatchString(tg.Expr) {
				continue // needs the daemon's services, a firing alert or more history
			}
			if strings.Contains(string(r.Data), `"result":[]`) {
				t.Errorf("panel %q: %s returned no data", p.Title, q)
			}
		}
	}
	if queries < 20 {
		t.Fatalf("only %d queries in the dashboard", queries)
	}
}

func ts2(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
