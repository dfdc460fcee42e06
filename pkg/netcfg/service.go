package netcfg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sync/errgroup"

	"github.com/hostd/hostd/internal/config"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/pkg/netcfg/dhcp"
	"github.com/hostd/hostd/pkg/netcfg/netwatch"
	"github.com/hostd/hostd/pkg/netcfg/resolver"
)

// Listen addresses tried when dns.listen is empty, from hostd's central
// table of defaults.
const (
	StubListen     = config.DefaultDNSListenRoot // as root, when free
	FallbackListen = config.DefaultDNSListen
)

// Service is the netcfg service.
type Service struct {
	cfg     Config
	env     service.Env
	log     *slog.Logger
	watcher *netwatch.Watcher
	dns     *resolver.Resolver // nil when dns is off
	leases  *leases            // nil when no link runs dhcp (lease.go)
	euid    func() int

	recheck chan struct{} // asks for an upstream recheck now

	linkDNSMu sync.Mutex
	linkDNS   map[string]*linkDNS // DNS each link learned, by source (lease.go)

	healthMu sync.Mutex // orders health reports
	mu       sync.Mutex
	listen   string // the address the resolver serves, once bound
	dnsErr   error  // no upstream answered the last query that needed one
	managed  bool   // resolv.conf currently points at the resolver
	reported string // last health report, to send only changes
}

var (
	_ service.Service  = (*Service)(nil)
	_ service.LocalAPI = (*Service)(nil)
)

// New builds the service from its config. Nothing is started.
func New(env service.Env, cfg Config) (*Service, error) {
	env = env.WithDefaults()
	s := &Service{cfg: cfg, env: env, log: env.Logger, euid: os.Geteuid, recheck: make(chan struct{}, 1)}
	wo := netwatch.Options{
		Links:         cfg.Links,
		ProbeURL:      cfg.ProbeURL,
		ProbeInterval: cfg.ProbeInterval,
		ProbeTimeout:  cfg.ProbeTimeout,
		Clock:         env.Clock,
		Logger:        env.Logger,
		Metrics:       env.Metrics,
		OnChange: func(st netwatch.State) {
			s.updateHealth()
			if st.Online {
				s.askRecheck() // the upstreams may be reachable again
			}
		},
	}
	if cfg.NetNS != "" {
		// Opened per run (see Serve) so a namespace that is re-created is
		// followed; checked here so a typo fails at start.
		h, err := netns.GetFromName(cfg.NetNS)
		if err != nil {
			return nil, fmt.Errorf("open network namespace %s: %w", cfg.NetNS, err)
		}
		h.Close()
	}
	w, err := netwatch.New(wo)
	if err != nil {
		return nil, fmt.Errorf("netcfg: %w", err)
	}
	s.watcher = w
	if cfg.DNS.Enable {
		o := cfg.DNS.options()
		o.Clock, o.Logger, o.Metrics = env.Clock, env.Logger, env.Metrics
		o.OnUpstreamHealth = func(err error) {
			s.mu.Lock()
			s.dnsErr = err
			s.mu.Unlock()
			s.updateHealth()
		}
		r, err := resolver.New(o)
		if err != nil {
			return nil, fmt.Errorf("netcfg.dns: %w", err)
		}
		s.dns = r
	}
	if err := s.newLeases(); err != nil {
		return nil, err
	}
	return s, nil
}

// Name implements service.Service.
func (s *Service) Name() string { return "netcfg" }

// Serve implements service.Service: it follows the network, serves DNS
// and manages resolv.conf until ctx is done.
func (s *Service) Serve(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	if s.dns != nil {
		srv, err := s.listenDNS(ctx)
		if err != nil {
			s.env.Health.Degraded(err)
			return err // the port may free up: restart with backoff
		}
		srv.AllowFrom(s.cfg.DNS.allowFrom())
		s.mu.Lock()
		s.listen = srv.Addr()
		s.mu.Unlock()
		s.log.Info("dns resolver listening", "addr", srv.Addr(), "upstreams", len(s.cfg.DNS.Upstreams), "allow_from", s.cfg.DNS.AllowFrom)
		g.Go(func() error { return srv.Serve(ctx, s.dns) })
		g.Go(func() error { s.recheckLoop(ctx); return nil })
		if s.cfg.DNS.ManageResolvConf {
			rc := newResolvConf(s.cfg.DNS.ResolvConf, s.env.StateDir)
			if err := s.manageResolvConf(rc, srv.Addr()); err != nil {
				s.env.Health.Degraded(err)
				// Stop the server before returning.
				g.Go(func() error { return err })
				_ = g.Wait()
				return err
			}
			defer func() {
				if err := rc.restore(); err != nil {
					s.log.Error("restore resolv.conf", "err", err)
				} else {
					s.log.Info("resolv.conf restored", "path", s.cfg.DNS.ResolvConf)
				}
				s.mu.Lock()
				s.managed = false
				s.mu.Unlock()
			}()
		}
	}
	g.Go(func() error {
		var ns *netns.NsHandle
		if s.cfg.NetNS != "" {
			h, err := netns.GetFromName(s.cfg.NetNS)
			if err != nil {
				return fmt.Errorf("open network namespace %s: %w", s.cfg.NetNS, err)
			}
			defer h.Close()
			ns = &h
		}
		if s.leases != nil {
			// The DHCP clients use ns: they end (lctx) and are waited
			// for before the handle is closed.
			lctx, cancel := context.WithCancel(ctx)
			var wg sync.WaitGroup
			wg.Go(func() { s.leases.run(lctx, ns) })
			defer wg.Wait()
			defer cancel()
		}
		return s.watcher.RunIn(ctx, ns)
	})
	err := g.Wait()
	if s.dns != nil {
		s.dns.Close()
	}
	s.mu.Lock()
	s.listen = ""
	s.reported = ""
	s.mu.Unlock()
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return nil
	}
	if err != nil {
		s.env.Health.Degraded(err)
	}
	return err
}

// recheckInterval is how often upstreams are asked while none answers.
const recheckInterval = 30 * time.Second

// recheckLoop asks the upstreams again while the last query found none
// that answered: every recheckInterval, and when the host comes online.
// Without it, an idle resolver would stay degraded after the network
// came back.
func (s *Service) recheckLoop(ctx context.Context) {
	t := s.env.Clock.NewTimer(recheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		case <-s.recheck:
		}
		t.Reset(recheckInterval)
		s.mu.Lock()
		failing := s.dnsErr != nil
		s.mu.Unlock()
		if !failing {
			continue
		}
		if err := s.dns.Recheck(ctx); err == nil {
			s.log.Info("dns upstreams answer again")
		}
	}
}

func (s *Service) askRecheck() {
	select {
	case s.recheck <- struct{}{}:
	default:
	}
}

// listenDNS binds the configured address, or picks one.
func (s *Service) listenDNS(ctx context.Context) (*resolver.Server, error) {
	if s.cfg.DNS.Listen != "" {
		return resolver.Listen(ctx, s.cfg.DNS.Listen)
	}
	if s.euid() == 0 {
		srv, err := resolver.Listen(ctx, StubListen)
		if err == nil {
			return srv, nil
		}
		s.log.Info("dns stub address taken, using the fallback", "addr", StubListen, "fallback", FallbackListen, "err", err)
	}
	return resolver.Listen(ctx, FallbackListen)
}

func (s *Service) manageResolvConf(rc *resolvConf, addr string) error {
	host, port, _ := net.SplitHostPort(addr)
	if port != "53" {
		return service.Permanent(fmt.Errorf("manage resolv.conf: the resolver listens on %s, and resolv.conf can only name servers on port 53 (set netcfg.dns.listen)", addr))
	}
	if err := rc.apply(host); err != nil {
		return fmt.Errorf("manage resolv.conf: %w", err)
	}
	s.mu.Lock()
	s.managed = true
	s.mu.Unlock()
	s.log.Info("resolv.conf points at the resolver", "path", s.cfg.DNS.ResolvConf, "nameserver", host)
	return nil
}

// updateHealth reports readiness from the watcher's verdict and the
// resolver's upstreams, sending only changes.
func (s *Service) updateHealth() {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	st := s.watcher.State()
	s.leaseVerdict(&st)
	s.mu.Lock()
	var reason error
	switch {
	case !st.Running:
		reason = errors.New("offline: network watcher not running")
	case !st.Online:
		reason = errors.New(st.Reason)
	case s.dnsErr != nil:
		reason = fmt.Errorf("dns: %w", s.dnsErr)
	}
	key := "ready"
	if reason != nil {
		key = reason.Error()
	}
	changed := key != s.reported
	s.reported = key
	s.mu.Unlock()
	if !changed {
		return
	}
	if reason == nil {
		s.env.Health.Ready()
	} else {
		s.env.Health.Degraded(reason)
	}
}

// Status implements service.Service.
func (s *Service) Status() service.Status {
	d := s.Details()
	return service.Status{Summary: d.Summary(), Details: d}
}

// Details is the full status, as served by GET /v1/netcfg/status.
func (s *Service) Details() *StatusDetails {
	st := s.watcher.State()
	s.leaseVerdict(&st)
	d := &StatusDetails{
		Online:       st.Online,
		Reason:       st.Reason,
		DefaultRoute: st.DefaultRoute,
		Links:        st.Links,
		Probe:        st.Probe,
		Problems:     st.Problems,
		Events:       st.Events,
		Changes:      st.Changes,
		DHCP:         s.leaseStatus(),
	}
	d.DHCP6, d.RA = s.lease6Status()
	if s.dns != nil {
		rs := s.dns.Stats()
		s.mu.Lock()
		d.DNS = &DNSStatus{
			Listen:       s.listen,
			ResolvConf:   s.managed,
			CacheEntries: rs.CacheEntries,
			CacheSize:    s.cfg.DNS.CacheSize,
			HostsNames:   rs.HostsNames,
			HostsError:   rs.HostsError,
			Upstreams:    rs.Upstreams,
			LastError:    rs.LastError,
		}
		if s.dnsErr == nil {
			d.DNS.LastError = ""
		}
		s.mu.Unlock()
	}
	return d
}

// StatusDetails is the netcfg part of `hostd status` and the reply of
// GET /v1/netcfg/status.
type StatusDetails struct {
	Online       bool             `json:"online"`
	Reason       string           `json:"reason,omitempty"`
	DefaultRoute *netwatch.Route  `json:"default_route,omitempty"`
	Links        []netwatch.Link  `json:"links"`
	Probe        *netwatch.Probe  `json:"probe,omitempty"`
	Problems     []string         `json:"problems,omitempty"`
	Events       []netwatch.Event `json:"events,omitempty"`
	Changes      int              `json:"changes"`
	DNS          *DNSStatus       `json:"dns,omitempty"`
	DHCP         []dhcp.Status    `json:"dhcp,omitempty"`
	DHCP6        []dhcp.Status6   `json:"dhcp6,omitempty"`
	// RA is the DNS each link holds from router advertisements.
	RA map[string]dhcp.RADNS `json:"ra,omitempty"`
}

// DNSStatus is the resolver's part of the status; absent when DNS is off.
type DNSStatus struct {
	Listen       string                    `json:"listen,omitempty"` // empty while not serving
	ResolvConf   bool                      `json:"resolv_conf_managed"`
	CacheEntries int                       `json:"cache_entries"`
	CacheSize    int                       `json:"cache_size"`
	HostsNames   int                       `json:"hosts_names"`
	HostsError   string                    `json:"hosts_error,omitempty"`
	Upstreams    []resolver.UpstreamStatus `json:"upstreams"`
	LastError    string                    `json:"last_error,omitempty"`
}

// Summary is the one-line form for `hostd status`.
func (d *StatusDetails) Summary() string {
	var parts []string
	switch {
	case d.Online && d.DefaultRoute != nil:
		via := d.DefaultRoute.Link
		if d.DefaultRoute.Gateway != "" {
			via += " via " + d.DefaultRoute.Gateway
		}
		parts = append(parts, "online ("+via+")")
	case d.Reason != "":
		parts = append(parts, d.Reason)
	default:
		parts = append(parts, "offline")
	}
	up := 0
	for _, l := range d.Links {
		if l.Usable() {
			up++
		}
	}
	parts = append(parts, fmt.Sprintf("%d/%d links up", up, len(d.Links)))
	if len(d.Problems) > 0 {
		parts = append(parts, fmt.Sprintf("%d link problems", len(d.Problems)))
	}
	if s := dhcpSummary(d.DHCP); s != "" {
		parts = append(parts, s)
	}
	if d.DNS != nil {
		if d.DNS.Listen == "" {
			parts = append(parts, "dns not serving")
		} else {
			healthy := 0
			for _, u := range d.DNS.Upstreams {
				if u.Up {
					healthy++
				}
			}
			parts = append(parts, fmt.Sprintf("dns %s, %d/%d upstreams up, %d cached", d.DNS.Listen, healthy, len(d.DNS.Upstreams), d.DNS.CacheEntries))
		}
	}
	return strings.Join(parts, ", ")
}
