// Package daemontest provides a service whose behaviour a test controls,
// for exercising the supervisor, the daemon and the CLI end to end.
package daemontest
