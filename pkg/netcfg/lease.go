package netcfg

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netns"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/confkit"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/pkg/netcfg/dhcp"
	"github.com/hostd/hostd/pkg/netcfg/netwatch"
	"github.com/hostd/hostd/pkg/netcfg/resolver"
)

// DHCPConfig is the "netcfg.dhcp" section: what every link with
// `dhcp: v4` sends and accepts.
type DHCPConfig struct {
	// Hostname is sent in option 12. Default: "" (the host's name, up to
	// its first dot); "-" sends none.
	Hostname string `yaml:"hostname"`
	// ClientID is sent in option 61: "mac" (default: type 1 and the
	// link's MAC), "none", or bytes in hex ("01:52:54:00:12:34:56").
	ClientID string `yaml:"client_id"`
	// ReleaseOnStop gives the lease back (DHCPRELEASE) and removes the
	// address when netcfg stops. Default: false (the address stays and
	// is asked for again at the next start, so a restart or reload does
	// not drop it).
	ReleaseOnStop bool `yaml:"release_on_stop"`
	// RouteMetric is the priority of the routes from leases. Default: 1024.
	RouteMetric int `yaml:"route_metric"`
	// UseDNS feeds the lease's DNS servers and search domains to the
	// resolver (split DNS by search domain). Default: true.
	UseDNS bool `yaml:"use_dns"`
	// UseRoutes installs the default route (option 3) or the classless
	// static routes (option 121). Default: true.
	UseRoutes bool `yaml:"use_routes"`
	// UseMTU sets the link MTU from option 26. Default: true.
	UseMTU bool `yaml:"use_mtu"`
	// Timeout bounds one exchange with the server (retransmissions
	// included). Default: 30s.
	Timeout time.Duration `yaml:"timeout"`
	// ARPProbe is how long an offered address is probed by ARP (RFC 5227,
	// three probes spread over it) before it is configured; when another
	// host answers for it, the offer is declined (DHCPDECLINE) and
	// discovery starts again 10 s later. 0 does not probe. Default:
	// 200ms (a host on the link answers ARP well within it).
	ARPProbe time.Duration `yaml:"arp_probe"`
	// CarrierLossGrace is how long a lease's address and routes stay on a
	// link that lost carrier before they are removed; the lease is kept
	// and asked for again (INIT-REBOOT) when carrier returns. 0 removes
	// them at once (systemd-networkd's IgnoreCarrierLoss=no). Default: 5s,
	// the grace networkd gives a link whose MTU a lease changed, so a
	// driver resetting the link does not drop the address.
	CarrierLossGrace time.Duration `yaml:"carrier_loss_grace"`
}

// DefaultCarrierLossGrace is dhcp.carrier_loss_grace's default.
const DefaultCarrierLossGrace = 5 * time.Second

// DefaultARPProbe is dhcp.arp_probe's default.
const DefaultARPProbe = 200 * time.Millisecond

func defaultDHCPConfig() DHCPConfig {
	return DHCPConfig{ClientID: "mac", RouteMetric: 1024, UseDNS: true, UseRoutes: true, UseMTU: true, Timeout: dhcp.DefaultTimeout, CarrierLossGrace: DefaultCarrierLossGrace, ARPProbe: DefaultARPProbe}
}

func (d *DHCPConfig) validate(v *confkit.Validator) {
	if _, err := d.clientID(); err != nil {
		v.Errorf("client_id", "%v", err)
	}
	if d.RouteMetric < 0 {
		v.Errorf("route_metric", "route metric %d is negative", d.RouteMetric)
	}
	if d.ARPProbe < 0 || d.ARPProbe > 10*time.Second {
		v.Errorf("arp_probe", "arp probe %s: want 0 (off) to 10s", d.ARPProbe)
	}
	if d.CarrierLossGrace < 0 {
		v.Errorf("carrier_loss_grace", "carrier loss grace %s is negative", d.CarrierLossGrace)
	}
	if d.Timeout < time.Second {
		v.Errorf("timeout", "timeout %s is shorter than 1s", d.Timeout)
	}
	if h := d.Hostname; h != "" && h != "-" && (len(h) > 63 || strings.ContainsAny(h, " ./\t")) {
		v.Errorf("hostname", "hostname %q: want one label of at most 63 characters", h)
	}
}

// clientID is ClientID as bytes; nil means the link's MAC.
func (d *DHCPConfig) clientID() ([]byte, error) {
	switch d.ClientID {
	case "", "mac":
		return nil, nil
	case "none":
		return []byte{}, nil
	}
	b, err := hex.DecodeString(strings.ReplaceAll(d.ClientID, ":", ""))
	if err != nil || len(b) < 2 || len(b) > 64 {
		return nil, fmt.Errorf("client id %q: want mac, none, or 2 to 64 bytes in hex", d.ClientID)
	}
	return b, nil
}

func (d *DHCPConfig) hostname() string {
	switch d.Hostname {
	case "-":
		return ""
	case "":
		h, _ := os.Hostname()
		h, _, _ = strings.Cut(h, ".")
		return h
	}
	return d.Hostname
}

// usesDHCP reports whether any declared link runs DHCP.
func (c *Config) usesDHCP() bool {
	for _, l := range c.Links {
		if l.DHCP != "" {
			return true
		}
	}
	return false
}

// leases runs the DHCP clients of the declared links.
type leases struct {
	clients []*dhcp.Client
	v6      []*dhcp.Client6 // DHCPv6 clients (dhcp: v6 or both)
	ra      []string        // links with IPv6 autoconfiguration (dhcp: v6 or both)
	clock   service.Clock
	log     *slog.Logger
	// onRA receives a link's DNS from router advertisements; nil when
	// they are not used (use_dns off, or no resolver).
	onRA func(link string) func(dhcp.RADNS)

	raMu  sync.Mutex
	raDNS map[string]dhcp.RADNS // by link, for the status

	renewFailures *prometheus.CounterVec
}

// newLeases builds a client per link with dhcp; nothing runs until run.
func (s *Service) newLeases() error {
	ls := &leases{
		renewFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hostd_netcfg_dhcp_renew_failures_total",
			Help: "DHCP renewals and rebindings that got no lease, by link.",
		}, []string{"link"}),
	}
	id, _ := s.cfg.DHCP.clientID() // checked by Validate
	clock := s.env.Clock           // set by WithDefaults in New
	ls.clock, ls.log = clock, s.log
	ls.onRA = func(link string) func(dhcp.RADNS) {
		return func(r dhcp.RADNS) {
			ls.raMu.Lock()
			if ls.raDNS == nil {
				ls.raDNS = map[string]dhcp.RADNS{}
			}
			if len(r.Servers)+len(r.Domains) == 0 {
				delete(ls.raDNS, link)
			} else {
				ls.raDNS[link] = r
			}
			ls.raMu.Unlock()
			s.setLinkDNS(link, dnsFromRA, r.Addrs(), r.Names())
		}
	}
	for _, lc := range s.cfg.Links {
		if lc.DHCP == "v6" || lc.DHCP == "both" {
			ls.ra = append(ls.ra, lc.Name)
			link := lc.Name
			c6, err := dhcp.New6(dhcp.Options6{
				Link:         link,
				Release:      s.cfg.DHCP.ReleaseOnStop,
				Timeout:      s.cfg.DHCP.Timeout,
				LeaseFile:    s.leaseFile6(link),
				CarrierGrace: s.cfg.DHCP.CarrierLossGrace,
				// both: stateful only when the router says so (M flag);
				// v6 asks for an address in any case.
				RequireManaged: lc.DHCP == "both",
				Clock:          clock,
				Logger:         s.log.With("dhcp6", link),
				OnRenewFailure: func() {
					ls.renewFailures.WithLabelValues(link).Inc()
				},
				OnChange: func(l *dhcp.Lease6) {
					var servers []netip.Addr
					var domains []string
					if l != nil {
						servers, domains = l.DNS, l.Domains
					}
					s.setLinkDNS(link, dnsFromDHCP6, servers, domains)
				},
			})
			if err != nil {
				return fmt.Errorf("netcfg.links %s: %w", link, err)
			}
			ls.v6 = append(ls.v6, c6)
		}
		if lc.DHCP != "v4" && lc.DHCP != "both" {
			continue
		}
		link := lc.Name
		c, err := dhcp.New(dhcp.Options{
			Link:         link,
			Hostname:     s.cfg.DHCP.hostname(),
			ClientID:     id,
			Release:      s.cfg.DHCP.ReleaseOnStop,
			RouteMetric:  s.cfg.DHCP.RouteMetric,
			IgnoreRoutes: !s.cfg.DHCP.UseRoutes,
			IgnoreMTU:    !s.cfg.DHCP.UseMTU,
			LeaseFile:    s.leaseFile(link),
			Timeout:      s.cfg.DHCP.Timeout,
			CarrierGrace: s.cfg.DHCP.CarrierLossGrace,
			ARPProbe:     s.cfg.DHCP.ARPProbe,
			Clock:        clock,
			Logger:       s.log.With("dhcp", link),
			OnChange:     func(l *dhcp.Lease) { s.leaseChanged(link, l) },
			OnState:      func(string) { s.updateHealth() },
			OnRenewFailure: func() {
				ls.renewFailures.WithLabelValues(link).Inc()
			},
		})
		if err != nil {
			return fmt.Errorf("netcfg.links %s: %w", link, err)
		}
		ls.clients = append(ls.clients, c)
	}
	if len(ls.clients) == 0 && len(ls.ra) == 0 {
		return nil
	}
	if s.env.Metrics != nil {
		for _, col := range []prometheus.Collector{ls.renewFailures, leaseCollector{ls, clock.Now}} {
			if err := s.env.Metrics.Register(col); err != nil {
				return fmt.Errorf("register dhcp metrics: %w", err)
			}
		}
	}
	s.leases = ls
	return nil
}

// leaseFile is where a link's lease is kept; "" without a state dir.
func (s *Service) leaseFile(link string) string {
	if s.env.StateDir == "" {
		return ""
	}
	return filepath.Join(s.env.StateDir, "dhcp4-"+link+".lease")
}

// leaseFile6 is where a link's DHCPv6 lease is kept; "" without a state
// dir.
func (s *Service) leaseFile6(link string) string {
	if s.env.StateDir == "" {
		return ""
	}
	return filepath.Join(s.env.StateDir, "dhcp6-"+link+".lease")
}

// runLeases runs every client until ctx ends, in the namespace ns (nil:
// hostd's own). Each client ends only with ctx.
func (ls *leases) run(ctx context.Context, ns *netns.NsHandle) {
	var wg sync.WaitGroup
	for _, c := range ls.clients {
		wg.Go(func() {
			c.RunIn(ctx, ns)
		})
	}
	for _, c := range ls.v6 {
		wg.Go(func() { c.RunIn(ctx, ns) })
	}
	for _, link := range ls.ra {
		wg.Go(func() { dhcp.RunRA(ctx, ns, link, ls.clock, ls.log, ls.onRA(link)) })
	}
	wg.Wait()
}

// leaseChanged feeds a link's DNS servers and search domains to the
// resolver (when use_dns), and re-evaluates health.
func (s *Service) leaseChanged(link string, l *dhcp.Lease) {
	var servers []netip.Addr
	var domains []string
	if l != nil {
		servers, domains = l.DNS, l.Domains
	}
	s.setLinkDNS(link, dnsFromDHCP4, servers, domains)
	s.updateHealth()
}

// Where a link's DNS servers come from, in the order they are tried.
const (
	dnsFromDHCP4 = iota
	dnsFromDHCP6
	dnsFromRA
	dnsSources
)

var dnsSourceName = [dnsSources]string{"dhcp lease", "dhcpv6 lease", "router advertisement"}

// linkDNS is what each source says about one link's DNS.
type linkDNS [dnsSources]struct {
	servers []netip.Addr
	domains []string
}

// setLinkDNS records what source says about link's DNS and hands the
// resolver the union of all sources (DHCPv4 first, then DHCPv6, then
// router advertisements), when use_dns.
func (s *Service) setLinkDNS(link string, source int, servers []netip.Addr, domains []string) {
	if s.dns == nil || !s.cfg.DHCP.UseDNS {
		return
	}
	s.linkDNSMu.Lock()
	defer s.linkDNSMu.Unlock()
	if s.linkDNS == nil {
		s.linkDNS = map[string]*linkDNS{}
	}
	ld := s.linkDNS[link]
	if ld == nil {
		ld = new(linkDNS)
		s.linkDNS[link] = ld
	}
	ld[source].servers, ld[source].domains = slices.Clone(servers), slices.Clone(domains)
	var ups []resolver.Upstream
	var doms []string
	seen := map[netip.Addr]bool{}
	for _, src := range ld {
		for _, a := range src.servers {
			if !seen[a] {
				seen[a] = true
				ups = append(ups, resolver.Upstream{Address: netip.AddrPortFrom(a, 53).String(), Protocol: "udp", Dial: s.linkDial()})
			}
		}
		for _, d := range src.domains {
			if !slices.Contains(doms, d) {
				doms = append(doms, d)
			}
		}
	}
	if err := s.dns.SetLinkUpstreams(link, ups, doms); err != nil {
		s.log.Warn("dns servers from the "+dnsSourceName[source]+" not used", "link", link, "err", err)
	} else if len(servers) > 0 {
		s.log.Info("dns servers from the "+dnsSourceName[source], "link", link, "servers", servers, "domains", domains)
	}
}

// leaseVerdict makes online follow the lease on a DHCP link: while the
// link that carries the default route has no confirmed lease (init,
// rebooting after carrier came back, no carrier), the host is offline,
// even if the kernel still holds the route.
func (s *Service) leaseVerdict(st *netwatch.State) {
	if s.leases == nil || !st.Online || st.DefaultRoute == nil {
		return
	}
	for _, c := range s.leases.clients {
		cs := c.Status()
		if cs.Link != st.DefaultRoute.Link {
			continue
		}
		switch cs.State {
		case dhcp.StateBound, dhcp.StateRenewing, dhcp.StateRebinding:
			return
		}
		st.Online = false
		st.Reason = fmt.Sprintf("offline: dhcp on %s is %s", cs.Link, cs.State)
		return
	}
}

// linkDial is how the resolver reaches a server a link learned: in the
// link's namespace when netcfg.netns is set (the server is on that
// namespace's network), else nil (hostd's own, as every upstream).
func (s *Service) linkDial() func(ctx context.Context, network, address string) (net.Conn, error) {
	if s.cfg.NetNS == "" {
		return nil
	}
	name := s.cfg.NetNS
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		h, err := netns.GetFromName(name)
		if err != nil {
			return nil, fmt.Errorf("open network namespace %s: %w", name, err)
		}
		defer h.Close()
		var conn net.Conn
		err = dhcp.InNetNS(&h, func() error {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, address)
			conn = c
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("dial %s in network namespace %s: %w", address, name, err)
		}
		return conn, nil
	}
}

// leaseStatus is the DHCP part of the status.
func (s *Service) leaseStatus() []dhcp.Status {
	if s.leases == nil {
		return nil
	}
	out := make([]dhcp.Status, 0, len(s.leases.clients))
	for _, c := range s.leases.clients {
		out = append(out, c.Status())
	}
	return out
}

// lease6Status is the DHCPv6 and router advertisement part of the status.
func (s *Service) lease6Status() ([]dhcp.Status6, map[string]dhcp.RADNS) {
	if s.leases == nil {
		return nil, nil
	}
	var out []dhcp.Status6
	for _, c := range s.leases.v6 {
		out = append(out, c.Status())
	}
	s.leases.raMu.Lock()
	defer s.leases.raMu.Unlock()
	if len(s.leases.raDNS) == 0 {
		return out, nil
	}
	return out, maps.Clone(s.leases.raDNS)
}

// decodeBody reads a small JSON request body strictly.
func decodeBody(r *http.Request, out any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("decode request: %w", err)
	}
	return nil
}

// RenewRequest is the body of POST /v1/netcfg/dhcp/renew.
type RenewRequest struct {
	Link string `json:"link"`
}

// RenewResult answers POST /v1/netcfg/dhcp/renew: the link's DHCPv4
// status (its fields inline, as before DHCPv6 was added; absent on a
// `dhcp: v6` link) and its DHCPv6 status (on `v6` and `both` links).
type RenewResult struct {
	*dhcp.Status
	DHCP6 *dhcp.Status6 `json:"dhcp6,omitempty"`
}

// handleRenew forces a renewal of one link's leases, DHCPv4 and DHCPv6
// (a Write route).
func (s *Service) handleRenew(w http.ResponseWriter, r *http.Request) {
	var req RenewRequest
	if err := decodeBody(r, &req); err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	var c *dhcp.Client
	var c6 *dhcp.Client6
	if s.leases != nil {
		for _, x := range s.leases.clients {
			if x.Status().Link == req.Link {
				c = x
			}
		}
		for _, x := range s.leases.v6 {
			if x.Status().Link == req.Link {
				c6 = x
			}
		}
	}
	if c == nil && c6 == nil {
		api.WriteError(w, http.StatusNotFound, fmt.Errorf("link %q does not run dhcp", req.Link))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.DHCP.Timeout+5*time.Second)
	defer cancel()
	// Both at once: each exchange may take up to the timeout.
	var errs [2]error
	var wg sync.WaitGroup
	if c != nil {
		wg.Go(func() { errs[0] = c.Renew(ctx) })
	}
	if c6 != nil {
		wg.Go(func() { errs[1] = c6.Renew(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, context.DeadlineExceeded) {
			code = http.StatusGatewayTimeout
		}
		api.WriteError(w, code, err)
		return
	}
	s.log.Info("dhcp lease renewed on request", "link", req.Link)
	var res RenewResult
	if c != nil {
		st := c.Status()
		res.Status = &st
	}
	if c6 != nil {
		st := c6.Status()
		res.DHCP6 = &st
	}
	api.WriteJSON(w, http.StatusOK, res)
}

// leaseCollector reports each lease's age from the clients' status, so a
// lost lease leaves no stale series.
type leaseCollector struct {
	ls  *leases
	now func() time.Time
}

var (
	leaseAgeDesc = prometheus.NewDesc("hostd_netcfg_dhcp_lease_age_seconds",
		"Time since the link's DHCP lease was last granted (obtained or renewed).", []string{"link"}, nil)
	leaseExpiryDesc = prometheus.NewDesc("hostd_netcfg_dhcp_lease_expiry_seconds",
		"Time left until the link's DHCP lease ends.", []string{"link"}, nil)
)

func (c leaseCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- leaseAgeDesc
	ch <- leaseExpiryDesc
}

func (c leaseCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	for _, cl := range c.ls.clients {
		st := cl.Status()
		if st.Lease == nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(leaseAgeDesc, prometheus.GaugeValue, now.Sub(st.Lease.Acquired).Seconds(), st.Link)
		if !st.Expires.IsZero() {
			ch <- prometheus.MustNewConstMetric(leaseExpiryDesc, prometheus.GaugeValue, st.Expires.Sub(now).Seconds(), st.Link)
		}
	}
}

// dhcpSummary is the status line's part about leases: "dhcp 1/2 bound".
func dhcpSummary(st []dhcp.Status) string {
	if len(st) == 0 {
		return ""
	}
	bound := 0
	for _, s := range st {
		if s.Lease != nil {
			bound++
		}
	}
	return fmt.Sprintf("dhcp %d/%d bound", bound, len(st))
}
