package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/util/annotations"
)

// APISources feed the endpoints that describe the server rather than
// query it: /api/v1/status/*, /api/v1/targets, /api/v1/rules,
// /api/v1/alerts and /-/ready. A nil field answers as a Prometheus with
// nothing of that kind would (no targets, no rules).
type APISources struct {
	// Runtime returns /api/v1/status/runtimeinfo.
	Runtime func() RuntimeInfo
	// Config returns the configuration as Prometheus' YAML, for
	// /api/v1/status/config.
	Config func() string
	// Flags returns the Prometheus command-line flags hostd's options
	// correspond to, for /api/v1/status/flags.
	Flags func() map[string]string
	// TSDB returns the head's cardinality statistics, limit entries per
	// list, for /api/v1/status/tsdb.
	TSDB func(limit int) (TSDBStatus, error)
	// Targets returns the scrape's jobs, for /api/v1/targets.
	Targets func() []Target
	// RuleGroups returns the loaded rule groups, for /api/v1/rules and
	// /api/v1/alerts.
	RuleGroups func() []*rules.Group
	// Ready tells /-/ready whether the TSDB is open.
	Ready func() bool
}

// RuntimeInfo is /api/v1/status/runtimeinfo's data, as Prometheus has it.
type RuntimeInfo struct {
	StartTime           time.Time `json:"startTime"`
	CWD                 string    `json:"CWD"`
	Hostname            string    `json:"hostname"`
	ServerTime          time.Time `json:"serverTime"`
	ReloadConfigSuccess bool      `json:"reloadConfigSuccess"`
	LastConfigTime      time.Time `json:"lastConfigTime"`
	CorruptionCount     int64     `json:"corruptionCount"`
	GoroutineCount      int       `json:"goroutineCount"`
	GOMAXPROCS          int       `json:"GOMAXPROCS"`
	GOMEMLIMIT          int64     `json:"GOMEMLIMIT"`
	GOGC                string    `json:"GOGC"`
	GODEBUG             string    `json:"GODEBUG"`
	StorageRetention    string    `json:"storageRetention"`
}

// TSDBStat is one entry of a cardinality list.
type TSDBStat struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

// HeadStats describes the TSDB head.
type HeadStats struct {
	NumSeries     uint64 `json:"numSeries"`
	NumLabelPairs int    `json:"numLabelPairs"`
	ChunkCount    int64  `json:"chunkCount"`
	MinTime       int64  `json:"minTime"`
	MaxTime       int64  `json:"maxTime"`
}

// TSDBStatus is /api/v1/status/tsdb's data.
type TSDBStatus struct {
	HeadStats                   HeadStats  `json:"headStats"`
	SeriesCountByMetricName     []TSDBStat `json:"seriesCountByMetricName"`
	LabelValueCountByLabelName  []TSDBStat `json:"labelValueCountByLabelName"`
	MemoryInBytesByLabelName    []TSDBStat `json:"memoryInBytesByLabelName"`
	SeriesCountByLabelValuePair []TSDBStat `json:"seriesCountByLabelValuePair"`
}

// Target is one entry of /api/v1/targets' activeTargets.
type Target struct {
	DiscoveredLabels   labels.Labels `json:"discoveredLabels"`
	Labels             labels.Labels `json:"labels"`
	ScrapePool         string        `json:"scrapePool"`
	ScrapeURL          string        `json:"scrapeUrl"`
	GlobalURL          string        `json:"globalUrl"`
	LastError          string        `json:"lastError"`
	LastScrape         time.Time     `json:"lastScrape"`
	LastScrapeDuration float64       `json:"lastScrapeDuration"`
	Health             string        `json:"health"` // up, down or unknown
	ScrapeInterval     string        `json:"scrapeInterval"`
	ScrapeTimeout      string        `json:"scrapeTimeout"`
}

type targetDiscovery struct {
	ActiveTargets       []Target       `json:"activeTargets"`
	DroppedTargets      []any          `json:"droppedTargets"`
	DroppedTargetCounts map[string]int `json:"droppedTargetCounts"`
}

// APIAlert is one active alert as /api/v1/alerts and /api/v1/rules show it.
type APIAlert struct {
	Labels          labels.Labels `json:"labels"`
	Annotations     labels.Labels `json:"annotations"`
	State           string        `json:"state"`
	ActiveAt        *time.Time    `json:"activeAt,omitempty"`
	KeepFiringSince *time.Time    `json:"keepFiringSince,omitempty"`
	Value           string        `json:"value"`
}

type alertDiscovery struct {
	Alerts []APIAlert `json:"alerts"`
}

type ruleDiscovery struct {
	RuleGroups []apiRuleGroup `json:"groups"`
}

type apiRuleGroup struct {
	Name           string    `json:"name"`
	File           string    `json:"file"`
	Rules          []any     `json:"rules"`
	Interval       float64   `json:"interval"`
	Limit          int       `json:"limit"`
	EvaluationTime float64   `json:"evaluationTime"`
	LastEvaluation time.Time `json:"lastEvaluation"`
}

type apiAlertingRule struct {
	State          string        `json:"state"`
	Name           string        `json:"name"`
	Query          string        `json:"query"`
	Duration       float64       `json:"duration"`
	KeepFiringFor  float64       `json:"keepFiringFor"`
	Labels         labels.Labels `json:"labels"`
	Annotations    labels.Labels `json:"annotations"`
	Alerts         []APIAlert    `json:"alerts"`
	Health         string        `json:"health"`
	LastError      string        `json:"lastError,omitempty"`
	EvaluationTime float64       `json:"evaluationTime"`
	LastEvaluation time.Time     `json:"lastEvaluation"`
	Type           string        `json:"type"`
}

type apiRecordingRule struct {
	Name           string        `json:"name"`
	Query          string        `json:"query"`
	Labels         labels.Labels `json:"labels"`
	Health         string        `json:"health"`
	LastError      string        `json:"lastError,omitempty"`
	EvaluationTime float64       `json:"evaluationTime"`
	LastEvaluation time.Time     `json:"lastEvaluation"`
	Type           string        `json:"type"`
}

// statusRoutes are the routes of this file, added to Handler's table.
func (a *API) statusRoutes() map[string]func(*http.Request) (any, annotations.Annotations, *apiError) {
	return map[string]func(*http.Request) (any, annotations.Annotations, *apiError){
		"/api/v1/status/runtimeinfo": a.runtimeInfo,
		"/api/v1/status/config":      a.statusConfig,
		"/api/v1/status/flags":       a.statusFlags,
		"/api/v1/status/tsdb":        a.statusTSDB,
		"/api/v1/targets":            a.targets,
		"/api/v1/rules":              a.rulesHandler,
		"/api/v1/alerts":             a.alerts,
		"/api/v1/format_query":       a.formatQuery,
	}
}

func (a *API) runtimeInfo(*http.Request) (any, annotations.Annotations, *apiError) {
	if a.opts.Sources.Runtime == nil {
		return RuntimeInfo{ServerTime: a.opts.Now().UTC()}, nil, nil
	}
	return a.opts.Sources.Runtime(), nil, nil
}

func (a *API) statusConfig(*http.Request) (any, annotations.Annotations, *apiError) {
	y := ""
	if a.opts.Sources.Config != nil {
		y = a.opts.Sources.Config()
	}
	return map[string]string{"yaml": y}, nil, nil
}

func (a *API) statusFlags(*http.Request) (any, annotations.Annotations, *apiError) {
	if a.opts.Sources.Flags == nil {
		return map[string]string{}, nil, nil
	}
	return a.opts.Sources.Flags(), nil, nil
}

// statusTSDB answers like Prometheus: limit (default 10, at most 10000)
// entries per list.
func (a *API) statusTSDB(r *http.Request) (any, annotations.Annotations, *apiError) {
	lim := 10
	if s := r.FormValue("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, nil, &apiError{errBadData, errors.New("limit must be a positive number")}
		}
		if n > 10000 {
			return nil, nil, &apiError{errBadData, fmt.Errorf("limit must not exceed %d", 10000)}
		}
		lim = n
	}
	if a.opts.Sources.TSDB == nil {
		return nil, nil, &apiError{errInternal, errNotServing}
	}
	st, err := a.opts.Sources.TSDB(lim)
	if err != nil {
		return nil, nil, &apiError{errInternal, err}
	}
	return st, nil, nil
}

func (a *API) targets(r *http.Request) (any, annotations.Annotations, *apiError) {
	out := targetDiscovery{ActiveTargets: []Target{}, DroppedTargets: []any{}, DroppedTargetCounts: map[string]int{}}
	state := strings.ToLower(r.FormValue("state"))
	if state == "dropped" || a.opts.Sources.Targets == nil {
		return out, nil, nil
	}
	pools := r.Form["scrapePool"]
	for _, t := range a.opts.Sources.Targets() {
		out.DroppedTargetCounts[t.ScrapePool] = 0
		if len(pools) > 0 && !contains(pools, t.ScrapePool) {
			continue
		}
		out.ActiveTargets = append(out.ActiveTargets, t)
	}
	return out, nil, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (a *API) ruleGroups() []*rules.Group {
	if a.opts.Sources.RuleGroups == nil {
		return nil
	}
	gs := a.opts.Sources.RuleGroups()
	sort.SliceStable(gs, func(i, j int) bool {
		if gs[i].File() != gs[j].File() {
			return gs[i].File() < gs[j].File()
		}
		return gs[i].Name() < gs[j].Name()
	})
	return gs
}

// rulesHandler answers /api/v1/rules with Prometheus' filters: type
// (alert or record), rule_name[], rule_group[], file[], match[] and
// exclude_alerts.
func (a *API) rulesHandler(r *http.Request) (any, annotations.Annotations, *apiError) {
	typ := strings.ToLower(r.FormValue("type"))
	if typ != "" && typ != "alert" && typ != "record" {
		return nil, nil, invalidParam(fmt.Errorf("not supported value %q", typ), "type")
	}
	excludeAlerts := false
	if s := r.FormValue("exclude_alerts"); s != "" {
		b, err := strconv.ParseBool(strings.ToLower(s))
		if err != nil {
			return nil, nil, invalidParam(fmt.Errorf("error converting exclude_alerts: %w", err), "exclude_alerts")
		}
		excludeAlerts = b
	}
	matchers, apiErr := a.matchers(r)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	names, groups, files := r.Form["rule_name[]"], r.Form["rule_group[]"], r.Form["file[]"]
	out := ruleDiscovery{RuleGroups: []apiRuleGroup{}}
	for _, g := range a.ruleGroups() {
		if (len(groups) > 0 && !contains(groups, g.Name())) || (len(files) > 0 && !contains(files, g.File())) {
			continue
		}
		ag := apiRuleGroup{
			Name: g.Name(), File: g.File(), Rules: []any{}, Interval: g.Interval().Seconds(), Limit: g.Limit(),
			EvaluationTime: g.GetEvaluationTime().Seconds(), LastEvaluation: g.GetLastEvaluation(),
		}
		for _, rr := range g.Rules(matchers...) {
			if len(names) > 0 && !contains(names, rr.Name()) {
				continue
			}
			lastErr := ""
			if err := rr.LastError(); err != nil {
				lastErr = err.Error()
			}
			switch rule := rr.(type) {
			case *rules.AlertingRule:
				if typ == "record" {
					continue
				}
				var active []APIAlert
				if !excludeAlerts {
					active = apiAlerts(rule.ActiveAlerts())
				}
				ag.Rules = append(ag.Rules, apiAlertingRule{
					State: rule.State().String(), Name: rule.Name(), Query: rule.Query().String(),
					Duration: rule.HoldDuration().Seconds(), KeepFiringFor: rule.KeepFiringFor().Seconds(),
					Labels: rule.Labels(), Annotations: rule.Annotations(), Alerts: active,
					Health: string(rule.Health()), LastError: lastErr,
					EvaluationTime: rule.GetEvaluationDuration().Seconds(), LastEvaluation: rule.GetEvaluationTimestamp(),
					Type: "alerting",
				})
			case *rules.RecordingRule:
				if typ == "alert" {
					continue
				}
				ag.Rules = append(ag.Rules, apiRecordingRule{
					Name: rule.Name(), Query: rule.Query().String(), Labels: rule.Labels(),
					Health: string(rule.Health()), LastError: lastErr,
					EvaluationTime: rule.GetEvaluationDuration().Seconds(), LastEvaluation: rule.GetEvaluationTimestamp(),
					Type: "recording",
				})
			}
		}
		if len(ag.Rules) > 0 {
			out.RuleGroups = append(out.RuleGroups, ag)
		}
	}
	return out, nil, nil
}

// ActiveAlerts returns every pending and firing alert of the rule groups.
func ActiveAlerts(groups []*rules.Group) []APIAlert {
	out := []APIAlert{}
	for _, g := range groups {
		for _, ar := range g.AlertingRules() {
			out = append(out, apiAlerts(ar.ActiveAlerts())...)
		}
	}
	return out
}

func (a *API) alerts(*http.Request) (any, annotations.Annotations, *apiError) {
	return alertDiscovery{Alerts: ActiveAlerts(a.ruleGroups())}, nil, nil
}

func apiAlerts(as []*rules.Alert) []APIAlert {
	out := make([]APIAlert, len(as))
	for i, al := range as {
		out[i] = APIAlert{
			Labels: al.Labels, Annotations: al.Annotations, State: al.State.String(),
			ActiveAt: &al.ActiveAt, Value: strconv.FormatFloat(al.Value, 'e', -1, 64),
		}
		if !al.KeepFiringSince.IsZero() {
			out[i].KeepFiringSince = &al.KeepFiringSince
		}
	}
	return out
}

func (a *API) formatQuery(r *http.Request) (any, annotations.Annotations, *apiError) {
	expr, err := a.parser.ParseExpr(r.FormValue("query"))
	if err != nil {
		return nil, nil, invalidParam(err, "query")
	}
	return expr.Pretty(0), nil, nil
}

// lifecycleHandler answers /-/healthy and /-/ready as Prometheus does.
func (a *API) lifecycleHandler() http.Handler {
	mux := http.NewServeMux()
	text := func(w http.ResponseWriter, code int, msg string) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(msg))
	}
	for _, m := range []string{"GET ", "HEAD "} {
		mux.HandleFunc(m+"/-/healthy", func(w http.ResponseWriter, r *http.Request) {
			text(w, http.StatusOK, "Prometheus Server is Healthy.\n")
		})
		mux.HandleFunc(m+"/-/ready", func(w http.ResponseWriter, r *http.Request) {
			if a.opts.Sources.Ready != nil && !a.opts.Sources.Ready() {
				text(w, http.StatusServiceUnavailable, "Service Unavailable")
				return
			}
			text(w, http.StatusOK, "Prometheus Server is Ready.\n")
		})
	}
	return mux
}

// prometheusVersion maps the Go module version of
// github.com/prometheus/prometheus to the release it is: v0.42.0 is
// 2.42.0, v0.316.0 is 3.16.0.
func prometheusVersion(mod, fallback string) string {
	parts := strings.SplitN(strings.TrimPrefix(mod, "v"), ".", 3)
	if len(parts) != 3 || parts[0] != "0" {
		return fallback
	}
	minor, err := strconv.Atoi(parts[1])
	if err != nil {
		return fallback
	}
	patch := parts[2]
	if i := strings.IndexAny(patch, "-+"); i >= 0 {
		patch = patch[:i]
	}
	if minor >= 300 {
		return fmt.Sprintf("3.%d.%s", minor-300, patch)
	}
	return fmt.Sprintf("2.%d.%s", minor, patch)
}

// buildRevision is the VCS revision hostd was built from, if recorded.
func buildRevision() (rev, date string) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "", ""
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			date = s.Value
		}
	}
	return rev, date
}
