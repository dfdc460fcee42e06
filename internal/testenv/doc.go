// Package testenv starts the real components hostd's integration tests
// talk to (dockerd, the PipeWire stack, sshd, dnsmasq, Prometheus, an xray
// server), waits for them, and stops them when the test ends.
//
// A component that cannot start skips the test on a developer machine, and
// fails it when CI=true: in CI a missing component is a failure.
package testenv
