package main

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/pkg/metrics"
)

func newMetricsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "metrics", Short: "Query the metrics service"}
	cmd.AddCommand(newMetricsQueryCmd(g))
	return cmd
}

func newMetricsQueryCmd(g *globals) *cobra.Command {
	var at, start, end, step string
	var since time.Duration
	c := &cobra.Command{
		Use:   "query EXPR",
		Short: "Evaluate a PromQL expression and print the result as a table",
		Long: `Evaluate a PromQL expression over hostd's metrics history, through the
daemon's unix socket (the HTTP listener may be off).

Without range flags it is an instant query at --time (default now). With
--since or --start/--end it is a range query with points every --step.
--json prints Prometheus' JSON answer exactly as the daemon sent it.

Examples:
  hostd metrics query 'node_memory_MemAvailable_bytes'
  hostd metrics query 'sum by (device) (rate(node_network_receive_bytes_total[5m]))'
  hostd metrics query --since 1h --step 5m 'node_load1'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"query": {args[0]}}
			path := api.RouteMetricsQuery
			if since > 0 {
				now := time.Now()
				start = fmt.Sprint(now.Add(-since).Unix())
				end = fmt.Sprint(now.Unix())
			}
			switch {
			case start != "" || end != "":
				if start == "" || end == "" {
					return usageError(cmd, errors.New("range queries need both --start and --end (or --since)"))
				}
				path = api.RouteMetricsQueryRange
				q.Set("start", start)
				q.Set("end", end)
				q.Set("step", step)
			case at != "":
				q.Set("time", at)
			}
			raw, err := g.client().Raw(cmd.Context(), "GET", path+"?"+q.Encode(), nil)
			var he *api.HTTPError
			if errors.As(err, &he) && len(he.Body) > 0 {
				raw, err = he.Body, nil // Prometheus' error envelope, printed below
			}
			if err != nil {
				return err
			}
			if g.json {
				_, err := cmd.OutOrStdout().Write(append(raw, '\n'))
				if err == nil && he != nil {
					return &exitError{code: 1}
				}
				return err
			}
			return metrics.WriteQueryTable(cmd.OutOrStdout(), raw)
		},
	}
	c.Flags().StringVar(&at, "time", "", "evaluation time (RFC 3339 or Unix seconds; default now)")
	c.Flags().StringVar(&start, "start", "", "range start (RFC 3339 or Unix seconds)")
	c.Flags().StringVar(&end, "end", "", "range end (RFC 3339 or Unix seconds)")
	c.Flags().DurationVar(&since, "since", 0, "range query over the last DURATION (e.g. 1h)")
	c.Flags().StringVar(&step, "step", "60s", "range query resolution")
	return c
}
