package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/nclient6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/internal/service"
)

// The DHCPv6 client (RFC 8415) of a link declared with `dhcp: v6` or
// `both`: it asks for one non-temporary address (IA_NA) and the DNS
// servers (option 23) and search list (option 24), installs the address
// as a /128 with the lifetimes the server gave (the on-link prefix comes
// from the router advertisement), renews at T1 (RENEW), rebinds at T2
// (REBIND), and drops the address when its valid lifetime ends. Messages
// go through nclient6 on a UDP socket bound to the link-local address;
// hostd checks what it uses of a reply itself (ParseLease6).

// StateNoManaged is the state of a client with RequireManaged whose link's
// router advertisements do not set the M flag (or that has seen none):
// addresses come from SLAAC only, and nothing is solicited.
const StateNoManaged = "no-managed-flag"

// MaxServerIDLen bounds a server DUID kept (RFC 8415 11.1: 130 bytes).
const MaxServerIDLen = 130

// Lease6 is what a DHCPv6 REPLY granted, checked by hostd.
type Lease6 struct {
	Address   netip.Addr    `json:"address"`
	ServerID  []byte        `json:"server_id"`
	Preferred time.Duration `json:"preferred_lifetime"`
	Valid     time.Duration `json:"valid_lifetime"`
	T1        time.Duration `json:"t1"`
	T2        time.Duration `json:"t2"`
	DNS       []netip.Addr  `json:"dns,omitempty"`
	Domains   []string      `json:"domains,omitempty"`
	Acquired  time.Time     `json:"acquired"`
}

// Expires is when the address's valid lifetime ends (zero: never).
func (l *Lease6) Expires() time.Time { return expiry(l.Acquired, l.Valid) }

// ParseLease6 checks a REPLY and returns the lease it grants, counted
// from acquired (when the request was sent).
func ParseLease6(m *dhcpv6.Message, acquired time.Time) (*Lease6, error) {
	if m.MessageType != dhcpv6.MessageTypeReply {
		return nil, fmt.Errorf("dhcpv6: %s, want REPLY", m.MessageType)
	}
	if st := m.Options.Status(); st != nil && st.StatusCode != iana.StatusSuccess {
		return nil, fmt.Errorf("dhcpv6: server says %s (%s)", st.StatusCode, sanitize(st.StatusMessage))
	}
	sid := m.Options.ServerID()
	if sid == nil || len(sid.ToBytes()) == 0 || len(sid.ToBytes()) > MaxServerIDLen {
		return nil, errors.New("dhcpv6: reply without a usable server identifier")
	}
	ia := m.Options.OneIANA()
	if ia == nil {
		return nil, errors.New("dhcpv6: reply without IA_NA")
	}
	if st := ia.Options.Status(); st != nil && st.StatusCode != iana.StatusSuccess {
		return nil, fmt.Errorf("dhcpv6: IA_NA refused: %s (%s)", st.StatusCode, sanitize(st.StatusMessage))
	}
	l := &Lease6{ServerID: sid.ToBytes(), Acquired: acquired}
	for _, a := range ia.Options.Addresses() {
		ip, ok := netip.AddrFromSlice(a.IPv6Addr)
		if !ok || !usableUnicast6(ip) || ip.IsLinkLocalUnicast() || a.ValidLifetime < MinLeaseTime || a.PreferredLifetime > a.ValidLifetime {
			continue
		}
		l.Address, l.Preferred, l.Valid = ip, a.PreferredLifetime, a.ValidLifetime
		break
	}
	if !l.Address.IsValid() {
		return nil, errors.New("dhcpv6: no usable address in IA_NA")
	}
	l.T1, l.T2 = ia.T1, ia.T2
	// RFC 8415 21.4: 0 leaves the times to the client; 0.5 and 0.8 of the
	// preferred lifetime, as it recommends for servers.
	if l.T1 <= 0 || l.T2 < l.T1 || l.T2 > l.Valid {
		l.T1, l.T2 = l.Preferred/2, l.Preferred*4/5
	}
	l.T1, l.T2 = max(l.T1, MinLeaseTime/2), max(l.T2, MinLeaseTime/2)
	for _, ip := range m.Options.DNS() {
		a, ok := netip.AddrFromSlice(ip)
		if ok && usableUnicast6(a) && !a.IsLinkLocalUnicast() && len(l.DNS) < MaxDNSServers {
			l.DNS = append(l.DNS, a)
		}
	}
	if sl := m.Options.DomainSearchList(); sl != nil {
		for _, d := range sl.Labels {
			if n := cleanName(d); n != "" && len(l.Domains) < MaxSearchDomains {
				l.Domains = append(l.Domains, n)
			}
		}
	}
	return l, nil
}

// Options6 configure a Client6.
type Options6 struct {
	Link string
	// Release sends RELEASE and removes the address when Run stops.
	Release bool
	// Timeout bounds one exchange. Default DefaultTimeout.
	Timeout time.Duration
	// RetryMin is the shortest wait between renew or rebind attempts.
	// Default DefaultRetryMin.
	RetryMin time.Duration
	// LeaseFile keeps the lease across restarts; empty keeps none. A
	// stored lease is confirmed (CONFIRM) at the next start, its address
	// kept on the link meanwhile, so a restart does not drop it.
	LeaseFile string
	// CarrierGrace is how long the address stays on a link that lost
	// carrier; then it goes, and the lease is kept to be confirmed
	// (CONFIRM) when carrier comes back. 0 removes it at once.
	CarrierGrace time.Duration
	// RequireManaged solicits only while the link's router advertisements
	// set the M (managed address configuration) flag, as the kernel
	// reports it (RTNLGRP_IPV6_IFINFO); until then the client waits in
	// StateNoManaged. A lease already held is kept and renewed.
	RequireManaged bool
	Clock          service.Clock
	Logger         *slog.Logger
	// OnChange is called with each new lease, nil when it is lost.
	OnChange func(l *Lease6)
	// OnRenewFailure is called when a renew or rebind gets no lease.
	OnRenewFailure func()
}

// Client6 is the DHCPv6 client of one link.
type Client6 struct {
	o     Options6
	log   *slog.Logger
	force chan chan error // Renew's requests
	// carrier receives the link's carrier changes; up is the last one,
	// both owned by RunIn's goroutine.
	carrier <-chan bool
	up      bool
	// managed receives the M flag's changes (RequireManaged), m is the
	// last one.
	managed <-chan bool
	m       bool

	mu       sync.Mutex
	state    string
	lease    *Lease6
	lastErr  error
	shown    bool // OnChange last had the lease (not nil)
	failures int
}

// Status6 is a Client6's state, as shown in the status.
type Status6 struct {
	Link      string    `json:"link"`
	State     string    `json:"state"`
	Lease     *Lease6   `json:"lease,omitempty"`
	Expires   time.Time `json:"expires,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	// RenewFailures counts renewals and rebindings that got no lease.
	RenewFailures int `json:"renew_failures"`
}

// New6 builds a DHCPv6 client; nothing is sent until RunIn.
func New6(o Options6) (*Client6, error) {
	if o.Link == "" {
		return nil, errors.New("dhcpv6: no link")
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
	if o.RetryMin <= 0 {
		o.RetryMin = DefaultRetryMin
	}
	return &Client6{o: o, log: o.Logger.With("link", o.Link), state: StateInit, force: make(chan chan error), up: true}, nil
}

// Status returns a snapshot; safe for concurrent use.
func (c *Client6) Status() Status6 {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status6{Link: c.o.Link, State: c.state, RenewFailures: c.failures}
	if c.lease != nil {
		l := *c.lease
		st.Lease, st.Expires = &l, l.Expires()
	}
	if c.lastErr != nil {
		st.LastError = c.lastErr.Error()
	}
	return st
}

func (c *Client6) set(state string, l *Lease6, err error) {
	c.mu.Lock()
	c.state = state
	if l != nil || state != StateBound {
		c.lease = l
	}
	c.lastErr = err
	c.mu.Unlock()
}

// link6 is the link as the client uses it in its namespace.
type link6 struct {
	h     *netlink.Handle
	ns    *netns.NsHandle
	name  string
	index int
	hw    net.HardwareAddr
}

// open binds a DHCPv6 client socket to the link's link-local address; it
// fails while that address is missing or tentative.
func (k *link6) open() (*nclient6.Client, error) {
	l, err := k.h.LinkByName(k.name)
	if err != nil {
		return nil, fmt.Errorf("link %s: %w", k.name, err)
	}
	k.index, k.hw = l.Attrs().Index, l.Attrs().HardwareAddr
	as, err := k.h.AddrList(l, netlink.FAMILY_V6)
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", k.name, err)
	}
	var ll net.IP
	for _, a := range as {
		if a.IP.IsLinkLocalUnicast() && a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) == 0 {
			ll = a.IP
		}
	}
	if ll == nil {
		return nil, fmt.Errorf("%s has no usable link-local address yet", k.name)
	}
	zone := strconv.Itoa(k.index) // an index: a name would be looked up in hostd's namespace
	var conn net.PacketConn
	err = InNetNS(k.ns, func() error {
		c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: ll, Port: dhcpv6.DefaultClientPort, Zone: zone})
		conn = c
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open dhcpv6 socket on %s: %w", k.name, err)
	}
	srv := *nclient6.AllDHCPRelayAgentsAndServers
	srv.Zone = zone
	cl, err := nclient6.NewWithConn(conn, k.hw, nclient6.WithTimeout(DefaultAttempt), nclient6.WithRetry(DefaultTries),
		nclient6.WithBroadcastAddr(&srv))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("dhcpv6 client on %s: %w", k.name, err)
	}
	return cl, nil
}

// duid is the client's DUID-LL: stable across restarts, from the MAC.
func (k *link6) duid() dhcpv6.DUID {
	return &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: k.hw}
}

func (k *link6) iaid() [4]byte {
	var id [4]byte
	copy(id[:], k.hw[max(0, len(k.hw)-4):])
	return id
}

// Renew asks the running client to renew its lease now (or to solicit at
// once when it has none) and waits for the outcome or ctx.
func (c *Client6) Renew(ctx context.Context) error {
	return askRenew(ctx, c.force, c.o.Link, "the dhcpv6 client")
}

// RunIn obtains and keeps a lease in ns (nil: hostd's own) until ctx
// ends; it returns only then.
func (c *Client6) RunIn(ctx context.Context, ns *netns.NsHandle) {
	nsh := netns.None()
	if ns != nil {
		nsh = *ns
	}
	b := service.Backoff{Min: time.Second, Max: time.Minute, Jitter: 0.2, Clock: c.o.Clock}
	var h *netlink.Handle
	var carrier, managed chan bool
	for ctx.Err() == nil {
		var err error
		if h, err = netlink.NewHandleAt(nsh); err == nil {
			var stop context.CancelFunc
			if carrier, managed, stop, err = c.watch(ctx, ns); err == nil {
				defer stop()
				break
			}
			h.Close()
			h = nil
		}
		c.set(StateInit, nil, err)
		if b.Wait(ctx) != nil {
			return
		}
	}
	if h == nil {
		return
	}
	defer h.Close()
	c.up, c.carrier = <-carrier, carrier
	if c.o.RequireManaged {
		c.m, c.managed = <-managed, managed
	}
	k := &link6{h: h, ns: ns, name: c.o.Link}
	l := c.load()
	if l != nil {
		if !c.up {
			// Keep it on the link (the grace runs below) until carrier.
			c.bind(k, l, "restored")
		} else {
			l = c.confirm(ctx, k, l)
		}
	}
	for ctx.Err() == nil {
		if !c.up {
			l = c.noCarrier(ctx, k, l)
			if c.up && l != nil && ctx.Err() == nil {
				l = c.confirm(ctx, k, l) // back on a network, maybe another one
			}
			continue
		}
		if l == nil && c.o.RequireManaged && !c.waitManaged(ctx) {
			continue
		}
		if l == nil {
			var err error
			c.set(StateInit, nil, nil)
			l, err = c.obtain(ctx, k)
			if err == nil {
				b.Reset()
				c.bind(k, l, "obtained")
				continue
			}
			if ctx.Err() != nil {
				break
			}
			c.set(StateInit, nil, err)
			c.log.Warn("no dhcpv6 lease", "err", err, "attempt", b.Attempts()+1)
			c.wait(ctx, b.Next())
			continue
		}
		l = c.keep(ctx, k, l)
	}
	c.set(StateStopped, l, nil)
	if l != nil {
		if c.o.Release {
			c.release(k, l)
		} else {
			c.save(l)
		}
	}
}

// watch starts following the link's carrier and (RequireManaged) the M
// flag of its router advertisements, until stop or ctx.
func (c *Client6) watch(ctx context.Context, ns *netns.NsHandle) (carrier, managed chan bool, stop context.CancelFunc, err error) {
	wctx, stop := context.WithCancel(ctx)
	carrier, managed = make(chan bool, 1), make(chan bool, 1)
	if err = watchCarrier(wctx, ns, c.o.Link, carrier); err == nil && c.o.RequireManaged {
		err = watchManaged(wctx, ns, c.o.Link, managed)
	}
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	return carrier, managed, stop, nil
}

// waitManaged waits for the M flag; false when it returns without it
// (carrier changed, or ctx ended).
func (c *Client6) waitManaged(ctx context.Context) bool {
	for {
		select { // the latest value sent
		case c.m = <-c.managed:
			continue
		default:
		}
		break
	}
	if c.m {
		return true
	}
	c.set(StateNoManaged, nil, nil)
	c.log.Info("router advertisements do not ask for dhcpv6 (no M flag); waiting")
	for !c.m {
		select {
		case <-ctx.Done():
			return false
		case c.up = <-c.carrier:
			if !c.up {
				return false
			}
		case c.m = <-c.managed:
		case res := <-c.force:
			res <- fmt.Errorf("renew %s: router advertisements do not set the M flag", c.o.Link)
		}
	}
	c.log.Info("router advertisements ask for dhcpv6 (M flag)")
	return true
}

// wait waits d, or until ctx ends, carrier changes or a Renew asks (it
// is answered nil: the exchange starts at once, its outcome shows in the
// status).
func (c *Client6) wait(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := c.o.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C():
	case c.up = <-c.carrier:
	case res := <-c.force:
		res <- nil
	}
}

// confirm asks whether a kept lease's address is still on-link (CONFIRM,
// RFC 8415 18.2.3) after a restart or a carrier loss. The address stays
// on the link meanwhile. Success, or no answer at all, keeps the lease
// (the timers of its last grant go on); NotOnLink drops it.
func (c *Client6) confirm(ctx context.Context, k *link6, l *Lease6) *Lease6 {
	now := c.o.Clock.Now()
	if exp := l.Expires(); !exp.IsZero() && !now.Before(exp) {
		c.log.Info("stored dhcpv6 lease has expired", "address", l.Address)
		c.drop(k, l)
		return nil
	}
	c.set(StateRebooting, l, nil)
	err := c.sendConfirm(ctx, k, l)
	switch {
	case err == nil:
		c.bind(k, l, "confirmed")
	case errors.Is(err, errNotOnLink):
		c.log.Warn("dhcpv6 server says the lease is not on this link", "address", l.Address)
		c.drop(k, l)
		return nil
	default:
		if ctx.Err() != nil {
			return l
		}
		c.log.Info("no answer to confirm, keeping the dhcpv6 lease while it lasts", "address", l.Address, "err", err)
		c.bind(k, l, "kept")
		c.set(StateBound, l, err)
	}
	return l
}

var errNotOnLink = errors.New("dhcpv6: not on link")

// sendConfirm sends a CONFIRM for l and reads the REPLY's status.
func (c *Client6) sendConfirm(ctx context.Context, k *link6, l *Lease6) error {
	cl, err := k.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	m, err := c.message(k, l, dhcpv6.MessageTypeConfirm)
	if err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	rep, err := cl.SendAndRead(tctx, cl.RemoteAddr(), m, nclient6.IsMessageType(dhcpv6.MessageTypeReply))
	if err != nil {
		return fmt.Errorf("dhcpv6 confirm on %s: %w", k.name, err)
	}
	st := rep.Options.Status()
	switch {
	case st == nil || st.StatusCode == iana.StatusSuccess:
		return nil
	case st.StatusCode == iana.StatusNotOnLink:
		return errNotOnLink
	}
	return fmt.Errorf("dhcpv6 confirm on %s: server says %s (%s)", k.name, st.StatusCode, sanitize(st.StatusMessage))
}

// noCarrier waits for carrier to come back. l's address stays for
// CarrierGrace, then goes; l is kept (returned, to be confirmed) until
// its valid lifetime ends.
func (c *Client6) noCarrier(ctx context.Context, k *link6, l *Lease6) *Lease6 {
	c.log.Info("link lost carrier", "grace", c.o.CarrierGrace)
	c.set(StateNoCarrier, l, nil)
	w := carrierLoss{clock: c.o.Clock, log: c.log, link: c.o.Link, grace: c.o.CarrierGrace, carrier: c.carrier, force: c.force}
	if l != nil {
		w.held, w.expires = true, l.Expires()
		w.unconfigure = func() { c.unconfigure(k, l) }
		w.expire = func() {
			c.log.Warn("dhcpv6 lease expired without carrier", "address", l.Address)
			c.drop(k, l)
			c.set(StateNoCarrier, nil, nil)
		}
	}
	if !w.wait(ctx, &c.up) {
		return nil
	}
	return l
}

// unconfigure takes l's address off the link after carrier loss; the
// lease is kept (in the status too) to be confirmed when carrier returns.
func (c *Client6) unconfigure(k *link6, l *Lease6) {
	c.delAddr(k, l)
	c.log.Info("dhcpv6 address removed after carrier loss; lease kept", "address", l.Address, "expires", l.Expires())
	c.set(StateNoCarrier, l, nil)
	if c.o.OnChange != nil {
		c.o.OnChange(nil)
	}
}

// obtain runs SOLICIT, ADVERTISE, REQUEST, REPLY.
func (c *Client6) obtain(ctx context.Context, k *link6) (*Lease6, error) {
	cl, err := k.open()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	tctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	sent := c.o.Clock.Now()
	mods := []dhcpv6.Modifier{dhcpv6.WithClientID(k.duid()), dhcpv6.WithIAID(k.iaid())}
	adv, err := cl.Solicit(tctx, mods...)
	if err != nil {
		return nil, fmt.Errorf("dhcpv6 solicit on %s: %w", k.name, err)
	}
	rep, err := cl.Request(tctx, adv)
	if err != nil {
		return nil, fmt.Errorf("dhcpv6 request on %s: %w", k.name, err)
	}
	return ParseLease6(rep, sent)
}

// exchange sends a RENEW or REBIND (RFC 8415 18.2.4, 18.2.5) for l.
func (c *Client6) exchange(ctx context.Context, k *link6, l *Lease6, t dhcpv6.MessageType) (*Lease6, error) {
	cl, err := k.open()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	m, err := c.message(k, l, t)
	if err != nil {
		return nil, err
	}
	tctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	sent := c.o.Clock.Now()
	rep, err := cl.SendAndRead(tctx, cl.RemoteAddr(), m, nclient6.IsMessageType(dhcpv6.MessageTypeReply))
	if err != nil {
		return nil, fmt.Errorf("dhcpv6 %s on %s: %w", t, k.name, err)
	}
	nl, err := ParseLease6(rep, sent)
	if err != nil {
		return nil, err
	}
	if nl.Address != l.Address {
		return nil, fmt.Errorf("dhcpv6 %s on %s: server gave %s for %s", t, k.name, nl.Address, l.Address)
	}
	return nl, nil
}

// message builds a RENEW, REBIND or RELEASE for l.
func (c *Client6) message(k *link6, l *Lease6, t dhcpv6.MessageType) (*dhcpv6.Message, error) {
	m, err := dhcpv6.NewMessage()
	if err != nil {
		return nil, err
	}
	m.MessageType = t
	m.AddOption(dhcpv6.OptClientID(k.duid()))
	if t != dhcpv6.MessageTypeRebind && t != dhcpv6.MessageTypeConfirm {
		sid, err := dhcpv6.DUIDFromBytes(l.ServerID)
		if err != nil {
			return nil, fmt.Errorf("stored server id: %w", err)
		}
		m.AddOption(dhcpv6.OptServerID(sid))
	}
	m.AddOption(dhcpv6.OptElapsedTime(0))
	m.AddOption(dhcpv6.OptRequestedOption(dhcpv6.OptionDNSRecursiveNameServer, dhcpv6.OptionDomainSearchList))
	ia := &dhcpv6.OptIANA{IaId: k.iaid()}
	ia2 := &dhcpv6.OptIAAddress{IPv6Addr: l.Address.AsSlice(), PreferredLifetime: l.Preferred, ValidLifetime: l.Valid}
	if t == dhcpv6.MessageTypeConfirm {
		ia2.PreferredLifetime, ia2.ValidLifetime = 0, 0 // RFC 8415 18.2.3
	}
	ia.Options.Add(ia2)
	m.AddOption(ia)
	return m, nil
}

// keep waits for T1, renews, rebinds after T2, and drops l when its valid
// lifetime ends. It returns the lease in force, nil once lost; it returns
// early when carrier changes.
func (c *Client6) keep(ctx context.Context, k *link6, l *Lease6) *Lease6 {
	now := c.o.Clock.Now()
	renewAt, rebindAt, end := l.Acquired.Add(l.T1), l.Acquired.Add(l.T2), l.Expires()
	if !end.IsZero() && !now.Before(end) {
		c.log.Warn("dhcpv6 lease expired", "address", l.Address)
		c.drop(k, l)
		return nil
	}
	var res chan error
	if now.Before(renewAt) {
		t := c.o.Clock.NewTimer(renewAt.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return l
		case <-t.C():
		case res = <-c.force:
			t.Stop()
		case c.up = <-c.carrier:
			t.Stop()
			return l // RunIn looks at the carrier again
		}
	}
	kind, until := dhcpv6.MessageTypeRenew, rebindAt
	if !c.o.Clock.Now().Before(rebindAt) {
		kind, until = dhcpv6.MessageTypeRebind, end
	}
	c.set(map[bool]string{true: StateRenewing, false: StateRebinding}[kind == dhcpv6.MessageTypeRenew], l, nil)
	nl, err := c.exchange(ctx, k, l, kind)
	if res != nil {
		res <- err
	}
	if err == nil {
		c.bind(k, nl, "renewed")
		return nl
	}
	if ctx.Err() != nil {
		return l
	}
	c.set(StateBound, l, err)
	c.mu.Lock()
	c.failures++
	c.mu.Unlock()
	if c.o.OnRenewFailure != nil {
		c.o.OnRenewFailure()
	}
	wait := c.o.RetryMin
	if !until.IsZero() {
		left := until.Sub(c.o.Clock.Now())
		wait = min(max(left/2, c.o.RetryMin), max(left, time.Second))
	}
	c.log.Warn("dhcpv6 "+kind.String()+" failed", "address", l.Address, "err", err, "retry_in", wait)
	c.wait(ctx, wait)
	return l
}

// bind installs l's address with its lifetimes (replacing, so a renewal
// never removes it) and publishes l.
func (c *Client6) bind(k *link6, l *Lease6, how string) {
	var err error
	if link, lerr := k.h.LinkByName(k.name); lerr != nil {
		err = lerr
	} else {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: l.Address.AsSlice(), Mask: net.CIDRMask(128, 128)}, Flags: unix.IFA_F_NOPREFIXROUTE}
		now := c.o.Clock.Now()
		if exp := l.Expires(); !exp.IsZero() {
			a.ValidLft = max(int(exp.Sub(now)/time.Second), 1)
			a.PreferedLft = min(max(int(expiry(l.Acquired, l.Preferred).Sub(now)/time.Second), 0), a.ValidLft)
		}
		if aerr := k.h.AddrReplace(link, a); aerr != nil {
			err = fmt.Errorf("add address %s to %s: %w", l.Address, k.name, aerr)
		}
	}
	if err != nil {
		c.log.Warn("apply dhcpv6 lease", "err", err)
	}
	c.log.Info("dhcpv6 lease "+how, "address", l.Address, "valid", l.Valid, "t1", l.T1, "dns", l.DNS, "domains", l.Domains)
	c.mu.Lock()
	changed := !c.shown || c.lease == nil || c.lease.Address != l.Address || fmt.Sprint(c.lease.DNS, c.lease.Domains) != fmt.Sprint(l.DNS, l.Domains)
	c.shown = true
	c.mu.Unlock()
	c.save(l)
	c.set(StateBound, l, err)
	if changed && c.o.OnChange != nil {
		c.o.OnChange(l)
	}
}

// drop removes l's address, forgets it and publishes its loss.
func (c *Client6) drop(k *link6, l *Lease6) {
	c.delAddr(k, l)
	c.forget()
	c.set(StateInit, nil, nil)
	if c.o.OnChange != nil {
		c.o.OnChange(nil)
	}
}

// delAddr removes l's address from the link.
func (c *Client6) delAddr(k *link6, l *Lease6) {
	c.mu.Lock()
	c.shown = false
	c.mu.Unlock()
	if link, err := k.h.LinkByName(k.name); err == nil {
		err := k.h.AddrDel(link, &netlink.Addr{IPNet: &net.IPNet{IP: l.Address.AsSlice(), Mask: net.CIDRMask(128, 128)}})
		if err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			c.log.Warn("remove dhcpv6 address", "address", l.Address, "err", err)
		}
	}
}

// release gives l back (RELEASE, waiting briefly for the REPLY) and
// removes the address.
func (c *Client6) release(k *link6, l *Lease6) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if cl, err := k.open(); err != nil {
		c.log.Warn("dhcpv6 release", "err", err)
	} else {
		m, err := c.message(k, l, dhcpv6.MessageTypeRelease)
		if err == nil {
			_, err = cl.SendAndRead(ctx, cl.RemoteAddr(), m, nclient6.IsMessageType(dhcpv6.MessageTypeReply))
		}
		cl.Close()
		if err != nil {
			c.log.Warn("dhcpv6 release", "err", err)
		} else {
			c.log.Info("dhcpv6 lease released", "address", l.Address)
		}
	}
	c.drop(k, l)
	c.set(StateStopped, nil, nil)
}

// storedLease6 is a DHCPv6 lease file's content.
type storedLease6 struct {
	Version int     `json:"version"`
	Link    string  `json:"link"`
	Lease   *Lease6 `json:"lease6"`
}

func (c *Client6) save(l *Lease6) {
	saveLease(c.log, "dhcpv6", c.o.LeaseFile, storedLease6{Version: 1, Link: c.o.Link, Lease: l})
}

func (c *Client6) forget() { forgetLease(c.log, "dhcpv6", c.o.LeaseFile) }

func (c *Client6) load() *Lease6 {
	return loadLease(c.log, "dhcpv6", c.o.LeaseFile, c.o.Link, LoadLease6)
}

// LoadLease6 reads a DHCPv6 lease file written for link, bounded and
// checked as a REPLY is.
func LoadLease6(path, link string) (*Lease6, error) {
	var s storedLease6
	if err := readLeaseFile(path, &s); err != nil {
		return nil, err
	}
	l := s.Lease
	var err error
	switch {
	case s.Version != 1:
		err = fmt.Errorf("version %d", s.Version)
	case s.Link != link:
		err = fmt.Errorf("written for link %q", s.Link)
	case l == nil:
		err = errors.New("no lease")
	case !usableUnicast6(l.Address) || l.Address.IsLinkLocalUnicast():
		err = fmt.Errorf("address %s", l.Address)
	case len(l.ServerID) == 0 || len(l.ServerID) > MaxServerIDLen:
		err = errors.New("server id")
	case l.Valid < MinLeaseTime || l.Preferred > l.Valid || l.T1 <= 0 || l.T2 < l.T1:
		err = errors.New("lease times out of order")
	case len(l.DNS) > MaxDNSServers || len(l.Domains) > MaxSearchDomains:
		err = errors.New("too many entries")
	}
	if err == nil {
		for _, d := range l.Domains {
			if cleanName(d) != d {
				err = fmt.Errorf("domain %q", d)
			}
		}
		for _, a := range l.DNS {
			if !usableUnicast6(a) || a.IsLinkLocalUnicast() {
				err = fmt.Errorf("dns server %s", a)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("lease file %s: %w", path, err)
	}
	return l, nil
}
