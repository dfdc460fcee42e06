// Package service defines the shape every hostd service has: the Service
// interface the supervisor runs, the Env each service is constructed with,
// the Health reporter it signals readiness through, and the optional
// interfaces for dependencies and HTTP routes.
//
// It owns no behaviour: running, restarting and reporting on services is the
// supervisor's job (internal/supervisor), and each service's logic lives in
// its own package under pkg/.
package service
