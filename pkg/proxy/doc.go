// Package proxy is hostd's "proxy" service: a VLESS+REALITY client that
// replaces a standalone xray/v2ray client. It embeds xray-core in-process,
// built from typed protobuf config with only the parts hostd uses (SOCKS5
// and HTTP inbounds, the VLESS outbound over TCP with REALITY, a direct
// outbound, routing, policy and traffic statistics).
//
// It owns: the `proxy` config section and its validation, reading the
// server details from secret references, the xray instance's lifetime, the
// routing rules (private ranges, localhost and the bypass lists go direct),
// the health probe through the server and the diagnosis of its failures,
// the proxy's metrics, status and local API routes.
//
// It does not own: secret decryption (internal/secrets), restarts and
// backoff (internal/supervisor), the HTTP listener metrics are scraped from
// (the metrics service), or the CLI (cmd/hostd/proxy.go).
package proxy
