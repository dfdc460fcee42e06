package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/xtls/xray-core/common"
	xnet "github.com/xtls/xray-core/common/net"
	"github.com/xtls/xray-core/transport/internet"
	"github.com/xtls/xray-core/transport/internet/stat"
)

// transportExclusive is the transport of hostd's inbounds: plain TCP like
// xray's "tcp", but listening without SO_REUSEPORT. xray-core sets
// SO_REUSEPORT on every listener it opens, which lets any other socket of
// the same user bound with SO_REUSEPORT (a second hostd, a stray program)
// share the port and silently take part of the connections. Without it a
// clash fails the start with "address in use".
const transportExclusive = "hostd-exclusive-tcp"

// xray-core's transport registry is filled at init time by every
// transport package; this registers hostd's own the same way.
func init() {
	common.Must(internet.RegisterTransportListener(transportExclusive, listenExclusive))
}

// listenExclusive is an internet.ListenFunc: it listens on address:port
// with the standard library's defaults (SO_REUSEADDR, no SO_REUSEPORT) and
// hands each accepted connection to handler until the listener is closed.
func listenExclusive(ctx context.Context, address xnet.Address, port xnet.Port, _ *internet.MemoryStreamConfig, handler internet.ConnHandler) (internet.Listener, error) {
	if !address.Family().IsIP() {
		return nil, fmt.Errorf("listen %s: not an IP address", address)
	}
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(address.IP().String(), strconv.Itoa(int(port))))
	if err != nil {
		return nil, err
	}
	go acceptLoop(ln, handler)
	return ln, nil
}

// acceptLoop accepts until ln is closed. Errors such as running out of
// file descriptors are retried after a pause that grows to a second, as
// net/http does.
func acceptLoop(ln net.Listener, handler internet.ConnHandler) {
	var pause time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			time.Sleep(pause)
			continue
		}
		pause = 0
		handler(stat.Connection(c)) // xray's handler starts its own goroutine
	}
}

// inboundListen is one listen option of the proxy section.
type inboundListen struct {
	option string // "proxy.socks.listen"
	addr   string // host:port
	udp    bool   // the inbound also listens on UDP (SOCKS5 UDP ASSOCIATE)
}

func inboundListens(set settings) []inboundListen {
	var out []inboundListen
	if set.SocksListen != "" {
		out = append(out, inboundListen{"proxy.socks.listen", set.SocksListen, set.SocksUDP})
	}
	if set.HTTPListen != "" {
		out = append(out, inboundListen{"proxy.http.listen", set.HTTPListen, false})
	}
	return out
}

// errAddrInUse names the option whose address is taken.
func errAddrInUse(l inboundListen, network string) error {
	what := ""
	if network == "udp" {
		what = " (udp)"
	}
	return fmt.Errorf("%s %s%s: address in use: %w", l.option, l.addr, what, syscall.EADDRINUSE)
}

// checkUDPFree binds and closes the UDP side of each inbound that has one,
// without SO_REUSEPORT: xray-core opens that socket itself, with
// SO_REUSEPORT, so a socket already there would otherwise be joined
// silently instead of failing the start.
func checkUDPFree(set settings) error {
	for _, l := range inboundListens(set) {
		if !l.udp {
			continue
		}
		pc, err := net.ListenPacket("udp", l.addr)
		if errors.Is(err, syscall.EADDRINUSE) {
			return errAddrInUse(l, "udp")
		}
		if err != nil {
			return fmt.Errorf("%s %s (udp): %w", l.option, l.addr, err)
		}
		pc.Close()
	}
	return nil
}
