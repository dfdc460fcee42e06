package service

import (
	"testing"
	"time"
)

// NextTick is the first instant after t on the interval's grid, which
// starts when the process did: within one interval of t, before or
// after the grid's start; the ticks of an interval are ticks of its
// divisors, so loops of 1 s and 5 s wake together every fifth second.
func TestNextTick(t *testing.T) {
	for _, iv := range []time.Duration{time.Millisecond, time.Second, 5 * time.Second, 15 * time.Second} {
		for _, from := range []time.Time{
			time.Now(), time.Now().Add(-time.Hour - 123*time.Millisecond), time.Now().Add(48 * time.Hour),
			gridStart, gridStart.Add(-iv), gridStart.Add(-iv / 3), time.Unix(1_700_000_000, 0),
		} {
			next := NextTick(from, iv)
			if !next.After(from) || next.Sub(from) > iv {
				t.Fatalf("NextTick(%v, %v) = %v: %v after", from, iv, next, next.Sub(from))
			}
			if off := next.Sub(gridStart) % iv; off != 0 {
				t.Fatalf("NextTick(%v, %v) = %v: %v off the grid", from, iv, next, off)
			}
		}
	}
	now := time.Now()
	for range 20 {
		five := NextTick(now, 5*time.Second)
		if one := NextTick(five.Add(-time.Second), time.Second); !one.Equal(five) {
			t.Fatalf("the 5 s tick %v is not a 1 s tick (%v)", five, one)
		}
		now = five
	}
	if at := NextTick(now, 0); !at.Equal(now) {
		t.Fatalf("NextTick with no interval = %v, want %v", at, now)
	}
}
