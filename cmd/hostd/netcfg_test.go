package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/internal/daemon"
	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/netcfg"
	"github.com/hostd/hostd/pkg/netcfg/dhcp"
)

// TestNetAndDNSCLI drives `hostd net status` and `hostd dns query|flush`
// against a daemon whose resolver forwards to a real dnsmasq.
func TestNetAndDNSCLI(t *testing.T) {
	up := testenv.StartDnsmasq(t, testenv.DnsmasqOptions{
		Addresses: map[string]string{"web.hostd.test": "192.0.2.80"},
		Local:     []string{"hostd.test"},
	})
	dnsAddr := testenv.FreeAddr(t)
	socket := startDaemonWith(t, []daemon.Registration{daemon.Register("netcfg", netcfg.DefaultConfig, netcfg.New)},
		fmt.Sprintf("netcfg:\n  dns:\n    enable: true\n    listen: %s\n    hosts_file: \"\"\n    upstreams: [%q]\n", dnsAddr, up.Addr))
	// The resolver answers as soon as it listens; the network watcher
	// publishes its first state a moment later.
	testenv.WaitFor(t, 10*time.Second, func() error {
		if out, code := runCLI(t, "--socket", socket, "dns", "query", "web.hostd.test"); code != 0 {
			return fmt.Errorf("dns query: exit %d: %s", code, out)
		}
		if out, _ := runCLI(t, "--socket", socket, "net", "status"); !strings.Contains(out, "\nlo ") {
			return fmt.Errorf("net status lists no lo yet:\n%s", out)
		}
		return nil
	})

	before := up.Queries("web.hostd.test")
	steps := []struct {
		args []string
		code int
		out  []string
	}{
		{[]string{"net", "status"}, -1, []string{"\nlo ", "127.0.0.1/8"}},
		{[]string{"dns", "query", "web.hostd.test"}, 0, []string{"web.hostd.test", "192.0.2.80", "NOERROR", "from cache"}},
		{[]string{"dns", "query", "nope.hostd.test"}, 1, []string{"NXDOMAIN"}},
		{[]string{"dns", "query", "web.hostd.test", "BOGUS"}, 2, nil},
		{[]string{"dns", "flush"}, 0, []string{"flushed"}},
		{[]string{"dns", "query", "web.hostd.test"}, 0, []string{"from upstream"}},
	}
	for _, st := range steps {
		out, code := runCLI(t, append([]string{"--socket", socket}, st.args...)...)
		if st.code >= 0 && code != st.code {
			t.Errorf("hostd %s: exit %d, want %d\n%s", strings.Join(st.args, " "), code, st.code, out)
		}
		for _, w := range st.out {
			if !strings.Contains(out, w) {
				t.Errorf("hostd %s: output lacks %q:\n%s", strings.Join(st.args, " "), w, out)
			}
		}
	}
	out, code := runCLI(t, "--socket", socket, "--json", "dns", "query", "web.hostd.test")
	var res netcfg.QueryResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Rcode != "NOERROR" {
		t.Errorf("--json: exit %d, %q", code, out)
	}
	// Of the queries above only the one after the flush reached dnsmasq.
	if n := up.Queries("web.hostd.test") - before; n != 1 {
		t.Errorf("dnsmasq saw %d more queries for web.hostd.test, want 1 (after the flush)", n)
	}
}

// TestPrintNetStatusDHCP6: `hostd net status` shows a DHCPv6 table beside
// the DHCPv4 one.
func TestPrintNetStatusDHCP6(t *testing.T) {
	var out strings.Builder
	cmd := &cobra.Command{}
	cmd.SetOut(&out)
	exp := time.Date(2026, 1, 1, 12, 0, 0, 0, time.Local)
	st := &netcfg.StatusDetails{
		Online: true,
		DHCP:   []dhcp.Status{{Link: "eth0", State: dhcp.StateInit}},
		DHCP6: []dhcp.Status6{
			{Link: "eth0", State: dhcp.StateBound, Expires: exp, Lease: &dhcp.Lease6{
				Address: netip.MustParseAddr("fd99::137"), ServerID: []byte{0, 1, 0xab},
				DNS: []netip.Addr{netip.MustParseAddr("fd99::1")}, Domains: []string{"lan.test"},
			}},
			{Link: "eth1", State: dhcp.StateNoCarrier, LastError: "no answer"},
		},
	}
	if err := printNetStatus(cmd, st); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"DHCPV6", "fd99::137", "00:01:ab", "12:00:00", "fd99::1", "lan.test", "no-carrier", "no answer"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
}
