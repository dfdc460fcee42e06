package servicetest_test

import (
	"context"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/service/servicetest"
)

var t0 = time.Date(2025, 6, 1, 2, 0, 0, 0, time.UTC)

// fired returns the value waiting on ch, or the zero Time.
func fired(ch <-chan time.Time) time.Time {
	select {
	case v := <-ch:
		return v
	default:
		return time.Time{}
	}
}

func TestFakeClockFiresDueTimers(t *testing.T) {
	cases := []struct {
		name   string
		timers []time.Duration
		move   func(c *servicetest.FakeClock)
		want   []bool // fired, per timer
	}{
		{"nothing due", []time.Duration{time.Second}, func(c *servicetest.FakeClock) { c.Advance(time.Second - 1) }, []bool{false}},
		{"exactly due", []time.Duration{time.Second}, func(c *servicetest.FakeClock) { c.Advance(time.Second) }, []bool{true}},
		{"some due", []time.Duration{time.Second, time.Hour, time.Minute}, func(c *servicetest.FakeClock) { c.Advance(2 * time.Minute) }, []bool{true, false, true}},
		{"zero fires at once", []time.Duration{0, -time.Second}, func(*servicetest.FakeClock) {}, []bool{true, true}},
		{"set backwards fires nothing", []time.Duration{time.Second}, func(c *servicetest.FakeClock) { c.Set(t0.Add(-time.Hour)) }, []bool{false}},
		{"set forwards", []time.Duration{time.Hour}, func(c *servicetest.FakeClock) { c.Set(t0.Add(2 * time.Hour)) }, []bool{true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := servicetest.NewFakeClock(t0)
			var chans []<-chan time.Time
			for _, d := range tc.timers {
				chans = append(chans, c.After(d))
			}
			tc.move(c)
			armed := 0
			for i, ch := range chans {
				got := !fired(ch).IsZero()
				if got != tc.want[i] {
					t.Errorf("timer %d (%s): fired %v, want %v", i, tc.timers[i], got, tc.want[i])
				}
				if !tc.want[i] {
					armed++
				}
			}
			if c.Waiters() != armed {
				t.Errorf("Waiters = %d, want %d", c.Waiters(), armed)
			}
		})
	}
}

func TestFakeTimerStopAndReset(t *testing.T) {
	c := servicetest.NewFakeClock(t0)
	tm := c.NewTimer(time.Minute)
	if !tm.Stop() || tm.Stop() {
		t.Error("Stop: want true once, then false")
	}
	c.Advance(time.Hour)
	if !fired(tm.C()).IsZero() {
		t.Error("a stopped timer fired")
	}
	if tm.Reset(time.Minute) {
		t.Error("Reset of a stopped timer reported it active")
	}
	if at, ok := c.NextTimer(); !ok || !at.Equal(t0.Add(time.Hour+time.Minute)) {
		t.Errorf("NextTimer = %s %v, want a minute from now", at, ok)
	}
	if !tm.Reset(2 * time.Minute) {
		t.Error("Reset of an armed timer reported it inactive")
	}
	c.Advance(time.Minute)
	if !fired(tm.C()).IsZero() {
		t.Error("a reset timer fired at its old time")
	}
	c.Advance(time.Minute)
	if got := fired(tm.C()); !got.Equal(t0.Add(time.Hour + 2*time.Minute)) {
		t.Errorf("fired with %s, want the clock's time", got)
	}
	if _, ok := c.NextTimer(); ok {
		t.Error("NextTimer after every timer fired: want none")
	}
}

func TestFakeClockBlockUntil(t *testing.T) {
	c := servicetest.NewFakeClock(t0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		c.NewTimer(time.Second)
		c.NewTimer(time.Second)
	}()
	if err := c.BlockUntil(ctx, 2); err != nil {
		t.Fatal(err)
	}
	ended, end := context.WithCancel(ctx)
	end()
	if err := c.BlockUntil(ended, 3); err == nil {
		t.Error("BlockUntil(3) with two timers and an ended context: want an error")
	}
}
