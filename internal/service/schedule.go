package service

import "github.com/hostd/hostd/internal/schedule"

// ScheduleTimer decides when scheduled work runs, as a systemd .timer with
// OnCalendar=, RandomizedDelaySec= and Persistent= does: it is
// internal/schedule's Timer, the one every service with a schedule uses.
// It keeps no state and reads no clock: compute the next run once with
// Next(last, clock.Now()) and wait for it with SleepUntil.
type ScheduleTimer = schedule.Timer

// ParseSchedule parses a calendar expression in systemd's OnCalendar=
// syntax ("daily", "Mon..Fri 02:30", "*-*-* 00/6:00"), for a
// ScheduleTimer's Schedule.
func ParseSchedule(expr string) (*schedule.Schedule, error) {
	// schedule's errors already name the expression.
	return schedule.Parse(expr)
}
