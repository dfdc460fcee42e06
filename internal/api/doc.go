// Package api is hostd's local API: the wire types the daemon sends and the
// CLI reads, the client that talks to the daemon's unix socket, and the
// server-side helpers for JSON replies, errors and the peer-credential
// permission check.
//
// Every client call has a deadline (DefaultTimeout, DialTimeout, or one
// given WithTimeout) and turns every non-2xx reply into an *HTTPError
// carrying the daemon's message, so a refused request never reads as a
// success. Permissions are declared per route, read or write, in the route
// table of the daemon or of the service that owns the route; the daemon
// checks them (CanWrite) once, before the handler runs.
//
// Routes are versioned (/v1/...) and their paths are declared once, in
// routes.go, for the daemon, the services and the CLI. The daemon's route
// table lives in internal/daemon; each service adds its own routes under
// /v1/<service>/.
package api
