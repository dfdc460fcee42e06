// Package testenv starts the real components hostd's integration tests
// talk to (dockerd, the PipeWire stack, sshd, dnsmasq, Prometheus, an xray
// server), waits for them, and stops them when the test ends.
//
// A component that cannot start skips the test on a developer machine, and
// fails it when CI=true: in CI a missing component is a failure.
//
// The programs it runs die with the test binary, however that dies (the
// panic of `go test -timeout`, SIGKILL): each is started with a parent-death
// signal from one thread kept for that (startTied), and a container's
// systemd-nspawn leads a PID namespace of its own. The next container
// started unmounts the overlays that such a death left behind.
package testenv
