package netcfg_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/netcfg"
	"github.com/hostd/hostd/pkg/netcfg/dhcp"
	"github.com/hostd/hostd/pkg/netcfg/netwatch"
)

// TestServiceDHCPLease: a link declared with dhcp: v4 gets its lease in a
// namespace, the host goes online through the lease's default route, the
// lease's DNS server answers its search domain in the resolver, the status
// shows the lease, and a renew through the local API is answered.
func TestServiceDHCPLease(t *testing.T) {
	ns := testenv.NewNetNS(t)
	ns.PeerIP(t, "addr", "add", "10.99.0.1/24", "dev", ns.PeerLink)
	ns.PeerIP(t, "link", "set", ns.PeerLink, "up")
	srv := testenv.StartDHCPServer(t, ns,
		"--dhcp-range=10.99.0.100,10.99.0.150,255.255.255.0,2m",
		"--dhcp-option=option:router,10.99.0.1",
		"--dhcp-option=option:dns-server,10.99.0.1",
		"--dhcp-option=option:domain-search,lan.test")

	cfg := netcfg.DefaultConfig()
	cfg.NetNS = ns.Name
	cfg.Links = []netwatch.LinkSpec{{Name: ns.Link, DHCP: "v4"}}
	cfg.DNS.Enable = true
	cfg.DNS.Listen = "127.0.0.1:0"
	cfg.DNS.HostsFile = ""
	cfg.DHCP.Hostname = "hostd-svc"
	s := startService(t, cfg)

	testenv.WaitFor(t, 30*time.Second, s.health.is(true, ""))
	testenv.WaitFor(t, 30*time.Second, func() error {
		if d := s.Details(); len(d.DHCP) != 1 || d.DHCP[0].Lease == nil {
			return errors.New("no lease yet")
		}
		return nil
	})
	d := s.Details()
	if len(d.DHCP) != 1 || d.DHCP[0].Lease == nil || d.DHCP[0].State != dhcp.StateBound {
		t.Fatalf("dhcp status %+v", d.DHCP)
	}
	l := d.DHCP[0].Lease
	if d.DefaultRoute == nil || d.DefaultRoute.Gateway != "10.99.0.1" {
		t.Errorf("default route %+v, want via 10.99.0.1", d.DefaultRoute)
	}
	if !strings.Contains(d.Summary(), "dhcp 1/1 bound") {
		t.Errorf("summary %q", d.Summary())
	}
	// The lease's server is an upstream for its search domain and a
	// fallback for everything else.
	var got []string
	for _, u := range d.DNS.Upstreams {
		got = append(got, u.Domain+" "+u.Upstream)
	}
	for _, want := range []string{"lan.test. udp://10.99.0.1:53", ". udp://10.99.0.1:53"} {
		if !slices.Contains(got, want) {
			t.Errorf("upstreams %q lack %q", got, want)
		}
	}
	if !strings.Contains(srv.Leases(), "hostd-svc") {
		t.Errorf("server leases %q lack the hostname", srv.Leases())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, err := s.client.Raw(ctx, "POST", api.RouteNetcfgDHCPRenew, netcfg.RenewRequest{Link: ns.Link})
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	var st dhcp.Status
	if err := json.Unmarshal(raw, &st); err != nil || st.Lease == nil || st.Lease.Address != l.Address {
		t.Fatalf("renew answered %s (%v)", raw, err)
	}
	if _, err := s.client.Raw(ctx, "POST", api.RouteNetcfgDHCPRenew, netcfg.RenewRequest{Link: "nope0"}); err == nil {
		t.Error("renew of a link without dhcp succeeded")
	}

	// Stop without release_on_stop: the address stays, the lease file too.
	if err := s.stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if lf, err := dhcp.LoadLease(s.state+"/dhcp4-"+ns.Link+".lease", ns.Link); err != nil || lf.Address != l.Address {
		t.Errorf("stored lease %+v (%v)", lf, err)
	}
}
