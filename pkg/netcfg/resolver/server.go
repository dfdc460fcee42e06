package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Server listens for DNS queries on one address over UDP and TCP.
type Server struct {
	udp  net.PacketConn
	tcp  net.Listener
	addr string
}

// Listen binds addr (IP:port) over UDP and TCP. Both sockets are bound
// before anything is served, so a port in use is reported here, naming
// the address and protocol.
func Listen(ctx context.Context, addr string) (*Server, error) {
	var lc net.ListenConfig
	udp, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for dns on udp %s: %w", addr, err)
	}
	// With port 0, TCP takes the port UDP got.
	tcpAddr := udp.LocalAddr().String()
	tcp, err := lc.Listen(ctx, "tcp", tcpAddr)
	if err != nil {
		udp.Close()
		return nil, fmt.Errorf("listen for dns on tcp %s: %w", tcpAddr, err)
	}
	return &Server{udp: udp, tcp: tcp, addr: tcpAddr}, nil
}

// Addr is the IP:port the server listens on.
func (s *Server) Addr() string { return s.addr }

// Close releases the sockets of a server that was never served.
func (s *Server) Close() error {
	return errors.Join(s.udp.Close(), s.tcp.Close())
}

// Serve answers queries with h until ctx is done, then shuts down and
// waits for the queries in flight. It closes the sockets.
func (s *Server) Serve(ctx context.Context, h dns.Handler) error {
	servers := []*dns.Server{
		{PacketConn: s.udp, Handler: h, UDPSize: serverUDPSize},
		{Listener: s.tcp, Handler: h, ReadTimeout: 5 * time.Second, IdleTimeout: func() time.Duration { return 10 * time.Second }},
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
