package metrics

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/service"
)

// Routes implements service.LocalAPI: the query routes answer as
// /api/v1/query and /api/v1/query_range on the HTTP listener, for `hostd
// metrics query` (which then needs no HTTP address, and works with the
// listener off), and api.RouteMetricsAlerts as /api/v1/alerts, for `hostd
// alerts`.
func (s *Service) Routes() []service.Route {
	forward := func(to string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			r2 := r.Clone(r.Context())
			r2.URL.Path = to
			s.apiHandler.ServeHTTP(w, r2)
		}
	}
	return []service.Route{
		{Method: http.MethodGet, Path: api.RouteMetricsQuery, Access: service.Read, Handler: forward("/api/v1/query"),
			Doc: "a PromQL instant query (query, time, timeout), answered as Prometheus' /api/v1/query"},
		{Method: http.MethodGet, Path: api.RouteMetricsQueryRange, Access: service.Read, Handler: forward("/api/v1/query_range"),
			Doc: "a PromQL range query (query, start, end, step, timeout), answered as Prometheus' /api/v1/query_range"},
		{Method: http.MethodGet, Path: api.RouteMetricsAlerts, Access: service.Read, Handler: forward("/api/v1/alerts"),
			Doc: "pending and firing alerts, answered as Prometheus' /api/v1/alerts"},
	}
}

// LocalAPI serves Routes on their own, with the daemon's permission
// checks, for tests that serve one service.
func (s *Service) LocalAPI() http.Handler { return service.NewMux(s.Routes()) }

// queryEnvelope is a query answer as sent by the API.
type queryEnvelope struct {
	Status    string   `json:"status"`
	ErrorType string   `json:"errorType"`
	Error     string   `json:"error"`
	Warnings  []string `json:"warnings"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// WriteQueryTable prints a query answer (Prometheus' JSON envelope) as a
// table: one row per series for instant vectors, one row per point for
// range queries. An error answer is returned as an error.
func WriteQueryTable(w io.Writer, body []byte) error {
	var env queryEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("decode query answer: %w", err)
	}
	if env.Status != "success" {
		return fmt.Errorf("query failed (%s): %s", env.ErrorType, env.Error)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	switch env.Data.ResultType {
	case "scalar", "string":
		var p [2]any
		if err := json.Unmarshal(env.Data.Result, &p); err != nil {
			return fmt.Errorf("decode %s: %w", env.Data.ResultType, err)
		}
		fmt.Fprintln(tw, "VALUE\tTIME")
		fmt.Fprintf(tw, "%v\t%s\n", p[1], fmtTS(p[0]))
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(env.Data.Result, &vec); err != nil {
			return fmt.Errorf("decode vector: %w", err)
		}
		fmt.Fprintln(tw, "SERIES\tVALUE\tTIME")
		for _, s := range vec {
			fmt.Fprintf(tw, "%s\t%v\t%s\n", seriesName(s.Metric), s.Value[1], fmtTS(s.Value[0]))
		}
		if len(vec) == 0 {
			fmt.Fprintln(tw, "(no series)")
		}
	case "matrix":
		var mat []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		}
		if err := json.Unmarshal(env.Data.Result, &mat); err != nil {
			return fmt.Errorf("decode matrix: %w", err)
		}
		fmt.Fprintln(tw, "SERIES\tVALUE\tTIME")
		for _, s := range mat {
			name := seriesName(s.Metric)
			for _, p := range s.Values {
				fmt.Fprintf(tw, "%s\t%v\t%s\n", name, p[1], fmtTS(p[0]))
			}
		}
		if len(mat) == 0 {
			fmt.Fprintln(tw, "(no series)")
		}
	default:
		return fmt.Errorf("unknown result type %q", env.Data.ResultType)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, warn := range env.Warnings {
		fmt.Fprintln(w, "warning:", warn)
	}
	return nil
}

// seriesName prints labels the PromQL way: name{a="b", c="d"}.
func seriesName(m map[string]string) string {
	name := m["__name__"]
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "__name__" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Quote(m[k])
	}
	if len(parts) == 0 && name != "" {
		return name
	}
	return name + "{" + strings.Join(parts, ", ") + "}"
}

func fmtTS(v any) string {
	f, ok := v.(float64)
	if !ok {
		return fmt.Sprint(v)
	}
	return time.UnixMilli(int64(f * 1000)).Local().Format(time.DateTime)
}

// WriteAlertsTable prints an /api/v1/alerts answer as a table: state,
// alert name, since when, the other labels and the summary annotation,
// firing alerts first. An error answer is returned as an error.
func WriteAlertsTable(w io.Writer, body []byte) error {
	var env struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			Alerts []struct {
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
				State       string            `json:"state"`
				ActiveAt    *time.Time        `json:"activeAt"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("decode alerts: %w", err)
	}
	if env.Status != "success" {
		return fmt.Errorf("list alerts failed (%s): %s", env.ErrorType, env.Error)
	}
	as := env.Data.Alerts
	if len(as) == 0 {
		_, err := fmt.Fprintln(w, "no alerts pending or firing")
		return err
	}
	sort.SliceStable(as, func(i, j int) bool {
		if as[i].State != as[j].State {
			return as[i].State == "firing"
		}
		return as[i].Labels["alertname"] < as[j].Labels["alertname"]
	})
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tALERT\tSINCE\tLABELS\tSUMMARY")
	for _, a := range as {
		since := ""
		if a.ActiveAt != nil && !a.ActiveAt.IsZero() {
			since = a.ActiveAt.Local().Format(time.DateTime)
		}
		var ls []string
		for k, v := range a.Labels {
			if k != "alertname" {
				ls = append(ls, k+"="+strconv.Quote(v))
			}
		}
		sort.Strings(ls)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.State, a.Labels["alertname"], since, strings.Join(ls, ","), a.Annotations["summary"])
	}
	return tw.Flush()
}
