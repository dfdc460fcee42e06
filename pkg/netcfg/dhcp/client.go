package dhcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/hostd/hostd/internal/service"
)

// Defaults used when Options leave a field zero.
const (
	DefaultTimeout  = 30 * time.Second // one whole transaction, retransmissions included
	DefaultAttempt  = 1 * time.Second  // first retransmission timeout; doubles per try
	DefaultTries    = 4
	DefaultRetryMin = 60 * time.Second // shortest wait between renew/rebind attempts (RFC 2131 4.4.5)
	// DefaultDeclineWait is the wait after declining an address in use
	// before discovering again (RFC 2131 3.1.5: at least ten seconds).
	DefaultDeclineWait = 10 * time.Second
	// leaseFileLimit caps a stored lease file.
	leaseFileLimit = 64 << 10
)

// States of a Client, as shown in Status.
const (
	StateInit      = "init"
	StateRebooting = "rebooting"
	StateBound     = "bound"
	StateRenewing  = "renewing"
	StateRebinding = "rebinding"
	StateStopped   = "stopped"
)

// Options configure a Client.
type Options struct {
	// Link is the interface name. Required.
	Link string
	// NetNS is the namespace the link is in; nil for hostd's own.
	NetNS *netns.NsHandle
	// Hostname is sent in option 12; empty sends none.
	Hostname string
	// ClientID is sent in option 61; nil sends type 1 and the link's MAC
	// (as dhcpcd and systemd-networkd's "mac" do).
	ClientID []byte
	// Release sends DHCPRELEASE and removes the address when Run stops;
	// otherwise the address stays and the lease is asked for again at
	// the next start (INIT-REBOOT), so a restart does not drop it.
	Release bool
	// RouteMetric is the priority of the routes installed. Default 0.
	RouteMetric int
	// IgnoreRoutes, IgnoreMTU leave routes (option 3 and 121) and the MTU
	// (option 26) alone.
	IgnoreRoutes, IgnoreMTU bool
	// LeaseFile keeps the lease across restarts; empty keeps none.
	LeaseFile string
	// Timeout bounds one transaction. Default DefaultTimeout.
	Timeout time.Duration
	// Attempt is the first retransmission timeout. Default DefaultAttempt.
	Attempt time.Duration
	// Tries is the number of transmissions per message. Default DefaultTries.
	Tries int
	// RetryMin is the shortest wait between renew or rebind attempts.
	// Default DefaultRetryMin.
	RetryMin time.Duration
	// ARPProbe is how long an offered address is probed by ARP (RFC
	// 5227, ProbeCount probes spread over it) before it is configured;
	// when another host answers for it, the offer is declined
	// (DHCPDECLINE) and discovery starts again after DeclineWait. 0 does
	// not probe.
	ARPProbe time.Duration
	// DeclineWait is the wait after a DHCPDECLINE before discovery starts
	// again. Default DefaultDeclineWait.
	DeclineWait time.Duration
	// CarrierGrace is how long the address stays on the link after the
	// link lost carrier; then the address and routes go, and the lease
	// is kept to be asked for again (INIT-REBOOT) when carrier comes
	// back. 0 removes them at once.
	CarrierGrace time.Duration
	// Backoff spaces discovery attempts that get no lease. Default
	// 1s doubling up to 1m, with jitter.
	Backoff *service.Backoff
	// Clock times T1, T2, expiry and the backoff. Default RealClock.
	Clock  service.Clock
	Logger *slog.Logger
	// OnChange is called (from Run's goroutine) whenever the lease
	// changes: obtained, renewed with other values, lost (nil).
	OnChange func(l *Lease)
	// OnDecline is called when an offered address was found in use and
	// declined.
	OnDecline func(addr netip.Addr)
	// OnState is called (from Run's goroutine) with each new state.
	OnState func(state string)
	// OnRenewFailure is called when a renew or rebind gets no lease.
	OnRenewFailure func()
}

// Status is a Client's state, as shown by `hostd net status`.
type Status struct {
	Link          string    `json:"link"`
	State         string    `json:"state"`
	Lease         *Lease    `json:"lease,omitempty"`
	Expires       time.Time `json:"expires,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	RenewFailures int       `json:"renew_failures"`
}

// Client is the DHCPv4 client of one link.
type Client struct {
	o     Options
	log   *slog.Logger
	clock service.Clock
	ex    exchanger
	cfg   configurer
	force chan chan error // Renew's requests
	// carrier receives the link's carrier changes (nil: carrier is
	// never lost); up is the last one, owned by run's goroutine.
	carrier <-chan bool
	up      bool

	mu       sync.Mutex
	state    string
	lease    *Lease
	lastErr  error
	failures int
}

// New checks the options and builds a client. Nothing is sent until Run.
func New(o Options) (*Client, error) {
	if o.Link == "" {
		return nil, errors.New("dhcp: no link")
	}
	if o.Clock == nil {
		o.Clock = service.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Attempt <= 0 {
		o.Attempt = DefaultAttempt
	}
	if o.Tries <= 0 {
		o.Tries = DefaultTries
	}
	if o.RetryMin <= 0 {
		o.RetryMin = DefaultRetryMin
	}
	if o.DeclineWait <= 0 {
		o.DeclineWait = DefaultDeclineWait
	}
	if o.Backoff == nil {
		o.Backoff = &service.Backoff{Min: time.Second, Max: time.Minute, Jitter: 0.2}
	}
	o.Backoff.Clock = o.Clock
	c := &Client{o: o, log: o.Logger.With("link", o.Link), clock: o.Clock, force: make(chan chan error), state: StateInit, up: true}
	return c, nil
}

// Status returns a snapshot; safe for concurrent use.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{Link: c.o.Link, State: c.state, RenewFailures: c.failures}
	if c.lease != nil {
		l := *c.lease
		st.Lease = &l
		st.Expires = l.Expires()
	}
	if c.lastErr != nil {
		st.LastError = c.lastErr.Error()
	}
	return st
}

// Renew asks the running client to renew its lease now (or to discover
// at once when it has none) and waits for the outcome or ctx.
func (c *Client) Renew(ctx context.Context) error {
	return askRenew(ctx, c.force, c.o.Link, "the client")
}

// Run obtains and keeps a lease until ctx ends, in Options.NetNS.
func (c *Client) Run(ctx context.Context) error { return c.RunIn(ctx, c.o.NetNS) }

// RunIn is Run in the namespace ns (nil: hostd's own). A link that does
// not exist yet (or cannot be set up) is tried again with the backoff
// until it can, or ctx ends; RunIn returns only when ctx ends.
func (c *Client) RunIn(ctx context.Context, ns *netns.NsHandle) error {
	for {
		err := c.runIn(ctx, ns)
		if ctx.Err() != nil {
			return nil
		}
		c.fail(err)
		c.log.Warn("dhcp client cannot start", "err", err)
		if err := c.o.Backoff.Wait(ctx); err != nil {
			return nil
		}
	}
}

func (c *Client) runIn(ctx context.Context, nsh *netns.NsHandle) error {
	ns := netns.None()
	if nsh != nil {
		ns = *nsh
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("dhcp %s: netlink: %w", c.o.Link, err)
	}
	defer h.Close()
	cfg := &nlConfigurer{h: h, link: c.o.Link, metric: c.o.RouteMetric, useMTU: !c.o.IgnoreMTU, useRoute: !c.o.IgnoreRoutes}
	if err := cfg.bringUp(); err != nil {
		return fmt.Errorf("dhcp: %w", err)
	}
	hw, _, err := cfg.linkInfo()
	if err != nil {
		return fmt.Errorf("dhcp: %w", err)
	}
	if len(hw) != 6 {
		return fmt.Errorf("dhcp %s: not an ethernet link (hardware address %v)", c.o.Link, hw)
	}
	id := c.o.ClientID
	if id == nil {
		id = append([]byte{1}, hw...)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	carrier := make(chan bool, 1)
	if err := watchCarrier(wctx, nsh, c.o.Link, carrier); err != nil {
		return fmt.Errorf("dhcp: %w", err)
	}
	c.up = <-carrier
	c.carrier = carrier
	c.ex = &rawExchanger{link: c.o.Link, ns: nsh, hw: hw, clientID: id, hostname: c.o.Hostname, attempt: c.o.Attempt, tries: c.o.Tries}
	c.cfg = cfg
	return c.run(ctx)
}

// run is the state machine of RFC 2131 4.4 on c.ex and c.cfg.
func (c *Client) run(ctx context.Context) error {
	defer c.setState(StateStopped)
	l := c.load()
	if l != nil && c.up {
		c.setState(StateRebooting)
		l = c.reboot(ctx, l)
	}
	for ctx.Err() == nil {
		if !c.up {
			l = c.noCarrier(ctx, l)
			if c.up && l != nil && ctx.Err() == nil {
				// Back on a network, maybe another one: confirm the
				// lease first (RFC 2131 3.2).
				c.setState(StateRebooting)
				l = c.reboot(ctx, l)
			}
			continue
		}
		if l == nil {
			l = c.discover(ctx)
			continue
		}
		l = c.keep(ctx, l)
	}
	if l != nil {
		c.stop(l)
	}
	return nil
}

// reboot asks for a stored lease again (INIT-REBOOT). Without an answer
// the lease is kept while it lasts (RFC 2131 3.2), so a restart of hostd
// never drops the address.
func (c *Client) reboot(ctx context.Context, l *Lease) *Lease {
	now := c.clock.Now()
	if l.Expired(now) {
		c.log.Info("stored dhcp lease has expired", "address", l.Address)
		c.drop(l)
		return nil
	}
	nl, err := c.exchange(ctx, reqReboot, l)
	switch {
	case err == nil:
		c.bind(l, nl, "rebooted")
		return nl
	case errors.Is(err, errNak):
		c.log.Warn("dhcp server refused the stored lease", "address", l.Address, "err", err)
		c.drop(l)
		return nil
	}
	c.log.Info("no answer to init-reboot, keeping the stored lease while it lasts", "address", l.Address, "expires", l.Expires(), "err", err)
	c.fail(err)
	if err := c.cfg.apply(nil, l, now); err != nil {
		c.log.Warn("apply stored lease", "err", err)
	}
	c.publish(StateBound, l)
	return l
}

// discover gets a new lease, waiting on the backoff between attempts.
func (c *Client) discover(ctx context.Context) *Lease {
	c.setState(StateInit)
	tctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	sent := c.clock.Now()
	ack, err := c.ex.discover(tctx)
	cancel()
	var l *Lease
	if err == nil {
		l, err = ParseLease(ack, sent)
	}
	if err == nil && c.o.ARPProbe > 0 {
		if err = c.probe(ctx, l); errors.Is(err, ErrAddressInUse) {
			c.decline(ctx, l, err)
			return nil
		}
	}
	if err == nil {
		c.o.Backoff.Reset()
		c.bind(nil, l, "obtained")
		if c.o.ARPProbe > 0 {
			if err := c.ex.announce(l.Address.Addr()); err != nil {
				c.log.Warn("arp announcement", "err", err)
			}
		}
		return l
	}
	if ctx.Err() != nil {
		return nil
	}
	c.fail(err)
	c.log.Warn("no dhcp lease", "err", err, "attempt", c.o.Backoff.Attempts()+1)
	t := c.clock.NewTimer(c.o.Backoff.Next())
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C():
	case c.up = <-c.carrier:
	case res := <-c.force:
		res <- nil // a discovery starts at once; its outcome shows in status
	}
	return nil
}

// probe checks that nobody else uses l's address.
func (c *Client) probe(ctx context.Context, l *Lease) error {
	tctx, cancel := context.WithTimeout(ctx, c.o.ARPProbe+c.o.Timeout)
	defer cancel()
	return c.ex.probe(tctx, l.Address.Addr(), c.o.ARPProbe)
}

// decline tells the server that l's address is in use (DHCPDECLINE) and
// waits DeclineWait before the next discovery (RFC 2131 3.1.5).
func (c *Client) decline(ctx context.Context, l *Lease, cause error) {
	c.log.Warn("offered address in use, declined", "address", l.Address, "server", l.Server, "err", cause)
	c.fail(cause)
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := c.ex.decline(dctx, l)
	cancel()
	if err != nil {
		c.log.Warn("dhcp decline", "err", err)
	}
	if c.o.OnDecline != nil {
		c.o.OnDecline(l.Address.Addr())
	}
	t := c.clock.NewTimer(c.o.DeclineWait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C():
	case c.up = <-c.carrier:
	}
}

// noCarrier waits for the link's carrier to come back. The address of l
// stays for CarrierGrace, then it and its routes go; l itself is kept
// (it is returned, to be asked for again) until it expires.
func (c *Client) noCarrier(ctx context.Context, l *Lease) *Lease {
	c.log.Info("link lost carrier", "grace", c.o.CarrierGrace)
	c.setState(StateNoCarrier)
	w := carrierLoss{clock: c.clock, log: c.log, link: c.o.Link, grace: c.o.CarrierGrace, carrier: c.carrier, force: c.force}
	if l != nil {
		w.held, w.expires = true, l.Expires()
		w.unconfigure = func() { c.unconfigure(l) }
		w.expire = func() {
			c.log.Warn("dhcp lease expired without carrier", "address", l.Address)
			c.drop(l)
			c.setState(StateNoCarrier)
		}
	}
	if !w.wait(ctx, &c.up) {
		return nil
	}
	return l
}

// unconfigure takes l off the link after carrier loss but keeps it, for
// INIT-REBOOT when carrier comes back.
func (c *Client) unconfigure(l *Lease) {
	if err := c.cfg.remove(l); err != nil {
		c.log.Warn("remove dhcp lease", "err", err)
	}
	c.log.Info("dhcp address removed after carrier loss; lease kept", "address", l.Address, "expires", l.Expires())
	c.publish(StateNoCarrier, nil)
}

// keep holds l: it waits for T1, renews, rebinds after T2, and gives the
// lease up when it expires. It returns the next lease, nil when lost.
func (c *Client) keep(ctx context.Context, l *Lease) *Lease {
	now := c.clock.Now()
	var next time.Time
	kind := reqRenew
	switch {
	case l.Expired(now):
		c.log.Warn("dhcp lease expired", "address", l.Address)
		c.drop(l)
		return nil
	case now.Before(l.RenewAt()):
		c.setState(StateBound)
		next = l.RenewAt()
	default:
		if !now.Before(l.RebindAt()) {
			kind = reqRebind
		}
		next = now // due now
	}
	var res chan error
	if d := next.Sub(now); d > 0 {
		t := c.clock.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return l
		case <-t.C():
		case res = <-c.force:
			t.Stop()
		case c.up = <-c.carrier:
			t.Stop()
			return l // run looks at the carrier again
		}
	}
	if kind == reqRebind {
		c.setState(StateRebinding)
	} else {
		c.setState(StateRenewing)
	}
	nl, err := c.exchange(ctx, kind, l)
	if res != nil {
		res <- err
	}
	switch {
	case err == nil:
		c.bind(l, nl, kind.String()+"ed")
		return nl
	case errors.Is(err, errNak):
		c.log.Warn("dhcp server refused the lease", "address", l.Address, "err", err)
		c.drop(l)
		return nil
	case ctx.Err() != nil:
		return l
	}
	c.fail(err)
	if c.o.OnRenewFailure != nil {
		c.o.OnRenewFailure()
	}
	// RFC 2131 4.4.5: wait half the time left to T2 (renewing) or to the
	// end of the lease (rebinding), at least RetryMin, and never past them.
	now = c.clock.Now()
	until := l.RebindAt()
	if kind == reqRebind || !now.Before(until) {
		until = l.Expires()
	}
	wait := c.o.RetryMin
	if !until.IsZero() {
		left := until.Sub(now)
		wait = min(max(left/2, c.o.RetryMin), left)
	}
	c.log.Warn("dhcp "+kind.String()+" failed", "address", l.Address, "err", err, "retry_in", wait)
	if wait > 0 {
		t := c.clock.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C():
		case c.up = <-c.carrier:
		case res := <-c.force:
			// Ask again now: keep sees the same lease, due at once.
			go func() { res <- nil }()
		}
	}
	return l
}

// exchange sends a REQUEST for l and parses the answer.
func (c *Client) exchange(ctx context.Context, kind reqKind, l *Lease) (*Lease, error) {
	tctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	sent := c.clock.Now()
	ack, err := c.ex.request(tctx, kind, l)
	if err != nil {
		return nil, err
	}
	nl, err := ParseLease(ack, sent)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", kind, c.o.Link, err)
	}
	if nl.Address.Addr() != l.Address.Addr() {
		return nil, fmt.Errorf("%s on %s: server acked %s, asked for %s", kind, c.o.Link, nl.Address.Addr(), l.Address.Addr())
	}
	return nl, nil
}

// bind installs l (replacing old) and records it.
func (c *Client) bind(old, l *Lease, how string) {
	if err := c.cfg.apply(old, l, c.clock.Now()); err != nil {
		c.log.Warn("apply dhcp lease", "address", l.Address, "err", err)
		c.fail(err)
	} else {
		c.mu.Lock()
		c.lastErr = nil
		c.mu.Unlock()
	}
	c.save(l)
	c.log.Info("dhcp lease "+how, "address", l.Address, "server", l.Server, "gateway", l.Gateway,
		"lease_time", l.LeaseTime, "dns", l.DNS, "domains", l.Domains, "routes", len(l.Routes))
	c.publish(StateBound, l)
}

// drop removes l from the link and forgets it.
func (c *Client) drop(l *Lease) {
	if err := c.cfg.remove(l); err != nil {
		c.log.Warn("remove dhcp lease", "err", err)
	}
	c.forget()
	c.log.Info("dhcp address removed", "address", l.Address)
	c.publish(StateInit, nil)
}

// stop runs when Run ends with a lease: release it, or keep it for the
// next start.
func (c *Client) stop(l *Lease) {
	if !c.o.Release {
		c.save(l)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.ex.release(ctx, l); err != nil {
		c.log.Warn("dhcp release", "err", err)
	} else {
		c.log.Info("dhcp lease released", "address", l.Address)
	}
	c.drop(l)
}

func (c *Client) publish(state string, l *Lease) {
	c.mu.Lock()
	changed := !sameLease(c.lease, l)
	moved := c.state != state
	c.state, c.lease = state, l
	c.mu.Unlock()
	if changed && c.o.OnChange != nil {
		c.o.OnChange(l)
	}
	if moved && c.o.OnState != nil {
		c.o.OnState(state)
	}
}

// sameLease reports whether a and b configure the same (timers aside).
func sameLease(a, b *Lease) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.Acquired, y.Acquired, x.T1, y.T1, x.T2, y.T2, x.LeaseTime, y.LeaseTime = time.Time{}, time.Time{}, 0, 0, 0, 0, 0, 0
	bx, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return string(bx) == string(by)
}

func (c *Client) setState(s string) {
	c.mu.Lock()
	moved := c.state != s
	c.state = s
	c.mu.Unlock()
	if moved && c.o.OnState != nil {
		c.o.OnState(s)
	}
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	c.lastErr = err
	if c.state == StateRenewing || c.state == StateRebinding || c.state == StateRebooting {
		c.failures++
	}
	c.mu.Unlock()
}

// storedLease is the lease file's content.
type storedLease struct {
	Version int    `json:"version"`
	Link    string `json:"link"`
	Lease   *Lease `json:"lease"`
}

func (c *Client) save(l *Lease) {
	saveLease(c.log, "dhcp", c.o.LeaseFile, storedLease{Version: 1, Link: c.o.Link, Lease: l})
}

func (c *Client) forget() { forgetLease(c.log, "dhcp", c.o.LeaseFile) }

// load reads the stored lease; nil when there is none or it is not usable.
func (c *Client) load() *Lease { return loadLease(c.log, "dhcp", c.o.LeaseFile, c.o.Link, LoadLease) }

// LoadLease reads a lease file written for link, bounded and checked.
func LoadLease(path, link string) (*Lease, error) {
	var s storedLease
	if err := readLeaseFile(path, &s); err != nil {
		return nil, err
	}
	if err := s.check(link); err != nil {
		return nil, fmt.Errorf("lease file %s: %w", path, err)
	}
	return s.Lease, nil
}

func (s *storedLease) check(link string) error {
	l := s.Lease
	switch {
	case s.Version != 1:
		return fmt.Errorf("version %d", s.Version)
	case s.Link != link:
		return fmt.Errorf("written for link %q", s.Link)
	case l == nil:
		return errors.New("no lease")
	case !l.Address.IsValid() || !usableUnicast(l.Address.Addr()) || l.Address.Bits() == 0:
		return fmt.Errorf("address %s", l.Address)
	case !usableUnicast(l.Server):
		return fmt.Errorf("server %s", l.Server)
	case l.LeaseTime < MinLeaseTime || l.T1 <= 0 || l.T2 < l.T1 || l.T2 > l.LeaseTime:
		return errors.New("lease times out of order")
	case len(l.DNS) > MaxDNSServers || len(l.Domains) > MaxSearchDomains || len(l.Routes) > MaxRoutes:
		return errors.New("too many entries")
	case l.MTU != 0 && (l.MTU < 576 || l.MTU > 65535):
		return fmt.Errorf("mtu %d", l.MTU)
	}
	for _, d := range l.Domains {
		if cleanName(d) != d {
			return fmt.Errorf("domain %q", d)
		}
	}
	for _, r := range l.Routes {
		if !r.To.IsValid() || !r.To.Addr().Is4() || r.To.Masked() != r.To || (r.Via.IsValid() && !usableUnicast(r.Via)) {
			return fmt.Errorf("route %v", r)
		}
	}
	for _, a := range l.DNS {
		if !usableUnicast(a) {
			return fmt.Errorf("dns server %s", a)
		}
	}
	return nil
}
