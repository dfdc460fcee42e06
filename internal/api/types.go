package api

import (
	"encoding/json"
	"time"
)

// Status is the reply of GET /v1/status on the socket and GET /status on
// the HTTP listener.
type Status struct {
	// Version is hostd's version.
	Version string `json:"version"`
	// PID is the daemon's process ID.
	PID int `json:"pid"`
	// StartedAt is when the daemon started.
	StartedAt time.Time `json:"started_at"`
	// UptimeSeconds is how long the daemon has run.
	UptimeSeconds float64 `json:"uptime_seconds"`
	// ConfigFile is the config file in use; empty for embedded defaults.
	ConfigFile string `json:"config_file"`
	// ConfigLoadedAt is when the config in use was read.
	ConfigLoadedAt time.Time `json:"config_loaded_at"`
	// StateDir is where hostd keeps its data.
	StateDir string `json:"state_dir"`
	// Ready is true when every enabled service is ready.
	Ready bool `json:"ready"`
	// Services is every known service, in start order.
	Services []ServiceStatus `json:"services"`
}

// ServiceStatus is one service's entry in Status.
type ServiceStatus struct {
	// Name is the service's config section name.
	Name string `json:"name"`
	// State is one of starting, ready, degraded, backoff, stopped, disabled.
	State string `json:"state"`
	// Since is when the service entered State.
	Since time.Time `json:"since"`
	// Restarts counts restarts after failures.
	Restarts int `json:"restarts"`
	// LastError is the most recent failure or degradation reason.
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt is when LastError happened.
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	// WaitingFor names services this one waits for before starting.
	WaitingFor []string `json:"waiting_for,omitempty"`
	// Summary is one line of the service's key facts.
	Summary string `json:"summary,omitempty"`
	// Details is the service's own status object.
	Details json.RawMessage `json:"details,omitempty"`
}

// Ready is the reply of GET /readyz.
type Ready struct {
	Ready bool `json:"ready"`
	// NotReady maps each enabled service that is not ready to why.
	NotReady map[string]string `json:"not_ready,omitempty"`
}

// Error is the body of every error reply.
type Error struct {
	Error string `json:"error"`
}

// Version is the reply of GET /v1/version.
type Version struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	Commit    string `json:"commit,omitempty"`
}

// ConfigReload is the reply of POST /v1/config/reload.
type ConfigReload struct {
	// Restarted names the services whose config section changed.
	Restarted []string `json:"restarted"`
	// Errors are the problems of a rejected config.
	Errors []string `json:"errors,omitempty"`
	// Error is set, with Errors, when the config was rejected (the reply
	// is then 422), so the reply reads as an Error too.
	Error string `json:"error,omitempty"`
}
