package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: metricsbench compare|families [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "compare":
		err = compare(os.Args[2:])
	case "families":
		err = families(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "metricsbench:", err)
		os.Exit(1)
	}
}

// benchQueries are the queries.
var benchQueries = []string{
	"rate(node_cpu_seconds_total[1m])",
	`sum by (device) (rate(node_network_receive_bytes_total[1m]))`,
	"node_memory_MemAvailable_bytes",
}

type vectorAnswer struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	} `json:"data"`
}

func query(base, q string, at time.Time) (map[string]float64, time.Duration, error) {
	u := base + "/api/v1/query?" + url.Values{"query": {q}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}.Encode()
	start := time.Now()
	resp, err := http.Get(u)
	if err != nil {
		return nil, 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	lat := time.Since(start)
	if err != nil {
		return nil, 0, err
	}
	var a vectorAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, 0, fmt.Errorf("decode %s: %w", u, err)
	}
	if a.Status != "success" {
		return nil, 0, fmt.Errorf("%s: %s", u, a.Error)
	}
	out := map[string]float64{}
	for _, r := range a.Data.Result {
		keys := make([]string, 0, len(r.Metric))
		for k, v := range r.Metric {
			if k == "instance" || k == "job" { // added by Prometheus' scrape
				continue
			}
			keys = append(keys, k+"="+v)
		}
		sort.Strings(keys)
		v, _ := strconv.ParseFloat(fmt.Sprint(r.Value[1]), 64)
		out[strings.Join(keys, ",")] = v
	}
	return out, lat, nil
}

func median(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

func compare(args []string) error {
	fs := flag.NewFlagSet("compare", flag.ExitOnError)
	hostd := fs.String("hostd", "", "hostd base URL")
	prom := fs.String("prometheus", "", "Prometheus base URL")
	n := fs.Int("n", 50, "timed repetitions per query")
	tol := fs.Float64("tolerance", 0.10, "largest relative difference counted as equal (the two stacks read the host at different instants)")
	_ = fs.Parse(args)
	// Evaluate a few seconds in the past so both have ingested that moment.
	at := time.Now().Add(-3 * time.Second)
	fmt.Printf("%-62s %7s %7s %9s %10s %10s %7s\n", "query", "series", "equal", "max_rdiff", "hostd_p50", "prom_p50", "ratio")
	allEqual := true
	for _, q := range benchQueries {
		h, _, err := query(*hostd, q, at)
		if err != nil {
			return fmt.Errorf("hostd: %w", err)
		}
		p, _, err := query(*prom, q, at)
		if err != nil {
			return fmt.Errorf("prometheus: %w", err)
		}
		equal := len(h) == len(p) && len(h) > 0
		maxDiff := 0.0
		for k, hv := range h {
			pv, ok := p[k]
			if !ok {
				equal = false
				fmt.Fprintf(os.Stderr, "  %s: series {%s} only in hostd\n", q, k)
				continue
			}
			// Relative to the larger value, and to at least 1 (one CPU
			// second per second, one byte): both sides sample the host at
			// different instants, so near-zero rates differ in relative
			// terms without meaning anything.
			d := math.Abs(hv-pv) / math.Max(1, math.Max(math.Abs(hv), math.Abs(pv)))
			maxDiff = math.Max(maxDiff, d)
			if d > *tol {
				fmt.Fprintf(os.Stderr, "  %s {%s}: hostd %g, prometheus %g\n", q, k, hv, pv)
			}
		}
		for k := range p {
			if _, ok := h[k]; !ok {
				equal = false
				fmt.Fprintf(os.Stderr, "  %s: series {%s} only in Prometheus\n", q, k)
			}
		}
		if maxDiff > *tol {
			equal = false
		}
		allEqual = allEqual && equal
		var hl, pl []time.Duration
		for i := 0; i < *n; i++ {
			_, d, err := query(*hostd, q, at)
			if err != nil {
				return err
			}
			hl = append(hl, d)
			_, d, err = query(*prom, q, at)
			if err != nil {
				return err
			}
			pl = append(pl, d)
		}
		hm, pm := median(hl), median(pl)
		fmt.Printf("%-62s %7d %7v %9.4f %10s %10s %6.2fx\n", q, len(h), equal, maxDiff,
			hm.Round(time.Microsecond), pm.Round(time.Microsecond), float64(hm)/float64(pm))
	}
	if !allEqual {
		return errors.New("query results differ")
	}
	return nil
}
