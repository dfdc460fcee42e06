package forget

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Policy says what to keep. Zero counts keep nothing for that bucket.
type Policy struct {
	Last    int           `json:"keep_last,omitempty"`
	Hourly  int           `json:"keep_hourly,omitempty"`
	Daily   int           `json:"keep_daily,omitempty"`
	Weekly  int           `json:"keep_weekly,omitempty"`
	Monthly int           `json:"keep_monthly,omitempty"`
	Yearly  int           `json:"keep_yearly,omitempty"`
	Within  time.Duration `json:"keep_within,omitempty"`
	// Tags keeps every snapshot that has all tags of any one entry; an
	// entry is a comma-separated list ("daily,db").
	Tags []string `json:"keep_tags,omitempty"`
}

// Validate rejects counts below -1 (-1 means no limit) and a negative
// Within.
func (p Policy) Validate() error {
	for _, c := range []struct {
		name string
		n    int
	}{{"last", p.Last}, {"hourly", p.Hourly}, {"daily", p.Daily}, {"weekly", p.Weekly}, {"monthly", p.Monthly}, {"yearly", p.Yearly}} {
		if c.n < -1 {
			return fmt.Errorf("keep-%s %d: want a count, or -1 for no limit", c.name, c.n)
		}
	}
	if p.Within < 0 {
		return fmt.Errorf("keep-within %s: must not be negative", p.Within)
	}
	return nil
}

// Empty reports whether the policy keeps nothing (callers refuse it).
func (p Policy) Empty() bool {
	return p.Last == 0 && p.Hourly == 0 && p.Daily == 0 && p.Weekly == 0 && p.Monthly == 0 && p.Yearly == 0 && p.Within == 0 &&
		len(p.Tags) == 0
}

// Item is a snapshot as the rule sees it.
type Item struct {
	ID       string
	Time     time.Time
	Hostname string
	Paths    []string
	Tags     []string
}

// Decision is the fate of one snapshot.
type Decision struct {
	Item
	Keep    bool
	Reasons []string // e.g. "daily", "last", "within 48h0m0s"
}

type bucket struct {
	name  string
	count int
	value func(t time.Time, nr int) int
	last  int
}

// Apply decides for every item, grouped by host and paths (restic's
// default); loc is the time zone of the calendar buckets (nil: local).
// Results are newest first within each group, groups sorted by key.
func Apply(items []Item, p Policy, loc *time.Location) []Decision {
	var out []Decision
	for _, g := range ApplyGrouped(items, p, loc, DefaultGroupBy) {
		out = append(out, g.Decisions...)
	}
	return out
}

// Group is the decisions of one group of snapshots.
type Group struct {
	Key       GroupKey
	Decisions []Decision // newest first
}

// ApplyGrouped decides for every item, the rule applied to each group of
// by on its own. Groups are sorted by key.
func ApplyGrouped(items []Item, p Policy, loc *time.Location, by GroupBy) []Group {
	if loc == nil {
		loc = time.Local
	}
	var out []Group
	for _, g := range GroupItems(items, by) {
		out = append(out, Group{Key: g.Key, Decisions: applyGroup(g.Items, p, loc)})
	}
	return out
}

// ItemGroup is the items of one group, in the order given.
type ItemGroup struct {
	Key   GroupKey
	Items []Item
}

// GroupItems sorts items into the groups of by, sorted by key.
func GroupItems(items []Item, by GroupBy) []ItemGroup {
	idx := map[string]int{}
	var out []ItemGroup
	for _, it := range items {
		k := by.Key(it.Hostname, it.Paths, it.Tags)
		i, ok := idx[k.id()]
		if !ok {
			i = len(out)
			idx[k.id()] = i
			out = append(out, ItemGroup{Key: k})
		}
		out[i].Items = append(out[i].Items, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.id() < out[j].Key.id() })
	return out
}

func applyGroup(items []Item, p Policy, loc *time.Location) []Decision {
	sort.SliceStable(items, func(i, j int) bool { return items[i].Time.After(items[j].Time) })
	buckets := []*bucket{
		{"last", p.Last, func(_ time.Time, nr int) int { return nr }, -1},
		{"hourly", p.Hourly, func(t time.Time, _ int) int { return t.Year()*1000000 + int(t.Month())*10000 + t.Day()*100 + t.Hour() }, -1},
		{"daily", p.Daily, func(t time.Time, _ int) int { return t.Year()*10000 + int(t.Month())*100 + t.Day() }, -1},
		{"weekly", p.Weekly, func(t time.Time, _ int) int { y, w := t.ISOWeek(); return y*100 + w }, -1},
		{"monthly", p.Monthly, func(t time.Time, _ int) int { return t.Year()*100 + int(t.Month()) }, -1},
		{"yearly", p.Yearly, func(t time.Time, _ int) int { return t.Year() }, -1},
	}
	out := make([]Decision, 0, len(items))
	var newest time.Time
	if len(items) > 0 {
		newest = items[0].Time
	}
	for nr, it := range items {
		d := Decision{Item: it}
		t := it.Time.In(loc)
		if hasTags(it.Tags, p.Tags) {
			d.Keep = true
			d.Reasons = append(d.Reasons, "tags")
		}
		if p.Within > 0 && !it.Time.Before(newest.Add(-p.Within)) {
			d.Keep = true
			d.Reasons = append(d.Reasons, "within "+p.Within.String())
		}
		for _, b := range buckets {
			if b.count == 0 {
				continue
			}
			v := b.value(t, nr)
			if v != b.last {
				d.Keep = true
				d.Reasons = append(d.Reasons, b.name)
				b.last = v
				if b.count > 0 {
					b.count--
				}
			}
		}
		out = append(out, d)
	}
	return out
}

// hasTags reports whether tags hold every tag of any one entry of lists
// (each a comma-separated list); an empty entry matches a snapshot
// without tags.
func hasTags(tags, lists []string) bool {
	for _, l := range lists {
		if l == "" {
			if len(tags) == 0 {
				return true
			}
			continue
		}
		all := true
		for _, t := range strings.Split(l, ",") {
			if !slices.Contains(tags, t) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// HasTags is the tag rule of --tag filters and --keep-tag: tags hold
// every tag of at least one entry of lists (each entry comma-separated;
// "" matches a snapshot without tags). Empty lists match everything.
func HasTags(tags, lists []string) bool {
	return len(lists) == 0 || hasTags(tags, lists)
}
