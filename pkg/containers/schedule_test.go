package containers

import (
	"testing"
	"time"

	"github.com/hostd/hostd/internal/service"
)

// TestScheduleTimer checks the timer New builds from auto_prune: when the
// scheduled prune runs next, as a systemd timer with the same OnCalendar=,
// Persistent= and RandomizedDelaySec= would fire.
func TestScheduleTimer(t *testing.T) {
	mon := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // a Monday
	tests := []struct {
		name       string
		persistent bool
		last, now  time.Time
		delay      time.Duration // drawn at half of randomized_delay
		want       time.Time
	}{
		{"first start waits for the next elapse", true, time.Time{}, mon.Add(time.Hour), 0, mon.AddDate(0, 0, 7)},
		{"missed run is due at once when persistent", true, mon.AddDate(0, 0, -8), mon.Add(time.Hour), 0, mon.Add(time.Hour)},
		{"missed run waits when not persistent", false, mon.AddDate(0, 0, -8), mon.Add(time.Hour), 0, mon.AddDate(0, 0, 7)},
		{"ran this week", true, mon.Add(time.Minute), mon.Add(time.Hour), 0, mon.AddDate(0, 0, 7)},
		{"randomized delay added", true, mon.Add(time.Minute), mon.Add(time.Hour), 90 * time.Second, mon.AddDate(0, 0, 7).Add(90 * time.Second)},
		{"randomized delay on catch-up", true, mon.AddDate(0, 0, -8), mon.Add(time.Hour), time.Minute, mon.Add(time.Hour + time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.AutoPrune.Schedule = "weekly" // Mondays 00:00
			cfg.AutoPrune.Persistent = tt.persistent
			cfg.AutoPrune.RandomizedDelay = 2 * tt.delay
			s, err := New(serviceEnv(t), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.eng.Close() })
			s.timer.Rand = func(n int64) int64 { return n / 2 }
			if got := s.timer.Next(tt.last, tt.now); !got.Equal(tt.want) {
				t.Errorf("next run = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestScheduleTimerOff(t *testing.T) {
	cfg := DefaultConfig()
	cfg.AutoPrune.Enable = false
	s, err := New(serviceEnv(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.eng.Close() })
	if s.timer != nil || s.Details().Schedule != "" {
		t.Errorf("auto_prune off: timer %+v, schedule %q", s.timer, s.Details().Schedule)
	}
}

// serviceEnv is an Env for a service that is built but not run.
func serviceEnv(t *testing.T) service.Env { return service.Env{StateDir: t.TempDir()} }
