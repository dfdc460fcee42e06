package main

import "github.com/spf13/cobra"

func newContainersCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "containers", Short: "Inspect and control the containers service"}
}
