// Package daemontest is the in-process daemon fixture the tests of the CLI
// and of every service share: Start runs hostd's daemon on a private
// directory, socket and HTTP address until the test ends. It also
// provides a service whose behaviour a test controls (Registration), for
// exercising the supervisor, the daemon and the CLI end to end.
//
// It is imported only by tests. The fake clock and the Health recorder
// are in internal/service/servicetest, which internal/daemon's own tests
// can import without a cycle.
package daemontest
