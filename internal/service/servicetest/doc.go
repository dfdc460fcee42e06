// Package servicetest holds the fixtures every service's tests share: a
// FakeClock that tests move by hand (timers fire when the clock passes
// them, never by waiting), and a Health recorder that keeps what a
// service reported and lets a test wait for a report.
//
// It is imported only by tests; the hostd binary never links it. The
// in-process daemon fixture is internal/daemon/daemontest's Start (it
// needs internal/daemon, whose own tests use this package).
package servicetest
