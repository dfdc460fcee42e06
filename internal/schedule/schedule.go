package schedule

import (
	"fmt"
	"strings"
	"time"
)

// Schedule is a set of calendar expressions; it elapses whenever any of
// them does, like a timer unit with several OnCalendar= lines. The zero
// value never elapses. A Schedule is immutable and safe for concurrent use.
type Schedule struct {
	cals []*calendar
}

// Parse parses one or more systemd calendar expressions separated by ";",
// for example "daily", "Mon..Fri 02:30", "*-*~01 04:00 Europe/Berlin" or
// "Sat 10:00; Sun 12:00". Expressions without a time zone are read in the
// location of the time passed to [Schedule.Next]. The syntax, including
// the shorthands minutely, hourly, daily, weekly, monthly, yearly,
// quarterly and semiannually, is that of systemd.time(7).
func Parse(spec string) (*Schedule, error) {
	s := &Schedule{}
	for _, expr := range strings.Split(spec, ";") {
		if strings.TrimSpace(expr) == "" {
			continue // tolerate "daily;" and "a; ; b"
		}
		c, err := parseCalendar(expr)
		if err != nil {
			return nil, err
		}
		s.cals = append(s.cals, c)
	}
	if len(s.cals) == 0 {
		return nil, fmt.Errorf("%w %q: empty expression", errSyntax, spec)
	}
	return s, nil
}

// MustParse is like [Parse] but panics on error. It is meant for
// expressions fixed in the program text.
func MustParse(spec string) *Schedule {
	s, err := Parse(spec)
	if err != nil {
		panic(fmt.Sprintf("schedule.MustParse: %v", err))
	}
	return s
}

// Next returns the first elapse strictly after t, in t's location. It
// returns the zero Time when the schedule never elapses again (systemd
// stops at the end of year 2199).
func (s *Schedule) Next(t time.Time) time.Time {
	if s == nil {
		return time.Time{}
	}
	// systemd works in microseconds: the search starts one microsecond
	// after t.
	base := t.Truncate(time.Microsecond).Add(time.Microsecond)
	var best time.Time
	for _, c := range s.cals {
		loc := c.loc
		if loc == nil {
			loc = t.Location()
		}
		n, ok := c.next(base, loc)
		if ok && (best.IsZero() || n.Before(best)) {
			best = n
		}
	}
	if best.IsZero() {
		return best
	}
	return best.In(t.Location())
}

// String returns the schedule in systemd's normalized form, expressions
// separated by "; ". Parsing the result gives an equal schedule.
func (s *Schedule) String() string {
	if s == nil {
		return ""
	}
	parts := make([]string, len(s.cals))
	for i, c := range s.cals {
		parts[i] = c.String()
	}
	return strings.Join(parts, "; ")
}
