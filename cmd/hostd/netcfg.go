package main

import "github.com/spf13/cobra"

func newNetCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "net", Short: "Show network state"}
}

func newDNSCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "dns", Short: "Query and flush hostd's DNS resolver"}
}
