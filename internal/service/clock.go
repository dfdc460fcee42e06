package service

import (
	"context"
	"time"
)

// Clock is a service's time: the current time and timers. Everything that
// depends on time (schedules, backoff, retention, caches, "since" fields)
// reads it from the Env's Clock, so tests drive it with
// servicetest.FakeClock instead of sleeping.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives the time once d has passed.
	// The timer cannot be stopped early; use NewTimer where a loop may
	// leave before it fires.
	After(d time.Duration) <-chan time.Time
	// NewTimer returns a timer that fires once d has passed.
	NewTimer(d time.Duration) Timer
}

// Timer is a Clock's one-shot timer, as time.Timer.
type Timer interface {
	// C receives the time when the timer fires.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether the call
	// stopped the timer (false: it had already fired or been stopped).
	Stop() bool
	// Reset makes the timer fire d from now; it reports whether the timer
	// had been active.
	Reset(d time.Duration) bool
}

// RealClock is the system clock: time.Now and runtime timers.
type RealClock struct{}

var _ Clock = RealClock{}

// Now implements Clock.
func (RealClock) Now() time.Time { return time.Now() }

// After implements Clock.
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// NewTimer implements Clock.
func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time        { return t.t.C }
func (t realTimer) Stop() bool                 { return t.t.Stop() }
func (t realTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

// nowClock is the real clock with another source of the current time: the
// Clock of an Env that only sets the older Now field.
type nowClock struct {
	RealClock
	now func() time.Time
}

func (c nowClock) Now() time.Time { return c.now() }

// Sleep waits on c until d has passed or ctx ends; it returns ctx.Err() in
// the second case. A d of zero or less returns at once (nil unless ctx has
// ended).
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

// gridStart is where the grid of NextTick starts: when the process
// started. Set once, never changed.
var gridStart = time.Now()

// NextTick returns the first instant after t on interval's grid: the
// multiples of interval from when the process started, which hostd's
// periodic loops tick on. Loops of one interval (or of its multiples)
// then wake at the same moment, and the process wakes once a second for
// all its every-second work instead of once per loop: a wake-up of an
// idle Go process (the scheduler finding the timer, the runtime's
// monitor thread polling until all is idle again) costs more than such
// a loop's own work. Hosts started at different moments do not tick
// together. An interval of zero or less returns t.
func NextTick(t time.Time, interval time.Duration) time.Time {
	if interval <= 0 {
		return t
	}
	d := t.Sub(gridStart)
	k := d / interval
	if d < 0 && d%interval != 0 {
		k-- // the multiple at or before t
	}
	return gridStart.Add((k + 1) * interval)
}

// SleepUntil waits on c until its time reaches at, or ctx ends (it then
// returns ctx.Err()). It sleeps in steps of at most step (0: one step) and
// reads the clock again after each, so a wall clock that jumps (suspend,
// NTP) delays the wake-up by at most step. The zero Time is never
// reached (ScheduleTimer.Next's "never"): it waits until ctx ends.
func SleepUntil(ctx context.Context, c Clock, at time.Time, step time.Duration) error {
	if at.IsZero() {
		<-ctx.Done()
		return ctx.Err()
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := at.Sub(c.Now())
		if d <= 0 {
			return nil
		}
		if step > 0 {
			d = min(d, step)
		}
		if err := Sleep(ctx, c, d); err != nil {
			return err
		}
	}
}
