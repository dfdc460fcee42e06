package netcfg_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/config"
	"github.com/hostd/hostd/pkg/netcfg"
	"github.com/hostd/hostd/pkg/netcfg/resolver"
)

var sections = []config.Section{{Name: "netcfg", Default: func() any { c := netcfg.DefaultConfig(); return &c }}}

func parse(t *testing.T, yaml string) (*netcfg.Config, error) {
	t.Helper()
	c, err := config.Parse("hostd.yaml", []byte(yaml), sections, os.Getenv)
	if err != nil {
		return nil, err
	}
	return c.Sections["netcfg"].(*netcfg.Config), nil
}

func TestConfigDecodes(t *testing.T) {
	c, err := parse(t, `
netcfg:
  probe_url: http://connectivity.hostd.test/
  probe_interval: 1m
  links:
    - name: eth0
      state: up
      mtu: 9000
      addresses: [192.0.2.10/24, "2001:db8::10/64"]
      routes:
        - {to: default, via: 192.0.2.1}
  dns:
    enable: true
    listen: 127.0.0.53:53
    upstreams:
      - 192.0.2.53
      - tcp://192.0.2.54:5353
      - tls://1.1.1.1@cloudflare-dns.com
      - {address: "192.0.2.55", protocol: tls, server_name: dns.hostd.test, ca_file: /etc/ssl/hostd-ca.pem}
    domains:
      corp.example: [10.0.0.53]
    cache_size: 500
    negative_ttl: 30s
`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"udp://192.0.2.53:53", "tcp://192.0.2.54:5353", "tls://1.1.1.1:853@cloudflare-dns.com", "tls://192.0.2.55:853@dns.hostd.test"}
	for i, u := range c.DNS.Upstreams {
		if u.String() != want[i] {
			t.Errorf("upstreams[%d] = %s, want %s", i, u, want[i])
		}
	}
	if c.DNS.Upstreams[3].CAFile != "/etc/ssl/hostd-ca.pem" {
		t.Errorf("ca_file = %q", c.DNS.Upstreams[3].CAFile)
	}
	if got := c.DNS.Domains["corp.example"][0].String(); got != "udp://10.0.0.53:53" {
		t.Errorf("domain upstream = %s", got)
	}
	if c.ProbeInterval != time.Minute || c.DNS.CacheSize != 500 || c.DNS.NegativeTTL != 30*time.Second || c.DNS.MaxTTL != resolver.DefaultMaxTTL {
		t.Errorf("durations and sizes: %+v", c.DNS)
	}
	if !c.Enable || c.DNS.HostsFile != "/etc/hosts" || c.DNS.ResolvConf != "/etc/resolv.conf" {
		t.Errorf("defaults lost: enable=%v hosts=%q resolv=%q", c.Enable, c.DNS.HostsFile, c.DNS.ResolvConf)
	}
}

func TestConfigDefaults(t *testing.T) {
	c := netcfg.DefaultConfig()
	if !c.Enable || c.DNS.Enable {
		t.Errorf("want watching on and dns off by default, got enable=%v dns.enable=%v", c.Enable, c.DNS.Enable)
	}
	if _, err := config.Defaults(sections, os.Getenv); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each must appear in the error, with its position
	}{
		{"dns without upstreams", "netcfg:\n  dns:\n    enable: true\n", []string{"hostd.yaml:3:5: netcfg.dns.upstreams: at least one upstream is required"}},
		{"bad upstream string", "netcfg:\n  dns:\n    enable: true\n    upstreams: [\"quic://1.1.1.1\"]\n", []string{"hostd.yaml:4:17: netcfg.dns.upstreams[0]:", `unknown protocol "quic"`}},
		{"tls without name", "netcfg:\n  dns:\n    enable: true\n    upstreams: [tls://1.1.1.1]\n", []string{"netcfg.dns.upstreams[0]", "needs a server name"}},
		{"upstream mapping typo", "netcfg:\n  dns:\n    enable: true\n    upstreams:\n      - {adress: 1.1.1.1}\n", []string{"netcfg.dns.upstreams[0]", "adress"}},
		{"bad listen", "netcfg:\n  dns:\n    enable: true\n    listen: localhost\n    upstreams: [1.1.1.1]\n", []string{"netcfg.dns.listen", "want host:port"}},
		{"resolv.conf needs port 53", "netcfg:\n  dns:\n    enable: true\n    listen: 127.0.0.1:5353\n    manage_resolv_conf: true\n    upstreams: [1.1.1.1]\n", []string{"netcfg.dns.manage_resolv_conf", "port 53"}},
		{"bad domain", "netcfg:\n  dns:\n    enable: true\n    upstreams: [1.1.1.1]\n    domains:\n      \"bad..domain\": [10.0.0.1]\n", []string{"netcfg.dns.domains.bad..domain", "not a domain name"}},
		{"bad durations", "netcfg:\n  probe_interval: 10ms\n  dns:\n    enable: true\n    upstreams: [1.1.1.1]\n    timeout: 0s\n", []string{"netcfg.probe_interval", "netcfg.dns.timeout"}},
		{"bad probe url", "netcfg:\n  probe_url: ftp://x\n", []string{"hostd.yaml:2:14: netcfg.probe_url"}},
		{"bad links", "netcfg:\n  links:\n    - name: eth0\n      state: sideways\n      addresses: [192.0.2.1]\n    - name: eth0\n      routes: [{to: default}]\n",
			[]string{"hostd.yaml:4:14: netcfg.links[0].state", "netcfg.links[0].addresses[0]", "netcfg.links[1].name: link eth0 is already declared", "netcfg.links[1].routes[0]: a default route needs a gateway"}},
		{"unknown key", "netcfg:\n  dns:\n    enabel: true\n", []string{"hostd.yaml:3:5", "enabel"}},
		{"open resolver on 0.0.0.0", "netcfg:\n  dns:\n    enable: true\n    listen: 0.0.0.0:53\n    upstreams: [1.1.1.1]\n",
			[]string{"netcfg.dns.allow_from: required when listen (0.0.0.0:53) is not a loopback address"}},
		{"open resolver on a LAN address", "netcfg:\n  dns:\n    enable: true\n    listen: \"[2001:db8::53]:53\"\n    upstreams: [1.1.1.1]\n",
			[]string{"netcfg.dns.allow_from: required when listen ([2001:db8::53]:53)"}},
		{"bad allow_from", "netcfg:\n  dns:\n    enable: true\n    listen: 0.0.0.0:53\n    allow_from: [10.0.0.1/8, nope, 10.0.0.0/33]\n    upstreams: [1.1.1.1]\n",
			[]string{"netcfg.dns.allow_from[0]: network \"10.0.0.1/8\" has host bits set (did you mean 10.0.0.0/8?)",
				"netcfg.dns.allow_from[1]: \"nope\" is not a network", "netcfg.dns.allow_from[2]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.yaml)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "address is empty") {
				t.Errorf("a decode error reported twice:\n%v", err)
			}
		})
	}
}

func TestConfigAllowFrom(t *testing.T) {
	for _, yaml := range []string{
		"netcfg:\n  dns:\n    enable: true\n    listen: 0.0.0.0:53\n    allow_from: [192.168.1.0/24, 10.0.0.7, \"2001:db8::/32\"]\n    upstreams: [1.1.1.1]\n",
		"netcfg:\n  dns:\n    enable: true\n    listen: 127.0.0.53:53\n    upstreams: [1.1.1.1]\n",
		"netcfg:\n  dns:\n    enable: true\n    listen: \"[::1]:53\"\n    upstreams: [1.1.1.1]\n",
	} {
		if _, err := parse(t, yaml); err != nil {
			t.Errorf("%s: %v", yaml, err)
		}
	}
}

func TestConfigDNSOffSkipsDNSChecks(t *testing.T) {
	if _, err := parse(t, "netcfg:\n  dns:\n    enable: false\n    upstreams: []\n"); err != nil {
		t.Errorf("dns off with no upstreams: %v", err)
	}
}
