package service

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hostd/hostd/internal/secrets"
)

// Service is one supervised hostd service.
//
// Serve runs until ctx is done and then returns nil or ctx.Err(); it owns
// every goroutine it starts. Returning any other error, or panicking, makes
// the supervisor restart the service with backoff. An error made by
// Permanent (wrapping suture.ErrDoNotRestart) stops the service for good
// (a configuration problem a restart cannot fix).
type Service interface {
	// Name is the service's config section name, for example "backup".
	Name() string
	Serve(ctx context.Context) error
	// Status is a cheap snapshot of the service's key facts, safe for
	// concurrent use.
	Status() Status
}

// Status is the service-specific part of a status report.
type Status struct {
	// Summary is one line of key facts shown by `hostd status`.
	Summary string `json:"summary,omitempty"`
	// Details is a JSON-encodable value with everything else worth showing.
	Details any `json:"details,omitempty"`
}

// Health is how a running service tells the supervisor how it is doing.
type Health interface {
	// Ready reports that the service is fully working.
	Ready()
	// Degraded reports that the service runs but is impaired, and why.
	Degraded(reason error)
}

// Env is what each service is constructed with: hostd's shared facilities,
// scoped to the service.
type Env struct {
	// Logger carries the attribute service=<name>.
	Logger *slog.Logger
	// Clock is the service's time: read it (Now, timers) wherever time
	// matters, so tests can use servicetest.FakeClock.
	Clock Clock
	// Now is Clock.Now, kept for the services that still read it; after
	// WithDefaults the two agree. New code reads Clock.
	Now func() time.Time
	// StateDir is the service's own state directory, already created.
	StateDir string
	// Metrics is a registry owned by this service instance.
	Metrics prometheus.Registerer
	// Gatherer gathers everything hostd publishes.
	Gatherer prometheus.Gatherer
	// Secrets resolves secret references.
	Secrets *secrets.Resolver
	// Health reports readiness to the supervisor.
	Health Health
	// Peers follows the readiness of other services; nil outside the
	// daemon.
	Peers Peers
	// ReleaseMemory gives memory back to the system after a burst of
	// work (a backup job): the Go heap's free pages, and the executable's
	// pages unless hostd.code_trim_interval is 0. Nil outside the daemon.
	ReleaseMemory func()
	// LimitMemory bounds the Go heap during a burst of work that needs
	// about budget bytes more than the daemon holds (a backup job): a
	// soft memory limit of what the runtime holds when the first burst
	// starts plus the largest budget of the bursts under way, and a
	// garbage collector target of at most 50, until every burst has
	// called its restore (the target a minute longer). Nil outside the
	// daemon.
	LimitMemory func(budget int64) (restore func())
}

// WithDefaults returns e with what every service needs filled in where it
// is unset, so a constructor (or a test, or a one-shot CLI run) can be
// handed a partial Env. Each service's New starts with it:
//
//   - Logger discards;
//   - Clock is RealClock, or the real clock reading Now when only Now is
//     set; Now is then always Clock.Now;
//   - Health is NopHealth;
//   - Metrics is a fresh registry, and Gatherer (if unset) gathers it.
//
// StateDir, Secrets, Peers, ReleaseMemory and LimitMemory stay as they
// are: a service that needs them checks them itself.
func (e Env) WithDefaults() Env {
	if e.Logger == nil {
		e.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case e.Clock == nil && e.Now != nil:
		e.Clock = nowClock{now: e.Now}
	case e.Clock == nil:
		e.Clock = RealClock{}
	}
	e.Now = e.Clock.Now
	if e.Health == nil {
		e.Health = NopHealth{}
	}
	if e.Metrics == nil {
		reg := prometheus.NewRegistry()
		e.Metrics = reg
		if e.Gatherer == nil {
			e.Gatherer = reg
		}
	}
	return e
}

// Peers lets a service follow the services it needs after it has started:
// a backup to a remote repository waits while the network is offline.
type Peers interface {
	// ServiceReady reports whether the named service is ready; a service
	// that is not part of the config counts as ready.
	ServiceReady(name string) bool
	// Changes returns a channel closed at the next state change of any
	// service.
	Changes() <-chan struct{}
}

// WaitReady blocks until the named peer is ready or ctx ends.
func WaitReady(ctx context.Context, p Peers, name string) error {
	for {
		ch := p.Changes()
		if p.ServiceReady(name) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Dependent is implemented by services that need others to be ready before
// they start.
type Dependent interface {
	Needs() []string
}

// PublicHTTP is implemented by services that serve on the HTTP listener
// ("/" and "/api/"). Only the metrics service does.
type PublicHTTP interface {
	PublicHTTP() http.Handler
}

// NopHealth is a Health that discards reports, for using a service outside
// the supervisor (a one-shot CLI run).
type NopHealth struct{}

// Ready implements Health.
func (NopHealth) Ready() {}

// Degraded implements Health.
func (NopHealth) Degraded(error) {}
