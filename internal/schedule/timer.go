package schedule

import (
	"hash/fnv"
	"math/rand/v2"
	"time"
)

// Timer decides when scheduled work runs, as a systemd .timer unit with
// OnCalendar=, RandomizedDelaySec= and Persistent= does. It keeps no
// state: the caller records when the work last started and supplies the
// clock reading, so tests drive it with a fake clock.
type Timer struct {
	// Schedule is when the work is due; nil never elapses.
	Schedule *Schedule
	// RandomizedDelay delays every elapse by a pseudo-random duration in
	// [0, RandomizedDelay), spreading the load of many hosts
	// (RandomizedDelaySec=). Default 0: no delay.
	RandomizedDelay time.Duration
	// Persistent makes an elapse that was missed while the program was
	// not running (or the work was still busy) due at once
	// (Persistent=true). It needs the start of the last run.
	Persistent bool
	// Key, when set, fixes the delay for this timer: the same key always
	// gets the same offset within RandomizedDelay, like systemd's
	// FixedRandomDelay=true (which hashes the machine ID and unit name).
	// Use something unique per host and task, such as
	// machineID + "/backup/daily".
	Key string
	// Rand, when Key is empty, draws the delay in [0, n); nil uses
	// math/rand/v2. Tests inject a deterministic source.
	Rand func(n int64) int64
}

// Next returns when the work should run next: last is when it last
// started (zero if never or unknown) and now is the current time. A
// result not after now means "run now"; the zero Time means never.
//
// Without Persistent, or without a last run, the answer is the first
// elapse after now. With Persistent, it is the first elapse after last;
// if that has already passed, the work is due now (plus the delay), as a
// persistent systemd timer fires at boot for a run it missed.
func (t *Timer) Next(last, now time.Time) time.Time {
	if t.Schedule == nil {
		return time.Time{}
	}
	from := now
	if t.Persistent && !last.IsZero() && last.Before(now) {
		from = last
	}
	e := t.Schedule.Next(from)
	if e.IsZero() {
		return e
	}
	if e.Before(now) {
		e = now // missed while down: catch up now
	}
	return e.Add(t.delay())
}

// Missed reports whether a persistent timer's elapse was missed between
// last and now, so the work is due at once.
func (t *Timer) Missed(last, now time.Time) bool {
	if !t.Persistent || last.IsZero() || t.Schedule == nil {
		return false
	}
	e := t.Schedule.Next(last)
	return !e.IsZero() && !e.After(now)
}

// delay is the randomized delay of one elapse.
func (t *Timer) delay() time.Duration {
	n := int64(t.RandomizedDelay)
	if n <= 0 {
		return 0
	}
	if t.Key != "" {
		h := fnv.New64a()
		_, _ = h.Write([]byte(t.Key))
		return time.Duration(h.Sum64() % uint64(n))
	}
	if t.Rand != nil {
		return time.Duration(t.Rand(n))
	}
	return time.Duration(rand.Int64N(n))
}
