package schedule

import (
	"testing"
	"time"
)

func TestTimerNext(t *testing.T) {
	daily := MustParse("daily UTC")
	at := func(s string) time.Time { return mustUTC(t, s) }
	fixed := func(d time.Duration) func(int64) int64 {
		return func(n int64) int64 { return int64(d) % n }
	}
	tests := []struct {
		name  string
		timer Timer
		last  string // "" = never ran
		now   string
		want  string // "" = never
	}{
		{"first run waits for the elapse", Timer{Schedule: daily}, "", "2024-05-01 10:00:00", "2024-05-02 00:00:00"},
		{"not persistent: a missed run is skipped", Timer{Schedule: daily}, "2024-04-28 00:00:00", "2024-05-01 10:00:00", "2024-05-02 00:00:00"},
		{"persistent: a missed run is due now", Timer{Schedule: daily, Persistent: true}, "2024-04-28 00:00:00", "2024-05-01 10:00:00", "2024-05-01 10:00:00"},
		{"persistent: nothing missed", Timer{Schedule: daily, Persistent: true}, "2024-05-01 00:00:05", "2024-05-01 10:00:00", "2024-05-02 00:00:00"},
		{"persistent without a record waits", Timer{Schedule: daily, Persistent: true}, "", "2024-05-01 10:00:00", "2024-05-02 00:00:00"},
		{"persistent: last run in the future is ignored", Timer{Schedule: daily, Persistent: true}, "2030-01-01 00:00:00", "2024-05-01 10:00:00", "2024-05-02 00:00:00"},
		{"persistent: elapse exactly now", Timer{Schedule: daily, Persistent: true}, "2024-04-30 00:00:00", "2024-05-01 00:00:00", "2024-05-01 00:00:00"},
		{"randomized delay", Timer{Schedule: daily, RandomizedDelay: time.Hour, Rand: fixed(90 * time.Minute)}, "", "2024-05-01 10:00:00", "2024-05-02 00:30:00"},
		{"randomized delay applies to a catch-up", Timer{Schedule: daily, Persistent: true, RandomizedDelay: time.Hour, Rand: fixed(5 * time.Minute)}, "2024-04-28 00:00:00", "2024-05-01 10:00:00", "2024-05-01 10:05:00"},
		{"never again", Timer{Schedule: MustParse("2020-01-01")}, "", "2024-05-01 10:00:00", ""},
		{"no schedule", Timer{}, "", "2024-05-01 10:00:00", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var last time.Time
			if tc.last != "" {
				last = at(tc.last)
			}
			got := tc.timer.Next(last, at(tc.now))
			if tc.want == "" {
				if !got.IsZero() {
					t.Fatalf("Next = %v, want never", got)
				}
				return
			}
			if want := at(tc.want); !got.Equal(want) {
				t.Errorf("Next(%s, %s) = %v, want %v", tc.last, tc.now, got.UTC(), want)
			}
		})
	}
}

func TestTimerMissed(t *testing.T) {
	at := func(s string) time.Time { return mustUTC(t, s) }
	p := Timer{Schedule: MustParse("daily UTC"), Persistent: true}
	if !p.Missed(at("2024-04-28 00:00:00"), at("2024-05-01 10:00:00")) {
		t.Error("Missed = false for a run three days ago")
	}
	if p.Missed(at("2024-05-01 00:00:00"), at("2024-05-01 10:00:00")) {
		t.Error("Missed = true for today's run")
	}
	if p.Missed(time.Time{}, at("2024-05-01 10:00:00")) {
		t.Error("Missed = true without a last run")
	}
	np := Timer{Schedule: p.Schedule}
	if np.Missed(at("2024-04-28 00:00:00"), at("2024-05-01 10:00:00")) {
		t.Error("Missed = true for a timer that is not persistent")
	}
}

// TestTimerKeyFixesDelay checks that a keyed timer always gets the same
// offset, different keys spread over the window, and offsets stay in it.
func TestTimerKeyFixesDelay(t *testing.T) {
	now := mustUTC(t, "2024-05-01 10:00:00")
	elapse := mustUTC(t, "2024-05-02 00:00:00")
	seen := map[time.Duration]bool{}
	for _, key := range []string{"host-a/backup/home", "host-b/backup/home", "host-a/backup/etc", "host-c/prune"} {
		tm := Timer{Schedule: MustParse("daily UTC"), RandomizedDelay: 30 * time.Minute, Key: key}
		d := tm.Next(time.Time{}, now).Sub(elapse)
		if d < 0 || d >= 30*time.Minute {
			t.Fatalf("key %q: delay %v outside [0, 30m)", key, d)
		}
		for range 3 {
			if again := tm.Next(time.Time{}, now).Sub(elapse); again != d {
				t.Fatalf("key %q: delay changed from %v to %v", key, d, again)
			}
		}
		seen[d] = true
	}
	if len(seen) < 3 {
		t.Errorf("four keys share %d delays; the hash does not spread", len(seen))
	}
}

func TestTimerRandomDelayInWindow(t *testing.T) {
	now := mustUTC(t, "2024-05-01 10:00:00")
	elapse := mustUTC(t, "2024-05-02 00:00:00")
	tm := Timer{Schedule: MustParse("daily UTC"), RandomizedDelay: time.Minute}
	for range 200 {
		if d := tm.Next(time.Time{}, now).Sub(elapse); d < 0 || d >= time.Minute {
			t.Fatalf("delay %v outside [0, 1m)", d)
		}
	}
}
