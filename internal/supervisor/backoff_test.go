package supervisor

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/service/servicetest"
)

// TestRestartBackoffFollowsTheClock drives restarts with a fake clock: a
// failed service is restarted only once its backoff has passed on the
// clock, and the wait doubles with each consecutive failure.
func TestRestartBackoffFollowsTheClock(t *testing.T) {
	clk := servicetest.NewFakeClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	tr := New(Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clk,
		BackoffMin: time.Second, BackoffMax: 4 * time.Second, StopTimeout: time.Second,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = tr.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	s := &scripted{name: "x", script: []string{"error", "error", "error"}}
	add(t, tr, s)
	wait, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if err := clk.BlockUntil(wait, 1); err != nil {
			t.Fatalf("restart %d: %v", i+1, err)
		}
		at, _ := clk.NextTimer()
		if got := at.Sub(clk.Now()); got != want {
			t.Errorf("restart %d: backoff %s, want %s", i+1, got, want)
		}
		if st := tr.Status()[0]; st.State != Backoff || st.Restarts != i+1 {
			t.Errorf("restart %d: %s with %d restarts, want backoff with %d", i+1, st.State, st.Restarts, i+1)
		}
		clk.Advance(want - time.Nanosecond)
		if runs := s.runs.Load(); runs != int32(i+1) || clk.Waiters() != 1 {
			t.Fatalf("restart %d: %d runs and %d timers before the backoff passed, want %d and 1", i+1, runs, clk.Waiters(), i+1)
		}
		clk.Advance(time.Nanosecond)
	}
	waitState(t, tr, "x", Ready)
	if runs := s.runs.Load(); runs != 4 {
		t.Errorf("%d runs, want 4", runs)
	}
}
