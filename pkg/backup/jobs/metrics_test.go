package jobs

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestScheduleIntervalMetric: hostd_backup_schedule_interval_seconds is
// the job's schedule period (the one its overdue status uses), not
// including the randomized delay, so the default rule's "older than
// twice its schedule" matches the status.
func TestScheduleIntervalMetric(t *testing.T) {
	pw := writeSecret(t, "x")
	job := func(schedule string, delay time.Duration) Job {
		j := testJob("/nonexistent/repo", t.TempDir(), pw)
		j.Schedule = schedule
		j.RandomizedDelay = delay
		return j
	}
	h := newHarness(t, Config{Enable: true, Jobs: map[string]Job{
		"hourly":  job("hourly", 0),
		"daily":   job("*-*-* 02:30:00 UTC", 0),
		"delayed": job("daily UTC", 45*time.Minute),
		"weekly":  job("Sun *-*-* 03:00:00 UTC", 0),
		"yearly":  job("yearly UTC", 0),
	}}, "")
	h.serve()
	h.idle()
	metrics := gatherText(t, h)
	for _, tt := range []struct {
		job  string
		want time.Duration
	}{
		{"hourly", time.Hour},
		{"daily", 24 * time.Hour},
		{"delayed", 24 * time.Hour},
		{"weekly", 7 * 24 * time.Hour},
		{"yearly", 365 * 24 * time.Hour}, // 2026-01-01 to 2027-01-01
	} {
		want := fmt.Sprintf(`hostd_backup_schedule_interval_seconds{job=%q} %v`, tt.job, tt.want.Seconds())
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %s:\n%s", want, metrics)
		}
	}
}
