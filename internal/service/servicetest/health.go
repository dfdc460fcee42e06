package servicetest

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/hostd/hostd/internal/service"
)

// Report is one report a service made to its Health.
type Report struct {
	// Ready is true for Ready, false for Degraded.
	Ready bool
	// Err is the reason given to Degraded; nil for Ready.
	Err error
}

// String is "ready" or "degraded: <reason>".
func (r Report) String() string {
	if r.Ready {
		return "ready"
	}
	return fmt.Sprintf("degraded: %v", r.Err)
}

// Reason is the degraded reason's text, "" for Ready.
func (r Report) Reason() string {
	if r.Err == nil {
		return ""
	}
	return r.Err.Error()
}

// IsReady matches a Ready report.
func IsReady(r Report) bool { return r.Ready }

// IsDegraded matches a Degraded report whose reason contains substr ("":
// any reason).
func IsDegraded(substr string) func(Report) bool {
	return func(r Report) bool { return !r.Ready && strings.Contains(r.Reason(), substr) }
}

// Health is a service.Health that records every report, in order, and
// lets a test wait for one. The zero value is ready to use; it is safe for
// concurrent use.
type Health struct {
	mu      sync.Mutex
	reports []Report
	read    int           // reports Next has consumed
	changed chan struct{} // closed at the next report
}

var _ service.Health = (*Health)(nil)

// Ready implements service.Health.
func (h *Health) Ready() { h.add(Report{Ready: true}) }

// Degraded implements service.Health.
func (h *Health) Degraded(reason error) { h.add(Report{Err: reason}) }

func (h *Health) add(r Report) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reports = append(h.reports, r)
	if h.changed != nil {
		close(h.changed)
		h.changed = nil
	}
}

// watch returns the channel closed at the next report; h.mu is held.
func (h *Health) watch() <-chan struct{} {
	if h.changed == nil {
		h.changed = make(chan struct{})
	}
	return h.changed
}

// Reports returns every report so far, oldest first.
func (h *Health) Reports() []Report {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Report(nil), h.reports...)
}

// Last returns the latest report; ok is false before the first.
func (h *Health) Last() (r Report, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.reports) == 0 {
		return Report{}, false
	}
	return h.reports[len(h.reports)-1], true
}

// Counts returns how many Ready and Degraded reports were made.
func (h *Health) Counts() (ready, degraded int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.reports {
		if r.Ready {
			ready++
		} else {
			degraded++
		}
	}
	return ready, degraded
}

// Wait waits until the latest report matches, and returns it; it returns
// at once when it already does. The error, when ctx ends first, lists the
// reports seen.
func (h *Health) Wait(ctx context.Context, match func(Report) bool) (Report, error) {
	for {
		h.mu.Lock()
		n := len(h.reports)
		var last Report
		if n > 0 {
			last = h.reports[n-1]
		}
		ch := h.watch()
		h.mu.Unlock()
		if n > 0 && match(last) {
			return last, nil
		}
		select {
		case <-ctx.Done():
			return Report{}, h.timeout(ctx)
		case <-ch:
		}
	}
}

// Next waits for the first report not yet returned by Next that matches,
// skipping (and consuming) those that do not, and returns it.
func (h *Health) Next(ctx context.Context, match func(Report) bool) (Report, error) {
	for {
		h.mu.Lock()
		for h.read < len(h.reports) {
			r := h.reports[h.read]
			h.read++
			if match(r) {
				h.mu.Unlock()
				return r, nil
			}
		}
		ch := h.watch()
		h.mu.Unlock()
		select {
		case <-ctx.Done():
			return Report{}, h.timeout(ctx)
		case <-ch:
		}
	}
}

func (h *Health) timeout(ctx context.Context) error {
	rs := h.Reports()
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return fmt.Errorf("wait for a health report (reports so far: %q): %w", s, ctx.Err())
}
