package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/pkg/metrics"
)

func newAlertsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "alerts",
		Short: "List the alerts that are pending or firing",
		Long: `List the alerts of the metrics service's rules that are pending or
firing, through the daemon's unix socket: state, alert name, since when,
labels and summary, firing alerts first.

--json prints Prometheus' /api/v1/alerts answer exactly as the daemon sent
it. The rules are hostd's built-in ones (metrics.rules.default) and the
files of metrics.rules.files; /api/v1/rules on the HTTP listener shows
them all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := g.client().Raw(cmd.Context(), "GET", api.RouteMetricsAlerts, nil)
			var he *api.HTTPError
			if errors.As(err, &he) && len(he.Body) > 0 && !g.json {
				raw, err = he.Body, nil // Prometheus' error envelope, reported below
			}
			if err != nil {
				return err
			}
			if g.json {
				_, err := cmd.OutOrStdout().Write(append(raw, '\n'))
				return err
			}
			return metrics.WriteAlertsTable(cmd.OutOrStdout(), raw)
		},
	}
}
