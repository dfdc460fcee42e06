// Package daemon is `hostd run`: it loads the config, builds every enabled
// service with its Env, runs them under the supervisor tree, serves the
// local API on the unix socket and health/metrics on the HTTP listener,
// talks to systemd (READY, STATUS, WATCHDOG, STOPPING), and handles
// SIGTERM/SIGINT (stop within the shutdown deadline) and SIGHUP (reload,
// restarting only the services whose section changed).
//
// The main loop never blocks: reloads run beside it with a deadline
// (hostd.reload_timeout), and the loop itself feeds systemd's watchdog. It
// holds an exclusive lock on the state directory and on the socket for its
// whole life, and recreates the socket if the file is deleted.
//
// It owns the process's memory settings: the collector's target
// (hostd.gc_percent), the heap limits of bursts of work (Env.LimitMemory,
// memory.go), the release of the executable's pages (codetrim.go) and a
// memory governor that returns the heap's free pages after bursts and
// collects garbage left at idle (governor.go).
//
// It owns no service logic; the list of services comes from the caller as
// Registrations.
package daemon
