package schedule

import (
	"fmt"
	"strings"
)

var weekdayAbbrev = [7]string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}

// String returns the expression in the normalized form systemd-analyze
// prints.
func (c *calendar) String() string {
	var b strings.Builder
	if c.weekdays != 0 {
		c.formatWeekdays(&b)
		b.WriteByte(' ')
	}
	formatChain(&b, 4, c.year, false)
	b.WriteByte('-')
	formatChain(&b, 2, c.month, false)
	if c.endOfMonth {
		b.WriteByte('~')
	} else {
		b.WriteByte('-')
	}
	formatChain(&b, 2, c.day, false)
	b.WriteByte(' ')
	formatChain(&b, 2, c.hour, false)
	b.WriteByte(':')
	formatChain(&b, 2, c.minute, false)
	b.WriteByte(':')
	formatChain(&b, 2, c.usec, true)
	switch {
	case c.utc:
		b.WriteString(" UTC")
	case c.zone != "":
		b.WriteByte(' ')
		b.WriteString(c.zone)
	}
	return b.String()
}

// formatWeekdays writes runs of three or more days as ranges.
func (c *calendar) formatWeekdays(b *strings.Builder) {
	comma := false
	for x := 0; x < 7; {
		if c.weekdays&(1<<x) == 0 {
			x++
			continue
		}
		end := x
		for end+1 < 7 && c.weekdays&(1<<(end+1)) != 0 {
			end++
		}
		if comma {
			b.WriteByte(',')
		}
		comma = true
		b.WriteString(weekdayAbbrev[x])
		switch {
		case end == x+1:
			b.WriteString("," + weekdayAbbrev[end])
		case end > x+1:
			b.WriteString(".." + weekdayAbbrev[end])
		}
		x = end + 1
	}
}

func formatChain(b *strings.Builder, width int, ch chain, usec bool) {
	if ch == nil {
		b.WriteByte('*')
		return
	}
	d := 1
	if usec {
		d = usecPerSec
		for _, c := range ch {
			if c.start == 0 && c.stop < 0 && c.repeat == usecPerSec {
				b.WriteByte('*')
				return
			}
		}
	}
	for i, c := range ch {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(b, "%0*d", width, c.start/d)
		if c.start%d > 0 {
			fmt.Fprintf(b, ".%06d", c.start%d)
		}
		if c.stop > 0 {
			fmt.Fprintf(b, "..%0*d", width, c.stop/d)
			if c.stop%d > 0 {
				fmt.Fprintf(b, ".%06d", c.stop%d)
			}
		}
		if c.repeat > 0 && !(c.stop > 0 && c.repeat == d) {
			fmt.Fprintf(b, "/%d", c.repeat/d)
		}
		if c.repeat%d > 0 {
			fmt.Fprintf(b, ".%06d", c.repeat%d)
		}
	}
}
