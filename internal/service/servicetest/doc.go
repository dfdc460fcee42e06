// Package servicetest holds the fixtures every service's tests share: a
// FakeClock that tests move by hand (timers fire when the clock passes
// them, never by waiting); a Health recorder that keeps what a service
// reported and lets a test wait for a report; Run, which serves a service
// until the test ends; and Logs, a log sink the test reads back.
//
// It is imported only by tests; the hostd binary never links it. The
// in-process daemon fixture is internal/daemon/daemontest's Start (it
// needs internal/daemon, whose own tests use this package).
package servicetest
