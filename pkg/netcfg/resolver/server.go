package resolver

import (
	"net/netip"
	"runtime"
	"strings"
	"syscall"

	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/miekg/dns"
)

// Server listens for DNS queries on one address over UDP and TCP.
//
// Only clients on loopback addresses, and those in the networks given to
// AllowFrom, are answered; every other query gets REFUSED: a header with
// no records, never larger than the query, so the server cannot be used
// to amplify traffic sent from forged addresses (unbound's access-control
// "refuse").
type Server struct {
	udp   []net.PacketConn // one per core, sharing the port (SO_REUSEPORT)
	tcp   net.Listener
	addr  string
	allow []netip.Prefix
}

// AllowFrom sets the networks, besides loopback, whose queries are
// answered. Call it before Serve.
func (s *Server) AllowFrom(prefixes []netip.Prefix) {
	s.allow = make([]netip.Prefix, len(prefixes))
	for i, p := range prefixes {
		s.allow[i] = p.Masked()
	}
}

// allowed reports whether queries from a are answered.
func (s *Server) allowed(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsLoopback() {
		return true
	}
	for _, p := range s.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// allowedAddr is allowed for a net.Addr of a UDP or TCP peer; anything
// else is refused.
func (s *Server) allowedAddr(a net.Addr) bool {
	switch a := a.(type) {
	case *net.UDPAddr:
		return s.allowed(a.AddrPort().Addr())
	case *net.TCPAddr:
		return s.allowed(a.AddrPort().Addr())
	}
	return false
}

// refused is the REFUSED answer to a query packet (the header with QR set
// and every count zero), or nil when p is not even a query header.
func refused(p []byte) []byte { return headerOnly(p, dns.RcodeRefused) }

// accessHandler answers REFUSED to clients the server does not serve.
type accessHandler struct {
	s *Server
	h dns.Handler
}

func (a accessHandler) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	if a.s.allowedAddr(w.RemoteAddr()) {
		a.h.ServeDNS(w, q)
		return
	}
	m := new(dns.Msg)
	m.Id, m.Response, m.Opcode, m.Rcode = q.Id, true, q.Opcode, dns.RcodeRefused
	_ = w.WriteMsg(m)
}

// Listen binds addr (IP:port) over UDP and TCP. Every socket is bound
// before anything is served, so a port in use is reported here, naming
// the address and protocol.
//
// UDP gets one socket per core (at most 4) sharing the port through
// SO_REUSEPORT, so queries are read in parallel. A plain bind is tried
// first: a port that anyone holds, even with SO_REUSEPORT, is an error
// rather than silently shared.
func Listen(ctx context.Context, addr string) (*Server, error) {
	s, err := listen(ctx, addr)
	// Port 0: the UDP port the kernel picked may be taken for TCP; pick again.
	for i := 0; i < 10 && err != nil && errors.Is(err, syscall.EADDRINUSE) && strings.HasSuffix(addr, ":0"); i++ {
		s, err = listen(ctx, addr)
	}
	return s, err
}

func listen(ctx context.Context, addr string) (*Server, error) {
	var plain net.ListenConfig
	first, err := plain.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for dns on udp %s: %w", addr, err)
	}
	// With port 0 the rest take the port the first got.
	bound := first.LocalAddr().String()
	tcp, err := plain.Listen(ctx, "tcp", bound)
	if err != nil {
		first.Close()
		return nil, fmt.Errorf("listen for dns on tcp %s: %w", bound, err)
	}
	first.Close()
	s := &Server{tcp: tcp, addr: bound}
	reuse := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	n := min(runtime.GOMAXPROCS(0), 4)
	for range n {
		pc, err := reuse.ListenPacket(ctx, "udp", bound)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("listen for dns on udp %s: %w", bound, err)
		}
		s.udp = append(s.udp, pc)
	}
	return s, nil
}

// Addr is the IP:port the server listens on.
func (s *Server) Addr() string { return s.addr }

// Close releases the sockets of a server that was never served.
func (s *Server) Close() error {
	errs := []error{s.tcp.Close()}
	for _, pc := range s.udp {
		errs = append(errs, pc.Close())
	}
	return errors.Join(errs...)
}

// WireHandler answers some queries straight from their wire form; see
// Resolver.ServeWire.
type WireHandler interface {
	ServeWire(dst, packet []byte, udp bool) ([]byte, bool)
}

// Serve answers queries with h until ctx is done, then shuts down and
// waits for the queries in flight. It closes the sockets.
//
// When h is a WireHandler and the address is not a wildcard, UDP is read
// by hostd's own loop: cache hits are answered inline from the wire form,
// everything else is unpacked and handed to h in its own goroutine. A
// wildcard address needs each reply sent from the address the query came
// to (IP_PKTINFO), which miekg/dns's server does, so it serves UDP there.
func (s *Server) Serve(ctx context.Context, h dns.Handler) error {
	wh, fast := h.(WireHandler)
	h = accessHandler{s: s, h: h}
	servers := []*dns.Server{
		{Listener: s.tcp, Handler: h, ReadTimeout: 5 * time.Second, IdleTimeout: func() time.Duration { return 10 * time.Second }},
	}
	if ap, err := netip.ParseAddrPort(s.addr); err != nil || ap.Addr().IsUnspecified() {
		fast = false
	}
	var loops []*net.UDPConn
	for _, pc := range s.udp {
		if uc, ok := pc.(*net.UDPConn); ok && fast {
			loops = append(loops, uc)
			continue
		}
		servers = append(servers, &dns.Server{PacketConn: pc, Handler: h, UDPSize: serverUDPSize})
	}
	errc := make(chan error, len(servers)+len(loops))
	var wg, started, inflight sync.WaitGroup
	for _, srv := range servers {
		wg.Add(1)
		started.Add(1)
		once := sync.OnceFunc(started.Done)
		srv.NotifyStartedFunc = once
		go func() {
			defer wg.Done()
			err := srv.ActivateAndServe()
			once() // it may fail before starting
			errc <- err
		}()
	}
	for _, uc := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.serveUDP(uc, h, wh, &inflight); err != nil {
				errc <- err
			}
		}()
	}
	// Shutdown of a server that has not started yet is a no-op, so wait
	// until all started or failed.
	started.Wait()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("serve dns on %s: %w", s.addr, err)
	}
	for _, uc := range loops {
		uc.Close() // ends its loop
	}
	for _, srv := range servers {
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		// Shutdown fails for a server that already stopped; nothing to do then.
		_ = srv.ShutdownContext(shutCtx)
		cancel()
	}
	wg.Wait()
	inflight.Wait()
	s.Close()
	return err
}

// udpBatch is how many packets one system call reads or writes
// (recvmmsg/sendmmsg).
const udpBatch = 32

// batchConn reads and writes packets in batches.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// serveUDP reads queries from uc until it is closed: up to udpBatch
// packets per read; queries from clients not allowed are answered
// REFUSED, cache hits are answered inline and their answers sent
// together, everything else is unpacked and handed to h in its own
// goroutine.
func (s *Server) serveUDP(uc *net.UDPConn, h dns.Handler, wh WireHandler, inflight *sync.WaitGroup) error {
	var bc batchConn = ipv4.NewPacketConn(uc)
	if la, ok := uc.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() == nil {
		bc = ipv6.NewPacketConn(uc)
	}
	// Queries are small; a larger one is cut short (MSG_TRUNC) and dropped.
	const maxQuery = 4096
	in := make([]ipv4.Message, udpBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, maxQuery)}
	}
	bufs := make([][]byte, udpBatch)
	for i := range bufs {
		bufs[i] = make([]byte, 0, 1500)
	}
	out := make([]ipv4.Message, 0, udpBatch)
	for {
		n, err := bc.ReadBatch(in, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("read udp: %w", err)
		}
		out = out[:0]
		for i := range in[:n] {
			m := &in[i]
			if m.Flags&unix.MSG_TRUNC != 0 || m.Addr == nil {
				continue
			}
			pkt := m.Buffers[0][:m.N]
			if len(pkt) < 12 || pkt[2]&0x80 != 0 {
				continue // not a query: never answer responses (no loops)
			}
			if !s.allowedAddr(m.Addr) {
				out = append(out, ipv4.Message{Buffers: [][]byte{refused(pkt)}, Addr: m.Addr})
				continue
			}
			if resp, ok := wh.ServeWire(bufs[len(out)][:0], pkt, true); ok {
				bufs[len(out)] = resp[:0]
				out = append(out, ipv4.Message{Buffers: [][]byte{resp}, Addr: m.Addr})
				continue
			}
			q := new(dns.Msg)
			if err := q.Unpack(pkt); err != nil { // copies what it keeps
				if resp := formErr(pkt); resp != nil {
					out = append(out, ipv4.Message{Buffers: [][]byte{resp}, Addr: m.Addr})
				}
				continue
			}
			to, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				h.ServeDNS(&udpWriter{conn: uc, to: to.AddrPort()}, q)
			}()
		}
		// A failed send is the client's loss, as with any UDP answer.
		for len(out) > 0 {
			sent, err := bc.WriteBatch(out, 0)
			if err != nil || sent == 0 {
				break
			}
			out = out[sent:]
		}
	}
}

// formErr is the FORMERR answer to a packet that does not unpack, or nil
// when it is not even a query header.
func formErr(p []byte) []byte { return headerOnly(p, dns.RcodeFormatError) }

// headerOnly is an answer to query packet p made of a header alone: p's
// ID and opcode, QR set, rcode, every count zero. It is nil when p is not
// even a query header.
func headerOnly(p []byte, rcode int) []byte {
	if len(p) < 12 || p[2]&0x80 != 0 {
		return nil
	}
	resp := make([]byte, 12)
	copy(resp, p[:2])
	resp[2] = 0x80 | p[2]&0x78 // QR, opcode
	resp[3] = byte(rcode)
	return resp
}

// udpWriter is the dns.ResponseWriter of one query read by serveUDP.
type udpWriter struct {
	conn *net.UDPConn
	to   netip.AddrPort
}

func (w *udpWriter) LocalAddr() net.Addr  { return w.conn.LocalAddr() }
func (w *udpWriter) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(w.to) }
func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
func (w *udpWriter) Write(b []byte) (int, error) { return w.conn.WriteToUDPAddrPort(b, w.to) }
func (w *udpWriter) Close() error                { return nil }
func (w *udpWriter) TsigStatus() error           { return nil }
func (w *udpWriter) TsigTimersOnly(bool)         {}
func (w *udpWriter) Hijack()                     {}
