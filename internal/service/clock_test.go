package service_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/service/servicetest"
)

var t0 = time.Date(2025, 6, 1, 2, 0, 0, 0, time.UTC)

func TestSleep(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	clk := servicetest.NewFakeClock(t0)
	if err := service.Sleep(ctx, clk, 0); err != nil {
		t.Errorf("Sleep(0) = %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- service.Sleep(ctx, clk, time.Minute) }()
	if err := clk.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if err := <-done; err != nil {
		t.Errorf("Sleep = %v", err)
	}
	if n := clk.Waiters(); n != 0 {
		t.Errorf("%d timers left armed", n)
	}

	stopped, stop := context.WithCancel(ctx)
	go func() { done <- service.Sleep(stopped, clk, time.Hour) }()
	if err := clk.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep cancelled = %v, want context.Canceled", err)
	}
	if n := clk.Waiters(); n != 0 {
		t.Errorf("a cancelled Sleep left %d timers armed", n)
	}
}

// TestSleepUntilSteps checks that SleepUntil wakes in steps and reads the
// clock after each: a wall clock that jumps forward ends the wait at the
// next step, not at the end of the first long sleep.
func TestSleepUntilSteps(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cases := []struct {
		name  string
		until time.Duration
		step  time.Duration
		moves []time.Duration // each Advance, after a timer is armed
		want  []time.Duration // the timer armed before each move, from now
	}{
		{"one step", time.Hour, 0, []time.Duration{time.Hour}, []time.Duration{time.Hour}},
		{"minute steps", 150 * time.Second, time.Minute, []time.Duration{time.Minute, time.Minute, 30 * time.Second}, []time.Duration{time.Minute, time.Minute, 30 * time.Second}},
		{"clock jumps past", time.Hour, time.Minute, []time.Duration{2 * time.Hour}, []time.Duration{time.Minute}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := servicetest.NewFakeClock(t0)
			done := make(chan error, 1)
			go func() { done <- service.SleepUntil(ctx, clk, t0.Add(c.until), c.step) }()
			for i, d := range c.moves {
				if err := clk.BlockUntil(ctx, 1); err != nil {
					t.Fatal(err)
				}
				if at, _ := clk.NextTimer(); at.Sub(clk.Now()) != c.want[i] {
					t.Errorf("step %d: timer in %s, want %s", i, at.Sub(clk.Now()), c.want[i])
				}
				clk.Advance(d)
			}
			if err := <-done; err != nil {
				t.Errorf("SleepUntil = %v", err)
			}
		})
	}
}

func TestSleepUntilNeverWaitsForContext(t *testing.T) {
	clk := servicetest.NewFakeClock(t0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.SleepUntil(ctx, clk, time.Time{}, time.Minute) }()
	clk.Advance(24 * time.Hour)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("SleepUntil(zero) = %v, want context.Canceled", err)
	}
	if clk.Waiters() != 0 {
		t.Errorf("SleepUntil(zero) armed a timer")
	}
}

func TestRealClockTimerStops(t *testing.T) {
	var c service.Clock = service.RealClock{}
	tm := c.NewTimer(time.Hour)
	if !tm.Stop() {
		t.Error("Stop of an armed timer = false")
	}
	if tm.Reset(time.Hour); !tm.Stop() {
		t.Error("Stop after Reset = false")
	}
}
