package servicetest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/service/servicetest"
)

func TestHealthRecords(t *testing.T) {
	var h servicetest.Health
	if _, ok := h.Last(); ok {
		t.Error("Last before any report: want none")
	}
	h.Degraded(errors.New("engine down"))
	h.Ready()
	h.Degraded(errors.New("disk full"))
	got := h.Reports()
	want := []string{"degraded: engine down", "ready", "degraded: disk full"}
	if len(got) != len(want) {
		t.Fatalf("Reports = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("report %d = %q, want %q", i, got[i], want[i])
		}
	}
	if last, _ := h.Last(); last.Reason() != "disk full" {
		t.Errorf("Last = %v", last)
	}
	if r, d := h.Counts(); r != 1 || d != 2 {
		t.Errorf("Counts = %d, %d; want 1, 2", r, d)
	}
}

func TestHealthWaitAndNext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var h servicetest.Health
	go func() {
		h.Degraded(errors.New("engine down"))
		h.Ready()
	}()
	if _, err := h.Wait(ctx, servicetest.IsReady); err != nil {
		t.Fatal(err)
	}
	// Next sees every report in order, even those Wait skipped.
	r, err := h.Next(ctx, servicetest.IsDegraded("engine"))
	if err != nil || r.Reason() != "engine down" {
		t.Fatalf("Next = %v, %v", r, err)
	}
	if r, err := h.Next(ctx, servicetest.IsReady); err != nil || !r.Ready {
		t.Fatalf("Next = %v, %v", r, err)
	}
	ended, end := context.WithCancel(ctx)
	end()
	if _, err := h.Next(ended, servicetest.IsReady); err == nil {
		t.Error("Next with no report left and an ended context: want an error")
	}
	if _, err := h.Wait(ended, servicetest.IsDegraded("")); err == nil {
		t.Error("Wait for degraded while ready, context ended: want an error")
	}
}
