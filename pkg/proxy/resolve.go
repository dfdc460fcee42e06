package proxy

import (
	"context"
	"fmt"
	"strings"

	"github.com/hostd/hostd/internal/config"
	"github.com/hostd/hostd/internal/secrets"
)

// resolve turns the config into settings, reading every secret reference.
// Errors name the field and the reference, never a value.
func resolve(ctx context.Context, r *secrets.Resolver, c Config) (settings, error) {
	s := settings{
		SocksListen:   c.SOCKS.Listen,
		SocksUDP:      c.SOCKS.UDP,
		HTTPListen:    c.HTTP.Listen,
		BypassDomains: c.BypassDomains,
	}
	for _, p := range c.BypassCIDRs {
		pr, err := parseCIDR(p)
		if err != nil {
			return s, fmt.Errorf("bypass_cidrs: %w", err)
		}
		s.BypassCIDRs = append(s.BypassCIDRs, pr)
	}
	if c.Auth.Username != "" {
		pw, err := resolveRef(ctx, r, c.Auth.Password)
		if err != nil {
			return s, fmt.Errorf("auth.password: %w", err)
		}
		s.Username, s.Password = c.Auth.Username, pw
	}

	e := endpoint{ServerName: c.ServerName, Fingerprint: c.Fingerprint, SpiderX: c.SpiderX, Flow: c.Flow}
	if !c.Server.Link.IsZero() {
		raw, err := value(ctx, r, c.Server.Link)
		if err != nil {
			return s, fmt.Errorf("server.link: %w", err)
		}
		l, err := ParseLink(raw)
		if err != nil {
			return s, fmt.Errorf("server.link %s: %w", c.Server.Link, err)
		}
		e.Address, e.Port, e.UserID, e.PublicKey, e.ShortID = l.Address, l.Port, l.UserID, l.PublicKey, l.ShortID
		// Explicit config wins over the link's optional parts.
		if e.ServerName == "" {
			e.ServerName = l.ServerName
		}
		if e.SpiderX == "" {
			e.SpiderX = l.SpiderX
		}
		if l.Fingerprint != "" && c.Fingerprint == DefaultFingerprint {
			e.Fingerprint = l.Fingerprint
		}
		if l.Flow != "" && c.Flow == DefaultFlow {
			e.Flow = l.Flow
		}
	} else {
		fields := []struct {
			name  string
			val   Value
			parse func(string) error
		}{
			{"address", c.Server.Address, func(v string) error { e.Address = v; return checkAddress(v) }},
			{"port", c.Server.Port, func(v string) (err error) { e.Port, err = parsePort(v); return err }},
			{"user_id", c.Server.UserID, func(v string) error { e.UserID = v; return checkUUID(v) }},
			{"public_key", c.Server.PublicKey, func(v string) (err error) { e.PublicKey, err = parsePublicKey(v); return err }},
			{"short_id", c.Server.ShortID, func(v string) (err error) { e.ShortID, err = parseShortID(v); return err }},
		}
		for _, f := range fields {
			v, err := value(ctx, r, f.val)
			if err != nil {
				return s, fmt.Errorf("server.%s: %w", f.name, err)
			}
			if err := f.parse(strings.TrimSpace(v)); err != nil {
				return s, fmt.Errorf("server.%s %s: %w", f.name, f.val, err)
			}
		}
	}
	if e.Flow == "none" {
		e.Flow = ""
	}
	if e.Fingerprint == "" {
		e.Fingerprint = DefaultFingerprint
	}
	s.Server = e
	return s, nil
}

func value(ctx context.Context, r *secrets.Resolver, v Value) (string, error) {
	if v.Ref.IsZero() {
		return v.Literal, nil
	}
	return resolveRef(ctx, r, v.Ref)
}

func resolveRef(ctx context.Context, r *secrets.Resolver, ref secrets.Ref) (string, error) {
	if r == nil {
		return "", fmt.Errorf("no secrets resolver to read %s", ref)
	}
	b, err := r.Resolve(ctx, ref)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// checkAddress accepts a host name or IP address.
func checkAddress(v string) error {
	if v == "" || strings.ContainsAny(v, " /@") {
		return fmt.Errorf("not a host name or IP address")
	}
	return nil
}

var _ config.SecretValidator = (*Config)(nil)

// ValidateSecret checks a resolved secret of the section as a literal
// value of its key is checked (config.SecretValidator): `hostd config
// check` then refuses a server.link file holding no vless:// link, as
// the daemon would. Errors never hold the value.
func (c *Config) ValidateSecret(path string, value []byte) error {
	v := strings.TrimSpace(string(value))
	var err error
	switch path {
	case "server.link":
		_, err = ParseLink(v)
	case "server.address":
		err = checkAddress(v)
	case "server.port":
		_, err = parsePort(v)
	case "server.user_id":
		err = checkUUID(v)
	case "server.public_key":
		_, err = parsePublicKey(v)
	case "server.short_id":
		_, err = parseShortID(v)
	}
	return err
}
