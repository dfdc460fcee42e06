package xraytest

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/testenv"

	goreality "github.com/xtls/reality"

	"github.com/xtls/xray-core/app/dispatcher"
	"github.com/xtls/xray-core/app/policy"
	"github.com/xtls/xray-core/app/proxyman"
	"github.com/xtls/xray-core/app/router"
	"github.com/xtls/xray-core/app/stats"
	xlog "github.com/xtls/xray-core/common/log"
	xnet "github.com/xtls/xray-core/common/net"
	"github.com/xtls/xray-core/common/protocol"
	"github.com/xtls/xray-core/common/serial"
	"github.com/xtls/xray-core/core"
	fstats "github.com/xtls/xray-core/features/stats"
	"github.com/xtls/xray-core/proxy/freedom"
	"github.com/xtls/xray-core/proxy/vless"
	"github.com/xtls/xray-core/proxy/vless/inbound"
	"github.com/xtls/xray-core/transport/internet"
	"github.com/xtls/xray-core/transport/internet/reality"
	"github.com/xtls/xray-core/transport/internet/tcp"

	_ "github.com/xtls/xray-core/app/proxyman/inbound"
	_ "github.com/xtls/xray-core/app/proxyman/outbound"
	_ "github.com/xtls/xray-core/transport/internet/tagged/taggedimpl"
)

// XrayServerName is the REALITY server name (SNI) the test server accepts.
const XrayServerName = "reality.hostd.test"

// XrayOptions tune StartXray.
type XrayOptions struct {
	// Hosts maps domain names to host:port destinations on this machine.
	// A client asking the server for such a name (any port) reaches the
	// mapped address: this lets a test send a request through the server
	// to a loopback service under a name the client does not treat as a
	// private address.
	Hosts map[string]string
}

// Xray is an in-process xray VLESS+REALITY server on loopback, the kind of
// server hostd's proxy connects to. Its REALITY target is an httptest TLS
// server, so nothing leaves the machine.
type Xray struct {
	Host       string // 127.0.0.1
	Port       uint16
	UserID     string // VLESS user UUID
	PublicKey  string // x25519 public key, base64 raw URL encoding (the client's "public_key")
	PrivateKey string // x25519 private key, same encoding
	ShortID    string // hex short id accepted by the server
	ServerName string // SNI accepted by the server

	counter func(name string) int64
	inst    *core.Instance
	target  *httptest.Server
}

// Addr is the server's host:port.
func (x *Xray) Addr() string { return net.JoinHostPort(x.Host, strconv.Itoa(int(x.Port))) }

// Link is a vless:// share link for the server, as a provider hands out.
func (x *Xray) Link() string {
	q := url.Values{}
	q.Set("security", "reality")
	q.Set("type", "tcp")
	q.Set("flow", vless.XRV)
	q.Set("sni", x.ServerName)
	q.Set("fp", "chrome")
	q.Set("pbk", x.PublicKey)
	q.Set("sid", x.ShortID)
	q.Set("encryption", "none")
	return (&url.URL{Scheme: "vless", User: url.User(x.UserID), Host: x.Addr(), RawQuery: q.Encode(), Fragment: "test"}).String()
}

// Traffic is the number of bytes the server's VLESS inbound received from
// clients (up) and sent back to them (down).
func (x *Xray) Traffic() (up, down int64) {
	return x.counter("inbound>>>vless>>>traffic>>>uplink"), x.counter("inbound>>>vless>>>traffic>>>downlink")
}

// StartXray starts the server on a free loopback port with fresh keys and
// stops it when the test ends.
func StartXray(t testing.TB, opts XrayOptions) *Xray {
	t.Helper()
	x, err := NewXray(opts)
	if err != nil {
		t.Fatalf("start xray server: %v", err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

// Close stops the server and its REALITY target.
func (x *Xray) Close() error {
	x.target.Close()
	return x.inst.Close()
}

// NewXray starts the server on a free loopback port with fresh keys, for
// benchmarks and tools outside tests. Close stops it.
func NewXray(opts XrayOptions) (_ *Xray, err error) {
	target := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, `<html><a href="/index.html">home</a></html>`)
	}))
	target.EnableHTTP2 = true
	// The REALITY server's probes of its target fail verification on
	// purpose (the test certificate is not for ServerName): keep quiet.
	target.Config.ErrorLog = log.New(io.Discard, "", 0)
	target.StartTLS()
	defer func() {
		if err != nil {
			target.Close()
		}
	}()

	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate x25519 key: %w", err)
	}
	sid := make([]byte, 8)
	uid := make([]byte, 16)
	rand.Read(sid)
	rand.Read(uid)
	uid[6] = uid[6]&0x0f | 0x40
	uid[8] = uid[8]&0x3f | 0x80
	x := &Xray{
		Host:       "127.0.0.1",
		UserID:     fmt.Sprintf("%x-%x-%x-%x-%x", uid[0:4], uid[4:6], uid[6:8], uid[8:10], uid[10:]),
		PublicKey:  base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()),
		PrivateKey: base64.RawURLEncoding.EncodeToString(priv.Bytes()),
		ShortID:    hex.EncodeToString(sid),
		ServerName: XrayServerName,
	}

	outbounds := []*core.OutboundHandlerConfig{{Tag: "direct", ProxySettings: serial.ToTypedMessage(&freedom.Config{})}}
	var rules []*router.RoutingRule
	i := 0
	for name, dest := range opts.Hosts {
		ap, err := netip.ParseAddrPort(dest)
		if err != nil {
			return nil, fmt.Errorf("xray hosts: %s: %w", name, err)
		}
		tag := fmt.Sprintf("host%d", i)
		i++
		outbounds = append(outbounds, &core.OutboundHandlerConfig{Tag: tag, ProxySettings: serial.ToTypedMessage(&freedom.Config{
			DestinationOverride: &freedom.DestinationOverride{Server: &protocol.ServerEndpoint{
				Address: xnet.NewIPOrDomain(xnet.IPAddress(ap.Addr().AsSlice())),
				Port:    uint32(ap.Port()),
			}},
		})})
		rules = append(rules, &router.RoutingRule{
			Domain:    []*router.Domain{{Type: router.Domain_Full, Value: name}},
			TargetTag: &router.RoutingRule_Tag{Tag: tag},
		})
	}

	// Keep xray's process-wide log sink quiet: only errors, on stderr.
	xlog.RegisterHandler(severityFilter{inner: xlog.NewLogger(xlog.CreateStderrLogWriter()), max: xlog.Severity_Error})

	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		port := uint16(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		cfg := &core.Config{
			App: []*serial.TypedMessage{
				serial.ToTypedMessage(&dispatcher.Config{}),
				serial.ToTypedMessage(&proxyman.InboundConfig{}),
				serial.ToTypedMessage(&proxyman.OutboundConfig{}),
				serial.ToTypedMessage(&stats.Config{}),
				serial.ToTypedMessage(&policy.Config{System: &policy.SystemPolicy{Stats: &policy.SystemPolicy_Stats{
					InboundUplink: true, InboundDownlink: true, OutboundUplink: true, OutboundDownlink: true,
				}}}),
				serial.ToTypedMessage(&router.Config{Rule: rules}),
			},
			Inbound: []*core.InboundHandlerConfig{{
				Tag: "vless",
				ReceiverSettings: serial.ToTypedMessage(&proxyman.ReceiverConfig{
					PortList: &xnet.PortList{Range: []*xnet.PortRange{xnet.SinglePortRange(xnet.Port(port))}},
					Listen:   xnet.NewIPOrDomain(xnet.LocalHostIP),
					StreamSettings: &internet.StreamConfig{
						ProtocolName: "tcp",
						TransportSettings: []*internet.TransportConfig{{
							ProtocolName: "tcp",
							Settings:     serial.ToTypedMessage(&tcp.Config{}),
						}},
						SecurityType: serial.GetMessageType(&reality.Config{}),
						SecuritySettings: []*serial.TypedMessage{serial.ToTypedMessage(&reality.Config{
							Dest:                  target.Listener.Addr().String(),
							Type:                  "tcp",
							ServerNames:           []string{x.ServerName},
							PrivateKey:            priv.Bytes(),
							ShortIds:              [][]byte{sid},
							LimitFallbackUpload:   &reality.LimitFallback{},
							LimitFallbackDownload: &reality.LimitFallback{},
						})},
					},
				}),
				ProxySettings: serial.ToTypedMessage(&inbound.Config{
					Decryption: "none",
					Clients: []*protocol.User{{
						Email:   "test@hostd.test",
						Account: serial.ToTypedMessage(&vless.Account{Id: x.UserID, Flow: vless.XRV}),
					}},
				}),
			}},
			Outbound: outbounds,
		}
		inst, err := core.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("xray server config: %w", err)
		}
		if err := inst.Start(); err != nil {
			inst.Close()
			lastErr = err
			continue // the port was taken between probing and binding
		}
		x.Port = port
		sm := inst.GetFeature(fstats.ManagerType()).(fstats.Manager)
		x.counter = func(name string) int64 {
			if c := sm.GetCounter(name); c != nil {
				return c.Value()
			}
			return 0
		}
		x.inst, x.target = inst, target
		// The REALITY listener first measures its target's handshake in
		// the background; connections accepted before that finishes are
		// held for 5s. Wait, so tests see the server's normal speed.
		err = testenv.Poll(context.Background(), 15*time.Second, func() error {
			for alpn := range 3 {
				key := target.Listener.Addr().String() + " " + x.ServerName + " " + strconv.Itoa(alpn)
				if v, ok := goreality.GlobalPostHandshakeRecordsLens.Load(key); !ok {
					return fmt.Errorf("REALITY target detection %q not started", key)
				} else if _, done := v.([]int); !done {
					return fmt.Errorf("REALITY target detection %q running", key)
				}
			}
			return nil
		})
		if err != nil {
			inst.Close()
			return nil, err
		}
		return x, nil
	}
	return nil, fmt.Errorf("start xray server: %w", lastErr)
}

// severityFilter drops xray log messages less severe than max.
type severityFilter struct {
	inner xlog.Handler
	max   xlog.Severity
}

func (f severityFilter) Handle(msg xlog.Message) {
	if m, ok := msg.(*xlog.GeneralMessage); ok && m.Severity <= f.max {
		f.inner.Handle(msg)
	}
}
