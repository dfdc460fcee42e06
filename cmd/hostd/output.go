package main

import (
	"encoding/json"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// printJSON prints v indented, for --json.
func printJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table returns a tabwriter on the command's output; call Flush.
func table(cmd *cobra.Command) *tabwriter.Writer {
	return tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
}
