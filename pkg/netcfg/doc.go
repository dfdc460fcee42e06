// Package netcfg is hostd's "netcfg" service: network state and a caching
// DNS resolver, in place of NetworkManager's dispatcher glue and
// systemd-resolved.
//
// It owns the service's config section, wiring the netlink watcher
// (package netwatch) and the DNS resolver (package resolver) into the
// supervisor, readiness (ready means online: a usable default route and,
// if configured, a passing connectivity probe; and, with DNS on, an
// upstream that answers), pointing /etc/resolv.conf at the resolver and
// restoring it on stop, and the local API (/v1/netcfg/...).
//
// It does not own DHCP, Wi-Fi, VPNs or firewalling: links are watched, and
// only the simple declared states (static addresses, routes, MTU, up/down)
// are applied. It never removes addresses or routes it was not told about.
package netcfg
