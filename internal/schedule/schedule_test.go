package schedule

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/testenv"
)

// systemdCase is one row of systemdTable (systemd_table_test.go).
type systemdCase struct {
	expr       string
	base       string   // UTC, "2006-01-02 15:04:05"
	normalized string   // "Normalized form:" of systemd-analyze
	next       []string // UTC elapses, truncated to the second; fewer than 5 when it stops
}

const wallLayout = "2006-01-02 15:04:05"

func mustUTC(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation(wallLayout, s, time.UTC)
	if err != nil {
		t.Fatalf("parse time %q: %v", s, err)
	}
	return v
}

// elapses returns the first n elapses after base, UTC, formatted as
// systemd-analyze prints them.
func elapses(s *Schedule, base time.Time, n int) []string {
	var out []string
	t := base
	for range n {
		t = s.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t.UTC().Format(wallLayout))
	}
	return out
}

func TestNextSystemdTable(t *testing.T) {
	if len(systemdTable) < 300 {
		t.Fatalf("systemd table has only %d rows; regenerate it", len(systemdTable))
	}
	for _, tc := range systemdTable {
		t.Run(tc.expr+"@"+tc.base, func(t *testing.T) {
			s, err := Parse(tc.expr)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := s.String(); got != tc.normalized {
				t.Errorf("String() = %q, systemd normalizes to %q", got, tc.normalized)
			}
			got := elapses(s, mustUTC(t, tc.base), len(tc.next)+1)
			want := tc.next
			if len(want) == 5 && len(got) > 5 {
				got = got[:5] // systemd stopped after its iteration count
			}
			if strings.Join(got, ", ") != strings.Join(want, ", ") {
				t.Errorf("elapses from %s:\n got %v\nwant %v", tc.base, got, want)
			}
		})
	}
}

// TestNextMatchesSystemdAnalyze runs the installed systemd-analyze on every
// expression of the table from base times the table does not have
// (pseudo-random, fixed seed, 1971..2190) and compares the elapses.
func TestNextMatchesSystemdAnalyze(t *testing.T) {
	bin := testenv.LookPath(t, "systemd-analyze")
	if testing.Short() {
		t.Skip("runs systemd-analyze; skipped with -short")
	}
	exprs := readLines(t, "testdata/calendar-cases.txt")
	rng := rand.New(rand.NewPCG(4, 2))
	const iterations = 4
	for range 6 {
		base := time.Unix(rng.Int64N(int64(220*365*24*time.Hour/time.Second))+int64(365*24*3600), 0).UTC()
		// Half the bases sit on a second boundary, half in the middle of
		// a second, like a real clock.
		if rng.IntN(2) == 0 {
			base = base.Add(time.Duration(rng.IntN(1e6)) * time.Microsecond)
		}
		want := runSystemdAnalyze(t, bin, base, iterations, exprs)
		for i, expr := range exprs {
			s, err := Parse(expr)
			if err != nil {
				t.Errorf("Parse(%q): %v", expr, err)
				continue
			}
			if s.String() != want[i].normalized {
				t.Errorf("%q: String() = %q, systemd-analyze says %q", expr, s.String(), want[i].normalized)
			}
			got := elapses(s, base, iterations)
			if strings.Join(got, ", ") != strings.Join(want[i].next, ", ") {
				t.Errorf("%q from %s:\n got %v\nwant %v", expr, base.Format(time.RFC3339Nano), got, want[i].next)
			}
		}
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// runSystemdAnalyze asks systemd-analyze (TZ=UTC) for the normalized form
// and the first n elapses of each expression after base.
func runSystemdAnalyze(t *testing.T, bin string, base time.Time, n int, exprs []string) []systemdCase {
	t.Helper()
	args := []string{"calendar", fmt.Sprintf("--iterations=%d", n),
		"--base-time=@" + fmt.Sprintf("%d.%06d", base.Unix(), base.Nanosecond()/1000)}
	cmd := exec.Command(bin, append(args, exprs...)...)
	cmd.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C", "SYSTEMD_COLORS=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("systemd-analyze %v: %v", args, err)
	}
	// One block per expression, separated by blank lines; systemd leaves
	// out "Original form" when it equals the normalized form.
	var res []systemdCase
	for _, block := range strings.Split(strings.TrimSpace(string(out)), "\n\n") {
		var c systemdCase
		for _, line := range strings.Split(block, "\n") {
			key, val, ok := strings.Cut(strings.TrimSpace(line), ": ")
			if !ok {
				continue
			}
			switch {
			case key == "Normalized form":
				c.normalized = val
			case key == "Next elapse" || strings.HasPrefix(key, "Iter. #"):
				if val == "never" {
					continue
				}
				// "Tue 2024-02-27 12:00:00 UTC"
				f := strings.Fields(val)
				if len(f) != 4 {
					t.Fatalf("unexpected systemd-analyze line %q", line)
				}
				c.next = append(c.next, f[1]+" "+f[2])
			}
		}
		res = append(res, c)
	}
	if len(res) != len(exprs) {
		t.Fatalf("systemd-analyze answered for %d of %d expressions", len(res), len(exprs))
	}
	return res
}

func TestParseRejectsWhatSystemdRejects(t *testing.T) {
	exprs := readLines(t, "testdata/calendar-invalid.txt")
	for _, expr := range exprs {
		if _, err := Parse(expr); err == nil {
			t.Errorf("Parse(%q) succeeded; systemd rejects it", expr)
		}
	}
	bin, err := exec.LookPath("systemd-analyze")
	testenv.Require(t, "systemd-analyze", err)
	for _, expr := range exprs {
		cmd := exec.Command(bin, "calendar", expr)
		cmd.Env = append(os.Environ(), "TZ=UTC")
		if err := cmd.Run(); err == nil {
			t.Errorf("systemd-analyze accepts %q; remove it from calendar-invalid.txt", expr)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		expr string
		want string
	}{
		{"", "empty expression"},
		{" ; ", "empty expression"},
		{"bogus", `expected a number for year or month at column 1, found "bogus"`},
		{"Funday", `expected a number for year or month at column 1, found "Funday"`},
		{"*-*-* 24:00", "hour 24 out of range 0..23"},
		{"12:60", "minute 60 out of range 0..59"},
		{"*:*:60", "second 60 out of range 0..59.999999"},
		{"Mon 2024-13-01", "month 13 out of range 1..12"},
		{"*-00-01", "month 0 out of range 1..12"},
		{"*-*-00", "day 0 out of range 1..31"},
		{"1969-01-01", "year 1969 out of range 1970..2199"},
		{"2200-01-01", "year 2200 out of range 1970..2199"},
		{"*-*~29", "day 29 out of range 1..28 days before the end of the month"},
		{"*-*~03/3", "day ~3/3 never repeats within a month"},
		{"*:50/20", "minute 50/20 never repeats within 0..59"},
		{"*-*-* 5..3:00", "hour range 5..3 ends before it starts"},
		{"00:00:00/0", "second step must not be zero"},
		{"fri..mon", "weekday range ends before it starts"},
		{"Mon..", "weekday range without an end"},
		{"Mon-", "weekday range without an end"},
		{"Mon,,Tue", "expected a weekday at column 5"},
		{"Mon..Wed..Fri", "weekday range with more than two ends"},
		{"Mondays", `unknown weekday "Mondays"`},
		{"daily Europe/Nowhere", `unknown time zone "Europe/Nowhere"`},
		{"*-*-* 00:00 Local", `unknown time zone "Local"`},
		{"Europe/Berlin", `found "Europe/Berlin"`},
		{"*:*/5", `unexpected "/5" at column 4`},
		{"10:", "missing minute at end of expression"},
		{"Mon 10", `expected ":" after the hour at column 7`},
		{"*-*-* 10:00:00:00", `unexpected ":00" at column 15`},
		{"2024-01~05-01", `unexpected "-01" at column 11`},
		{"2024~01-05", `"~" must separate month and day`},
		{"*:*:1.", "missing digits after the decimal point of second"},
		{"99999999999-01-01", "year or month 99999999999 is too large"},
		{"@12x", `unexpected "x"`},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			_, err := Parse(tc.expr)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", tc.expr)
			}
			if !errors.Is(err, errSyntax) {
				t.Errorf("error %v does not wrap errSyntax", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse(%q) error = %q, want it to contain %q", tc.expr, err, tc.want)
			}
			if tc.expr != "" && !strings.Contains(err.Error(), fmt.Sprintf("%q", strings.TrimSpace(tc.expr))) && !strings.Contains(tc.expr, ";") {
				t.Errorf("error %q does not quote the expression", err)
			}
		})
	}
}

func TestParseSeveralExpressions(t *testing.T) {
	s, err := Parse("Sat 10:00; Sun 12:00 UTC;")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.String(), "Sat *-*-* 10:00:00; Sun *-*-* 12:00:00 UTC"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	base := mustUTC(t, "2024-03-01 00:00:00") // a Friday
	want := []string{"2024-03-02 10:00:00", "2024-03-03 12:00:00", "2024-03-09 10:00:00"}
	if got := elapses(s, base, 3); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("elapses = %v, want %v", got, want)
	}
}

// TestNextUsesLocationOfT checks that an expression without a zone is read
// in t's location and that the result comes back in that location.
func TestNextUsesLocationOfT(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		testenv.Require(t, "tzdata", err)
	}
	s := MustParse("daily")
	base := time.Date(2024, 5, 1, 10, 0, 0, 0, tokyo)
	got := s.Next(base)
	want := time.Date(2024, 5, 2, 0, 0, 0, 0, tokyo)
	if !got.Equal(want) || got.Location() != tokyo {
		t.Errorf("Next = %v, want %v in Asia/Tokyo", got, want)
	}
}

func TestNextIsStrictlyAfter(t *testing.T) {
	s := MustParse("*:*:00")
	base := mustUTC(t, "2024-01-01 10:00:00")
	if got := s.Next(base); !got.Equal(base.Add(time.Minute)) {
		t.Errorf("Next(%v) = %v, want one minute later", base, got)
	}
	if got := s.Next(base.Add(-time.Nanosecond)); !got.Equal(base) {
		t.Errorf("Next(just before) = %v, want %v", got, base)
	}
}

func TestNextNever(t *testing.T) {
	for _, expr := range []string{"2025-02-29", "1970-01-01", "@1700000000"} {
		if got := MustParse(expr).Next(mustUTC(t, "2024-02-27 10:00:00")); !got.IsZero() {
			t.Errorf("%q: Next = %v, want zero (never)", expr, got)
		}
	}
	var nilSchedule *Schedule
	if !nilSchedule.Next(time.Now()).IsZero() {
		t.Error("nil schedule elapses")
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParse(bogus) did not panic")
		}
	}()
	MustParse("bogus")
}

// FuzzParse checks that Parse never panics, that what it accepts prints
// in a form that parses back to the same schedule, and that Next returns
// promptly with an elapse that is later than its argument.
func FuzzParse(f *testing.F) {
	for _, tc := range systemdTable {
		f.Add(tc.expr)
	}
	for _, e := range []string{"Mon..Fri *-*~01/2 1,3..9/2:*/5:1.5", "@0", "*-*-* *:*:*.999999 UTC", "~", "-", ":", "..", "1..", "/"} {
		f.Add(e)
	}
	base := time.Date(2024, 2, 27, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr string) {
		s, err := Parse(expr)
		if err != nil {
			return
		}
		again, err := Parse(s.String())
		if err != nil {
			t.Fatalf("normalized form %q of %q does not parse: %v", s.String(), expr, err)
		}
		if again.String() != s.String() {
			t.Fatalf("normalized form not stable: %q -> %q", s.String(), again.String())
		}
		n := s.Next(base)
		if !n.IsZero() && !n.After(base) {
			t.Fatalf("Next(%v) = %v, not after it", base, n)
		}
		if m := again.Next(base); !m.Equal(n) {
			t.Fatalf("%q and its normalized form %q elapse differently: %v vs %v", expr, s.String(), n, m)
		}
	})
}

func BenchmarkNext(b *testing.B) {
	for _, expr := range []string{"minutely", "Mon..Fri *-*~01 02:30", "*-*-* 02:00/15 Europe/Berlin", "*-02-29 12:00"} {
		s := MustParse(expr)
		base := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
		b.Run(expr, func(b *testing.B) {
			for b.Loop() {
				_ = s.Next(base)
			}
		})
	}
}
