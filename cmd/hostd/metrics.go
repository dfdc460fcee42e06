package main

import "github.com/spf13/cobra"

func newMetricsCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "metrics", Short: "Inspect and control the metrics service"}
}
