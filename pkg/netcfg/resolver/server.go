package resolver

import (
	"runtime"
	"strings"
	"syscall"

	"context"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Server listens for DNS queries on one address over UDP and TCP.
type Server struct {
	udp  []net.PacketConn // one per core, sharing the port (SO_REUSEPORT)
	tcp  net.Listener
	addr string
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

// Serve answers queries with h until ctx is done, then shuts down and
// waits for the queries in flight. It closes the sockets.
func (s *Server) Serve(ctx context.Context, h dns.Handler) error {
	servers := []*dns.Server{
		{Listener: s.tcp, Handler: h, ReadTimeout: 5 * time.Second, IdleTimeout: func() time.Duration { return 10 * time.Second }},
	}
	for _, pc := range s.udp {
		servers = append(servers, &dns.Server{PacketConn: pc, Handler: h, UDPSize: serverUDPSize})
	}
	errc := make(chan error, len(servers))
	var wg, started sync.WaitGroup
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
	// Shutdown of a server that has not started yet is a no-op, so wait
	// until both started or failed.
	started.Wait()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("serve dns on %s: %w", s.addr, err)
	}
	for _, srv := range servers {
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		// Shutdown fails for a server that already stopped; nothing to do then.
		_ = srv.ShutdownContext(shutCtx)
		cancel()
	}
	wg.Wait()
	s.Close()
	return err
}
