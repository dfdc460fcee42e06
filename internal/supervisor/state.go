package supervisor

// State is where a service is in its lifecycle.
type State string

// The states a service can be in.
const (
	// Starting: Serve was called (or is about to be, once the services it
	// needs are ready) and the service has not reported ready yet.
	Starting State = "starting"
	// Ready: the service reported that it works.
	Ready State = "ready"
	// Degraded: the service runs but reported a problem.
	Degraded State = "degraded"
	// Backoff: the service failed and waits before it is restarted.
	Backoff State = "backoff"
	// Stopped: the service is not running: hostd is stopping, or the service
	// failed in a way a restart cannot fix.
	Stopped State = "stopped"
	// Disabled: the service is turned off in the config.
	Disabled State = "disabled"
)

// AllStates lists every state, for metrics.
func AllStates() []State {
	return []State{Starting, Ready, Degraded, Backoff, Stopped, Disabled}
}
