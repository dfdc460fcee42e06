package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/thejerf/suture/v4"

	"github.com/hostd/hostd/internal/service"
)

// UnitStatus is a snapshot of one service's supervision state.
type UnitStatus struct {
	Name        string
	State       State
	Since       time.Time
	Restarts    int
	LastError   string
	LastErrorAt time.Time
	WaitingFor  []string
	Service     service.Status
}

// unit is one supervised service: the suture.Service the tree runs, and
// the service.Health the service reports through.
type unit struct {
	tree *Tree
	name string
	log  *slog.Logger

	mu         sync.Mutex
	svc        service.Service // nil while disabled
	needs      []string
	state      State
	since      time.Time
	restarts   int
	failures   int // consecutive failures, for backoff
	lastErr    string
	lastErrAt  time.Time
	waitingFor []string
	token      suture.ServiceToken
	hasToken   bool
	generation int // bumps when the service instance is replaced
}

var _ suture.Service = (*runner)(nil)
var _ service.Health = (*health)(nil)

// health is the service.Health of one service instance. Reports from an
// instance that has been replaced are ignored.
type health struct {
	u          *unit
	generation int
}

func (h *health) Ready() { h.u.report(h.generation, Ready, nil) }

func (h *health) Degraded(reason error) {
	if reason == nil {
		reason = errors.New("degraded")
	}
	h.u.report(h.generation, Degraded, reason)
}

func (u *unit) report(gen int, s State, reason error) {
	u.mu.Lock()
	if gen != u.generation || (u.state != Starting && u.state != Ready && u.state != Degraded) {
		u.mu.Unlock()
		return
	}
	changed := u.state != s
	if s == Ready && u.state != Ready {
		u.failures = 0
	}
	if reason != nil {
		if u.lastErr != reason.Error() {
			changed = true
		}
		u.lastErr = reason.Error()
		u.lastErrAt = u.tree.now()
	}
	if u.state != s {
		u.state = s
		u.since = u.tree.now()
	}
	u.mu.Unlock()
	if changed {
		if reason != nil {
			u.log.Warn("service degraded", "reason", reason.Error())
		} else {
			u.log.Info("service ready")
		}
		u.tree.changed()
	}
}

func (u *unit) setState(s State, err error) {
	u.mu.Lock()
	if u.state != s {
		u.state = s
		u.since = u.tree.now()
	}
	if err != nil {
		u.lastErr = err.Error()
		u.lastErrAt = u.tree.now()
	}
	u.mu.Unlock()
	u.tree.changed()
}

func (u *unit) status() UnitStatus {
	u.mu.Lock()
	st := UnitStatus{
		Name:        u.name,
		State:       u.state,
		Since:       u.since,
		Restarts:    u.restarts,
		LastError:   u.lastErr,
		LastErrorAt: u.lastErrAt,
		WaitingFor:  append([]string(nil), u.waitingFor...),
	}
	svc := u.svc
	u.mu.Unlock()
	if svc != nil {
		st.Service = svc.Status()
	}
	return st
}

// runner is what suture runs for one service instance.
type runner struct {
	u          *unit
	svc        service.Service
	generation int
}

func (r *runner) String() string { return r.u.name }

// Serve waits for the service's dependencies and its restart backoff, then
// runs the service once. Panics become errors so the tree records them and
// restarts the service.
func (r *runner) Serve(ctx context.Context) (err error) {
	u := r.u
	if err := r.waitBackoff(ctx); err != nil {
		return err
	}
	if err := r.waitDeps(ctx); err != nil {
		return err
	}
	u.mu.Lock()
	if u.generation != r.generation {
		u.mu.Unlock()
		return suture.ErrDoNotRestart
	}
	u.state, u.since = Starting, u.tree.now()
	u.mu.Unlock()
	u.tree.changed()
	u.log.Debug("service starting")

	defer func() {
		if p := recover(); p != nil {
			u.log.Error("service panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
		err = r.finish(ctx, err)
	}()
	return r.svc.Serve(ctx)
}

// finish records how one run of the service ended and decides what the
// tree does next.
func (r *runner) finish(ctx context.Context, err error) error {
	u := r.u
	switch {
	case ctx.Err() != nil:
		u.setState(Stopped, nil)
		u.log.Debug("service stopped")
		return ctx.Err()
	case errors.Is(err, suture.ErrDoNotRestart) || errors.Is(err, suture.ErrTerminateSupervisorTree):
		u.setState(Stopped, err)
		u.log.Error("service stopped for good", "err", err.Error())
		return suture.ErrDoNotRestart
	case err == nil:
		err = errors.New("service returned without being asked to stop")
	}
	u.mu.Lock()
	u.failures++
	u.restarts++
	u.mu.Unlock()
	u.setState(Backoff, err)
	u.log.Error("service failed", "err", err.Error(), "backoff", r.backoff().String())
	return err
}

// backoff is the wait before restarting after the unit's consecutive
// failures: none before the first run, BackoffMin after one failure,
// doubling up to BackoffMax.
func (r *runner) backoff() time.Duration {
	r.u.mu.Lock()
	n := r.u.failures
	r.u.mu.Unlock()
	if n == 0 {
		return 0
	}
	return r.u.tree.backoff.Delay(n - 1)
}

func (r *runner) waitBackoff(ctx context.Context) error {
	d := r.backoff()
	if d <= 0 {
		return nil
	}
	if err := service.Sleep(ctx, r.u.tree.opts.Clock, d); err != nil {
		r.u.setState(Stopped, nil)
		return err
	}
	return nil
}

func (r *runner) waitDeps(ctx context.Context) error {
	u := r.u
	for {
		ch := u.tree.watch()
		var waiting []string
		for _, n := range u.needs {
			if !u.tree.satisfied(n) {
				waiting = append(waiting, n)
			}
		}
		u.mu.Lock()
		prev := len(u.waitingFor)
		u.waitingFor = waiting
		if len(waiting) > 0 && u.state != Starting {
			u.state, u.since = Starting, u.tree.now()
		}
		u.mu.Unlock()
		if len(waiting) == 0 {
			if prev > 0 {
				u.tree.changed()
			}
			return nil
		}
		if prev == 0 {
			u.log.Info("waiting for services", "needs", waiting)
			u.tree.changed()
		}
		select {
		case <-ctx.Done():
			u.mu.Lock()
			u.waitingFor = nil
			u.mu.Unlock()
			u.setState(Stopped, nil)
			return ctx.Err()
		case <-ch:
		}
	}
}
