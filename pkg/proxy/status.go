package proxy

import (
	"sort"
	"strings"
	"time"

	"github.com/hostd/hostd/internal/service"
)

// States of the proxy.
const (
	StateStopped  = "stopped"  // not running
	StateStarting = "starting" // listening, first probe not finished
	StateUp       = "up"       // last probe through the server succeeded
	StateDown     = "down"     // listening, last probe failed
	StateFailed   = "failed"   // could not start (secrets, listen address)
)

// Details is the proxy's status, as sent by GET /v1/proxy/status and shown
// in `hostd status`. It holds no secret: the server appears as host:port.
type Details struct {
	State     string `json:"state"`
	Server    string `json:"server,omitempty"` // host:port
	SOCKS     string `json:"socks,omitempty"`  // listen address, "" when disabled
	HTTP      string `json:"http,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// LastProbe is the latest health probe.
	LastProbe    *ProbeResult `json:"last_probe,omitempty"`
	ProbesOK     int64        `json:"probes_ok"`
	ProbesFailed int64        `json:"probes_failed"`
	// Traffic is keyed "inbound/socks", "inbound/http", "outbound/proxy",
	// "outbound/direct"; it counts since the proxy last started.
	Traffic map[string]Traffic `json:"traffic,omitempty"`
}

// Traffic is a byte count pair. Up is client to destination.
type Traffic struct {
	Up   int64 `json:"up"`
	Down int64 `json:"down"`
}

// ProbeResult is one health probe through the server.
type ProbeResult struct {
	At        time.Time `json:"at"`
	URL       string    `json:"url"`
	OK        bool      `json:"ok"`
	Status    int       `json:"status,omitempty"` // HTTP status code
	LatencyMS float64   `json:"latency_ms,omitempty"`
	// Error is the reason of a failure: connection refused, REALITY
	// authentication failed, timeout, or the HTTP error.
	Error string `json:"error,omitempty"`
}

// Latency is LatencyMS as a duration.
func (p ProbeResult) Latency() time.Duration {
	return time.Duration(p.LatencyMS * float64(time.Millisecond))
}

// Summary is the one-line status: "up server vpn.example.com:443 latency
// 41ms in 1.2 MiB out 30 MiB".
func (d Details) Summary() string {
	parts := []string{d.State}
	if d.Server != "" {
		parts = append(parts, "server "+d.Server)
	}
	if p := d.LastProbe; p != nil && p.OK {
		parts = append(parts, "latency "+p.Latency().Round(time.Millisecond).String())
	}
	var up, down int64
	for k, t := range d.Traffic {
		if strings.HasPrefix(k, "inbound/") {
			up += t.Up
			down += t.Down
		}
	}
	if d.State != StateFailed && d.State != StateStopped || up+down > 0 {
		parts = append(parts, "sent "+service.FormatBytes(up), "received "+service.FormatBytes(down))
	}
	if d.LastError != "" {
		parts = append(parts, "error: "+d.LastError)
	}
	return strings.Join(parts, " ")
}

// TrafficKeys returns the keys of d.Traffic in a stable order.
func (d Details) TrafficKeys() []string {
	keys := make([]string, 0, len(d.Traffic))
	for k := range d.Traffic {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
