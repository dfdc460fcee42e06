package schedule

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits of systemd's calendar expressions.
const (
	minYear = 1970
	maxYear = 2199
	// maxComponents bounds the length of a comma-separated list, as systemd
	// does, so a hostile expression cannot make Next slow.
	maxComponents = 240
	usecPerSec    = 1_000_000
)

// component is one element of a comma-separated list: a single value
// (stop < 0, repeat == 0), a repetition "start/repeat", or a range
// "start..stop[/repeat]". Seconds are kept in microseconds.
type component struct {
	start, stop, repeat int
}

// chain is a comma-separated list of components; nil matches every value.
type chain []component

// calendar is one parsed calendar expression.
type calendar struct {
	weekdays   uint8 // bit 0 = Monday ... bit 6 = Sunday; 0 = any day
	year       chain
	month      chain
	day        chain
	endOfMonth bool // day counts back from the end of the month ("~")
	hour       chain
	minute     chain
	usec       chain // second of the minute, in microseconds

	utc  bool
	zone string         // time zone name, "" for the caller's zone
	loc  *time.Location // loaded zone; nil means the location of t in Next
}

// shorthands maps systemd's special expressions to their normalized form.
var shorthands = map[string]string{
	"minutely":      "*-*-* *:*:00",
	"hourly":        "*-*-* *:00:00",
	"daily":         "*-*-* 00:00:00",
	"monthly":       "*-*-01 00:00:00",
	"weekly":        "Mon *-*-* 00:00:00",
	"yearly":        "*-01-01 00:00:00",
	"annually":      "*-01-01 00:00:00",
	"anually":       "*-01-01 00:00:00",
	"quarterly":     "*-01,04,07,10-01 00:00:00",
	"semiannually":  "*-01,07-01 00:00:00",
	"semi-annually": "*-01,07-01 00:00:00",
	"biannually":    "*-01,07-01 00:00:00",
	"bi-annually":   "*-01,07-01 00:00:00",
}

var weekdayNames = []struct {
	name string
	nr   int
}{
	{"monday", 0}, {"mon", 0},
	{"tuesday", 1}, {"tue", 1},
	{"wednesday", 2}, {"wed", 2},
	{"thursday", 3}, {"thu", 3},
	{"friday", 4}, {"fri", 4},
	{"saturday", 5}, {"sat", 5},
	{"sunday", 6}, {"sun", 6},
}

// errSyntax is wrapped by every parse error so callers can test for it.
var errSyntax = errors.New("invalid calendar expression")

// parseCalendar parses one calendar expression.
func parseCalendar(expr string) (*calendar, error) {
	c, err := parseCalendarRaw(expr)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %s", errSyntax, expr, err)
	}
	return c, nil
}

func parseCalendarRaw(expr string) (*calendar, error) {
	s := strings.TrimSpace(expr)
	if s == "" {
		return nil, errors.New("empty expression")
	}
	c := &calendar{}
	if err := c.parseZone(&s); err != nil {
		return nil, err
	}
	if s == "" {
		return nil, errors.New("time zone without a date or time")
	}
	if norm, ok := shorthands[strings.ToLower(s)]; ok {
		s = norm
	}
	p := &parser{s: s}
	if err := c.parseWeekdays(p); err != nil {
		return nil, err
	}
	if p.peek() == '@' {
		if err := c.parseTimestamp(p); err != nil {
			return nil, err
		}
	} else {
		if err := c.parseDate(p); err != nil {
			return nil, err
		}
		if err := c.parseTime(p); err != nil {
			return nil, err
		}
	}
	if !p.eof() {
		return nil, fmt.Errorf("unexpected %q at column %d", p.rest(), p.i+1)
	}
	c.normalize()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// parseZone strips a trailing " UTC" or " Area/City" from s.
func (c *calendar) parseZone(s *string) error {
	i := strings.LastIndexByte(*s, ' ')
	if i < 0 {
		return nil
	}
	name := (*s)[i+1:]
	if strings.EqualFold(name, "UTC") {
		c.utc = true
		c.loc = time.UTC
		*s = strings.TrimRight((*s)[:i], " ")
		return nil
	}
	if name == "" || !isLetter(name[0]) || isWeekdayList(name) {
		return nil
	}
	if _, short := shorthands[strings.ToLower(name)]; short {
		return nil
	}
	if name == "Local" {
		return fmt.Errorf("unknown time zone %q", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return fmt.Errorf("unknown time zone %q", name)
	}
	c.zone, c.loc = name, loc
	*s = strings.TrimRight((*s)[:i], " ")
	return nil
}

func isLetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

// isWeekdayList reports whether s starts with a weekday name, so
// "Mon,Fri" is not mistaken for a time zone.
func isWeekdayList(s string) bool {
	_, _, ok := matchWeekday(s)
	return ok
}

func matchWeekday(s string) (nr, n int, ok bool) {
	for _, w := range weekdayNames {
		if len(s) >= len(w.name) && strings.EqualFold(s[:len(w.name)], w.name) {
			return w.nr, len(w.name), true
		}
	}
	return 0, 0, false
}

type parser struct {
	s string
	i int
}

func (p *parser) eof() bool    { return p.i >= len(p.s) }
func (p *parser) rest() string { return p.s[p.i:] }
func (p *parser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.i]
}
func (p *parser) peekAt(k int) byte {
	if p.i+k >= len(p.s) {
		return 0
	}
	return p.s[p.i+k]
}
func (p *parser) skipSpaces() {
	for p.peek() == ' ' {
		p.i++
	}
}

// parseWeekdays parses an optional leading weekday list: "Mon,Fri",
// "Mon..Fri", "Mon-Fri", "Monday".
func (c *calendar) parseWeekdays(p *parser) error {
	last := -1 // start of an open range
	first := true
	for {
		nr, n, ok := matchWeekday(p.rest())
		if !ok {
			if first {
				return nil
			}
			return fmt.Errorf("expected a weekday at column %d", p.i+1)
		}
		switch p.peekAt(n) {
		case 0, '-', '.', ',', ' ':
		default:
			return fmt.Errorf("unknown weekday %q", strings.FieldsFunc(p.rest(), func(r rune) bool { return r == ' ' || r == ',' })[0])
		}
		c.weekdays |= 1 << nr
		if last >= 0 {
			if last > nr {
				return fmt.Errorf("weekday range ends before it starts at column %d", p.i+1)
			}
			for j := last + 1; j < nr; j++ {
				c.weekdays |= 1 << j
			}
		}
		p.i += n
		switch p.peek() {
		case 0:
			return nil
		case ' ':
			p.skipSpaces()
			return nil
		case '.':
			if last >= 0 {
				return fmt.Errorf("weekday range with more than two ends at column %d", p.i+1)
			}
			if p.peekAt(1) != '.' {
				return fmt.Errorf("expected \"..\" at column %d", p.i+1)
			}
			last = nr
			p.i += 2
		case '-':
			if last >= 0 {
				return fmt.Errorf("weekday range with more than two ends at column %d", p.i+1)
			}
			last = nr
			p.i++
		case ',':
			last = -1
			p.i++
		}
		if p.eof() || p.peek() == ' ' {
			if last >= 0 {
				return errors.New("weekday range without an end")
			}
			p.skipSpaces()
			return nil
		}
		first = false
	}
}

// parseTimestamp parses "@SECONDS": one instant, in UTC.
func (c *calendar) parseTimestamp(p *parser) error {
	p.i++
	start := p.i
	for !p.eof() && p.peek() >= '0' && p.peek() <= '9' {
		p.i++
	}
	secs, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
	if err != nil || secs > 1<<40 {
		return fmt.Errorf("bad timestamp %q", p.s[start-1:])
	}
	t := time.Unix(secs, 0).UTC()
	one := func(v int) chain { return chain{{start: v, stop: -1}} }
	c.year, c.month, c.day = one(t.Year()), one(int(t.Month())), one(t.Day())
	c.hour, c.minute, c.usec = one(t.Hour()), one(t.Minute()), one(t.Second()*usecPerSec)
	c.utc, c.loc, c.zone = true, time.UTC, ""
	return nil
}

// parseDate parses an optional "[YEAR-]MONTH-DAY" (or "~" before DAY for
// days counted from the end of the month). If what follows is a time, it
// consumes nothing.
func (c *calendar) parseDate(p *parser) error {
	if p.eof() {
		return nil
	}
	save := p.i
	first, err := parseChain(p, "year or month", false)
	if err != nil {
		return err
	}
	if p.eof() || p.peek() == ':' {
		p.i = save // a time, not a date
		return nil
	}
	switch p.peek() {
	case '~':
		c.endOfMonth = true
	case '-':
	default:
		return fmt.Errorf("unexpected %q at column %d", p.rest(), p.i+1)
	}
	p.i++
	second, err := parseChain(p, "month or day", false)
	if err != nil {
		return err
	}
	if p.eof() || p.peek() == ' ' {
		p.skipSpaces()
		c.month, c.day = first, second
		return nil
	}
	if c.endOfMonth {
		return fmt.Errorf("\"~\" must separate month and day, at column %d", p.i+1)
	}
	switch p.peek() {
	case '~':
		c.endOfMonth = true
	case '-':
	default:
		return fmt.Errorf("unexpected %q at column %d", p.rest(), p.i+1)
	}
	p.i++
	third, err := parseChain(p, "day", false)
	if err != nil {
		return err
	}
	if !p.eof() && p.peek() != ' ' {
		return fmt.Errorf("unexpected %q at column %d", p.rest(), p.i+1)
	}
	p.skipSpaces()
	c.year, c.month, c.day = first, second, third
	return nil
}

// parseTime parses an optional "HOUR:MINUTE[:SECOND]"; no time means
// 00:00:00.
func (c *calendar) parseTime(p *parser) error {
	zero := chain{{start: 0, stop: -1}}
	if p.eof() {
		c.hour, c.minute, c.usec = zero, zero, zero
		return nil
	}
	h, err := parseChain(p, "hour", false)
	if err != nil {
		return err
	}
	if p.peek() != ':' {
		return fmt.Errorf("expected \":\" after the hour at column %d", p.i+1)
	}
	p.i++
	m, err := parseChain(p, "minute", false)
	if err != nil {
		return err
	}
	c.hour, c.minute, c.usec = h, m, zero
	if p.eof() {
		return nil
	}
	if p.peek() != ':' {
		return fmt.Errorf("unexpected %q at column %d", p.rest(), p.i+1)
	}
	p.i++
	s, err := parseChain(p, "second", true)
	if err != nil {
		return err
	}
	c.usec = s
	return nil
}

// parseChain parses "*" or a comma-separated list of components.
func parseChain(p *parser, field string, usec bool) (chain, error) {
	if p.peek() == '*' {
		p.i++
		if usec {
			return chain{{start: 0, stop: -1, repeat: usecPerSec}}, nil
		}
		return nil, nil
	}
	var ch chain
	for {
		if len(ch) >= maxComponents {
			return nil, fmt.Errorf("%s list longer than %d values", field, maxComponents)
		}
		comp, err := parseComponent(p, field, usec)
		if err != nil {
			return nil, err
		}
		ch = append(ch, comp)
		if p.peek() != ',' {
			return ch, nil
		}
		p.i++
	}
}

func parseComponent(p *parser, field string, usec bool) (component, error) {
	comp := component{stop: -1}
	var err error
	if comp.start, err = parseNumber(p, field, usec); err != nil {
		return comp, err
	}
	if p.peek() == '.' && p.peekAt(1) == '.' {
		p.i += 2
		if comp.stop, err = parseNumber(p, field, usec); err != nil {
			return comp, err
		}
		comp.repeat = 1
		if usec {
			comp.repeat = usecPerSec
		}
	}
	if p.peek() == '/' {
		p.i++
		if comp.repeat, err = parseNumber(p, field, usec); err != nil {
			return comp, err
		}
		if comp.repeat == 0 {
			return comp, fmt.Errorf("%s step must not be zero", field)
		}
	}
	switch p.peek() {
	case 0, ' ', ',', '-', '~', ':':
		return comp, nil
	}
	return comp, fmt.Errorf("unexpected %q in %s at column %d", p.rest(), field, p.i+1)
}

// parseNumber parses a decimal; for seconds, with up to six fractional
// digits (more are rounded), returned in microseconds.
func parseNumber(p *parser, field string, usec bool) (int, error) {
	start := p.i
	for !p.eof() && p.peek() >= '0' && p.peek() <= '9' {
		p.i++
	}
	if p.i == start {
		if p.eof() {
			return 0, fmt.Errorf("missing %s at end of expression", field)
		}
		return 0, fmt.Errorf("expected a number for %s at column %d, found %q", field, start+1, p.rest())
	}
	v, err := strconv.Atoi(p.s[start:p.i])
	if err != nil || v > 1<<30 {
		return 0, fmt.Errorf("%s %s is too large", field, p.s[start:p.i])
	}
	if !usec {
		return v, nil
	}
	if v > 1<<30/usecPerSec {
		return 0, fmt.Errorf("%s %s is too large", field, p.s[start:p.i])
	}
	v *= usecPerSec
	if p.peek() == '.' && p.peekAt(1) != '.' {
		p.i++
		fracStart := p.i
		for !p.eof() && p.peek() >= '0' && p.peek() <= '9' {
			p.i++
		}
		digits := p.s[fracStart:p.i]
		if digits == "" {
			return 0, fmt.Errorf("missing digits after the decimal point of %s at column %d", field, fracStart+1)
		}
		frac := 0
		for k := 0; k < 6; k++ {
			frac *= 10
			if k < len(digits) {
				frac += int(digits[k] - '0')
			}
		}
		if len(digits) > 6 && digits[6] >= '5' {
			frac++
		}
		v += frac
	}
	return v, nil
}

// normalize brings c into the canonical form systemd prints, so equal
// schedules print equally.
func (c *calendar) normalize() {
	if c.zone == "UTC" {
		c.utc, c.zone = true, ""
	}
	if c.weekdays == 0x7f {
		c.weekdays = 0
	}
	if c.endOfMonth && c.day == nil {
		c.endOfMonth = false
	}
	for i := range c.year {
		c.year[i].start = fixYear(c.year[i].start)
		c.year[i].stop = fixYear(c.year[i].stop)
	}
	for _, ch := range []*chain{&c.year, &c.month, &c.day, &c.hour, &c.minute, &c.usec} {
		*ch = normalizeChain(*ch)
	}
}

// fixYear turns two-digit years into 1970..2069, as systemd does.
func fixYear(y int) int {
	switch {
	case y >= 0 && y < 70:
		return y + 2000
	case y >= 70 && y < 100:
		return y + 1900
	}
	return y
}

func normalizeChain(ch chain) chain {
	if ch == nil {
		return nil
	}
	for i := range ch {
		c := &ch[i]
		if c.stop > c.start && c.repeat > 0 {
			c.stop -= (c.stop - c.start) % c.repeat
		}
		if c.stop > c.start && c.repeat > 0 && c.start+c.repeat > c.stop || c.start == c.stop {
			c.repeat, c.stop = 0, -1
		}
	}
	slices.SortFunc(ch, func(a, b component) int {
		if a.start != b.start {
			return a.start - b.start
		}
		if a.stop != b.stop {
			return a.stop - b.stop
		}
		return a.repeat - b.repeat
	})
	return slices.Compact(ch)
}

// validate applies systemd's bounds to every field.
func (c *calendar) validate() error {
	checks := []struct {
		name     string
		ch       chain
		from, to int
		eom      bool
	}{
		{"year", c.year, minYear, maxYear, false},
		{"month", c.month, 1, 12, false},
		{"day", c.day, 1, 31, c.endOfMonth},
		{"hour", c.hour, 0, 23, false},
		{"minute", c.minute, 0, 59, false},
		{"second", c.usec, 0, 60*usecPerSec - 1, false},
	}
	for _, k := range checks {
		if err := validateChain(k.name, k.ch, k.from, k.to, k.eom); err != nil {
			return err
		}
	}
	return nil
}

func validateChain(name string, ch chain, from, to int, eom bool) error {
	if eom {
		to -= 3 // at most 28 days back from the end of a month
	}
	show := func(v int) string {
		if name == "second" {
			return strconv.FormatFloat(float64(v)/usecPerSec, 'f', -1, 64)
		}
		return strconv.Itoa(v)
	}
	bounds := fmt.Sprintf("%s..%s", show(from), show(to))
	if name == "second" {
		bounds = "0..59.999999"
	}
	if eom {
		bounds = fmt.Sprintf("%d..%d days before the end of the month", from, to)
	}
	for _, c := range ch {
		if c.start < from || c.start > to {
			return fmt.Errorf("%s %s out of range %s", name, show(c.start), bounds)
		}
		if c.repeat > to-from {
			return fmt.Errorf("%s step %s larger than the range %s", name, show(c.repeat), bounds)
		}
		if c.stop >= 0 {
			if c.stop < from || c.stop > to {
				return fmt.Errorf("%s %s out of range %s", name, show(c.stop), bounds)
			}
			if c.start+c.repeat > c.stop {
				return fmt.Errorf("%s range %s..%s ends before it starts", name, show(c.start), show(c.stop))
			}
			continue
		}
		if eom && c.start-c.repeat < from {
			return fmt.Errorf("%s ~%s/%s never repeats within a month", name, show(c.start), show(c.repeat))
		}
		if !eom && c.start+c.repeat > to {
			return fmt.Errorf("%s %s/%s never repeats within %s", name, show(c.start), show(c.repeat), bounds)
		}
	}
	return nil
}
