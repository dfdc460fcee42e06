package main

import "github.com/spf13/cobra"

func newProxyCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "proxy", Short: "Inspect and control the proxy service"}
}
