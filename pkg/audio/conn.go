package audio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jfreymuth/pulse/proto"

	"github.com/hostd/hostd/internal/safefile"
)

// cookieLimit caps the pulse cookie file read: a cookie is 256 bytes.
const cookieLimit = 256

// ErrNotConnected is returned by controls while the server is away.
var ErrNotConnected = errors.New("not connected to the audio server")

// conn is one connection to a pulse server. Requests may be made from any
// goroutine. Server events are not handed over one by one: the read
// goroutine (the pulse callback) only records which kinds of objects
// changed and signals changed, so a burst of events costs one refresh.
type conn struct {
	client *proto.Client
	nc     net.Conn
	// timeout bounds the connect, each request and each write (audio.timeout).
	timeout time.Duration

	// changed has room for one signal; pending holds the event bits.
	changed chan struct{}
	pending atomic.Uint32
	// closed is closed once the connection is gone, with err set.
	closed    chan struct{}
	closeOnce sync.Once
	err       error
}

// Event bits recorded by the callback.
const (
	evDeviceSet uint32 = 1 << iota // a sink, source or card came or went
	evChange                       // something changed
)

// dialAddress parses a pulse server address ("unix:/path", "/path",
// "tcp:host:port", "tcp4:…", "tcp6:…") into a network and address.
func dialAddress(addr string) (network, address string, err error) {
	addr = strings.TrimSpace(addr)
	// A server string may list alternatives; hostd takes the first.
	if f := strings.Fields(addr); len(f) > 0 {
		addr = f[0]
	}
	if strings.HasPrefix(addr, "{") {
		if i := strings.IndexByte(addr, '}'); i >= 0 {
			addr = addr[i+1:]
		}
	}
	switch {
	case strings.HasPrefix(addr, "/"):
		return "unix", addr, nil
	case strings.HasPrefix(addr, "unix:"):
		return "unix", strings.TrimPrefix(addr, "unix:"), nil
	case strings.HasPrefix(addr, "tcp4:"):
		return "tcp4", withPort(strings.TrimPrefix(addr, "tcp4:")), nil
	case strings.HasPrefix(addr, "tcp6:"):
		return "tcp6", withPort(strings.TrimPrefix(addr, "tcp6:")), nil
	case strings.HasPrefix(addr, "tcp:"):
		return "tcp", withPort(strings.TrimPrefix(addr, "tcp:")), nil
	}
	return "", "", fmt.Errorf("invalid server address %q: want unix:/path, /path or tcp:host:port", addr)
}

// withPort adds pulse's default port 4713 when none is given.
func withPort(hostport string) string {
	if _, _, err := net.SplitHostPort(hostport); err == nil {
		return hostport
	}
	return net.JoinHostPort(strings.Trim(hostport, "[]"), "4713")
}

// dial connects and authenticates. cookiePath may be empty; a missing cookie
// is replaced by zeros, which PipeWire's pulse server accepts.
//
// timeout bounds the connect and, on the connection, every request and
// every write: a server that accepts and never answers (or never reads)
// costs at most timeout per call, never a hang.
func dial(ctx context.Context, addr, cookiePath string, timeout time.Duration) (*conn, error) {
	network, address, err := dialAddress(addr)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	c := &conn{
		nc:      nc,
		timeout: timeout,
		changed: make(chan struct{}, 1),
		closed:  make(chan struct{}),
	}
	c.client = &proto.Client{}
	c.client.SetTimeout(timeout)
	// The callback must always be set: the library calls it when the
	// connection ends and panics on a nil one.
	c.client.Callback = c.callback
	c.client.Open(watchedConn{nc, c})

	cookie := make([]byte, 256)
	if cookiePath != "" {
		// Anything but a regular file of 256 bytes is no cookie.
		if b, err := safefile.Read(cookiePath, cookieLimit); err == nil && len(b) == 256 {
			cookie = b
		}
	}
	var auth proto.AuthReply
	if err := c.request(ctx, &proto.Auth{Version: c.client.Version(), Cookie: cookie}, &auth); err != nil {
		c.close(err)
		return nil, fmt.Errorf("authenticate to %s: %w", addr, err)
	}
	c.client.SetVersion(auth.Version)
	props := proto.PropList{
		"application.name":           proto.PropListString("hostd"),
		"application.process.binary": proto.PropListString("hostd"),
		"application.id":             proto.PropListString("org.hostd.audio"),
	}
	if err := c.request(ctx, &proto.SetClientName{Props: props}, &proto.SetClientNameReply{}); err != nil {
		c.close(err)
		return nil, fmt.Errorf("register client with %s: %w", addr, err)
	}
	return c, nil
}

// watchedConn closes the conn's closed channel when reading fails, whatever
// the error: the library itself only reports a clean EOF.
type watchedConn struct {
	net.Conn
	c *conn
}

// Write has a deadline: a server that stops reading fills the socket
// buffer, and a write without one would block every request after it.
func (w watchedConn) Write(p []byte) (int, error) {
	if err := w.Conn.SetWriteDeadline(time.Now().Add(w.c.timeout)); err != nil {
		return 0, err
	}
	n, err := w.Conn.Write(p)
	if err != nil {
		w.c.close(fmt.Errorf("write to server: %w", err))
	}
	return n, err
}

func (w watchedConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if err != nil {
		w.c.markClosed(fmt.Errorf("connection lost: %w", err))
	}
	return n, err
}

// callback runs on the library's read goroutine: it must not block.
func (c *conn) callback(msg any) {
	switch m := msg.(type) {
	case *proto.SubscribeEvent:
		bits := evChange
		fac := m.Event.GetFacility()
		if t := m.Event.GetType(); t == proto.EventNew || t == proto.EventRemove {
			if fac == proto.EventSink || fac == proto.EventSource || fac == proto.EventCard {
				bits |= evDeviceSet
			}
		}
		c.pending.Or(bits)
		select {
		case c.changed <- struct{}{}:
		default:
		}
	case *proto.ConnectionClosed:
		c.markClosed(errors.New("server closed the connection"))
	}
}

func (c *conn) markClosed(err error) {
	c.closeOnce.Do(func() {
		c.err = err
		close(c.closed)
	})
}

// close ends the connection.
func (c *conn) close(err error) {
	c.markClosed(err)
	c.nc.Close()
}

// takeEvents returns and clears the event bits recorded so far.
func (c *conn) takeEvents() uint32 { return c.pending.Swap(0) }

// request makes one request; it fails fast when ctx is done or the
// connection is gone.
func (c *conn) request(ctx context.Context, req proto.RequestArgs, reply proto.Reply) error {
	select {
	case <-c.closed:
		return fmt.Errorf("%w: %v", ErrNotConnected, c.err)
	default:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := c.client.Request(req, reply)
	if errors.Is(err, context.DeadlineExceeded) {
		// The library's own deadline: the server did not answer. The
		// connection is dropped; a reply arriving later has nobody to go to.
		err = fmt.Errorf("no answer within %s (audio.timeout): %w", c.timeout, err)
		c.close(err)
	}
	return err
}

// snapshot reads the server info, sinks, sources and cards.
func (c *conn) snapshot(ctx context.Context) (*Status, error) {
	var info proto.GetServerInfoReply
	if err := c.request(ctx, &proto.GetServerInfo{}, &info); err != nil {
		return nil, fmt.Errorf("get server info: %w", err)
	}
	var sinks proto.GetSinkInfoListReply
	if err := c.request(ctx, &proto.GetSinkInfoList{}, &sinks); err != nil {
		return nil, fmt.Errorf("list sinks: %w", err)
	}
	var sources proto.GetSourceInfoListReply
	if err := c.request(ctx, &proto.GetSourceInfoList{}, &sources); err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	var cards proto.GetCardInfoListReply
	if err := c.request(ctx, &proto.GetCardInfoList{}, &cards); err != nil {
		return nil, fmt.Errorf("list cards: %w", err)
	}
	st := &Status{
		Connected:     true,
		Server:        info.PackageName,
		ServerVersion: info.PackageVersion,
		DefaultSink:   resolvedName(info.DefaultSinkName),
		DefaultSource: resolvedName(info.DefaultSourceName),
		SampleRate:    info.DefaultSampleSpec.Rate,
		Sinks:         make([]Device, 0, len(sinks)),
		Sources:       make([]Device, 0, len(sources)),
		Cards:         make([]Card, 0, len(cards)),
	}
	for _, s := range sinks {
		d := sinkDevice(s)
		d.Default = d.Name == st.DefaultSink
		st.Sinks = append(st.Sinks, d)
	}
	for _, s := range sources {
		d := sourceDevice(s)
		d.Default = d.Name == st.DefaultSource
		st.Sources = append(st.Sources, d)
	}
	for _, cd := range cards {
		st.Cards = append(st.Cards, card(cd))
	}
	return st, nil
}

// resolvedName maps the server's placeholders for "no default yet"
// (PipeWire answers "@DEFAULT_SINK@" and "@DEFAULT_SOURCE@") to "".
func resolvedName(name string) string {
	if strings.HasPrefix(name, "@DEFAULT_") && strings.HasSuffix(name, "@") {
		return ""
	}
	return name
}

// subscribe asks for events about devices, cards and server settings.
func (c *conn) subscribe(ctx context.Context) error {
	mask := proto.SubscriptionMaskSink | proto.SubscriptionMaskSource | proto.SubscriptionMaskCard | proto.SubscriptionMaskServer
	if err := c.request(ctx, &proto.Subscribe{Mask: mask}, nil); err != nil {
		return fmt.Errorf("subscribe to server events: %w", err)
	}
	return nil
}

func (c *conn) setVolume(ctx context.Context, kind Kind, index uint32, vols []uint32) error {
	var req proto.RequestArgs = &proto.SetSinkVolume{SinkIndex: index, ChannelVolumes: vols}
	if kind == KindSource {
		req = &proto.SetSourceVolume{SourceIndex: index, ChannelVolumes: vols}
	}
	return c.request(ctx, req, nil)
}

func (c *conn) setMute(ctx context.Context, kind Kind, index uint32, mute bool) error {
	var req proto.RequestArgs = &proto.SetSinkMute{SinkIndex: index, Mute: mute}
	if kind == KindSource {
		req = &proto.SetSourceMute{SourceIndex: index, Mute: mute}
	}
	return c.request(ctx, req, nil)
}

func (c *conn) setDefault(ctx context.Context, kind Kind, name string) error {
	var req proto.RequestArgs = &proto.SetDefaultSink{SinkName: name}
	if kind == KindSource {
		req = &proto.SetDefaultSource{SourceName: name}
	}
	return c.request(ctx, req, nil)
}

func (c *conn) setProfile(ctx context.Context, card uint32, profile string) error {
	return c.request(ctx, &proto.SetCardProfile{CardIndex: card, ProfileName: profile}, nil)
}
