package netcfg_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/netcfg"
	"github.com/hostd/hostd/pkg/netcfg/netwatch"
	"github.com/hostd/hostd/pkg/netcfg/resolver"
)

// upstream parses a short-form upstream for a config.
func upstream(t *testing.T, s string) netcfg.Upstream {
	t.Helper()
	u, err := resolver.ParseUpstream(s)
	if err != nil {
		t.Fatal(err)
	}
	return netcfg.Upstream(u)
}

// linkedNS is a test namespace whose veth peer is up at 192.0.2.1/24.
func linkedNS(t *testing.T) *testenv.NetNS {
	ns := testenv.NewNetNS(t)
	ns.PeerIP(t, "link", "set", ns.PeerLink, "up")
	ns.PeerIP(t, "addr", "add", "192.0.2.1/24", "dev", ns.PeerLink)
	return ns
}

// dnsConfig is a config watching ns with the resolver on a free loopback
// port and the given upstreams.
func dnsConfig(t *testing.T, ns *testenv.NetNS, ups ...string) netcfg.Config {
	cfg := netcfg.DefaultConfig()
	cfg.NetNS = ns.Name
	cfg.Links = []netwatch.LinkSpec{{Name: ns.Link, State: "up", Addresses: []string{"192.0.2.10/24"}}}
	cfg.DNS.Enable = true
	cfg.DNS.Listen = "127.0.0.1:0"
	cfg.DNS.HostsFile = ""
	for _, u := range ups {
		cfg.DNS.Upstreams = append(cfg.DNS.Upstreams, upstream(t, u))
	}
	return cfg
}

func listenOf(t *testing.T, s *running) string {
	t.Helper()
	var addr string
	testenv.WaitFor(t, 10*time.Second, func() error {
		if d := s.Details().DNS; d != nil && d.Listen != "" {
			addr = d.Listen
			return nil
		}
		return errors.New("dns not listening yet")
	})
	return addr
}

func digShort(t *testing.T, addr, name, qtype string) []string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command(testenv.LookPath(t, "dig"), "@"+host, "-p", port, "+short", "+time=5", "+tries=1", name, qtype).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s %s: %v\n%s", name, qtype, err, out)
	}
	return strings.Fields(string(out))
}

func TestServiceReadinessFollowsDefaultRoute(t *testing.T) {
	ns := linkedNS(t)
	up := testenv.StartDnsmasq(t, testenv.DnsmasqOptions{Addresses: map[string]string{"www.hostd.test": "192.0.2.80"}})
	s := startService(t, dnsConfig(t, ns, up.Addr))

	waitHealth(t, s, 10*time.Second, servicetest.IsDegraded("offline: no default route"))
	ns.IP(t, "route", "add", "default", "via", "192.0.2.1")
	waitHealth(t, s, 10*time.Second, servicetest.IsReady)

	var st netcfg.StatusDetails
	if err := s.client.Get(context.Background(), "/v1/netcfg/status", &st); err != nil {
		t.Fatal(err)
	}
	if !st.Online || st.DefaultRoute == nil || st.DefaultRoute.Link != ns.Link || st.DNS == nil || st.DNS.Listen == "" {
		t.Errorf("status = %+v, want online via %s with dns listening", st, ns.Link)
	}
	if i := slices.IndexFunc(st.Links, func(l netwatch.Link) bool { return l.Name == ns.Link }); i < 0 || !slices.Contains(st.Links[i].Addresses, "192.0.2.10/24") {
		t.Errorf("links = %+v, want %s with its declared address", st.Links, ns.Link)
	}
	if sum := s.Status().Summary; !strings.Contains(sum, "online ("+ns.Link+" via 192.0.2.1)") || !strings.Contains(sum, "dns 127.0.0.1:") {
		t.Errorf("summary = %q", sum)
	}

	ns.IP(t, "route", "del", "default")
	waitHealth(t, s, 10*time.Second, servicetest.IsDegraded("offline: no default route"))
	if v := testutil.ToFloat64(gauge(t, s, "hostd_netcfg_online")); v != 0 {
		t.Errorf("hostd_netcfg_online = %v, want 0", v)
	}
}

func TestServiceDNSThroughLocalAPI(t *testing.T) {
	ns := linkedNS(t)
	ns.IP(t, "addr", "add", "192.0.2.10/24", "dev", ns.Link)
	ns.IP(t, "link", "set", ns.Link, "up")
	ns.IP(t, "route", "add", "default", "via", "192.0.2.1")
	up := testenv.StartDnsmasq(t, testenv.DnsmasqOptions{Addresses: map[string]string{"www.hostd.test": "192.0.2.80"}})
	s := startService(t, dnsConfig(t, ns, up.Addr))
	addr := listenOf(t, s)
	waitHealth(t, s, 10*time.Second, servicetest.IsReady)

	if got := digShort(t, addr, "www.hostd.test", "A"); !slices.Equal(got, []string{"192.0.2.80"}) {
		t.Errorf("dig = %q", got)
	}
	ctx := context.Background()
	var res netcfg.QueryResult
	if err := s.client.Post(ctx, "/v1/netcfg/dns/query", netcfg.QueryRequest{Name: "www.hostd.test"}, &res); err != nil {
		t.Fatal(err)
	}
	if res.Source != resolver.SourceCache || res.Rcode != "NOERROR" || len(res.Answer) != 1 || !strings.HasSuffix(res.Answer[0], "192.0.2.80") {
		t.Errorf("query = %+v, want the cached answer", res)
	}
	var fl netcfg.FlushResult
	if err := s.client.Post(ctx, "/v1/netcfg/dns/flush", nil, &fl); err != nil || fl.Flushed != 1 {
		t.Errorf("flush = %+v, %v; want 1 entry", fl, err)
	}
	if err := s.client.Post(ctx, "/v1/netcfg/dns/query", netcfg.QueryRequest{Name: "www.hostd.test", Type: "a"}, &res); err != nil || res.Source != resolver.SourceUpstream {
		t.Errorf("after flush: %+v, %v; want an upstream answer", res, err)
	}

	bad := []struct {
		req  any
		want string
	}{
		{netcfg.QueryRequest{Name: ""}, "name is empty"},
		{netcfg.QueryRequest{Name: "x..y"}, "not a domain name"},
		{netcfg.QueryRequest{Name: "x", Type: "BOGUS"}, `unknown record type "BOGUS"`},
		{map[string]string{"nme": "x"}, "unknown field"},
	}
	for _, b := range bad {
		err := s.client.Post(ctx, "/v1/netcfg/dns/query", b.req, nil)
		var he *api.HTTPError
		if !errors.As(err, &he) || he.Code != 400 || !strings.Contains(he.Msg, b.want) {
			t.Errorf("query %+v: err = %v, want 400 with %q", b.req, err, b.want)
		}
	}
}

func TestServiceAllUpstreamsDown(t *testing.T) {
	ns := linkedNS(t)
	ns.IP(t, "addr", "add", "192.0.2.10/24", "dev", ns.Link)
	ns.IP(t, "link", "set", ns.Link, "up")
	ns.IP(t, "route", "add", "default", "via", "192.0.2.1")
	s := startService(t, dnsConfig(t, ns, closedPort(t), "tcp://"+closedPort(t)))
	addr := listenOf(t, s)
	waitHealth(t, s, 10*time.Second, servicetest.IsReady)

	host, port, _ := net.SplitHostPort(addr)
	start := time.Now()
	out, _ := exec.Command(testenv.LookPath(t, "dig"), "@"+host, "-p", port, "+time=10", "+tries=1", "www.hostd.test").CombinedOutput()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("answer took %s with every upstream refusing", took)
	}
	if !strings.Contains(string(out), "status: SERVFAIL") {
		t.Errorf("want SERVFAIL, got\n%s", out)
	}
	waitHealth(t, s, 10*time.Second, servicetest.IsDegraded("dns: no upstream answered"))
	if d := s.Details().DNS; d.LastError == "" || d.Upstreams[0].Up || d.Upstreams[1].Up {
		t.Errorf("dns status = %+v, want both upstreams down and the error", d)
	}

	// The first upstream comes back while no client asks anything; the
	// network coming back online makes the service ask again.
	startDNSAt(t, s.cfgUpstream(0))
	ns.IP(t, "route", "del", "default")
	waitHealth(t, s, 10*time.Second, servicetest.IsDegraded("offline: no default route"))
	ns.IP(t, "route", "add", "default", "via", "192.0.2.1")
	waitHealth(t, s, 10*time.Second, servicetest.IsReady)
}

func TestServicePortInUse(t *testing.T) {
	ns := linkedNS(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cfg := dnsConfig(t, ns, "192.0.2.53")
	cfg.DNS.Listen = pc.LocalAddr().String()
	s := startService(t, cfg)
	err = s.stop()
	for _, want := range []string{"listen for dns on udp " + cfg.DNS.Listen, "address already in use"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("serve error = %v, want it to say %q", err, want)
		}
	}
	waitHealth(t, s, time.Second, servicetest.IsDegraded("address already in use"))
}

func TestServiceManagesResolvConf(t *testing.T) {
	testenv.RequireRoot(t)
	const original = "# from dhcp\nnameserver 192.0.2.53\nsearch lan hostd.test\n"
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
		check func(t *testing.T, path string)
	}{
		{"regular file", func(t *testing.T, path string) {
			os.WriteFile(path, []byte(original), 0o640)
		}, func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			fi, _ := os.Lstat(path)
			if string(b) != original || fi.Mode().Perm() != 0o640 {
				t.Errorf("restored %q mode %v, want the original with mode 0640", b, fi.Mode())
			}
		}},
		{"symlink", func(t *testing.T, path string) {
			target := filepath.Join(filepath.Dir(path), "stub-resolv.conf")
			os.WriteFile(target, []byte(original), 0o644)
			os.Symlink(target, path)
		}, func(t *testing.T, path string) {
			if dst, err := os.Readlink(path); err != nil || filepath.Base(dst) != "stub-resolv.conf" {
				t.Errorf("restored symlink -> %q (%v), want stub-resolv.conf", dst, err)
			}
			if b, _ := os.ReadFile(filepath.Join(filepath.Dir(path), "stub-resolv.conf")); string(b) != original {
				t.Errorf("the symlink's target was written through: %q", b)
			}
		}},
		{"missing", func(t *testing.T, path string) {}, func(t *testing.T, path string) {
			if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("resolv.conf left behind: %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := linkedNS(t)
			path := filepath.Join(t.TempDir(), "resolv.conf")
			tc.setup(t, path)
			ip := fmt.Sprintf("127.0.%d.%d", rand.IntN(200)+20, rand.IntN(250)+2)
			cfg := dnsConfig(t, ns, "192.0.2.53")
			cfg.DNS.Listen = ip + ":53"
			cfg.DNS.ManageResolvConf = true
			cfg.DNS.ResolvConf = path
			s := startService(t, cfg)
			testenv.WaitFor(t, 10*time.Second, func() error {
				b, err := os.ReadFile(path)
				if err != nil || !strings.Contains(string(b), "nameserver "+ip+"\n") {
					return fmt.Errorf("resolv.conf = %q, %v", b, err)
				}
				if tc.name != "missing" && !strings.Contains(string(b), "search lan hostd.test\n") {
					return fmt.Errorf("search line not kept: %q", b)
				}
				if !s.Details().DNS.ResolvConf {
					return errors.New("status does not say resolv.conf is managed")
				}
				return nil
			})
			if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSymlink != 0 {
				t.Errorf("resolv.conf while managed: %v %v, want a regular file", fi.Mode(), err)
			}
			if err := s.stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}
			tc.check(t, path)
			if ents, _ := os.ReadDir(s.state); len(ents) != 1 { // api.sock only
				t.Errorf("state dir keeps %v after a clean stop", ents)
			}
		})
	}
}

// A hostd killed while resolv.conf pointed at it left the original in its
// state dir; the next run must restore that original, not the file it
// finds (its own).
func TestServiceRestoresResolvConfAfterCrash(t *testing.T) {
	testenv.RequireRoot(t)
	ns := linkedNS(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	os.WriteFile(path, []byte("nameserver 192.0.2.53\n"), 0o644)
	ip := fmt.Sprintf("127.0.%d.%d", rand.IntN(200)+20, rand.IntN(250)+2)
	cfg := dnsConfig(t, ns, "192.0.2.53")
	cfg.DNS.Listen = ip + ":53"
	cfg.DNS.ManageResolvConf = true
	cfg.DNS.ResolvConf = path

	first := startService(t, cfg)
	testenv.WaitFor(t, 10*time.Second, func() error {
		if !first.Details().DNS.ResolvConf {
			return errors.New("not managed yet")
		}
		return nil
	})
	// Simulate kill -9: copy what the first run saved into a second
	// run's state dir, and leave the file as the first run wrote it.
	saved, err := os.ReadFile(filepath.Join(first.state, "resolv.conf.orig.json"))
	if err != nil {
		t.Fatal(err)
	}
	written, _ := os.ReadFile(path)
	first.stop()
	os.WriteFile(path, written, 0o644)

	second := startServiceIn(t, cfg, func(stateDir string) {
		os.WriteFile(filepath.Join(stateDir, "resolv.conf.orig.json"), saved, 0o600)
	})
	testenv.WaitFor(t, 10*time.Second, func() error {
		if !second.Details().DNS.ResolvConf {
			return errors.New("not managed yet")
		}
		return nil
	})
	second.stop()
	if b, _ := os.ReadFile(path); string(b) != "nameserver 192.0.2.53\n" {
		t.Errorf("after crash and restart, restored %q, want the original", b)
	}
}

func closedPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().String()
}
