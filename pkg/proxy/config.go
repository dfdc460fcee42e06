package proxy

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hostd/hostd/internal/config"
	"github.com/hostd/hostd/internal/confkit"
	"github.com/hostd/hostd/internal/secrets"
)

// Config is the `proxy` section of hostd's config.
type Config struct {
	// Enable runs the proxy. Default: false (it needs server secrets).
	Enable bool `yaml:"enable"`
	// SOCKS is the SOCKS5 inbound.
	SOCKS SOCKSConfig `yaml:"socks"`
	// HTTP is the HTTP (and HTTPS CONNECT) proxy inbound.
	HTTP HTTPConfig `yaml:"http"`
	// AllowLAN permits listen addresses other than loopback. Default: false.
	// When true, auth is required: hostd is never an open proxy.
	AllowLAN bool `yaml:"allow_lan"`
	// Auth is the username/password both inbounds require. Default: none
	// (allowed only on loopback).
	Auth AuthConfig `yaml:"auth"`
	// Server is the VLESS+REALITY server.
	Server ServerConfig `yaml:"server"`
	// ServerName is the REALITY server name (SNI). Default: the sni of
	// server.link, else required.
	ServerName string `yaml:"server_name"`
	// Fingerprint is the uTLS client fingerprint. Default: "chrome".
	Fingerprint string `yaml:"fingerprint"`
	// SpiderX is the REALITY spider path (with optional p/c/t/i/r query
	// parameters). Default: "/" (or the spx of server.link).
	SpiderX string `yaml:"spider_x"`
	// Flow is the VLESS flow. Default: "xtls-rprx-vision"; "none" disables it.
	Flow string `yaml:"flow"`
	// BypassDomains go direct, with their subdomains. Default: none
	// (localhost always goes direct).
	BypassDomains []string `yaml:"bypass_domains"`
	// BypassCIDRs go direct. Default: none (loopback, private, CGNAT and
	// link-local ranges always go direct).
	BypassCIDRs []string `yaml:"bypass_cidrs"`
	// HealthURL is probed through the server with HEAD; 2xx means up.
	// Default: "https://www.gstatic.com/generate_204".
	HealthURL string `yaml:"health_url"`
	// HealthInterval is the time between probes. Default: 1m.
	HealthInterval time.Duration `yaml:"health_interval"`
	// HealthTimeout bounds one probe. Default: 10s.
	HealthTimeout time.Duration `yaml:"health_timeout"`
}

// SOCKSConfig is the SOCKS5 inbound.
type SOCKSConfig struct {
	// Listen is host:port; "" disables the inbound. Default: "127.0.0.1:1080".
	Listen string `yaml:"listen"`
	// UDP enables UDP ASSOCIATE. Default: true.
	UDP bool `yaml:"udp"`
}

// HTTPConfig is the HTTP proxy inbound.
type HTTPConfig struct {
	// Listen is host:port; "" disables the inbound. Default: "127.0.0.1:8118".
	Listen string `yaml:"listen"`
}

// AuthConfig is inbound authentication.
type AuthConfig struct {
	// Username. Default: none.
	Username string `yaml:"username"`
	// Password is a secret reference (sops:, file:, cred:, env:). Default: none.
	Password secrets.Ref `yaml:"password"`
}

// ServerConfig is the VLESS+REALITY server: either link, or the separate
// fields. Each field is a literal or a secret reference
// (sops:secrets/v2ray.yaml#v2ray/server_address); user_id, public_key and
// short_id are expected to be references.
type ServerConfig struct {
	// Link is a vless:// share link (itself usually a secret reference).
	Link Value `yaml:"link"`
	// Address is the server host name or IP.
	Address Value `yaml:"address"`
	// Port is the server TCP port.
	Port Value `yaml:"port"`
	// UserID is the VLESS user UUID.
	UserID Value `yaml:"user_id"`
	// PublicKey is the REALITY x25519 public key (base64, raw URL encoding).
	PublicKey Value `yaml:"public_key"`
	// ShortID is the REALITY short id (0-16 hex digits).
	ShortID Value `yaml:"short_id"`
}

// Value is a config value given either literally or as a secret reference.
// Strings starting with sops:, file:, cred:, env: or / are references.
type Value struct {
	Literal string
	Ref     secrets.Ref
}

// IsZero reports whether the value is unset.
func (v Value) IsZero() bool { return v.Literal == "" && v.Ref.IsZero() }

// String prints a reference as itself and a literal as "(literal)": values
// may be secrets, so String never shows them.
func (v Value) String() string {
	switch {
	case !v.Ref.IsZero():
		return v.Ref.String()
	case v.Literal != "":
		return "(literal)"
	}
	return ""
}

// MarshalYAML keeps literal secrets out of `config show`.
func (v Value) MarshalYAML() (any, error) { return v.String(), nil }

// MarshalText does the same for JSON.
func (v Value) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalConfig implements confkit.Unmarshaler.
func (v *Value) UnmarshalConfig(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a value or a secret reference")
	}
	*v = Value{}
	if n.Tag == "!!null" {
		return nil
	}
	if looksLikeRef(n.Value) {
		r, err := secrets.ParseRef(n.Value)
		if err != nil {
			return err
		}
		v.Ref = r
		return nil
	}
	v.Literal = n.Value
	return nil
}

func looksLikeRef(s string) bool {
	if strings.HasPrefix(s, "/") {
		return true
	}
	scheme, _, ok := strings.Cut(s, ":")
	if !ok {
		return false
	}
	switch scheme {
	case secrets.SchemeSOPS, secrets.SchemeFile, secrets.SchemeCred, secrets.SchemeEnv:
		return true
	}
	return false
}

// Default values.
const (
	DefaultSOCKSListen    = config.DefaultProxySOCKSListen
	DefaultHTTPListen     = config.DefaultProxyHTTPListen
	DefaultFingerprint    = "chrome"
	DefaultFlow           = "xtls-rprx-vision"
	DefaultHealthURL      = "https://www.gstatic.com/generate_204"
	DefaultHealthInterval = time.Minute
	DefaultHealthTimeout  = 10 * time.Second
)

// DefaultConfig returns the proxy's defaults.
func DefaultConfig() Config {
	return Config{
		SOCKS:          SOCKSConfig{Listen: DefaultSOCKSListen, UDP: true},
		HTTP:           HTTPConfig{Listen: DefaultHTTPListen},
		Fingerprint:    DefaultFingerprint,
		Flow:           DefaultFlow,
		HealthURL:      DefaultHealthURL,
		HealthInterval: DefaultHealthInterval,
		HealthTimeout:  DefaultHealthTimeout,
	}
}

// fingerprints are the uTLS fingerprints REALITY accepts.
var fingerprints = []string{"chrome", "firefox", "safari", "ios", "android", "edge", "360", "qq", "random", "randomized", "randomizednoalpn"}

// Validate reports every problem in the section. Secrets are not resolved
// here; Serve resolves them.
func (c *Config) Validate(v *confkit.Validator) {
	if !c.Enable {
		return
	}
	if c.SOCKS.Listen == "" && c.HTTP.Listen == "" {
		v.Errorf("socks.listen", "both inbounds are disabled: set socks.listen or http.listen")
	}
	needAuth := false
	for _, l := range []struct{ path, addr string }{{"socks.listen", c.SOCKS.Listen}, {"http.listen", c.HTTP.Listen}} {
		if l.addr == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(l.addr)
		if err != nil {
			v.Errorf(l.path, "invalid listen address %q: want IP:port", l.addr)
			continue
		}
		if !ap.Addr().IsLoopback() {
			if !c.AllowLAN {
				v.Errorf(l.path, "%s is not a loopback address: set allow_lan: true (and auth) to serve other hosts", l.addr)
			}
			needAuth = true
		}
	}
	if c.SOCKS.Listen != "" && c.SOCKS.Listen == c.HTTP.Listen {
		v.Errorf("http.listen", "same address as socks.listen (%s)", c.HTTP.Listen)
	}
	switch {
	case c.Auth.Username == "" && !c.Auth.Password.IsZero():
		v.Errorf("auth.username", "auth.password is set but auth.username is empty")
	case c.Auth.Username != "" && c.Auth.Password.IsZero():
		v.Errorf("auth.password", "auth.username is set but auth.password is empty (a secret reference)")
	case needAuth && c.Auth.Username == "":
		v.Errorf("auth", "required when listening on a non-loopback address: hostd is never an open proxy")
	}

	s := c.Server
	if s.Link.IsZero() {
		for _, f := range []struct {
			name string
			val  Value
		}{{"address", s.Address}, {"port", s.Port}, {"user_id", s.UserID}, {"public_key", s.PublicKey}, {"short_id", s.ShortID}} {
			if f.val.IsZero() {
				v.Errorf("server."+f.name, "required (or give server.link)")
			}
		}
		if c.ServerName == "" {
			v.Errorf("server_name", "required: the REALITY server name (SNI)")
		}
	} else if !s.Address.IsZero() || !s.Port.IsZero() || !s.UserID.IsZero() || !s.PublicKey.IsZero() || !s.ShortID.IsZero() {
		v.Errorf("server.link", "give either server.link or server.address/port/user_id/public_key/short_id, not both")
	}
	// Literal values can be checked now; references are checked when resolved.
	if s.Port.Literal != "" {
		if _, err := parsePort(s.Port.Literal); err != nil {
			v.Errorf("server.port", "%v", err)
		}
	}
	if s.UserID.Literal != "" {
		if err := checkUUID(s.UserID.Literal); err != nil {
			v.Errorf("server.user_id", "%v", err)
		}
	}
	if s.PublicKey.Literal != "" {
		if _, err := parsePublicKey(s.PublicKey.Literal); err != nil {
			v.Errorf("server.public_key", "%v", err)
		}
	}
	if s.ShortID.Literal != "" {
		if _, err := parseShortID(s.ShortID.Literal); err != nil {
			v.Errorf("server.short_id", "%v", err)
		}
	}
	if s.Link.Literal != "" {
		if _, err := ParseLink(s.Link.Literal); err != nil {
			v.Errorf("server.link", "%v", err)
		}
	}
	if c.Fingerprint != "" && !contains(fingerprints, c.Fingerprint) {
		v.Errorf("fingerprint", "unknown fingerprint %q (want one of %s)", c.Fingerprint, strings.Join(fingerprints, ", "))
	}
	if _, _, err := spider(c.SpiderX); err != nil {
		v.Errorf("spider_x", "%v", err)
	}
	switch c.Flow {
	case "", "none", DefaultFlow:
	default:
		v.Errorf("flow", "unsupported flow %q (want %s or none)", c.Flow, DefaultFlow)
	}
	for i, d := range c.BypassDomains {
		if d == "" || strings.ContainsAny(d, " /:*") {
			v.Errorf(fmt.Sprintf("bypass_domains[%d]", i), "%q is not a domain name", d)
		}
	}
	for i, p := range c.BypassCIDRs {
		if _, err := parseCIDR(p); err != nil {
			v.Errorf(fmt.Sprintf("bypass_cidrs[%d]", i), "%v", err)
		}
	}
	if u, err := url.Parse(c.HealthURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.Errorf("health_url", "%q is not an http(s) URL", c.HealthURL)
	}
	if c.HealthInterval < time.Second {
		v.Errorf("health_interval", "%s is too short (at least 1s)", c.HealthInterval)
	}
	if c.HealthTimeout <= 0 {
		v.Errorf("health_timeout", "must be positive")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The parsers below never echo their input: it may be a secret.

func parsePort(s string) (uint16, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port is not a number between 1 and 65535")
	}
	return uint16(n), nil
}

func checkUUID(s string) error {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return fmt.Errorf("user id is not a UUID (8-4-4-4-12 hex digits)")
	}
	if _, err := hex.DecodeString(strings.ReplaceAll(s, "-", "")); err != nil {
		return fmt.Errorf("user id is not a UUID (8-4-4-4-12 hex digits)")
	}
	return nil
}

func parsePublicKey(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(s), "="))
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("public key is not 32 bytes of base64 (raw URL encoding)")
	}
	return b, nil
}

func parseShortID(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) > 16 || len(s)%2 != 0 {
		return nil, fmt.Errorf("short id is not an even number of hex digits, at most 16")
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("short id is not an even number of hex digits, at most 16")
	}
	return b, nil
}

func parseCIDR(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix or IP address", s)
}
