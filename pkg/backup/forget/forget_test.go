package forget

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// series returns snapshots at the given times ("2026-01-02 15:04").
func series(t *testing.T, stamps ...string) []Item {
	t.Helper()
	var out []Item
	for i, s := range stamps {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Item{ID: fmt.Sprintf("s%02d", i), Time: tm, Hostname: "h", Paths: []string{"/data"}})
	}
	return out
}

func kept(ds []Decision) string {
	var k []string
	for _, d := range ds {
		if d.Keep {
			k = append(k, d.Time.Format("01-02T15"))
		}
	}
	return strings.Join(k, " ")
}

func TestApply(t *testing.T) {
	// Two snapshots a day from 2026-01-01 to 2026-03-10 (Jan 1 2026 is a Thursday).
	var stamps []string
	for d := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC); d.Before(time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)); d = d.AddDate(0, 0, 1) {
		stamps = append(stamps, d.Add(2*time.Hour).Format("2006-01-02 15:04"), d.Add(14*time.Hour).Format("2006-01-02 15:04"))
	}
	tests := []struct {
		name   string
		stamps []string
		policy Policy
		want   string
	}{
		{"last 3", stamps, Policy{Last: 3}, "03-10T14 03-10T02 03-09T14"},
		{"daily 3 keeps newest per day", stamps, Policy{Daily: 3}, "03-10T14 03-09T14 03-08T14"},
		{"last 1 and daily 2 overlap", stamps, Policy{Last: 1, Daily: 2}, "03-10T14 03-09T14"},
		{"weekly 3 uses ISO weeks", stamps, Policy{Weekly: 3}, "03-10T14 03-08T14 03-01T14"},
		{"monthly 2", stamps, Policy{Monthly: 2}, "03-10T14 02-28T14"},
		{"yearly unlimited", stamps, Policy{Yearly: -1}, "03-10T14"},
		{"hourly 2", stamps, Policy{Hourly: 2}, "03-10T14 03-10T02"},
		{"within 36h of newest", stamps, Policy{Within: 36 * time.Hour}, "03-10T14 03-10T02 03-09T14 03-09T02"},
		{"daily counts days with snapshots, not calendar days",
			[]string{"2026-01-10 10:00", "2026-01-05 10:00", "2026-01-01 10:00", "2025-12-20 10:00"},
			Policy{Daily: 3}, "01-10T10 01-05T10 01-01T10"},
		{"monthly over a gap keeps oldest of newest months", []string{"2026-03-01 01:00", "2026-03-31 23:00", "2025-11-15 12:00", "2025-11-02 12:00"},
			Policy{Monthly: 3}, "03-31T23 11-15T12"},
		{"daily 2 weekly 2 monthly 2", stamps, Policy{Daily: 2, Weekly: 2, Monthly: 2}, "03-10T14 03-09T14 03-08T14 02-28T14"},
		{"nothing", stamps[:4], Policy{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := kept(Apply(series(t, tc.stamps...), tc.policy, time.UTC))
			if got != tc.want {
				t.Errorf("kept %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestApplyGroupsByHostAndPaths(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	items := []Item{
		{ID: "a", Time: now, Hostname: "h1", Paths: []string{"/x"}},
		{ID: "b", Time: now.Add(-time.Hour), Hostname: "h1", Paths: []string{"/x"}},
		{ID: "c", Time: now.Add(-2 * time.Hour), Hostname: "h2", Paths: []string{"/x"}},
		{ID: "d", Time: now.Add(-3 * time.Hour), Hostname: "h1", Paths: []string{"/y"}},
	}
	var keep []string
	for _, d := range Apply(items, Policy{Last: 1}, time.UTC) {
		if d.Keep {
			keep = append(keep, d.ID)
		}
	}
	if got := strings.Join(keep, ","); got != "a,d,c" {
		t.Fatalf("kept %s, want a,d,c (newest per host+paths group)", got)
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		p  Policy
		ok bool
	}{
		{Policy{Last: 3}, true},
		{Policy{Last: -1}, true},
		{Policy{Daily: -1, Within: time.Hour}, true},
		{Policy{Last: -5}, false},
		{Policy{Yearly: -2}, false},
		{Policy{Within: -time.Hour}, false},
	}
	for _, tt := range tests {
		if err := tt.p.Validate(); (err == nil) != tt.ok {
			t.Errorf("%+v: Validate() = %v, want ok %v", tt.p, err, tt.ok)
		}
	}
}
