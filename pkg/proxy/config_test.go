package proxy

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/hostd/hostd/internal/confkit"
)

const (
	testUUID = "6b1a2c1e-8f4e-4c1b-9d0a-5e6f7a8b9c0d"
	testPBK  = "E59WjnvZcQMu7tR7_BgyhycuEdBS-CtKxfImRCdAvFM"
	testLink = "vless://" + testUUID + "@vpn.example.com:443?security=reality&type=tcp&flow=xtls-rprx-vision&sni=www.example.com&fp=firefox&pbk=" + testPBK + "&sid=0123abcd&spx=%2Fpath#name"
)

func validConfig() Config {
	c := DefaultConfig()
	c.Enable = true
	c.Server = ServerConfig{
		Address:   Value{Ref: "sops:secrets/v2ray.yaml#v2ray/server_address"},
		Port:      Value{Ref: "sops:secrets/v2ray.yaml#v2ray/server_port"},
		UserID:    Value{Ref: "sops:secrets/v2ray.yaml#v2ray/user_id"},
		PublicKey: Value{Ref: "sops:secrets/v2ray.yaml#v2ray/public_key"},
		ShortID:   Value{Ref: "sops:secrets/v2ray.yaml#v2ray/short_id"},
	}
	c.ServerName = "www.example.com"
	return c
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string // "path: message part"
	}{
		{"valid", func(c *Config) {}, nil},
		{"disabled is not checked", func(c *Config) { *c = DefaultConfig() }, nil},
		{"valid link", func(c *Config) { c.Server = ServerConfig{Link: Value{Literal: testLink}}; c.ServerName = "" }, nil},
		{"valid lan with auth", func(c *Config) {
			c.AllowLAN = true
			c.SOCKS.Listen = "0.0.0.0:1080"
			c.Auth = AuthConfig{Username: "u", Password: "file:/run/secrets/pw"}
		}, nil},
		{"lan without allow_lan", func(c *Config) { c.SOCKS.Listen = "192.168.1.2:1080" }, []string{"socks.listen: 192.168.1.2:1080 is not a loopback", "auth: required"}},
		{"lan without auth", func(c *Config) { c.AllowLAN = true; c.HTTP.Listen = "[::]:8118" }, []string{"auth: required"}},
		{"password without user", func(c *Config) { c.Auth.Password = "env:PW" }, []string{"auth.username: "}},
		{"user without password", func(c *Config) { c.Auth.Username = "u" }, []string{"auth.password: "}},
		{"bad listen", func(c *Config) { c.SOCKS.Listen = "localhost:x" }, []string{"socks.listen: invalid listen address"}},
		{"same listen", func(c *Config) { c.HTTP.Listen = c.SOCKS.Listen }, []string{"http.listen: same address"}},
		{"no inbound", func(c *Config) { c.SOCKS.Listen, c.HTTP.Listen = "", "" }, []string{"socks.listen: both inbounds are disabled"}},
		{"missing server", func(c *Config) { c.Server = ServerConfig{}; c.ServerName = "" }, []string{
			"server.address: required", "server.port: required", "server.user_id: required",
			"server.public_key: required", "server.short_id: required", "server_name: required"}},
		{"link and fields", func(c *Config) { c.Server.Link = Value{Literal: testLink} }, []string{"server.link: give either"}},
		{"bad literals", func(c *Config) {
			c.Server.Port = Value{Literal: "99999"}
			c.Server.UserID = Value{Literal: "not-a-uuid"}
			c.Server.PublicKey = Value{Literal: "short"}
			c.Server.ShortID = Value{Literal: "xyz"}
		}, []string{"server.port: port is not", "server.user_id: user id is not", "server.public_key: public key is not", "server.short_id: short id is not"}},
		{"bad options", func(c *Config) {
			c.Fingerprint = "netscape"
			c.SpiderX = "nopath"
			c.Flow = "xtls-rprx-direct"
			c.BypassDomains = []string{"ok.example", "bad domain"}
			c.BypassCIDRs = []string{"10.0.0.0/8", "10.0.0.0/99"}
			c.HealthURL = "ftp://x"
			c.HealthInterval = 0
			c.HealthTimeout = 0
		}, []string{"fingerprint: unknown", "spider_x: ", "flow: unsupported", "bypass_domains[1]: ", "bypass_cidrs[1]: ",
			"health_url: ", "health_interval: ", "health_timeout: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(&c)
			v := confkit.NewValidator("")
			c.Validate(v)
			var got []string
			for _, e := range v.Errors() {
				got = append(got, e.Path+": "+e.Msg)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("errors = %q, want %d matching %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], w) && !strings.Contains(got[i], w) {
					t.Errorf("error[%d] = %q, want %q", i, got[i], w)
				}
			}
			// Literal secrets never appear in validation messages.
			for _, g := range got {
				if strings.Contains(g, testUUID) || strings.Contains(g, testPBK) {
					t.Errorf("error %q reveals a secret", g)
				}
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	c := validConfig()
	c.ServerName = ""
	if _, err := New(testEnv(), c); err == nil || !strings.Contains(err.Error(), "server_name: required") {
		t.Fatalf("New = %v, want server_name error", err)
	}
}

func TestValueDecode(t *testing.T) {
	type section struct {
		Proxy Config `yaml:"proxy"`
	}
	tests := []struct {
		name    string
		yaml    string
		want    ServerConfig
		wantErr string
	}{
		{"references and literals", `
proxy:
  server:
    address: vpn.example.com
    port: 443
    user_id: sops:secrets/v2ray.yaml#v2ray/user_id
    public_key: file:/run/secrets/pbk
    short_id: /run/secrets/sid
`, ServerConfig{
			Address:   Value{Literal: "vpn.example.com"},
			Port:      Value{Literal: "443"},
			UserID:    Value{Ref: "sops:secrets/v2ray.yaml#v2ray/user_id"},
			PublicKey: Value{Ref: "file:/run/secrets/pbk"},
			ShortID:   Value{Ref: "/run/secrets/sid"},
		}, ""},
		{"link", "proxy:\n  server:\n    link: cred:vless-link\n", ServerConfig{Link: Value{Ref: "cred:vless-link"}}, ""},
		{"bad reference", "proxy:\n  server:\n    user_id: sops:secrets/v2ray.yaml\n", ServerConfig{}, "proxy.server.user_id"},
		{"not a scalar", "proxy:\n  server:\n    port: [1]\n", ServerConfig{}, "proxy.server.port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := section{Proxy: DefaultConfig()}
			_, errs := confkit.Decode("hostd.yaml", []byte(tt.yaml), &s)
			if tt.wantErr != "" {
				if len(errs) == 0 || !strings.Contains(errs.Error(), tt.wantErr) {
					t.Fatalf("errors = %v, want one about %s", errs, tt.wantErr)
				}
				if !strings.Contains(errs.Error(), "hostd.yaml:") {
					t.Errorf("error %q has no file:line", errs)
				}
				return
			}
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if !reflect.DeepEqual(s.Proxy.Server, tt.want) {
				t.Errorf("server = %+v, want %+v", s.Proxy.Server, tt.want)
			}
		})
	}
}

func TestValueString(t *testing.T) {
	for _, tt := range []struct {
		v    Value
		want string
	}{
		{Value{Literal: testUUID}, "(literal)"},
		{Value{Ref: "env:UID"}, "env:UID"},
		{Value{}, ""},
	} {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.v, got, tt.want)
		}
		if b, _ := tt.v.MarshalText(); string(b) != tt.want {
			t.Errorf("MarshalText = %q, want %q", b, tt.want)
		}
		if s := fmt.Sprintf("%v %s", tt.v, tt.v); strings.Contains(s, testUUID) {
			t.Errorf("formatting reveals the literal: %s", s)
		}
	}
}

func TestSpider(t *testing.T) {
	tests := []struct {
		in    string
		path  string
		y     []int64
		isErr bool
	}{
		{"", "/", make([]int64, 10), false},
		{"/", "/", make([]int64, 10), false},
		{"/a?p=10-20&c=2&t=1-3&i=5-9&r=0-100&x=1", "/a?x=1", []int64{10, 20, 2, 2, 1, 3, 5, 9, 0, 100}, false},
		{"a", "", nil, true},
		{"/?p=9-1", "", nil, true},
		{"/?c=x", "", nil, true},
	}
	for _, tt := range tests {
		path, y, err := spider(tt.in)
		if (err != nil) != tt.isErr {
			t.Errorf("spider(%q) error = %v", tt.in, err)
			continue
		}
		if !tt.isErr && (path != tt.path || !reflect.DeepEqual(y, tt.y)) {
			t.Errorf("spider(%q) = %q %v, want %q %v", tt.in, path, y, tt.path, tt.y)
		}
	}
}

func TestXrayConfigRouting(t *testing.T) {
	s := settings{
		SocksListen: "127.0.0.1:1080", SocksUDP: true, HTTPListen: "[::1]:8118",
		Server:        endpoint{Address: "vpn.example.com", Port: 443, UserID: testUUID, PublicKey: make([]byte, 32), ShortID: []byte{1}, ServerName: "sni", Fingerprint: "chrome", Flow: DefaultFlow},
		BypassDomains: []string{"corp.example"},
	}
	c, err := xrayConfig(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Inbound) != 2 || c.Inbound[0].Tag != tagSOCKS || c.Inbound[1].Tag != tagHTTP {
		t.Errorf("inbounds = %v", c.Inbound)
	}
	if c.Outbound[0].Tag != tagProxy {
		t.Errorf("default outbound = %s, want %s", c.Outbound[0].Tag, tagProxy)
	}
	bad := s
	bad.Server.PublicKey = []byte{1}
	if _, err := xrayConfig(bad); err == nil {
		t.Error("short public key accepted")
	}
	bad = s
	bad.SocksListen = "nope"
	if _, err := xrayConfig(bad); err == nil {
		t.Error("bad listen accepted")
	}
}

// TestDocExamples decodes and validates every proxy example in
// docs/proxy.md, so the documentation cannot drift from the code.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/proxy.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(doc), "```yaml\n")[1:]
	if len(blocks) < 3 {
		t.Fatalf("found %d yaml examples, want at least 3", len(blocks))
	}
	for i, b := range blocks {
		b, _, _ = strings.Cut(b, "```")
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			var s struct {
				Secrets struct {
					AgeKeyFile string `yaml:"age_key_file"`
				} `yaml:"secrets"`
				Proxy Config `yaml:"proxy"`
			}
			s.Proxy = DefaultConfig()
			if _, errs := confkit.Decode("docs/proxy.md", []byte(b), &s); len(errs) > 0 {
				t.Fatalf("example %d:\n%s\n%v", i, b, errs)
			}
			v := confkit.NewValidator("proxy")
			s.Proxy.Validate(v)
			if errs := v.Errors(); len(errs) > 0 {
				t.Errorf("example %d does not validate: %v", i, errs)
			}
		})
	}
}
