package jobs

import "time"

// clock is the service's time: the current time and a timer. Tests use a
// fake one to drive schedules without sleeping.
type clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed, and a
	// function that releases the timer early.
	After(d time.Duration) (<-chan time.Time, func())
}

// realClock reads Env.Now and waits with runtime timers.
type realClock struct {
	now func() time.Time
}

func (c realClock) Now() time.Time { return c.now() }

func (c realClock) After(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}
