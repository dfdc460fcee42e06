package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/xtls/xray-core/app/dispatcher"
	"github.com/xtls/xray-core/app/policy"
	"github.com/xtls/xray-core/app/proxyman"
	"github.com/xtls/xray-core/app/router"
	"github.com/xtls/xray-core/app/stats"
	xnet "github.com/xtls/xray-core/common/net"
	"github.com/xtls/xray-core/common/protocol"
	"github.com/xtls/xray-core/common/serial"
	"github.com/xtls/xray-core/core"
	"github.com/xtls/xray-core/proxy/freedom"
	xhttp "github.com/xtls/xray-core/proxy/http"
	"github.com/xtls/xray-core/proxy/socks"
	"github.com/xtls/xray-core/proxy/vless"
	"github.com/xtls/xray-core/proxy/vless/outbound"
	"github.com/xtls/xray-core/transport/internet"
	"github.com/xtls/xray-core/transport/internet/reality"
	"github.com/xtls/xray-core/transport/internet/tcp"

	// Feature registrations: the dispatcher and the inbound/outbound managers
	// are mandatory for core.New; taggedimpl breaks an import cycle in xray's
	// internet package. Nothing else is linked in, which keeps the binary small.
	_ "github.com/xtls/xray-core/app/proxyman/inbound"
	_ "github.com/xtls/xray-core/app/proxyman/outbound"
	_ "github.com/xtls/xray-core/transport/internet/tagged/taggedimpl"
)

// Handler tags inside the xray instance. They name the inbounds and
// outbounds in metrics and status.
const (
	tagSOCKS  = "socks"
	tagHTTP   = "http"
	tagProbe  = "probe" // pseudo-inbound of the health probe, routed to tagProxy
	tagProxy  = "proxy"
	tagDirect = "direct"
)

// privateRanges always go direct: loopback, RFC 1918, CGNAT, link-local and
// their IPv6 counterparts. This replaces geoip:private without a geoip file.
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
}

// settings is the proxy configuration with every secret resolved: what the
// xray instance is built from. It is never logged or shown.
type settings struct {
	SocksListen   string // host:port, "" disables the SOCKS5 inbound
	SocksUDP      bool
	HTTPListen    string // host:port, "" disables the HTTP inbound
	Username      string // "" means no authentication
	Password      string
	Server        endpoint
	BypassDomains []string
	BypassCIDRs   []netip.Prefix
}

// endpoint is the resolved VLESS+REALITY server.
type endpoint struct {
	Address     string
	Port        uint16
	UserID      string
	PublicKey   []byte // 32-byte x25519 public key
	ShortID     []byte // up to 8 bytes
	ServerName  string
	Fingerprint string
	SpiderX     string
	Flow        string
}

// hostPort is the server as shown in status: never a secret beyond what any
// observer of the network sees.
func (e endpoint) hostPort() string {
	return net.JoinHostPort(e.Address, strconv.Itoa(int(e.Port)))
}

// xrayConfig builds the typed xray configuration: SOCKS5 and HTTP inbounds,
// a VLESS+REALITY outbound over TCP, a direct outbound, routing that keeps
// private destinations and the bypass lists direct, and traffic statistics
// for every inbound and outbound.
func xrayConfig(s settings) (*core.Config, error) {
	var inbounds []*core.InboundHandlerConfig
	accounts := map[string]string(nil)
	if s.Username != "" {
		if s.Password == "" {
			return nil, errors.New("auth.password is empty")
		}
		accounts = map[string]string{s.Username: s.Password}
	}
	if accounts == nil {
		for _, l := range []string{s.SocksListen, s.HTTPListen} {
			if ap, err := netip.ParseAddrPort(l); err == nil && !ap.Addr().IsLoopback() {
				return nil, fmt.Errorf("listen %s: not a loopback address, and auth is not set: hostd is never an open proxy", l)
			}
		}
	}
	if s.SocksListen != "" {
		rc, err := receiver(s.SocksListen)
		if err != nil {
			return nil, fmt.Errorf("socks listen: %w", err)
		}
		sc := &socks.ServerConfig{UdpEnabled: s.SocksUDP}
		if accounts != nil {
			sc.AuthType = socks.AuthType_PASSWORD
			sc.Accounts = accounts
		}
		inbounds = append(inbounds, &core.InboundHandlerConfig{
			Tag:              tagSOCKS,
			ReceiverSettings: serial.ToTypedMessage(rc),
			ProxySettings:    serial.ToTypedMessage(sc),
		})
	}
	if s.HTTPListen != "" {
		rc, err := receiver(s.HTTPListen)
		if err != nil {
			return nil, fmt.Errorf("http listen: %w", err)
		}
		inbounds = append(inbounds, &core.InboundHandlerConfig{
			Tag:              tagHTTP,
			ReceiverSettings: serial.ToTypedMessage(rc),
			ProxySettings:    serial.ToTypedMessage(&xhttp.ServerConfig{Accounts: accounts}),
		})
	}

	srv := s.Server
	if len(srv.PublicKey) != 32 {
		return nil, fmt.Errorf("server public key: want 32 bytes, got %d", len(srv.PublicKey))
	}
	if len(srv.ShortID) > 8 {
		return nil, fmt.Errorf("server short id: want at most 8 bytes, got %d", len(srv.ShortID))
	}
	shortID := make([]byte, 8)
	copy(shortID, srv.ShortID)
	spiderX, spiderY, err := spider(srv.SpiderX)
	if err != nil {
		return nil, err
	}
	proxyOut := &core.OutboundHandlerConfig{
		Tag: tagProxy,
		SenderSettings: serial.ToTypedMessage(&proxyman.SenderConfig{
			StreamSettings: &internet.StreamConfig{
				ProtocolName: "tcp",
				TransportSettings: []*internet.TransportConfig{{
					ProtocolName: "tcp",
					Settings:     serial.ToTypedMessage(&tcp.Config{}),
				}},
				SecurityType: serial.GetMessageType(&reality.Config{}),
				SecuritySettings: []*serial.TypedMessage{serial.ToTypedMessage(&reality.Config{
					Fingerprint: srv.Fingerprint,
					ServerName:  srv.ServerName,
					PublicKey:   srv.PublicKey,
					ShortId:     shortID,
					SpiderX:     spiderX,
					SpiderY:     spiderY,
				})},
			},
		}),
		ProxySettings: serial.ToTypedMessage(&outbound.Config{
			Vnext: &protocol.ServerEndpoint{
				Address: xnet.NewIPOrDomain(xnet.ParseAddress(srv.Address)),
				Port:    uint32(srv.Port),
				User: &protocol.User{
					Account: serial.ToTypedMessage(&vless.Account{
						Id:         srv.UserID,
						Flow:       srv.Flow,
						Encryption: "none",
					}),
				},
			},
		}),
	}
	directOut := &core.OutboundHandlerConfig{
		Tag:           tagDirect,
		ProxySettings: serial.ToTypedMessage(&freedom.Config{}),
	}

	cidrs := make([]*router.CIDR, 0, len(privateRanges)+len(s.BypassCIDRs))
	for _, p := range append(append([]netip.Prefix(nil), privateRanges...), s.BypassCIDRs...) {
		p = p.Masked()
		cidrs = append(cidrs, &router.CIDR{Ip: p.Addr().AsSlice(), Prefix: uint32(p.Bits())})
	}
	domains := []*router.Domain{{Type: router.Domain_Domain, Value: "localhost"}}
	for _, d := range s.BypassDomains {
		domains = append(domains, &router.Domain{Type: router.Domain_Domain, Value: d})
	}
	rules := []*router.RoutingRule{
		// The health probe always measures the server, whatever the bypass lists say.
		{InboundTag: []string{tagProbe}, TargetTag: &router.RoutingRule_Tag{Tag: tagProxy}},
		{Domain: domains, TargetTag: &router.RoutingRule_Tag{Tag: tagDirect}},
		{Geoip: []*router.GeoIP{{Cidr: cidrs}}, TargetTag: &router.RoutingRule_Tag{Tag: tagDirect}},
	}

	on := &policy.SystemPolicy_Stats{InboundUplink: true, InboundDownlink: true, OutboundUplink: true, OutboundDownlink: true}
	return &core.Config{
		App: []*serial.TypedMessage{
			serial.ToTypedMessage(&dispatcher.Config{}),
			serial.ToTypedMessage(&proxyman.InboundConfig{}),
			serial.ToTypedMessage(&proxyman.OutboundConfig{}),
			serial.ToTypedMessage(&stats.Config{}),
			serial.ToTypedMessage(&policy.Config{System: &policy.SystemPolicy{Stats: on}}),
			serial.ToTypedMessage(&router.Config{DomainStrategy: router.Config_AsIs, Rule: rules}),
		},
		Inbound: inbounds,
		// The first outbound is the default route: everything not matched
		// above goes through the server.
		Outbound: []*core.OutboundHandlerConfig{proxyOut, directOut},
	}, nil
}

// receiver is the listening side of an inbound.
func receiver(listen string) (*proxyman.ReceiverConfig, error) {
	ap, err := netip.ParseAddrPort(listen)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", listen, err)
	}
	return &proxyman.ReceiverConfig{
		PortList: &xnet.PortList{Range: []*xnet.PortRange{xnet.SinglePortRange(xnet.Port(ap.Port()))}},
		Listen:   xnet.NewIPOrDomain(xnet.IPAddress(ap.Addr().AsSlice())),
		// hostd's own TCP transport: no SO_REUSEPORT (listen.go).
		StreamSettings: &internet.StreamConfig{
			ProtocolName: transportExclusive,
			TransportSettings: []*internet.TransportConfig{{
				ProtocolName: transportExclusive,
				Settings:     serial.ToTypedMessage(&tcp.Config{}),
			}},
		},
	}, nil
}

// spider splits a REALITY spiderX value ("/path?p=..&c=..") into the path
// the client crawls when the server does not authenticate it and the ten
// SpiderY parameters (padding, concurrency, times, interval, return; each a
// min-max pair), the way xray's own configuration loader does.
func spider(spiderX string) (string, []int64, error) {
	if spiderX == "" {
		spiderX = "/"
	}
	if spiderX[0] != '/' {
		return "", nil, fmt.Errorf("spider_x %q: must start with /", spiderX)
	}
	u, err := url.Parse(spiderX)
	if err != nil {
		return "", nil, fmt.Errorf("spider_x %q: %w", spiderX, err)
	}
	q := u.Query()
	y := make([]int64, 10)
	for i, param := range []string{"p", "c", "t", "i", "r"} {
		v := q.Get(param)
		q.Del(param)
		if v == "" {
			continue
		}
		lo, hi, found := strings.Cut(v, "-")
		if !found {
			hi = lo
		}
		a, err1 := strconv.ParseInt(lo, 10, 64)
		b, err2 := strconv.ParseInt(hi, 10, 64)
		if err1 != nil || err2 != nil || a < 0 || b < a {
			return "", nil, fmt.Errorf("spider_x %q: parameter %s=%q is not N or N-M", spiderX, param, v)
		}
		y[2*i], y[2*i+1] = a, b
	}
	u.RawQuery = q.Encode()
	return u.String(), y, nil
}
