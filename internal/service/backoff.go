package service

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the exponential wait between attempts of something that
// fails: a service's restarts, a reconnect to a server, a retried push.
// The wait before retry n (0-based) is Min·2ⁿ, capped at Max, shortened by
// up to Jitter of itself.
//
// Delay is a pure function of n. Next, Wait, Reset and Attempts keep the
// count of consecutive failures in the Backoff; they are not safe for
// concurrent use (each loop owns its Backoff).
type Backoff struct {
	// Min is the wait before the first retry. Default: 1s.
	Min time.Duration
	// Max caps the wait. Default: 1m.
	Max time.Duration
	// Jitter in [0, 1] shortens each wait by a random fraction of up to
	// Jitter, so many clients that failed together do not retry together.
	// Default: 0, no jitter.
	Jitter float64
	// Rand draws the jitter in [0, n); nil uses math/rand/v2. Tests
	// inject a deterministic source.
	Rand func(n int64) int64
	// Clock times Wait. Default: RealClock.
	Clock Clock

	attempts int
}

// Delay returns the wait before retry n (0-based): Min doubled n times,
// at most Max, less the jitter.
func (b *Backoff) Delay(n int) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = time.Second
	}
	if hi <= 0 {
		hi = time.Minute
	}
	d := min(lo, hi)
	for i := 0; i < n && d < hi; i++ {
		if d > hi/2 {
			d = hi // doubling would pass the cap (or overflow)
			break
		}
		d *= 2
	}
	if j := min(b.Jitter, 1); j > 0 {
		if span := int64(float64(d) * j); span > 0 {
			d -= time.Duration(b.draw(span))
		}
	}
	return d
}

func (b *Backoff) draw(n int64) int64 {
	if b.Rand != nil {
		return b.Rand(n)
	}
	return rand.Int64N(n)
}

// Next returns the wait before the next retry and counts the failure.
func (b *Backoff) Next() time.Duration {
	d := b.Delay(b.attempts)
	b.attempts++
	return d
}

// Wait counts a failure and waits Next() on the Clock, or until ctx ends
// (it then returns ctx.Err()).
func (b *Backoff) Wait(ctx context.Context) error {
	c := b.Clock
	if c == nil {
		c = RealClock{}
	}
	return Sleep(ctx, c, b.Next())
}

// Reset starts over after a success: the next wait is Min again.
func (b *Backoff) Reset() { b.attempts = 0 }

// Attempts is the number of failures counted since the last Reset.
func (b *Backoff) Attempts() int { return b.attempts }
