package config

// The central table of hostd's default listen addresses. Every listener
// binds to loopback unless the config says otherwise.
const (
	// DefaultHTTPListen serves /healthz, /readyz, /status, /metrics, the
	// query API and the dashboard.
	DefaultHTTPListen = "127.0.0.1:9273"
	// DefaultProxySOCKSListen is the proxy's SOCKS5 inbound.
	DefaultProxySOCKSListen = "127.0.0.1:1080"
	// DefaultProxyHTTPListen is the proxy's HTTP CONNECT inbound.
	DefaultProxyHTTPListen = "127.0.0.1:8118"
	// DefaultDNSListenRoot is the DNS stub's address when hostd runs as
	// root and the port is free (as systemd-resolved).
	DefaultDNSListenRoot = "127.0.0.53:53"
	// DefaultDNSListen is the DNS stub's address otherwise.
	DefaultDNSListen = "127.0.0.1:5353"
	// DefaultSocketRoot is the local API socket when running as root.
	DefaultSocketRoot = "/run/hostd/hostd.sock"
	// DefaultStateDirRoot is the state directory when running as root
	// without $STATE_DIRECTORY.
	DefaultStateDirRoot = "/var/lib/hostd"
)
