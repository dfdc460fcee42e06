package schedule

import (
	"time"
)

// next returns the smallest value >= v matched by the chain and not above
// max. A nil chain matches every value.
func (ch chain) next(v, max int) (int, bool) {
	if v > max {
		return 0, false
	}
	if ch == nil {
		return v, true
	}
	best, found := 0, false
	for _, c := range ch {
		k := c.start
		if k < v {
			if c.repeat == 0 {
				continue
			}
			k = c.start + c.repeat*((v-c.start+c.repeat-1)/c.repeat)
			if c.stop >= 0 && k > c.stop {
				continue
			}
		}
		if k <= max && (!found || k < best) {
			best, found = k, true
		}
	}
	return best, found
}

// dayChain returns the day chain for a month of dim days: days counted
// back from the end of the month ("~") become ordinary days.
func (c *calendar) dayChain(dim int) chain {
	if !c.endOfMonth {
		return c.day
	}
	out := make(chain, 0, len(c.day))
	for _, d := range c.day {
		if d.stop >= 0 {
			out = append(out, component{start: dim + 1 - d.stop, stop: dim + 1 - d.start, repeat: d.repeat})
		} else {
			out = append(out, component{start: dim + 1 - d.start, stop: -1, repeat: d.repeat})
		}
	}
	return out
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// next returns the first instant at or after base matched by c, reading
// wall clocks in loc. The search walks wall-clock fields from base's
// wall clock upwards, as systemd does: a wall time that does not exist
// (skipped by a daylight-saving change) is passed over, and a wall time
// that exists twice resolves to its earliest instant not before base.
func (c *calendar) next(base time.Time, loc *time.Location) (time.Time, bool) {
	b := base.In(loc)
	by, bmo, bd := b.Date()
	bh, bmi, bs := b.Clock()
	bus := bs*usecPerSec + b.Nanosecond()/1000
	for y, ok := c.year.next(by, maxYear); ok; y, ok = c.year.next(y+1, maxYear) {
		tight := y == by
		m0 := 1
		if tight {
			m0 = int(bmo)
		}
		for m, ok := c.month.next(m0, 12); ok; m, ok = c.month.next(m+1, 12) {
			tight := tight && m == int(bmo)
			dim := daysIn(y, time.Month(m))
			days := c.dayChain(dim)
			d0 := 1
			if tight {
				d0 = bd
			}
			for d, ok := days.next(d0, dim); ok; d, ok = days.next(d+1, dim) {
				if !c.weekdayMatches(y, time.Month(m), d) {
					continue
				}
				tight := tight && d == bd
				t, ok, skipTo := c.nextInDay(base, loc, y, time.Month(m), d, tight, bh, bmi, bus)
				if ok {
					return t, true
				}
				if skipTo.After(base) {
					// The day's next matching wall time fell into a
					// daylight-saving gap: continue from the gap's end.
					return c.next(skipTo, loc)
				}
			}
		}
	}
	return time.Time{}, false
}

// nextInDay searches one day. When a matching wall time does not exist
// because clocks jump forward, it gives up on the day and returns the
// instant the jump ends in skipTo, rather than trying every microsecond
// of the gap.
func (c *calendar) nextInDay(base time.Time, loc *time.Location, y int, m time.Month, d int, tight bool, bh, bmi, bus int) (t time.Time, ok bool, skipTo time.Time) {
	h0 := 0
	if tight {
		h0 = bh
	}
	for h, ok := c.hour.next(h0, 23); ok; h, ok = c.hour.next(h+1, 23) {
		tight := tight && h == bh
		mi0 := 0
		if tight {
			mi0 = bmi
		}
		for mi, ok := c.minute.next(mi0, 59); ok; mi, ok = c.minute.next(mi+1, 59) {
			tight := tight && mi == bmi
			us0 := 0
			if tight {
				us0 = bus
			}
			for us, ok := c.usec.next(us0, 60*usecPerSec-1); ok; us, ok = c.usec.next(us+1, 60*usecPerSec-1) {
				t, ok, gapEnd := resolve(base, loc, y, m, d, h, mi, us)
				if ok {
					return t, true, time.Time{}
				}
				if gapEnd.After(base) {
					return time.Time{}, false, gapEnd
				}
			}
		}
	}
	return time.Time{}, false, time.Time{}
}

func (c *calendar) weekdayMatches(y int, m time.Month, d int) bool {
	if c.weekdays == 0 {
		return true
	}
	wd := time.Date(y, m, d, 12, 0, 0, 0, time.UTC).Weekday()
	bit := (int(wd) + 6) % 7 // Monday = 0
	return c.weekdays&(1<<bit) != 0
}

// resolve turns a wall time in loc into the earliest instant showing that
// wall time that is not before base. For a wall time that does not exist
// it returns the end of the gap it falls into, when known.
func resolve(base time.Time, loc *time.Location, y int, m time.Month, d, h, mi, us int) (best time.Time, found bool, gapEnd time.Time) {
	naive := time.Date(y, m, d, h, mi, us/usecPerSec, (us%usecPerSec)*1000, time.UTC)
	exists := false
	for _, probe := range [...]time.Duration{-24 * time.Hour, 0, 24 * time.Hour} {
		_, off := naive.Add(probe).In(loc).Zone()
		t := naive.Add(-time.Duration(off) * time.Second)
		w := t.In(loc)
		if w.Year() != y || w.Month() != m || w.Day() != d || w.Hour() != h || w.Minute() != mi {
			continue // the wall time does not exist with this offset
		}
		exists = true
		if t.Before(base) {
			continue
		}
		if !found || t.Before(best) {
			best, found = t, true
		}
	}
	if !exists {
		// Read with the offset in force before the jump, the wall time
		// lies after it; the zone period that instant falls in starts
		// where the gap ends.
		_, off := naive.Add(-24 * time.Hour).In(loc).Zone()
		gapEnd, _ = naive.Add(-time.Duration(off) * time.Second).In(loc).ZoneBounds()
	}
	return best, found, gapEnd
}
