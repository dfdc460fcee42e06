// Package resolver is hostd's caching DNS stub resolver.
//
// It owns answering DNS queries received over UDP and TCP: answers from a
// hosts file, a TTL-honouring response cache with negative caching and a
// size bound, per-domain routing to upstream servers (split DNS), and
// forwarding over UDP, TCP or DNS-over-TLS with failover and timeouts.
// EDNS0 is negotiated with upstreams independently of the client, and
// responses are truncated to what the client can receive.
//
// It does not own configuration decoding, /etc/resolv.conf, readiness or
// the local API: those belong to package netcfg, which wires a Resolver
// into the hostd supervisor.
package resolver
