package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thejerf/suture/v4"

	"github.com/hostd/hostd/internal/service"
)

// Options configure a Tree. Zero fields take the defaults in the comments.
type Options struct {
	// Logger receives the tree's log lines; each service's lines carry
	// service=<name>. Default: slog.Default().
	Logger *slog.Logger
	// Clock is the time of "since" fields and of restart backoff waits.
	// Default: service.RealClock.
	Clock service.Clock
	// BackoffMin is the wait before the first restart of a failed service;
	// it doubles with each consecutive failure. Default: 1s.
	BackoffMin time.Duration
	// BackoffMax caps the restart wait. Default: 1m.
	BackoffMax time.Duration
	// StopTimeout is how long a service gets to stop once asked.
	// Default: 10s.
	StopTimeout time.Duration
}

// Tree is hostd's supervisor tree: a suture root with one child per
// service.
type Tree struct {
	opts Options
	log  *slog.Logger
	root *suture.Supervisor
	// backoff is the restart wait of every service; only its Delay is
	// used, with each unit's own count of failures.
	backoff service.Backoff

	mu      sync.Mutex
	units   map[string]*unit
	order   []string
	changes chan struct{}
}

// New returns an empty tree.
func New(opts Options) *Tree {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = service.RealClock{}
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = time.Minute
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 10 * time.Second
	}
	t := &Tree{
		opts: opts, log: opts.Logger, units: map[string]*unit{}, changes: make(chan struct{}),
		backoff: service.Backoff{Min: opts.BackoffMin, Max: opts.BackoffMax},
	}
	t.root = suture.New("hostd", suture.Spec{
		EventHook: t.event,
		Timeout:   opts.StopTimeout,
		// Restart backoff is per service (see runner.waitBackoff); suture's
		// supervisor-wide backoff would pause healthy siblings' restarts.
		FailureThreshold:         math.MaxFloat64,
		FailureDecay:             1,
		DontPropagateTermination: true,
	})
	return t
}

func (t *Tree) now() time.Time { return t.opts.Clock.Now() }

// event turns suture's events into log lines.
func (t *Tree) event(e suture.Event) {
	switch e := e.(type) {
	case suture.EventStopTimeout:
		t.log.Error("service did not stop in time; abandoning it", "service", e.ServiceName, "timeout", t.opts.StopTimeout.String())
	case suture.EventServicePanic:
		t.log.Error("service panicked", "service", e.ServiceName, "panic", e.PanicMsg)
	case suture.EventBackoff:
		t.log.Warn("supervisor backing off")
	}
}

// Builder constructs a service instance, handed the Health it reports
// through.
type Builder func(h service.Health) (service.Service, error)

func (t *Tree) unit(name string) *unit {
	t.mu.Lock()
	defer t.mu.Unlock()
	u, ok := t.units[name]
	if !ok {
		u = &unit{tree: t, name: name, log: t.log.With("service", name), state: Disabled, since: t.now()}
		t.units[name] = u
		t.order = append(t.order, name)
	}
	return u
}

// Set installs the service called name, replacing (stopping) any running
// instance of it. Other services are not touched.
func (t *Tree) Set(name string, build Builder) error {
	u := t.unit(name)
	t.stopUnit(u)
	u.mu.Lock()
	u.generation++
	gen := u.generation
	u.mu.Unlock()
	svc, err := build(&health{u: u, generation: gen})
	if err != nil {
		err = fmt.Errorf("create service %s: %w", name, err)
		u.mu.Lock()
		u.svc = nil
		u.mu.Unlock()
		u.setState(Stopped, err)
		u.log.Error("service not started", "err", err.Error())
		return err
	}
	var needs []string
	if d, ok := svc.(service.Dependent); ok {
		needs = d.Needs()
	}
	u.mu.Lock()
	u.svc = svc
	u.needs = needs
	u.failures = 0
	u.lastErr, u.lastErrAt = "", time.Time{}
	u.state, u.since = Starting, t.now()
	u.token = t.root.Add(&runner{u: u, svc: svc, generation: gen})
	u.hasToken = true
	u.mu.Unlock()
	t.changed()
	return nil
}

// Disable stops the service called name, if it runs, and shows it as
// disabled.
func (t *Tree) Disable(name string) {
	u := t.unit(name)
	t.stopUnit(u)
	u.mu.Lock()
	u.generation++
	u.svc = nil
	u.needs = nil
	u.restarts, u.failures = 0, 0
	u.lastErr, u.lastErrAt = "", time.Time{}
	u.mu.Unlock()
	u.setState(Disabled, nil)
}

func (t *Tree) stopUnit(u *unit) {
	u.mu.Lock()
	tok, has := u.token, u.hasToken
	u.hasToken = false
	u.generation++
	u.mu.Unlock()
	if !has {
		return
	}
	if err := t.root.RemoveAndWait(tok, t.opts.StopTimeout); err != nil && !errors.Is(err, suture.ErrSupervisorNotRunning) {
		u.log.Error("service did not stop in time", "err", err.Error())
	}
}

// Service returns the running instance of the named service, or nil.
func (t *Tree) Service(name string) service.Service {
	t.mu.Lock()
	u, ok := t.units[name]
	t.mu.Unlock()
	if !ok {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.svc
}

// Serve runs the tree until ctx is done, then stops every service (each
// within StopTimeout) and returns.
func (t *Tree) Serve(ctx context.Context) error {
	err := t.root.Serve(ctx)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// Status returns every service's state in registration order.
func (t *Tree) Status() []UnitStatus {
	t.mu.Lock()
	units := make([]*unit, 0, len(t.order))
	for _, n := range t.order {
		units = append(units, t.units[n])
	}
	t.mu.Unlock()
	out := make([]UnitStatus, 0, len(units))
	for _, u := range units {
		out = append(out, u.status())
	}
	return out
}

// NotReady returns the enabled services that are not ready, with why.
func (t *Tree) NotReady() map[string]string {
	out := map[string]string{}
	for _, s := range t.Status() {
		switch s.State {
		case Ready, Disabled:
			continue
		case Starting:
			if len(s.WaitingFor) > 0 {
				out[s.Name] = fmt.Sprintf("waiting for %v", s.WaitingFor)
			} else {
				out[s.Name] = "starting"
			}
		default:
			why := string(s.State)
			if s.LastError != "" {
				why += ": " + s.LastError
			}
			out[s.Name] = why
		}
	}
	return out
}

// Started reports whether every enabled service has got past starting
// (ready, degraded, backing off or stopped).
func (t *Tree) Started() bool {
	for _, s := range t.Status() {
		if s.State == Starting {
			return false
		}
	}
	return true
}

// watch returns a channel closed at the next state change.
func (t *Tree) watch() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changes
}

// Changes returns a channel closed at the next state change of any
// service.
func (t *Tree) Changes() <-chan struct{} { return t.watch() }

func (t *Tree) changed() {
	t.mu.Lock()
	close(t.changes)
	t.changes = make(chan struct{})
	t.mu.Unlock()
}

// ServiceReady implements service.Peers: the named service is ready, or
// is not part of this configuration.
func (t *Tree) ServiceReady(name string) bool { return t.satisfied(name) }

var _ service.Peers = (*Tree)(nil)

// satisfied reports whether a dependency on name is met: the service is
// ready, or is not part of this configuration at all.
func (t *Tree) satisfied(name string) bool {
	t.mu.Lock()
	u, ok := t.units[name]
	t.mu.Unlock()
	if !ok {
		return true
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.state == Ready || u.state == Disabled
}

// Describe implements prometheus.Collector.
func (t *Tree) Describe(ch chan<- *prometheus.Desc) {
	ch <- stateDesc
	ch <- restartsDesc
}

var (
	stateDesc = prometheus.NewDesc("hostd_service_state",
		"Supervision state of each hostd service: 1 for the current state, 0 for the others.",
		[]string{"service", "state"}, nil)
	restartsDesc = prometheus.NewDesc("hostd_service_restarts_total",
		"Times each hostd service was restarted after a failure.",
		[]string{"service"}, nil)
)

// Collect implements prometheus.Collector. It reads each unit's state
// and restarts only, not Status(): that asks every service for its own
// status (the metrics service's reads its TSDB and formats a summary),
// which a collection on every scrape does not need.
func (t *Tree) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	units := make([]*unit, 0, len(t.order))
	for _, n := range t.order {
		units = append(units, t.units[n])
	}
	t.mu.Unlock()
	for _, u := range units {
		u.mu.Lock()
		name, state, restarts := u.name, u.state, u.restarts
		u.mu.Unlock()
		for _, st := range AllStates() {
			v := 0.0
			if state == st {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, v, name, string(st))
		}
		ch <- prometheus.MustNewConstMetric(restartsDesc, prometheus.CounterValue, float64(restarts), name)
	}
}
