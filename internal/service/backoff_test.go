package service_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/service/servicetest"
)

func TestBackoffDelay(t *testing.T) {
	half := func(n int64) int64 { return n / 2 }
	cases := []struct {
		name string
		b    service.Backoff
		want []time.Duration // Delay(0), Delay(1), ...
	}{
		{"defaults", service.Backoff{}, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute}},
		{"supervisor", service.Backoff{Min: time.Second, Max: 5 * time.Second}, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}},
		{"audio", service.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second}},
		{"min above max", service.Backoff{Min: time.Minute, Max: time.Second}, []time.Duration{time.Second, time.Second}},
		{"full jitter drawn at half", service.Backoff{Min: time.Second, Max: 4 * time.Second, Jitter: 1, Rand: half}, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 2 * time.Second}},
		{"jitter of a tenth", service.Backoff{Min: time.Second, Jitter: 0.1, Rand: half}, []time.Duration{950 * time.Millisecond, 1900 * time.Millisecond}},
		{"jitter above 1 counts as 1", service.Backoff{Min: time.Second, Jitter: 3, Rand: func(n int64) int64 { return n - 1 }}, []time.Duration{1, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for n, want := range c.want {
				if got := c.b.Delay(n); got != want {
					t.Errorf("Delay(%d) = %s, want %s", n, got, want)
				}
			}
		})
	}
}

func TestBackoffDelayNeverOverflows(t *testing.T) {
	b := service.Backoff{Min: time.Hour, Max: math.MaxInt64}
	for _, n := range []int{0, 10, 40, 62, 63, 64, 1000} {
		if d := b.Delay(n); d < time.Hour {
			t.Errorf("Delay(%d) = %s, want at least 1h", n, d)
		}
	}
}

func TestBackoffJitterStaysInRange(t *testing.T) {
	b := service.Backoff{Min: time.Second, Max: time.Second, Jitter: 0.5}
	for range 1000 {
		if d := b.Delay(0); d <= 500*time.Millisecond || d > time.Second {
			t.Fatalf("Delay(0) = %s, want in (500ms, 1s]", d)
		}
	}
}

func TestBackoffNextCountsAndReset(t *testing.T) {
	b := service.Backoff{Min: time.Second, Max: 4 * time.Second}
	var got []time.Duration
	for range 4 {
		got = append(got, b.Next())
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Next #%d = %s, want %s", i, got[i], want[i])
		}
	}
	if b.Attempts() != 4 {
		t.Errorf("Attempts = %d, want 4", b.Attempts())
	}
	b.Reset()
	if b.Attempts() != 0 || b.Next() != time.Second {
		t.Errorf("after Reset: Attempts %d, want the next wait to be Min again", b.Attempts())
	}
}

func TestBackoffWaitsOnTheClock(t *testing.T) {
	clk := servicetest.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	b := service.Backoff{Min: time.Second, Max: time.Minute, Clock: clk}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, want := range []time.Duration{time.Second, 2 * time.Second} {
		done := make(chan error, 1)
		go func() { done <- b.Wait(ctx) }()
		if err := clk.BlockUntil(ctx, 1); err != nil {
			t.Fatal(err)
		}
		clk.Advance(want - 1)
		select {
		case err := <-done:
			t.Fatalf("Wait returned %v before %s passed", err, want)
		default:
		}
		clk.Advance(1)
		if err := <-done; err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}

	stopped, stop := context.WithCancel(ctx)
	stop()
	if err := b.Wait(stopped); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait on an ended context = %v, want context.Canceled", err)
	}
}
