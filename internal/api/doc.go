// Package api is hostd's local API: the wire types the daemon sends and the
// CLI reads, the client that talks to the daemon's unix socket, and the
// server-side helpers for JSON replies, errors and the peer-credential
// permission check.
//
// Routes are versioned (/v1/...). The daemon's route table lives in
// internal/daemon; each service adds its own routes under /v1/<service>/.
package api
