package containers

import (
	"math/rand/v2"
	"time"

	"github.com/hostd/hostd/internal/schedule"
)

// nexter is the part of a calendar schedule the pruner uses.
type nexter interface {
	Next(after time.Time) time.Time
}

// parseSchedule parses the auto_prune.schedule expression (systemd
// OnCalendar syntax).
func parseSchedule(expr string) (nexter, error) {
	s, err := schedule.Parse(expr)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// nextRun is when the scheduled prune runs next, as a systemd timer with
// the same OnCalendar=, Persistent= and RandomizedDelaySec= would fire:
// a run missed since last (hostd was down) is due at once when persistent;
// otherwise the next elapse after now. delay is the random extra delay
// drawn for this run.
func nextRun(s nexter, persistent bool, last, now time.Time, delay time.Duration) time.Time {
	if persistent && !last.IsZero() {
		if due := s.Next(last); !due.After(now) {
			return now.Add(delay)
		}
	}
	return s.Next(now).Add(delay)
}

// randomDelay draws a delay in [0, max).
func randomDelay(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(max)))
}
