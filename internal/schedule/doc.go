// Package schedule parses systemd calendar expressions (the OnCalendar=
// syntax of systemd.time(7)) and decides when scheduled work runs, the way
// a systemd .timer unit does.
//
// It owns three things:
//
//   - [Parse]: one or more calendar expressions ("daily", "Mon..Fri 02:30",
//     "*-*~01 00/6:00 Europe/Berlin", ...) into a [Schedule];
//   - [Schedule.Next]: the first elapse strictly after a given time, computed
//     exactly as systemd 252's systemd-analyze calendar does, including
//     time zones and daylight-saving transitions;
//   - [Timer]: RandomizedDelaySec= and Persistent= on top of a Schedule, with
//     the clock and the randomness supplied by the caller.
//
// It does not run anything, sleep, or keep state between calls: callers
// (the backup jobs service, the Docker pruner) own their goroutines,
// their clock and the record of when work last ran.
package schedule
