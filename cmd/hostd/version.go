package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/internal/api"
)

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print hostd's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := api.Version{Version: version, GoVersion: runtime.Version()}
			if g.json {
				return printJSON(cmd, v)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "hostd %s (%s)\n", v.Version, v.GoVersion)
			return nil
		},
	}
}
