package resolver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/hostd/hostd/internal/safefile"
)

// Protocols an upstream can be reached over.
const (
	ProtoUDP = "udp" // UDP, retried over TCP when the answer is truncated
	ProtoTCP = "tcp" // plain TCP
	ProtoTLS = "tls" // DNS-over-TLS (RFC 7858), certificate and name verified
)

// caFileLimit caps a ca_file: a full system bundle is a few hundred KiB.
const caFileLimit = 4 << 20

// upstreamUDPSize is the EDNS0 buffer size offered to upstreams: the
// DNS flag day 2020 value, which avoids IP fragmentation.
const upstreamUDPSize = 1232

// Upstream is one server queries are forwarded to.
type Upstream struct {
	// Protocol is "udp" (default), "tcp" or "tls".
	Protocol string `yaml:"protocol" json:"protocol"`
	// Address is IP:port; the port defaults to 53, or 853 for "tls".
	Address string `yaml:"address" json:"address"`
	// ServerName is the name the TLS certificate must carry. Required for
	// "tls" (the certificate is always verified).
	ServerName string `yaml:"server_name,omitempty" json:"server_name,omitempty"`
	// CAFile is a PEM bundle of CAs trusted for "tls" instead of the
	// system roots. Default: the system roots.
	CAFile string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	// Dial opens the connections to the upstream instead of a plain
	// net.Dialer: netcfg reaches the servers a link learned in the link's
	// network namespace. It is bounded by ctx. Not part of the config.
	Dial func(ctx context.Context, network, address string) (net.Conn, error) `yaml:"-" json:"-"`
}

// ParseUpstream parses the short form of an upstream:
//
//	1.1.1.1               UDP to port 53
//	udp://1.1.1.1:5353    UDP to a given port
//	tcp://[2606:4700::1111]
//	tls://1.1.1.1@cloudflare-dns.com       DNS-over-TLS to port 853, verifying the name
//	tls://1.1.1.1:853#cloudflare-dns.com   the same, in systemd-resolved's spelling
func ParseUpstream(s string) (Upstream, error) {
	var u Upstream
	rest := strings.TrimSpace(s)
	u.Protocol = ProtoUDP
	if scheme, after, ok := strings.Cut(rest, "://"); ok {
		u.Protocol = strings.ToLower(scheme)
		rest = after
	}
	if host, name, ok := cutLast(rest, "@", "#"); ok {
		rest, u.ServerName = host, name
	}
	u.Address = rest
	if err := u.normalize(); err != nil {
		return Upstream{}, fmt.Errorf("upstream %q: %w", s, err)
	}
	return u, nil
}

// cutLast cuts s around the last occurrence of any of the separators.
func cutLast(s string, seps ...string) (before, after string, found bool) {
	best := -1
	width := 0
	for _, sep := range seps {
		if i := strings.LastIndex(s, sep); i > best {
			best, width = i, len(sep)
		}
	}
	if best < 0 {
		return s, "", false
	}
	return s[:best], s[best+width:], true
}

// normalize fills defaults and checks the fields.
func (u *Upstream) normalize() error {
	if u.Protocol == "" {
		u.Protocol = ProtoUDP
	}
	u.Protocol = strings.ToLower(u.Protocol)
	port := "53"
	switch u.Protocol {
	case ProtoUDP, ProtoTCP:
	case ProtoTLS:
		port = "853"
		if u.ServerName == "" {
			return errors.New("dns-over-tls needs a server name to verify (tls://IP@NAME)")
		}
	default:
		return fmt.Errorf("unknown protocol %q (want udp, tcp or tls)", u.Protocol)
	}
	if u.Address == "" {
		return errors.New("address is empty")
	}
	if ap, err := netip.ParseAddrPort(u.Address); err == nil {
		u.Address = ap.String()
		return nil
	}
	addr, err := netip.ParseAddr(strings.Trim(u.Address, "[]"))
	if err != nil {
		return fmt.Errorf("address %q is not an IP or IP:port", u.Address)
	}
	u.Address = net.JoinHostPort(addr.String(), port)
	return nil
}

// Validate reports what is wrong with an upstream after filling defaults.
func (u *Upstream) Validate() error {
	if err := u.normalize(); err != nil {
		return err
	}
	if u.CAFile != "" && u.Protocol != ProtoTLS {
		return errors.New("ca_file is only used with protocol tls")
	}
	return nil
}

// String is the short form of u, e.g. "tls://1.1.1.1:853@cloudflare-dns.com".
func (u Upstream) String() string {
	s := u.Protocol + "://" + u.Address
	if u.ServerName != "" {
		s += "@" + u.ServerName
	}
	return s
}

// Connection reuse for TCP and DNS-over-TLS upstreams (RFC 7766, 7858):
// up to maxIdleConns idle connections per upstream, each dropped after
// idleConnTimeout unused (servers close idle connections themselves after
// some seconds; a reused connection that fails is replaced once).
const (
	maxIdleConns    = 4
	idleConnTimeout = 10 * time.Second
)

// exchanger sends queries to one upstream.
type exchanger struct {
	up      Upstream
	client  *dns.Client // over Protocol
	tcp     *dns.Client // fallback for truncated UDP answers
	timeout time.Duration
	now     func() time.Time

	mu   sync.Mutex
	idle []idleConn // TCP and TLS only, most recently used last
}

type idleConn struct {
	conn  *dns.Conn
	since time.Time
}

func newExchanger(up Upstream, timeout time.Duration, now func() time.Time) (*exchanger, error) {
	if err := up.Validate(); err != nil {
		return nil, err
	}
	e := &exchanger{up: up, timeout: timeout, now: now}
	switch up.Protocol {
	case ProtoUDP:
		e.client = &dns.Client{Net: "udp", UDPSize: upstreamUDPSize, Timeout: timeout}
		e.tcp = &dns.Client{Net: "tcp", Timeout: timeout}
	case ProtoTCP:
		e.client = &dns.Client{Net: "tcp", Timeout: timeout}
	case ProtoTLS:
		cfg := &tls.Config{ServerName: up.ServerName, MinVersion: tls.VersionTLS12}
		if up.CAFile != "" {
			pem, err := safefile.Read(up.CAFile, caFileLimit)
			if err != nil {
				return nil, fmt.Errorf("read ca_file of %s: %w", up, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ca_file %s of %s: no PEM certificates", up.CAFile, up)
			}
			cfg.RootCAs = pool
		}
		e.client = &dns.Client{Net: "tcp-tls", TLSConfig: cfg, Timeout: timeout}
	}
	return e, nil
}

// exchange forwards q and returns the upstream's answer. A truncated UDP
// answer is retried over TCP.
func (e *exchanger) exchange(parent context.Context, q *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(parent, e.timeout)
	defer cancel()
	var resp *dns.Msg
	var err error
	switch {
	case e.up.Protocol == ProtoUDP && e.up.Dial != nil:
		resp, err = e.exchangeDialed(ctx, e.client, "udp", q)
	case e.up.Protocol == ProtoUDP:
		resp, _, err = e.client.ExchangeContext(ctx, q, e.up.Address)
	default:
		resp, err = e.exchangeStream(ctx, q)
	}
	if err == nil && resp.Truncated && e.tcp != nil {
		if e.up.Dial != nil {
			resp, err = e.exchangeDialed(ctx, e.tcp, "tcp", q)
		} else {
			resp, _, err = e.tcp.ExchangeContext(ctx, q, e.up.Address)
		}
	}
	if err != nil && parent.Err() == nil && (ctx.Err() != nil || timedOut(err)) {
		return nil, fmt.Errorf("query %s: timeout: no answer within %s: %w", e.up, e.timeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", e.up, err)
	}
	if resp.Id != q.Id {
		return nil, fmt.Errorf("query %s: answer id %d does not match query id %d", e.up, resp.Id, q.Id)
	}
	if !sameQuestion(q, resp) {
		return nil, fmt.Errorf("query %s: answer is for %v, not for the question asked %v", e.up, resp.Question, q.Question)
	}
	return resp, nil
}

// exchangeDialed sends q over one connection opened by Upstream.Dial.
func (e *exchanger) exchangeDialed(ctx context.Context, c *dns.Client, network string, q *dns.Msg) (*dns.Msg, error) {
	conn, err := e.up.Dial(ctx, network, e.up.Address)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	resp, _, err := c.ExchangeWithConnContext(ctx, q, &dns.Conn{Conn: conn, UDPSize: upstreamUDPSize})
	return resp, err
}

// dialStream opens a TCP or TLS connection to the upstream.
func (e *exchanger) dialStream(ctx context.Context) (*dns.Conn, error) {
	if e.up.Dial == nil {
		return e.client.DialContext(ctx, e.up.Address)
	}
	conn, err := e.up.Dial(ctx, "tcp", e.up.Address)
	if err != nil {
		return nil, err
	}
	if e.up.Protocol == ProtoTLS {
		tc := tls.Client(conn, e.client.TLSConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		conn = tc
	}
	return &dns.Conn{Conn: conn}, nil
}

// timedOut reports whether err is a deadline passing (the connection's
// deadline fires as the context's does, whichever comes first).
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// exchangeStream sends q over a reused or new TCP or TLS connection.
func (e *exchanger) exchangeStream(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	if conn := e.takeIdle(); conn != nil {
		resp, _, err := e.client.ExchangeWithConnContext(ctx, q, conn)
		if err == nil {
			e.putIdle(conn)
			return resp, nil
		}
		conn.Close() // closed by the server meanwhile, most likely: dial anew
		if ctx.Err() != nil {
			return nil, err
		}
	}
	conn, err := e.dialStream(ctx)
	if err != nil {
		return nil, err
	}
	resp, _, err := e.client.ExchangeWithConnContext(ctx, q, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	e.putIdle(conn)
	return resp, nil
}

// takeIdle returns the most recently used idle connection, closing those
// idle for too long.
func (e *exchanger) takeIdle() *dns.Conn {
	e.mu.Lock()
	defer e.mu.Unlock()
	for len(e.idle) > 0 {
		ic := e.idle[len(e.idle)-1]
		e.idle = e.idle[:len(e.idle)-1]
		if e.now().Sub(ic.since) < idleConnTimeout {
			return ic.conn
		}
		ic.conn.Close()
	}
	return nil
}

func (e *exchanger) putIdle(conn *dns.Conn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.idle) >= maxIdleConns {
		e.idle[0].conn.Close()
		e.idle = e.idle[1:]
	}
	e.idle = append(e.idle, idleConn{conn: conn, since: e.now()})
}

// close drops the idle connections.
func (e *exchanger) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ic := range e.idle {
		ic.conn.Close()
	}
	e.idle = nil
}
