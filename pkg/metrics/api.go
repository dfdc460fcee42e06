package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// Version is what /api/v1/status/buildinfo reports as "version". Grafana
// reads it to pick its Prometheus feature set, so it is the release of the
// Prometheus packages hostd's engine and TSDB are built from: module
// github.com/prometheus/prometheus v0.316.0 is Prometheus 3.16.0.
// TestVersionMatchesGoMod keeps it in step with go.mod.
const Version = "3.16.0"

// APIOptions are the query API's limits.
type APIOptions struct {
	// MaxSamples is the most samples one query may hold in memory; a
	// query needing more is refused with an execution error, not an OOM.
	MaxSamples int // default 5,000,000
	// Timeout bounds one query's evaluation; a request's own timeout
	// parameter may only shorten it.
	Timeout time.Duration // default 30s
	// MaxPoints is the most points per series a range query may ask for.
	MaxPoints int // default 11,000, Prometheus' limit
	// LookbackDelta is how far back an instant selector looks.
	LookbackDelta time.Duration // default 5m
	// Now is the clock for queries without a time; default time.Now.
	Now func() time.Time
	// Sources feed the status, targets, rules and alerts endpoints.
	Sources APISources
}

func (o *APIOptions) setDefaults() {
	if o.MaxSamples <= 0 {
		o.MaxSamples = 5_000_000
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxPoints <= 0 {
		o.MaxPoints = 11000
	}
	if o.LookbackDelta <= 0 {
		o.LookbackDelta = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// API serves the Prometheus HTTP query API (/api/v1/...) over a storage
// with the PromQL engine, answering with Prometheus' JSON envelope, error
// types and status codes so Grafana and other clients work unchanged.
type API struct {
	opts     APIOptions
	engine   *promql.Engine
	q        storage.Queryable
	metadata func() map[string]Metadata
	parser   parser.Parser
	logger   *slog.Logger
}

// NewAPI builds the query API over q. metadata returns the families last
// scraped, for /api/v1/metadata; it may be nil.
func NewAPI(q storage.Queryable, metadata func() map[string]Metadata, opts APIOptions, logger *slog.Logger) *API {
	opts.setDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if metadata == nil {
		metadata = func() map[string]Metadata { return nil }
	}
	p := parser.NewParser(parser.Options{})
	return &API{
		opts: opts,
		engine: promql.NewEngine(promql.EngineOpts{
			Logger:               logger.With("component", "promql"),
			MaxSamples:           opts.MaxSamples,
			Timeout:              opts.Timeout,
			LookbackDelta:        opts.LookbackDelta,
			EnableAtModifier:     true,
			EnableNegativeOffset: true,
			Parser:               p,
		}),
		q:        q,
		metadata: metadata,
		parser:   p,
		logger:   logger,
	}
}

// Engine is the PromQL engine the API evaluates queries with; the rule
// manager shares it, and its limits.
func (a *API) Engine() *promql.Engine { return a.engine }

// Handler routes /api/v1/... and /-/healthy, /-/ready to the API.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/-/", a.lifecycleHandler())
	routes := map[string]func(*http.Request) (any, annotations.Annotations, *apiError){
		"/api/v1/query":               a.query,
		"/api/v1/query_range":         a.queryRange,
		"/api/v1/labels":              a.labelNames,
		"/api/v1/series":              a.series,
		"/api/v1/metadata":            a.metadataHandler,
		"/api/v1/status/buildinfo":    a.buildInfo,
		"/api/v1/query_exemplars":     a.exemplars,
		"/api/v1/label/{name}/values": a.labelValues,
	}
	for path, h := range a.statusRoutes() {
		routes[path] = h
	}
	for path, h := range routes {
		mux.HandleFunc("GET "+path, a.wrap(h))
		mux.HandleFunc("POST "+path, a.wrap(h))
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, &apiError{errNotFound, fmt.Errorf("unknown API endpoint %s", r.URL.Path)})
	})
	return mux
}

type errorType string

const (
	errTimeout   errorType = "timeout"
	errCanceled  errorType = "canceled"
	errExec      errorType = "execution"
	errBadData   errorType = "bad_data"
	errInternal  errorType = "internal"
	errNotFound  errorType = "not_found"
	errCostLimit errorType = "cost_limit"
)

type apiError struct {
	typ errorType
	err error
}

func (e *apiError) Error() string { return fmt.Sprintf("%s: %s", e.typ, e.err) }

func (e *apiError) status() int {
	switch e.typ {
	case errBadData:
		return http.StatusBadRequest
	case errExec, errCostLimit:
		return http.StatusUnprocessableEntity
	case errCanceled:
		return 499 // client closed request, as Prometheus answers
	case errTimeout:
		return http.StatusServiceUnavailable
	case errNotFound:
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// response is Prometheus' JSON envelope.
type response struct {
	Status    string   `json:"status"`
	Data      any      `json:"data,omitempty"`
	ErrorType string   `json:"errorType,omitempty"`
	Error     string   `json:"error,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	Infos     []string `json:"infos,omitempty"`
}

func (a *API) wrap(h func(*http.Request) (any, annotations.Annotations, *apiError)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			writeAPIError(w, &apiError{errBadData, fmt.Errorf("error parsing form values: %w", err)})
			return
		}
		data, annos, apiErr := h(r)
		if apiErr != nil {
			if apiErr.typ == errInternal {
				a.logger.Warn("query API request failed", "path", r.URL.Path, "err", apiErr.err)
			}
			writeAPIError(w, apiErr)
			return
		}
		resp := response{Status: "success", Data: data}
		if len(annos) > 0 {
			resp.Warnings, resp.Infos = annos.AsStrings(r.FormValue("query"), 10, 10)
			if len(resp.Warnings) == 0 {
				resp.Warnings = nil
			}
			if len(resp.Infos) == 0 {
				resp.Infos = nil
			}
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

func writeAPIError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status(), response{Status: "error", ErrorType: string(e.typ), Error: e.err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(response{Status: "error", ErrorType: string(errInternal), Error: "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func invalidParam(err error, name string) *apiError {
	return &apiError{errBadData, fmt.Errorf("invalid parameter %q: %w", name, err)}
}

// queryData is the data of a query answer.
type queryData struct {
	ResultType parser.ValueType `json:"resultType"`
	Result     json.RawMessage  `json:"result"`
}

func (a *API) queryContext(r *http.Request) (context.Context, context.CancelFunc, *apiError) {
	ctx := r.Context()
	if s := r.FormValue("timeout"); s != "" {
		d, err := parseDuration(s)
		if err != nil {
			return nil, nil, invalidParam(err, "timeout")
		}
		if d <= 0 {
			return nil, nil, invalidParam(fmt.Errorf("timeout must be positive, got %s", d), "timeout")
		}
		c, cancel := context.WithTimeout(ctx, d)
		return c, cancel, nil
	}
	return ctx, func() {}, nil
}

func (a *API) query(r *http.Request) (any, annotations.Annotations, *apiError) {
	ts := a.opts.Now()
	if s := r.FormValue("time"); s != "" {
		t, err := parseTime(s)
		if err != nil {
			return nil, nil, invalidParam(err, "time")
		}
		ts = t
	}
	ctx, cancel, apiErr := a.queryContext(r)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	defer cancel()
	qry, err := a.engine.NewInstantQuery(ctx, a.q, a.queryOpts(), r.FormValue("query"), ts)
	if err != nil {
		return nil, nil, invalidParam(err, "query")
	}
	defer qry.Close()
	return a.exec(ctx, qry)
}

func (a *API) queryOpts() promql.QueryOpts {
	return promql.NewPrometheusQueryOpts(false, a.opts.LookbackDelta, nil)
}

// exec runs qry, which the caller closes after exec returns.
func (a *API) exec(ctx context.Context, qry promql.Query) (any, annotations.Annotations, *apiError) {
	res := qry.Exec(ctx)
	if res.Err != nil {
		return nil, res.Warnings, execError(res.Err)
	}
	// An empty result is an empty list, never null, as Prometheus answers.
	switch v := res.Value.(type) {
	case promql.Matrix:
		if v == nil {
			res.Value = promql.Matrix{}
		}
	case promql.Vector:
		if v == nil {
			res.Value = promql.Vector{}
		}
	}
	// The engine recycles the result's point slices when the query is
	// closed, so the result is encoded now, while the query is open.
	b, err := json.Marshal(res.Value)
	if err != nil {
		return nil, res.Warnings, &apiError{errInternal, fmt.Errorf("encode result: %w", err)}
	}
	return queryData{ResultType: res.Value.Type(), Result: b}, res.Warnings, nil
}

func execError(err error) *apiError {
	var (
		eqc promql.ErrQueryCanceled
		eqt promql.ErrQueryTimeout
		es  promql.ErrStorage
	)
	switch {
	case errors.As(err, &eqc):
		return &apiError{errCanceled, err}
	case errors.As(err, &eqt):
		return &apiError{errTimeout, err}
	case errors.As(err, &es):
		return &apiError{errInternal, err}
	case errors.Is(err, context.Canceled):
		return &apiError{errCanceled, err}
	}
	return &apiError{errExec, err}
}

func (a *API) queryRange(r *http.Request) (any, annotations.Annotations, *apiError) {
	start, err := parseTime(r.FormValue("start"))
	if err != nil {
		return nil, nil, invalidParam(err, "start")
	}
	end, err := parseTime(r.FormValue("end"))
	if err != nil {
		return nil, nil, invalidParam(err, "end")
	}
	if end.Before(start) {
		return nil, nil, invalidParam(errors.New("end timestamp must not be before start time"), "end")
	}
	step, err := parseDuration(r.FormValue("step"))
	if err != nil {
		return nil, nil, invalidParam(err, "step")
	}
	if step <= 0 {
		return nil, nil, invalidParam(errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer"), "step")
	}
	if end.Sub(start)/step > time.Duration(a.opts.MaxPoints) {
		return nil, nil, &apiError{errBadData, fmt.Errorf("exceeded maximum resolution of %d points per timeseries. Try decreasing the query resolution (?step=XX)", a.opts.MaxPoints)}
	}
	ctx, cancel, apiErr := a.queryContext(r)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	defer cancel()
	qry, err := a.engine.NewRangeQuery(ctx, a.q, a.queryOpts(), r.FormValue("query"), start, end, step)
	if err != nil {
		return nil, nil, invalidParam(err, "query")
	}
	defer qry.Close()
	return a.exec(ctx, qry)
}

// timeRange reads the optional start and end of the metadata endpoints.
func timeRange(r *http.Request) (mint, maxt int64, e *apiError) {
	mint, maxt = math.MinInt64/2, math.MaxInt64/2
	if s := r.FormValue("start"); s != "" {
		t, err := parseTime(s)
		if err != nil {
			return 0, 0, invalidParam(err, "start")
		}
		mint = t.UnixMilli()
	}
	if s := r.FormValue("end"); s != "" {
		t, err := parseTime(s)
		if err != nil {
			return 0, 0, invalidParam(err, "end")
		}
		maxt = t.UnixMilli()
	}
	if maxt < mint {
		return 0, 0, &apiError{errBadData, errors.New("end timestamp must not be before start timestamp")}
	}
	return mint, maxt, nil
}

func (a *API) matchers(r *http.Request) ([][]*labels.Matcher, *apiError) {
	sets, err := a.parser.ParseMetricSelectors(r.Form["match[]"])
	if err != nil {
		return nil, &apiError{errBadData, err}
	}
	return sets, nil
}

func limit(r *http.Request) (int, *apiError) {
	s := r.FormValue("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, &apiError{errBadData, errors.New("limit must be a non-negative number")}
	}
	return n, nil
}

func (a *API) labelNames(r *http.Request) (any, annotations.Annotations, *apiError) {
	return a.labelQuery(r, func(ctx context.Context, q storage.Querier, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelNames(ctx, nil, ms...)
	})
}

func (a *API) labelValues(r *http.Request) (any, annotations.Annotations, *apiError) {
	name := r.PathValue("name")
	if !model.UTF8Validation.IsValidLabelName(name) {
		return nil, nil, &apiError{errBadData, fmt.Errorf("invalid label name: %q", name)}
	}
	return a.labelQuery(r, func(ctx context.Context, q storage.Querier, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelValues(ctx, name, nil, ms...)
	})
}

// labelQuery runs a label names/values lookup once per match[] set (or
// once without matchers) and merges the sorted, de-duplicated answers.
func (a *API) labelQuery(r *http.Request, f func(context.Context, storage.Querier, []*labels.Matcher) ([]string, annotations.Annotations, error)) (any, annotations.Annotations, *apiError) {
	mint, maxt, apiErr := timeRange(r)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	sets, apiErr := a.matchers(r)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	lim, apiErr := limit(r)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	q, err := a.q.Querier(mint, maxt)
	if err != nil {
		return nil, nil, &apiError{errExec, err}
	}
	defer q.Close()
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	seen := map[string]bool{}
	var annos annotations.Annotations
	for _, ms := range sets {
		vals, w, err := f(r.Context(), q, ms)
		annos.Merge(w)
		if err != nil {
			return nil, annos, &apiError{errExec, err}
		}
		for _, v := range vals {
			seen[v] = true
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	if lim > 0 && len(out) > lim {
		out = out[:lim]
		annos.Add(errors.New("results truncated due to limit"))
	}
	return out, annos, nil
}

func (a *API) series(r *http.Request) (any, annotations.Annotations, *apiError) {
	if len(r.Form["match[]"]) == 0 {
		return nil, nil, &apiError{errBadData, errors.New("no match[] parameter provided")}
	}
	mint, maxt, apiErr := timeRange(r)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	sets, apiErr := a.matchers(r)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	lim, apiErr := limit(r)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	q, err := a.q.Querier(mint, maxt)
	if err != nil {
		return nil, nil, &apiError{errExec, err}
	}
	defer q.Close()
	hints := &storage.SelectHints{Start: mint, End: maxt, Func: "series"}
	var sss []storage.SeriesSet
	for _, ms := range sets {
		sss = append(sss, q.Select(r.Context(), len(sets) > 1, hints, ms...))
	}
	set := storage.NewMergeSeriesSet(sss, 0, storage.ChainedSeriesMerge)
	out := []labels.Labels{}
	var annos annotations.Annotations
	for set.Next() {
		if err := r.Context().Err(); err != nil {
			return nil, nil, &apiError{errCanceled, err}
		}
		out = append(out, set.At().Labels())
		if lim > 0 && len(out) > lim {
			out = out[:lim]
			annos.Add(errors.New("results truncated due to limit"))
			break
		}
	}
	annos.Merge(set.Warnings())
	if err := set.Err(); err != nil {
		return nil, annos, &apiError{errExec, err}
	}
	return out, annos, nil
}

func (a *API) metadataHandler(r *http.Request) (any, annotations.Annotations, *apiError) {
	lim, apiErr := limit(r)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	metric := r.FormValue("metric")
	out := map[string][]Metadata{}
	names := make([]string, 0)
	for name := range a.metadata() {
		names = append(names, name)
	}
	sort.Strings(names)
	all := a.metadata()
	for _, name := range names {
		if metric != "" && name != metric {
			continue
		}
		if lim > 0 && len(out) >= lim {
			break
		}
		out[name] = []Metadata{all[name]}
	}
	return out, nil, nil
}

// buildInfo answers like Prometheus' /api/v1/status/buildinfo.
func (a *API) buildInfo(*http.Request) (any, annotations.Annotations, *apiError) {
	rev, date := buildRevision()
	if rev == "" {
		rev = "unknown"
	}
	return map[string]string{
		"version":   Version,
		"revision":  rev,
		"branch":    "",
		"buildUser": "hostd",
		"buildDate": date,
		"goVersion": runtime.Version(),
	}, nil, nil
}

// exemplars answers that no exemplars are stored; Grafana asks for them.
func (a *API) exemplars(r *http.Request) (any, annotations.Annotations, *apiError) {
	if _, err := a.parser.ParseExpr(r.FormValue("query")); err != nil {
		return nil, nil, invalidParam(err, "query")
	}
	return []any{}, nil, nil
}

// parseTime accepts a Unix timestamp in seconds (fractions allowed) or
// RFC 3339, as Prometheus does.
func parseTime(s string) (time.Time, error) {
	if t, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(t) || math.IsInf(t, 0) || math.Abs(t) > 1e15 {
			return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
		}
		sec, ns := math.Modf(t)
		ns = math.Round(ns*1000) / 1000
		return time.Unix(int64(sec), int64(ns*float64(time.Second))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

// parseDuration accepts seconds (fractions allowed) or a Prometheus
// duration ("5m", "1h30m").
func parseDuration(s string) (time.Duration, error) {
	if d, err := strconv.ParseFloat(s, 64); err == nil {
		ts := d * float64(time.Second)
		if math.IsNaN(ts) || ts >= float64(math.MaxInt64) || ts < float64(math.MinInt64) {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(ts), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}
