package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netns"
)

// errNak is returned when the server refused a request with DHCPNAK.
var errNak = errors.New("server answered NAK")

// reqKind is the state a DHCPREQUEST is sent in (RFC 2131 4.3.2).
type reqKind int

const (
	reqReboot reqKind = iota // INIT-REBOOT: broadcast, requested IP, no ciaddr
	reqRenew                 // RENEWING: to the server, ciaddr
	reqRebind                // REBINDING: broadcast, ciaddr
)

func (k reqKind) String() string {
	return [...]string{"reboot", "renew", "rebind"}[k]
}

// exchanger runs DHCP transactions on one link. Each call is bounded by
// its ctx (the caller sets the deadline) and by the retransmissions.
type exchanger interface {
	// discover runs DISCOVER, OFFER, REQUEST, ACK and returns the ACK.
	discover(ctx context.Context) (*dhcpv4.DHCPv4, error)
	// request asks for l again in the given state; errNak on DHCPNAK.
	request(ctx context.Context, kind reqKind, l *Lease) (*dhcpv4.DHCPv4, error)
	// release gives l back (no answer is expected).
	release(ctx context.Context, l *Lease) error
	// decline tells the server l's address is in use by someone else.
	decline(ctx context.Context, l *Lease) error
	// probe looks for another host using addr (RFC 5227) over window;
	// an error wrapping ErrAddressInUse when there is one.
	probe(ctx context.Context, addr netip.Addr, window time.Duration) error
	// announce tells the link that addr is now in use here.
	announce(addr netip.Addr) error
}

// rawExchanger sends and receives through a packet socket on the link, so
// it works before the link has an address. The socket is open only for
// the length of one transaction.
type rawExchanger struct {
	link     string
	ns       *netns.NsHandle // nil: hostd's own namespace
	hw       net.HardwareAddr
	clientID []byte
	hostname string
	attempt  time.Duration // first retransmission timeout (doubles)
	tries    int
}

// params are the options sent in every message but RELEASE and DECLINE.
func (e *rawExchanger) params() []dhcpv4.Modifier {
	m := []dhcpv4.Modifier{
		dhcpv4.WithHwAddr(e.hw),
		dhcpv4.WithRequestedOptions(
			dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer,
			dhcpv4.OptionDomainName, dhcpv4.OptionInterfaceMTU, dhcpv4.OptionIPAddressLeaseTime,
			dhcpv4.OptionServerIdentifier, dhcpv4.OptionRenewTimeValue, dhcpv4.OptionRebindingTimeValue,
			dhcpv4.OptionDNSDomainSearchList, dhcpv4.OptionClasslessStaticRoute,
		),
		dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(MaxPacketSize)),
	}
	if len(e.clientID) > 0 {
		m = append(m, dhcpv4.WithOption(dhcpv4.OptClientIdentifier(e.clientID)))
	}
	if e.hostname != "" {
		m = append(m, dhcpv4.WithOption(dhcpv4.OptHostName(e.hostname)))
	}
	return m
}

// open opens the link's packet socket (in the namespace) and a client on
// it that sends to dest.
func (e *rawExchanger) open(src netip.Addr, dest net.IP) (*nclient4.Client, net.PacketConn, error) {
	var conn net.PacketConn
	err := InNetNS(e.ns, func() error {
		c, err := nclient4.NewRawUDPConn(e.link, nclient4.ClientPort)
		if err != nil {
			return err
		}
		conn = c
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("open dhcp socket on %s: %w", e.link, err)
	}
	if src.IsValid() {
		// Sent from the leased address (renew, rebind, release); answers
		// come to it.
		if b, ok := conn.(*nclient4.BroadcastRawUDPConn); ok {
			conn = nclient4.NewBroadcastUDPConn(b.PacketConn, &net.UDPAddr{IP: src.AsSlice(), Port: nclient4.ClientPort})
		}
	}
	cl, err := nclient4.NewWithConn(conn, e.hw,
		nclient4.WithTimeout(e.attempt), nclient4.WithRetry(e.tries),
		nclient4.WithServerAddr(&net.UDPAddr{IP: dest, Port: nclient4.ServerPort}))
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("dhcp client on %s: %w", e.link, err)
	}
	return cl, conn, nil
}

func (e *rawExchanger) discover(ctx context.Context) (*dhcpv4.DHCPv4, error) {
	cl, _, err := e.open(netip.Addr{}, net.IPv4bcast)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	mods := append(e.params(), dhcpv4.WithBroadcast(true))
	offer, err := cl.DiscoverOffer(ctx, mods...)
	if err != nil {
		return nil, fmt.Errorf("discover on %s: %w", e.link, err)
	}
	if _, ok := addr4(offer.ServerIdentifier()); !ok {
		return nil, fmt.Errorf("offer on %s has no server identifier", e.link)
	}
	l, err := cl.RequestFromOffer(ctx, offer, mods...)
	var nak *nclient4.ErrNak
	if errors.As(err, &nak) {
		return nil, fmt.Errorf("request %s on %s: %w", offer.YourIPAddr, e.link, errNak)
	}
	if err != nil {
		return nil, fmt.Errorf("request %s on %s: %w", offer.YourIPAddr, e.link, err)
	}
	return l.ACK, nil
}

func (e *rawExchanger) request(ctx context.Context, kind reqKind, l *Lease) (*dhcpv4.DHCPv4, error) {
	ip := l.Address.Addr().AsSlice()
	dest := net.IPv4bcast
	var src netip.Addr
	mods := append(e.params(), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest))
	switch kind {
	case reqReboot:
		mods = append(mods, dhcpv4.WithBroadcast(true), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip)))
	case reqRenew:
		dest = l.Server.AsSlice()
		src = l.Address.Addr()
		mods = append(mods, dhcpv4.WithClientIP(ip))
	case reqRebind:
		src = l.Address.Addr()
		mods = append(mods, dhcpv4.WithClientIP(ip))
	}
	cl, _, err := e.open(src, dest)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	msg, err := dhcpv4.New(mods...)
	if err != nil {
		return nil, fmt.Errorf("build %s request: %w", kind, err)
	}
	match := nclient4.IsMessageType(dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
	if kind == reqRenew {
		match = nclient4.IsAll(match, nclient4.IsCorrectServer(l.Server.AsSlice()))
	}
	resp, err := cl.SendAndRead(ctx, cl.RemoteAddr(), msg, match)
	if err != nil {
		return nil, fmt.Errorf("%s %s on %s: %w", kind, l.Address.Addr(), e.link, err)
	}
	if resp.MessageType() == dhcpv4.MessageTypeNak {
		return nil, fmt.Errorf("%s %s on %s: %w (%s)", kind, l.Address.Addr(), e.link, errNak, sanitize(resp.Message()))
	}
	return resp, nil
}

func (e *rawExchanger) release(ctx context.Context, l *Lease) error {
	return e.tell(ctx, l, dhcpv4.MessageTypeRelease)
}

func (e *rawExchanger) decline(ctx context.Context, l *Lease) error {
	return e.tell(ctx, l, dhcpv4.MessageTypeDecline)
}

// tell sends a message that gets no answer: RELEASE (unicast from the
// address) or DECLINE (broadcast, RFC 2131 4.4.4).
func (e *rawExchanger) tell(ctx context.Context, l *Lease, t dhcpv4.MessageType) error {
	ip := l.Address.Addr().AsSlice()
	mods := []dhcpv4.Modifier{
		dhcpv4.WithHwAddr(e.hw),
		dhcpv4.WithMessageType(t),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(l.Server.AsSlice())),
	}
	if len(e.clientID) > 0 {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptClientIdentifier(e.clientID)))
	}
	dest := net.IPv4bcast
	var src netip.Addr
	if t == dhcpv4.MessageTypeRelease {
		mods = append(mods, dhcpv4.WithClientIP(ip))
		dest, src = l.Server.AsSlice(), l.Address.Addr()
	} else {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip)))
	}
	msg, err := dhcpv4.New(mods...)
	if err != nil {
		return fmt.Errorf("build %s: %w", t, err)
	}
	cl, conn, err := e.open(src, dest)
	if err != nil {
		return err
	}
	defer cl.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetWriteDeadline(dl)
	}
	if _, err := conn.WriteTo(msg.ToBytes(), cl.RemoteAddr()); err != nil {
		return fmt.Errorf("send %s for %s on %s: %w", t, l.Address.Addr(), e.link, err)
	}
	return nil
}

// sanitize keeps a server's message printable and short for logs.
func sanitize(s string) string {
	if len(s) > 128 {
		s = s[:128]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// InNetNS runs fn on a thread switched into ns (nil: fn runs as it is).
// Sockets opened by fn stay in ns. The switch happens on a goroutine of
// its own; if the thread cannot be switched back, that goroutine ends
// with the thread locked, so the runtime discards the thread.
func InNetNS(ns *netns.NsHandle, fn func() error) error {
	if ns == nil {
		return fn()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("get current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(*ns); err != nil {
			done <- fmt.Errorf("enter network namespace: %w", err)
			return // thread state unknown: discarded
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			done <- fmt.Errorf("leave network namespace: %w", err)
			return // thread in the wrong namespace: discarded
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}
