package testenv

import (
	"net"
	"sync"
	"testing"
)

// StuckPeer is a server that accepts connections (stream sockets) or
// receives packets (datagram sockets) and never answers: the peer every
// deadline in hostd is there for.
type StuckPeer struct {
	// Addr is the address it listens on: a socket path for "unix", host:port
	// otherwise.
	Addr string

	mu       sync.Mutex
	accepted int
}

// Accepted is how many connections (or packets) it has taken so far.
func (p *StuckPeer) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

func (p *StuckPeer) took() {
	p.mu.Lock()
	p.accepted++
	p.mu.Unlock()
}

// NewStuckPeer listens on network ("unix", "tcp", "udp") at addr and
// holds every connection open without reading or writing; a datagram
// socket reads packets and answers none. Everything is closed when the
// test ends.
func NewStuckPeer(t testing.TB, network, addr string) *StuckPeer {
	t.Helper()
	p := &StuckPeer{}
	var wg sync.WaitGroup
	switch network {
	case "udp", "udp4", "udp6", "unixgram":
		pc, err := net.ListenPacket(network, addr)
		if err != nil {
			t.Fatalf("stuck peer: listen %s %s: %v", network, addr, err)
		}
		p.Addr = pc.LocalAddr().String()
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for {
				if _, _, err := pc.ReadFrom(buf); err != nil {
					return
				}
				p.took()
			}
		}()
		t.Cleanup(func() { pc.Close(); wg.Wait() })
	default:
		l, err := net.Listen(network, addr)
		if err != nil {
			t.Fatalf("stuck peer: listen %s %s: %v", network, addr, err)
		}
		p.Addr = l.Addr().String()
		var (
			mu    sync.Mutex
			conns []net.Conn
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				p.took()
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
		t.Cleanup(func() {
			l.Close()
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
		})
	}
	return p
}
