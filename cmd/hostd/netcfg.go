package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/pkg/netcfg"
	"github.com/hostd/hostd/pkg/netcfg/dhcp"
)

func newNetCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "net",
		Short: "Show network state",
		Long: `Show what hostd's netcfg service sees over netlink: links with their state,
carrier, MTU and addresses, the default route, the online verdict and
recent changes.`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Show links, the default route and whether the host is online",
		Long: `Show links, the default route, the online verdict and recent changes.

Exit status: 0 when online, 1 when offline, 3 when the daemon is not
running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := g.client().Raw(cmd.Context(), "GET", api.RouteNetcfgStatus, nil)
			if err != nil {
				return netcfgErr(err)
			}
			var st netcfg.StatusDetails
			if err := json.Unmarshal(raw, &st); err != nil {
				return fmt.Errorf("decode network status: %w", err)
			}
			if g.json {
				_, err = cmd.OutOrStdout().Write(raw)
			} else {
				err = printNetStatus(cmd, &st)
			}
			if err != nil {
				return err
			}
			if !st.Online {
				return &exitError{code: 1}
			}
			return nil
		},
	})
	cmd.AddCommand(newNetRenewCmd(g))
	return cmd
}

func printNetStatus(cmd *cobra.Command, st *netcfg.StatusDetails) error {
	out := cmd.OutOrStdout()
	if st.Online {
		fmt.Fprintln(out, "online:  yes")
	} else {
		fmt.Fprintf(out, "online:  no (%s)\n", st.Reason)
	}
	if r := st.DefaultRoute; r != nil {
		via := r.Link
		if r.Gateway != "" {
			via = r.Gateway + " dev " + r.Link
		}
		fmt.Fprintf(out, "default: %s via %s metric %d\n", r.Family, via, r.Metric)
	} else {
		fmt.Fprintln(out, "default: none")
	}
	if p := st.Probe; p != nil {
		res := "ok"
		if !p.OK {
			res = "failed: " + p.Error
		}
		fmt.Fprintf(out, "probe:   %s %s (%s)\n", p.URL, res, p.Checked.Format("15:04:05"))
	}
	fmt.Fprintln(out)
	tw := table(cmd)
	fmt.Fprintln(tw, "LINK\tTYPE\tSTATE\tCARRIER\tMTU\tADDRESSES")
	for _, l := range st.Links {
		state := l.State
		if !l.AdminUp {
			state = "down (admin)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", l.Name, l.Type, state, netYesNo(l.Carrier), l.MTU, strings.Join(l.Addresses, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range st.Problems {
		fmt.Fprintf(out, "problem: %s\n", p)
	}
	if n := len(st.Events); n > 0 {
		fmt.Fprintf(out, "\nrecent changes (%d since start):\n", st.Changes)
		for _, e := range st.Events[max(0, n-8):] {
			fmt.Fprintf(out, "  %s  %-7s %-11s %s %s\n", e.Time.Format("15:04:05"), e.Kind, e.Action, e.Link, e.Detail)
		}
	}
	if err := printLeases(cmd, st.DHCP); err != nil {
		return err
	}
	if err := printLeases6(cmd, st.DHCP6); err != nil {
		return err
	}
	if d := st.DNS; d != nil {
		fmt.Fprintln(out)
		listen := d.Listen
		if listen == "" {
			listen = "not serving"
		}
		fmt.Fprintf(out, "dns:     %s, %d/%d cached, resolv.conf managed: %s\n", listen, d.CacheEntries, d.CacheSize, netYesNo(d.ResolvConf))
		tw := table(cmd)
		fmt.Fprintln(tw, "UPSTREAM\tDOMAIN\tUP\tLAST RTT\tLAST ERROR")
		for _, u := range d.Upstreams {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Upstream, u.Domain, netYesNo(u.Up), netOrDash(u.LastRTT), netOrDash(u.LastError))
		}
		return tw.Flush()
	}
	return nil
}

func newDNSCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dns",
		Short: "Query and flush hostd's DNS resolver",
		Long: `Ask hostd's caching resolver (netcfg.dns) a question the way a client
would, or empty its cache.`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "query NAME [TYPE]",
		Short: "Resolve NAME (type A unless given) through hostd's resolver",
		Long: `Resolve NAME through hostd's resolver and show the answer and where it came
from (hosts, cache, upstream, local).

Exit status: 0 for NOERROR, 1 for any other response code (NXDOMAIN,
SERVFAIL...), 2 for a bad name or type, 3 when the daemon is not running.`,
		Example: "  hostd dns query example.org\n  hostd dns query example.org AAAA",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := netcfg.QueryRequest{Name: args[0]}
			if len(args) == 2 {
				req.Type = args[1]
			}
			if _, err := netcfg.ParseQuery(req.Name, req.Type); err != nil {
				return &exitError{code: 2, err: err}
			}
			raw, err := g.client().Raw(cmd.Context(), "POST", api.RouteNetcfgDNSQuery, req)
			if err != nil {
				return netcfgErr(err)
			}
			var res netcfg.QueryResult
			if err := json.Unmarshal(raw, &res); err != nil {
				return fmt.Errorf("decode query result: %w", err)
			}
			if g.json {
				_, err = cmd.OutOrStdout().Write(raw)
			} else {
				printQuery(cmd.OutOrStdout(), &res)
			}
			if err != nil {
				return err
			}
			if res.Rcode != "NOERROR" {
				return &exitError{code: 1}
			}
			return nil
		},
	}, &cobra.Command{
		Use:   "flush",
		Short: "Empty the resolver's cache",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := g.client().Raw(cmd.Context(), "POST", api.RouteNetcfgDNSFlush, struct{}{})
			if err != nil {
				return netcfgErr(err)
			}
			if g.json {
				_, err = cmd.OutOrStdout().Write(raw)
				return err
			}
			var res netcfg.FlushResult
			if err := json.Unmarshal(raw, &res); err != nil {
				return fmt.Errorf("decode flush result: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "flushed %d cached answers\n", res.Flushed)
			return nil
		},
	})
	return cmd
}

func printQuery(w io.Writer, r *netcfg.QueryResult) {
	fmt.Fprintf(w, "%s %s: %s from %s in %s\n", r.Name, r.Type, r.Rcode, r.Source, r.Duration)
	for _, a := range r.Answer {
		fmt.Fprintln(w, a)
	}
	for _, a := range r.Authority {
		fmt.Fprintln(w, "; authority:", a)
	}
}

// netcfgErr maps client errors to exit codes and a clear message.
func netcfgErr(err error) error {
	if errors.Is(err, api.ErrNotRunning) {
		return &exitError{code: 3, err: err}
	}
	var he *api.HTTPError
	if errors.As(err, &he) && he.Code == 404 && strings.Contains(he.Msg, "404 page not found") {
		return errors.New("the netcfg service is not enabled (netcfg.enable in the config)")
	}
	return err
}

func netYesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func netOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// newNetRenewCmd is `hostd net renew LINK`: renew a DHCP lease now.
func newNetRenewCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "renew LINK",
		Short: "Renew the DHCP leases of a link now",
		Long: `Ask the link's DHCP servers to renew its leases now, DHCPv4 and DHCPv6, as at
T1, and wait for the answers (or discover/solicit at once when the link
has no lease).

Exit status: 0 renewed, 1 refused or no answer, 3 when the daemon is not
running.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := g.client().Raw(cmd.Context(), "POST", api.RouteNetcfgDHCPRenew, netcfg.RenewRequest{Link: args[0]})
			if err != nil {
				return netcfgErr(err)
			}
			if g.json {
				_, err = cmd.OutOrStdout().Write(raw)
				return err
			}
			var res netcfg.RenewResult
			if err := json.Unmarshal(raw, &res); err != nil {
				return fmt.Errorf("decode renew result: %w", err)
			}
			if st := res.Status; st != nil && st.Lease != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s from %s, expires %s\n", st.Link, st.Lease.Address, st.Lease.Server, leaseExpiry(*st))
			}
			if st := res.DHCP6; st != nil && st.Lease != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s from %s (dhcpv6), expires %s\n", st.Link, st.Lease.Address, duidString(st.Lease.ServerID), lease6Expiry(*st))
			}
			return nil
		},
	}
}

// printLeases prints the DHCP table of `hostd net status`.
func printLeases(cmd *cobra.Command, leases []dhcp.Status) error {
	rows := make([]leaseRow, 0, len(leases))
	for _, s := range leases {
		r := leaseRow{link: s.Link, state: s.State, expires: leaseExpiry(s), lastErr: s.LastError}
		if l := s.Lease; l != nil {
			r.addr, r.server, r.dns, r.domains = l.Address.String(), l.Server.String(), l.DNS, l.Domains
		}
		rows = append(rows, r)
	}
	return printLeaseTable(cmd, "DHCP", rows)
}

// printLeases6 prints the DHCPv6 table of `hostd net status`.
func printLeases6(cmd *cobra.Command, leases []dhcp.Status6) error {
	rows := make([]leaseRow, 0, len(leases))
	for _, s := range leases {
		r := leaseRow{link: s.Link, state: s.State, expires: lease6Expiry(s), lastErr: s.LastError}
		if l := s.Lease; l != nil {
			r.addr, r.server, r.dns, r.domains = l.Address.String(), duidString(l.ServerID), l.DNS, l.Domains
		}
		rows = append(rows, r)
	}
	return printLeaseTable(cmd, "DHCPV6", rows)
}

// leaseRow is a row of the DHCP and DHCPv6 tables; addr and server are
// empty without a lease.
type leaseRow struct {
	link, state, addr, server, expires, lastErr string
	dns                                         []netip.Addr
	domains                                     []string
}

// printLeaseTable prints a lease table of `hostd net status`, titled
// title (nothing when there are no rows).
func printLeaseTable(cmd *cobra.Command, title string, rows []leaseRow) error {
	if len(rows) == 0 {
		return nil
	}
	fmt.Fprintln(cmd.OutOrStdout())
	tw := table(cmd)
	fmt.Fprintln(tw, title+"\tSTATE\tADDRESS\tSERVER\tEXPIRES\tDNS\tDOMAINS\tLAST ERROR")
	for _, r := range rows {
		dnsServers, domains := "-", "-"
		if len(r.dns) > 0 {
			var ds []string
			for _, a := range r.dns {
				ds = append(ds, a.String())
			}
			dnsServers = strings.Join(ds, ",")
		}
		if len(r.domains) > 0 {
			domains = strings.Join(r.domains, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.link, r.state, netOrDash(r.addr), netOrDash(r.server), r.expires, dnsServers, domains, netOrDash(r.lastErr))
	}
	return tw.Flush()
}

func leaseExpiry(s dhcp.Status) string { return expiryString(s.Lease != nil, s.Expires) }

func lease6Expiry(s dhcp.Status6) string { return expiryString(s.Lease != nil, s.Expires) }

// expiryString shows when a lease (if held) expires.
func expiryString(held bool, expires time.Time) string {
	switch {
	case !held:
		return "-"
	case expires.IsZero():
		return "never"
	}
	return expires.Local().Format("15:04:05")
}

// duidString shows a server's DUID as colon-separated hex.
func duidString(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	var sb strings.Builder
	for i, x := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		fmt.Fprintf(&sb, "%02x", x)
	}
	return sb.String()
}
