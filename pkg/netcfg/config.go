package netcfg

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"gopkg.in/yaml.v3"

	"github.com/hostd/hostd/internal/confkit"
	"github.com/hostd/hostd/pkg/netcfg/netwatch"
	"github.com/hostd/hostd/pkg/netcfg/resolver"
)

// Config is the "netcfg" section of hostd's config file.
type Config struct {
	// Enable turns the service on. Default: true (watching the network
	// needs nothing outside hostd).
	Enable bool `yaml:"enable"`
	// NetNS is the name of a network namespace (/run/netns/NAME) to watch
	// and configure instead of hostd's own. Default: "" (hostd's own).
	NetNS string `yaml:"netns"`
	// ProbeURL is fetched to confirm that the default route reaches the
	// network: online needs a 2xx or 3xx answer. Default: "" (a usable
	// default route alone means online).
	ProbeURL string `yaml:"probe_url"`
	// ProbeInterval is the time between probes; a probe also runs when the
	// default route changes. Default: 5m.
	ProbeInterval time.Duration `yaml:"probe_interval"`
	// ProbeTimeout bounds one probe. Default: 10s.
	ProbeTimeout time.Duration `yaml:"probe_timeout"`
	// Links are declared states of named links (static addresses, routes,
	// MTU, up/down), applied at start and whenever something changes
	// them. Default: none.
	Links []netwatch.LinkSpec `yaml:"links"`
	// DNS is the caching resolver.
	DNS DNSConfig `yaml:"dns"`
	// DHCP is what links with `dhcp: v4` send and accept.
	DHCP DHCPConfig `yaml:"dhcp"`
}

// DNSConfig is the "netcfg.dns" section.
type DNSConfig struct {
	// Enable turns the resolver on. Default: false.
	Enable bool `yaml:"enable"`
	// Listen is the IP:port served over UDP and TCP. Default: ""
	// meaning 127.0.0.53:53 when hostd runs as root and that port is
	// free, else 127.0.0.1:5353.
	Listen string `yaml:"listen"`
	// AllowFrom lists the networks (CIDRs such as "192.168.1.0/24", or
	// single addresses) whose queries are answered, besides loopback
	// clients, which always are; queries from anywhere else get REFUSED.
	// Required when Listen is not a loopback address (an open resolver is
	// abused to amplify attacks). Default: [] (loopback clients only).
	AllowFrom []string `yaml:"allow_from"`
	// Upstreams are the servers queries are forwarded to, in order of
	// preference: "1.1.1.1", "tcp://9.9.9.9", "tls://1.1.1.1@cloudflare-dns.com",
	// or a mapping {address, protocol, server_name, ca_file}. Required.
	Upstreams []Upstream `yaml:"upstreams"`
	// Domains routes names under a domain to their own upstreams (split
	// DNS): {"corp.example": ["10.0.0.53"]}. Default: none.
	Domains map[string][]Upstream `yaml:"domains"`
	// HostsFile is answered from before anything else; "" turns it off.
	// Default: /etc/hosts.
	HostsFile string `yaml:"hosts_file"`
	// CacheSize is the number of answers kept; 0 turns the cache off.
	// Default: 10000.
	CacheSize int `yaml:"cache_size"`
	// MaxTTL caps how long an answer is kept, whatever its TTL. Default: 24h.
	MaxTTL time.Duration `yaml:"max_ttl"`
	// NegativeTTL is how long NXDOMAIN and empty answers are kept when they
	// carry no SOA, and the cap for those that do. Default: 5m.
	NegativeTTL time.Duration `yaml:"negative_ttl"`
	// Timeout bounds one attempt at one upstream. Default: 2s.
	Timeout time.Duration `yaml:"timeout"`
	// ManageResolvConf points ResolvConf at the resolver while hostd runs
	// (written atomically; the original is kept in the state dir and put
	// back on stop, or at the next start after a crash). Needs Listen on
	// port 53. Default: false.
	ManageResolvConf bool `yaml:"manage_resolv_conf"`
	// ResolvConf is the file ManageResolvConf writes. Default: /etc/resolv.conf.
	ResolvConf string `yaml:"resolv_conf"`
}

// Upstream is a DNS upstream in the config: a string in short form or a
// mapping (see resolver.ParseUpstream and resolver.Upstream).
type Upstream resolver.Upstream

// UnmarshalConfig implements confkit.Unmarshaler.
func (u *Upstream) UnmarshalConfig(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		p, err := resolver.ParseUpstream(n.Value)
		if err != nil {
			return err
		}
		*u = Upstream(p)
		return nil
	case yaml.MappingNode:
		var r resolver.Upstream
		if err := confkit.DecodeNode(n, &r); err != nil {
			return err
		}
		if err := r.Validate(); err != nil {
			return fmt.Errorf("upstream %s: %w", r.Address, err)
		}
		*u = Upstream(r)
		return nil
	}
	return errors.New("expected an upstream such as 1.1.1.1 or tls://1.1.1.1@cloudflare-dns.com, or a mapping with address")
}

// String is the upstream's short form.
func (u Upstream) String() string { return resolver.Upstream(u).String() }

// DefaultConfig returns the defaults stated on each field.
func DefaultConfig() Config {
	return Config{
		Enable:        true,
		ProbeInterval: netwatch.DefaultProbeInterval,
		ProbeTimeout:  netwatch.DefaultProbeTimeout,
		DNS: DNSConfig{
			HostsFile:   "/etc/hosts",
			CacheSize:   resolver.DefaultCacheSize,
			MaxTTL:      resolver.DefaultMaxTTL,
			NegativeTTL: resolver.DefaultNegativeTTL,
			Timeout:     resolver.DefaultTimeout,
			ResolvConf:  "/etc/resolv.conf",
		},
		DHCP: defaultDHCPConfig(),
	}
}

// Validate reports every problem of the section.
func (c *Config) Validate(v *confkit.Validator) {
	if c.ProbeURL != "" {
		u, err := url.Parse(c.ProbeURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.Errorf("probe_url", "probe url %q: want an http:// or https:// URL", c.ProbeURL)
		}
	}
	if c.ProbeInterval < time.Second {
		v.Errorf("probe_interval", "probe interval %s is shorter than 1s", c.ProbeInterval)
	}
	if c.ProbeTimeout <= 0 {
		v.Errorf("probe_timeout", "probe timeout must be positive")
	}
	names := map[string]int{}
	for i, l := range c.Links {
		path := fmt.Sprintf("links[%d]", i)
		for _, p := range l.Check() {
			v.Errorf(path+"."+p.Field, "%s", p.Msg)
		}
		if j, dup := names[l.Name]; dup && l.Name != "" {
			v.Errorf(path+".name", "link %s is already declared in links[%d]", l.Name, j)
		}
		names[l.Name] = i
	}
	if c.DNS.Enable {
		c.DNS.validate(v.At("dns"), c.usesDHCP() && c.DHCP.UseDNS)
	}
	c.DHCP.validate(v.At("dhcp"))
}

// validate checks the section; leaseDNS says DHCP leases bring upstreams,
// so the config need not name any.
func (d *DNSConfig) validate(v *confkit.Validator, leaseDNS bool) {
	if d.Listen != "" {
		v.CheckListen("listen", d.Listen)
		if host, _, err := net.SplitHostPort(d.Listen); err == nil && net.ParseIP(host) == nil {
			v.Errorf("listen", "listen address %q: want an IP address and port", d.Listen)
		}
	}
	for i, a := range d.AllowFrom {
		if _, err := parseAllow(a); err != nil {
			v.Errorf(fmt.Sprintf("allow_from[%d]", i), "%v", err)
		}
	}
	if host, _, err := net.SplitHostPort(d.Listen); err == nil && len(d.AllowFrom) == 0 {
		if ip, err := netip.ParseAddr(host); err == nil && !ip.Unmap().IsLoopback() {
			v.Errorf("allow_from", "required when listen (%s) is not a loopback address: list the networks that may query, e.g. [192.168.1.0/24] (an open resolver is abused to amplify attacks)", d.Listen)
		}
	}
	if len(d.Upstreams) == 0 && !leaseDNS {
		v.Errorf("upstreams", "at least one upstream is required when dns is enabled")
	}
	for i, u := range d.Upstreams {
		r := resolver.Upstream(u)
		if r.Address == "" {
			continue // did not decode; reported by the decoder
		}
		if err := r.Validate(); err != nil {
			v.Errorf(fmt.Sprintf("upstreams[%d]", i), "%v", err)
		}
	}
	for dom, ups := range d.Domains {
		path := "domains." + dom
		if _, ok := dns.IsDomainName(dom); !ok || strings.Trim(dom, ".") == "" {
			v.Errorf(path, "%q is not a domain name", dom)
		}
		if len(ups) == 0 {
			v.Errorf(path, "domain %s has no upstreams", dom)
		}
		for i, u := range ups {
			r := resolver.Upstream(u)
			if r.Address == "" {
				continue // did not decode; reported by the decoder
			}
			if err := r.Validate(); err != nil {
				v.Errorf(fmt.Sprintf("%s[%d]", path, i), "%v", err)
			}
		}
	}
	if d.CacheSize < 0 {
		v.Errorf("cache_size", "cache size %d is negative", d.CacheSize)
	}
	if d.MaxTTL <= 0 {
		v.Errorf("max_ttl", "max ttl must be positive")
	}
	if d.NegativeTTL <= 0 {
		v.Errorf("negative_ttl", "negative ttl must be positive")
	}
	if d.Timeout <= 0 {
		v.Errorf("timeout", "timeout must be positive")
	}
	if d.ManageResolvConf {
		if d.ResolvConf == "" {
			v.Errorf("resolv_conf", "manage_resolv_conf needs a resolv_conf path")
		}
		if d.Listen != "" {
			if _, port, err := net.SplitHostPort(d.Listen); err == nil {
				if p, _ := strconv.Atoi(port); p != 53 {
					v.Errorf("manage_resolv_conf", "resolv.conf can only name servers on port 53, but dns.listen is %s", d.Listen)
				}
			}
		}
	}
}

// parseAllow parses one allow_from entry: a CIDR or a single address.
func parseAllow(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p != p.Masked() {
			return netip.Prefix{}, fmt.Errorf("network %q has host bits set (did you mean %s?)", s, p.Masked())
		}
		return p, nil
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%q is not a network (CIDR such as 192.168.1.0/24) or an IP address", s)
}

// allowFrom is AllowFrom parsed; entries that do not parse (reported by
// Validate) are left out.
func (d *DNSConfig) allowFrom() []netip.Prefix {
	var out []netip.Prefix
	for _, a := range d.AllowFrom {
		if p, err := parseAllow(a); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// options converts the section for the resolver.
func (d *DNSConfig) options() resolver.Options {
	o := resolver.Options{
		HostsPath:   d.HostsFile,
		CacheSize:   d.CacheSize,
		MaxTTL:      d.MaxTTL,
		NegativeTTL: d.NegativeTTL,
		Timeout:     d.Timeout,
	}
	if d.CacheSize == 0 {
		o.CacheSize = -1
	}
	for _, u := range d.Upstreams {
		o.Upstreams = append(o.Upstreams, resolver.Upstream(u))
	}
	if len(d.Domains) > 0 {
		o.Domains = map[string][]resolver.Upstream{}
		for dom, ups := range d.Domains {
			for _, u := range ups {
				o.Domains[dom] = append(o.Domains[dom], resolver.Upstream(u))
			}
		}
	}
	return o
}
