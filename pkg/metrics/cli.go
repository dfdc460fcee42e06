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
)

// LocalAPI serves GET /v1/metrics/query and /v1/metrics/query_range on the
// daemon's unix socket: the same answers as /api/v1/query and
// /api/v1/query_range on the HTTP listener, for `hostd metrics query`
// (which then needs no HTTP address, and works with the listener off).
func (s *Service) LocalAPI() http.Handler {
	mux := http.NewServeMux()
	for _, ep := range []string{"query", "query_range"} {
		mux.HandleFunc("GET /v1/metrics/"+ep, func(w http.ResponseWriter, r *http.Request) {
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/api/v1/" + ep
			s.apiHandler.ServeHTTP(w, r2)
		})
	}
	return mux
}

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
