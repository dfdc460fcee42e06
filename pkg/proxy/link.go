package proxy

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Link is a parsed vless:// share link
// (vless://UUID@HOST:PORT?security=reality&sni=..&pbk=..&sid=..&fp=..&flow=..&spx=..#name).
type Link struct {
	Address     string
	Port        uint16
	UserID      string
	PublicKey   []byte
	ShortID     []byte
	ServerName  string // sni
	Fingerprint string // fp
	SpiderX     string // spx
	Flow        string
}

// ParseLink parses a vless:// share link for a REALITY server over TCP.
// Errors name the part that is wrong, never the link's content: a link
// holds the user id and keys.
func ParseLink(s string) (Link, error) {
	var l Link
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return l, errors.New("link is not a URL")
	}
	if u.Scheme != "vless" {
		return l, errors.New("link scheme is not vless://")
	}
	if u.User == nil || u.User.Username() == "" {
		return l, errors.New("link has no user id (vless://UUID@host:port)")
	}
	if err := checkUUID(u.User.Username()); err != nil {
		return l, fmt.Errorf("link: %w", err)
	}
	l.UserID = u.User.Username()
	l.Address = u.Hostname()
	if l.Address == "" {
		return l, errors.New("link has no host")
	}
	if u.Port() == "" {
		return l, errors.New("link has no port")
	}
	if l.Port, err = parsePort(u.Port()); err != nil {
		return l, fmt.Errorf("link: %w", err)
	}
	q := u.Query()
	if sec := q.Get("security"); sec != "reality" {
		return l, fmt.Errorf("link security is %q: only reality is supported", sec)
	}
	if t := q.Get("type"); t != "" && t != "tcp" && t != "raw" {
		return l, fmt.Errorf("link transport type is %q: only tcp is supported", t)
	}
	if e := q.Get("encryption"); e != "" && e != "none" {
		return l, fmt.Errorf("link encryption is %q: only none is supported", e)
	}
	if l.PublicKey, err = parsePublicKey(q.Get("pbk")); err != nil {
		return l, fmt.Errorf("link pbk: %w", err)
	}
	if l.ShortID, err = parseShortID(q.Get("sid")); err != nil {
		return l, fmt.Errorf("link sid: %w", err)
	}
	l.ServerName = q.Get("sni")
	l.Fingerprint = q.Get("fp")
	l.SpiderX = q.Get("spx")
	l.Flow = q.Get("flow")
	if l.ServerName == "" {
		return l, errors.New("link has no sni")
	}
	return l, nil
}
