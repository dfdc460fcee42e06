package containers

import (
	"testing"
	"time"
)

func TestNextRun(t *testing.T) {
	weekly, err := parseSchedule("weekly") // Mondays 00:00
	if err != nil {
		t.Fatal(err)
	}
	mon := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // a Monday
	tests := []struct {
		name       string
		persistent bool
		last, now  time.Time
		delay      time.Duration
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
			got := nextRun(weekly, tt.persistent, tt.last, tt.now, tt.delay)
			if !got.Equal(tt.want) {
				t.Errorf("nextRun = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRandomDelayBounds(t *testing.T) {
	if d := randomDelay(0); d != 0 {
		t.Fatalf("randomDelay(0) = %v", d)
	}
	for range 100 {
		if d := randomDelay(time.Second); d < 0 || d >= time.Second {
			t.Fatalf("randomDelay(1s) = %v", d)
		}
	}
}
