package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/pkg/proxy"
)

func newProxyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "proxy", Short: "Inspect and control the proxy service"}
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Show the proxy's server, state, probe latency and traffic",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var d proxy.Details
			if err := g.client().Get(cmd.Context(), api.RouteProxyStatus, &d); err != nil {
				return fmt.Errorf("proxy status: %w", err)
			}
			if g.json {
				return printJSON(cmd, d)
			}
			tw := table(cmd)
			fmt.Fprintf(tw, "state\t%s\n", d.State)
			fmt.Fprintf(tw, "server\t%s\n", d.Server)
			fmt.Fprintf(tw, "socks\t%s\n", proxyOrNone(d.SOCKS))
			fmt.Fprintf(tw, "http\t%s\n", proxyOrNone(d.HTTP))
			if p := d.LastProbe; p != nil {
				res := "ok, latency " + p.Latency().Round(time.Millisecond).String()
				if !p.OK {
					res = "failed: " + p.Error
				}
				fmt.Fprintf(tw, "last probe\t%s %s\n", p.At.Format(time.RFC3339), res)
			}
			fmt.Fprintf(tw, "probes\t%d ok, %d failed\n", d.ProbesOK, d.ProbesFailed)
			if d.LastError != "" && (d.LastProbe == nil || d.LastProbe.Error != d.LastError) {
				fmt.Fprintf(tw, "error\t%s\n", d.LastError)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(d.Traffic) == 0 {
				return nil
			}
			fmt.Fprintln(cmd.OutOrStdout())
			tw = table(cmd)
			fmt.Fprintln(tw, "HANDLER\tSENT\tRECEIVED")
			for _, k := range d.TrafficKeys() {
				t := d.Traffic[k]
				fmt.Fprintf(tw, "%s\t%s\t%s\n", k, service.FormatBytes(t.Up), service.FormatBytes(t.Down))
			}
			return tw.Flush()
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "test",
		Short: "Probe the health URL through the server now",
		Long:  "Sends HEAD health_url through the VLESS+REALITY server and prints the result; exits non-zero when it fails.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r proxy.ProbeResult
			if err := g.client().Post(cmd.Context(), api.RouteProxyTest, nil, &r); err != nil {
				return fmt.Errorf("proxy test: %w", err)
			}
			if g.json {
				if err := printJSON(cmd, r); err != nil {
					return err
				}
			} else if r.OK {
				fmt.Fprintf(cmd.OutOrStdout(), "ok: %s answered %d in %s\n", r.URL, r.Status, r.Latency().Round(time.Millisecond))
			}
			if !r.OK {
				return fmt.Errorf("proxy test: %s", r.Error)
			}
			return nil
		},
	})
	return cmd
}

func proxyOrNone(s string) string {
	if s == "" {
		return "(disabled)"
	}
	return s
}
