// Command dashcheck counts the panels of a Grafana dashboard that show
// data from hostd and from Prometheus (scraping node_exporter) on the same
// machine.
//
//	dashcheck -dashboard node-exporter-full.json -hostd URL -prometheus URL \
//	    [-range 10m] [-scrape-interval 1s] [-max-points 1000] [-timeout 10s]
//
// It walks every panel (rows' nested panels included), resolves the
// dashboard's template variables against each backend's own label values
// the way Grafana does for one host, substitutes them and Grafana's
// built-in intervals into every visible target's expression, and runs each
// as a range query over the last -range on both backends. A panel has data
// when one of its visible targets returns a series with a sample. It prints
// every panel that answers from Prometheus but not from hostd, with the
// targets that came back empty, and the totals:
//
//	hostd: N of M panels, prometheus: K of M panels
//
// Exit status 1 on a usage or transport error, 3 with -fail-on-gap when a
// panel answers from Prometheus but not from hostd.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, errGap) {
			os.Exit(3)
		}
		fmt.Fprintln(os.Stderr, "dashcheck:", err)
		os.Exit(1)
	}
}

var errGap = errors.New("panels answer from Prometheus but not from hostd")

// maxBody bounds one API answer read from a backend.
const maxBody = 32 << 20

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dashcheck", flag.ContinueOnError)
	dashFile := fs.String("dashboard", "", "Grafana dashboard JSON file")
	hostdURL := fs.String("hostd", "", "hostd's HTTP base URL (its PromQL API)")
	promURL := fs.String("prometheus", "", "Prometheus' base URL")
	rng := fs.Duration("range", 10*time.Minute, "time range queried, ending now ($__range)")
	scrape := fs.Duration("scrape-interval", 15*time.Second, "the data source's scrape interval, as set in Grafana (lower bound of $__interval)")
	maxPoints := fs.Int("max-points", 1000, "a panel's max data points ($__interval = range / max-points, rounded)")
	timeout := fs.Duration("timeout", 10*time.Second, "deadline of each query to a backend")
	verbose := fs.Bool("v", false, "print every panel, not only the gaps")
	failOnGap := fs.Bool("fail-on-gap", false, "exit 3 when a panel answers from Prometheus but not from hostd")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dashFile == "" || *hostdURL == "" || *promURL == "" {
		return errors.New("-dashboard, -hostd and -prometheus are required")
	}
	dash, err := loadDashboard(*dashFile)
	if err != nil {
		return err
	}
	end := time.Now()
	iv := intervals(*rng, *scrape, *maxPoints)
	backends := []*backend{
		{name: "hostd", base: strings.TrimRight(*hostdURL, "/"), timeout: *timeout},
		{name: "prometheus", base: strings.TrimRight(*promURL, "/"), timeout: *timeout},
	}
	for _, b := range backends {
		b.vars, err = resolveVariables(b, dash.Templating.List, iv)
		if err != nil {
			return fmt.Errorf("%s: %w", b.name, err)
		}
		fmt.Fprintf(stdout, "%s variables: %s\n", b.name, formatVars(b.vars))
	}
	panels := dash.allPanels()
	counts := make([]int, len(backends))
	total := 0
	var gaps []string
	for _, p := range panels {
		targets := p.visibleTargets()
		if len(targets) == 0 {
			continue
		}
		total++
		has := make([]bool, len(backends))
		empty := make([][]string, len(backends))
		for i, b := range backends {
			for _, t := range targets {
				expr := substitute(t.Expr, b.vars, iv)
				n, err := b.queryRange(expr, end.Add(-*rng), end, iv.step)
				if err != nil {
					empty[i] = append(empty[i], fmt.Sprintf("%s: error: %v", t.RefID, err))
					continue
				}
				if n > 0 {
					has[i] = true
				} else {
					empty[i] = append(empty[i], fmt.Sprintf("%s: no data: %s", t.RefID, expr))
				}
			}
			if has[i] {
				counts[i]++
			}
		}
		line := fmt.Sprintf("panel %d %q (%s): hostd=%s prometheus=%s", p.ID, p.Title, p.row, yesNo(has[0]), yesNo(has[1]))
		switch {
		case has[1] && !has[0]:
			gaps = append(gaps, line+"\n    "+strings.Join(empty[0], "\n    "))
		case *verbose:
			fmt.Fprintln(stdout, line)
		}
	}
	if len(gaps) > 0 {
		fmt.Fprintf(stdout, "\npanels with data from Prometheus but not from hostd (%d):\n", len(gaps))
		for _, g := range gaps {
			fmt.Fprintln(stdout, g)
		}
	}
	fmt.Fprintf(stdout, "\nhostd: %d of %d panels, prometheus: %d of %d panels (range %s, step %s, $__rate_interval %s)\n",
		counts[0], total, counts[1], total, *rng, iv.step, iv.rate)
	if *failOnGap && len(gaps) > 0 {
		return errGap
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

// dashboard is the part of Grafana's dashboard model dashcheck reads.
type dashboard struct {
	Panels []panel `json:"panels"`
	// Rows is the layout of dashboards from before Grafana 5.
	Rows []struct {
		Title  string  `json:"title"`
		Panels []panel `json:"panels"`
	} `json:"rows"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int      `json:"id"`
	Title   string   `json:"title"`
	Type    string   `json:"type"`
	Panels  []panel  `json:"panels"` // a row's panels
	Targets []target `json:"targets"`
	row     string
}

type target struct {
	Expr  string `json:"expr"`
	RefID string `json:"refId"`
	Hide  bool   `json:"hide"`
}

func (p panel) visibleTargets() []target {
	var out []target
	for _, t := range p.Targets {
		if !t.Hide && strings.TrimSpace(t.Expr) != "" {
			out = append(out, t)
		}
	}
	return out
}

// variable is one templating variable.
type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Current    struct {
		Value any `json:"value"`
	} `json:"current"`
}

// queryString is the variable's query: a string, or {"query": "..."}.
func (v variable) queryString() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(v.Query, &o) == nil && o.Query != "" {
		return o.Query
	}
	return v.Definition
}

func loadDashboard(path string) (*dashboard, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open dashboard: %w", err)
	}
	defer f.Close()
	var d dashboard
	if err := json.NewDecoder(io.LimitReader(f, 64<<20)).Decode(&d); err != nil {
		return nil, fmt.Errorf("decode dashboard %s: %w", path, err)
	}
	return &d, nil
}

// allPanels lists every panel but rows, rows' nested panels included, in
// dashboard order.
func (d *dashboard) allPanels() []panel {
	var out []panel
	var walk func(ps []panel, row string)
	walk = func(ps []panel, row string) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels, p.Title)
				continue
			}
			p.row = row
			out = append(out, p)
			walk(p.Panels, row)
		}
	}
	walk(d.Panels, "")
	for _, r := range d.Rows {
		walk(r.Panels, r.Title)
	}
	return out
}

// intervalVars are Grafana's built-in interval variables for one query.
type intervalVars struct {
	rng, step, rate time.Duration
}

// intervals computes $__interval (the query step: range / max points,
// rounded as Grafana rounds, never below the scrape interval) and
// $__rate_interval (max($__interval + scrape interval, 4 * scrape
// interval)).
func intervals(rng, scrape time.Duration, maxPoints int) intervalVars {
	if maxPoints < 1 {
		maxPoints = 1
	}
	step := roundInterval(rng / time.Duration(maxPoints))
	if step < scrape {
		step = scrape
	}
	rate := step + scrape
	if 4*scrape > rate {
		rate = 4 * scrape
	}
	return intervalVars{rng: rng, step: step, rate: rate}
}

// roundInterval rounds like Grafana's kbn.roundInterval for the ranges
// this tool uses: to 1ms, 10ms, ..., 1s, 5s, 10s, 15s, 20s, 30s, 1m, 5m,
// 10m, 15m, 30m, 1h.
func roundInterval(d time.Duration) time.Duration {
	for _, r := range []struct{ below, to time.Duration }{
		{15 * time.Millisecond, 10 * time.Millisecond},
		{35 * time.Millisecond, 20 * time.Millisecond},
		{75 * time.Millisecond, 50 * time.Millisecond},
		{150 * time.Millisecond, 100 * time.Millisecond},
		{350 * time.Millisecond, 200 * time.Millisecond},
		{750 * time.Millisecond, 500 * time.Millisecond},
		{1500 * time.Millisecond, time.Second},
		{3500 * time.Millisecond, 2 * time.Second},
		{7500 * time.Millisecond, 5 * time.Second},
		{12500 * time.Millisecond, 10 * time.Second},
		{17500 * time.Millisecond, 15 * time.Second},
		{25 * time.Second, 20 * time.Second},
		{45 * time.Second, 30 * time.Second},
		{3 * time.Minute, time.Minute},
		{450 * time.Second, 5 * time.Minute},
		{750 * time.Second, 10 * time.Minute},
		{1050 * time.Second, 15 * time.Minute},
		{1950 * time.Second, 30 * time.Minute},
	} {
		if d < r.below {
			return r.to
		}
	}
	return time.Hour
}

// promDuration spells a duration as PromQL does ("90s", "5m").
func promDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

// varRef matches Grafana's variable syntaxes: $name, ${name},
// ${name:format} and [[name]] (or [[name:format]]).
var varRef = regexp.MustCompile(`\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]|\$(\w+)`)

// substitute replaces the variables of expr as Grafana's Prometheus data
// source does for single-valued variables: the value is inserted with
// backslashes and single quotes escaped, or regex-escaped for the :regex
// format; built-in interval variables are durations.
func substitute(expr string, vars map[string]string, iv intervalVars) string {
	builtins := map[string]string{
		"__interval":      promDuration(iv.step),
		"__interval_ms":   strconv.FormatInt(iv.step.Milliseconds(), 10),
		"__rate_interval": promDuration(iv.rate),
		"__range":         promDuration(iv.rng),
		"__range_s":       strconv.FormatInt(int64(iv.rng/time.Second), 10),
		"__range_ms":      strconv.FormatInt(iv.rng.Milliseconds(), 10),
	}
	return varRef.ReplaceAllStringFunc(expr, func(m string) string {
		sub := varRef.FindStringSubmatch(m)
		name, format := sub[1], sub[2]
		if name == "" {
			name, format = sub[3], sub[4]
		}
		if name == "" {
			name = sub[5]
		}
		if v, ok := builtins[name]; ok {
			return v
		}
		v, ok := vars[name]
		if !ok {
			return m // unknown: left as Grafana leaves it
		}
		switch format {
		case "raw":
			return v
		case "regex":
			return regexp.QuoteMeta(v)
		}
		return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v)
	})
}

func formatVars(vars map[string]string) string {
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Quote(vars[k])
	}
	return strings.Join(parts, " ")
}

// labelValuesQuery matches label_values(metric_or_selector, label) and
// label_values(label).
var labelValuesQuery = regexp.MustCompile(`^\s*label_values\(\s*(?:(.+?)\s*,\s*)?(\w+)\s*\)\s*$`)

// resolveVariables gives each variable the value Grafana selects for a
// dashboard opened without URL parameters: custom and constant variables
// their current value, query variables the first of the sorted label
// values the backend returns (queried in order, so later variables see
// earlier ones).
func resolveVariables(b *backend, list []variable, iv intervalVars) (map[string]string, error) {
	vars := map[string]string{}
	for _, v := range list {
		switch v.Type {
		case "datasource", "interval", "adhoc", "textbox":
			continue
		case "custom", "constant":
			vars[v.Name] = fmt.Sprint(v.Current.Value)
			if v.Current.Value == nil {
				vars[v.Name] = v.queryString()
			}
		case "query":
			q := v.queryString()
			m := labelValuesQuery.FindStringSubmatch(q)
			if m == nil {
				return nil, fmt.Errorf("variable %s: query %q is not label_values(...)", v.Name, q)
			}
			match := substitute(m[1], vars, iv)
			values, err := b.labelValues(m[2], match)
			if err != nil {
				return nil, fmt.Errorf("variable %s: %w", v.Name, err)
			}
			if len(values) == 0 {
				return nil, fmt.Errorf("variable %s: %s has no values", v.Name, q)
			}
			sort.Strings(values)
			vars[v.Name] = values[0]
		default:
			return nil, fmt.Errorf("variable %s: type %q not supported", v.Name, v.Type)
		}
	}
	return vars, nil
}

// backend is one PromQL HTTP API.
type backend struct {
	name    string
	base    string
	timeout time.Duration
	vars    map[string]string
}

type apiAnswer struct {
	Status string          `json:"status"`
	Error  string          `json:"error"`
	Data   json.RawMessage `json:"data"`
}

func (b *backend) get(path string, q url.Values) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	u := b.base + path + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("%s: answer larger than %d bytes", path, maxBody)
	}
	var a apiAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("%s: HTTP %d, not an API answer: %.200s", path, resp.StatusCode, body)
	}
	if a.Status != "success" {
		return nil, fmt.Errorf("%s: %s", path, a.Error)
	}
	return a.Data, nil
}

func (b *backend) labelValues(label, match string) ([]string, error) {
	q := url.Values{}
	if match != "" {
		q.Set("match[]", match)
	}
	data, err := b.get("/api/v1/label/"+url.PathEscape(label)+"/values", q)
	if err != nil {
		return nil, err
	}
	var values []string
	if err := json.Unmarshal(data, &values); err != nil {
		return nil, fmt.Errorf("label values of %s: %w", label, err)
	}
	return values, nil
}

// queryRange runs expr and returns how many series came back with at
// least one sample.
func (b *backend) queryRange(expr string, start, end time.Time, step time.Duration) (int, error) {
	data, err := b.get("/api/v1/query_range", url.Values{
		"query": {expr},
		"start": {strconv.FormatFloat(float64(start.UnixMilli())/1000, 'f', 3, 64)},
		"end":   {strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', 3, 64)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	})
	if err != nil {
		return 0, err
	}
	var m struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Values [][2]any `json:"values"`
		} `json:"result"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return 0, fmt.Errorf("decode query_range answer: %w", err)
	}
	n := 0
	for _, r := range m.Result {
		for _, v := range r.Values {
			if s, ok := v[1].(string); ok && s != "NaN" {
				n++
				break
			}
		}
	}
	return n, nil
}
