package servicetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hostd/hostd/internal/service"
)

// FakeClock is a service.Clock that moves only when the test moves it.
// Set and Advance fire every timer whose time has come, earliest first,
// before they return; a timer's channel holds one value, as time.Timer's
// does. It is safe for concurrent use.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	seq     int // orders timers of the same instant by creation
	timers  []*fakeTimer
	changed chan struct{} // closed when a timer is added
}

var _ service.Clock = (*FakeClock)(nil)

// NewFakeClock returns a clock that reads t.
func NewFakeClock(t time.Time) *FakeClock {
	return &FakeClock{now: t, changed: make(chan struct{})}
}

// Now implements service.Clock.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After implements service.Clock.
func (c *FakeClock) After(d time.Duration) <-chan time.Time { return c.NewTimer(d).C() }

// NewTimer implements service.Clock. A timer of d <= 0 fires at once.
func (c *FakeClock) NewTimer(d time.Duration) service.Timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.schedule(t, d)
	return t
}

// schedule arms t to fire d from now; c.mu is held.
func (c *FakeClock) schedule(t *fakeTimer, d time.Duration) {
	if d <= 0 {
		t.fire(c.now)
		return
	}
	c.seq++
	t.at, t.seq = c.now.Add(d), c.seq
	c.timers = append(c.timers, t)
	close(c.changed)
	c.changed = make(chan struct{})
}

// remove disarms t; it reports whether t was armed. c.mu is held.
func (c *FakeClock) remove(t *fakeTimer) bool {
	i := slices.Index(c.timers, t)
	if i < 0 {
		return false
	}
	c.timers = slices.Delete(c.timers, i, i+1)
	return true
}

// Set moves the clock to t (backwards too, as a wall clock may jump) and
// fires every timer due by then, earliest first.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	slices.SortFunc(c.timers, func(a, b *fakeTimer) int {
		if o := a.at.Compare(b.at); o != 0 {
			return o
		}
		return a.seq - b.seq
	})
	n := 0
	for n < len(c.timers) && !c.timers[n].at.After(t) {
		c.timers[n].fire(t)
		n++
	}
	c.timers = slices.Delete(c.timers, 0, n)
}

// Advance moves the clock forward by d and fires the timers due by then.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	t := c.now.Add(d)
	c.mu.Unlock()
	c.Set(t)
}

// Waiters is the number of armed timers: a loop waiting on the clock has
// one.
func (c *FakeClock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// NextTimer returns when the earliest armed timer fires; ok is false when
// none is armed.
func (c *FakeClock) NextTimer() (at time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.timers {
		if !ok || t.at.Before(at) {
			at, ok = t.at, true
		}
	}
	return at, ok
}

// BlockUntil waits until at least n timers are armed (the goroutines under
// test have reached their wait), or ctx ends. It synchronises a test with
// the code it drives; it does not let time pass.
func (c *FakeClock) BlockUntil(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		armed, ch := len(c.timers), c.changed
		c.mu.Unlock()
		if armed >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %d timers (%d armed): %w", n, armed, ctx.Err())
		case <-ch:
		}
	}
}

type fakeTimer struct {
	c   *FakeClock
	ch  chan time.Time
	at  time.Time
	seq int
}

// fire sends the time without blocking: an unread earlier value stays.
func (t *fakeTimer) fire(now time.Time) {
	select {
	case t.ch <- now:
	default:
	}
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.c.remove(t)
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	active := t.c.remove(t)
	t.c.schedule(t, d)
	return active
}
