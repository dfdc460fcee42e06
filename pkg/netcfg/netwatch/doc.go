// Package netwatch follows the host's network over netlink.
//
// It owns the netlink subscriptions for links, addresses and routes (no
// polling), the snapshot of interfaces with their state, carrier, MTU and
// addresses, the online verdict (a usable default route, plus an optional
// HTTP connectivity probe), the log of recent changes, and declared link
// state (static addresses, routes, MTU, up/down) that it applies and
// re-applies whenever something changes it.
//
// It does not own configuration decoding, readiness reporting or the local
// API: package netcfg wires a Watcher into the hostd supervisor. It never
// removes addresses or routes it was not told about.
package netwatch
