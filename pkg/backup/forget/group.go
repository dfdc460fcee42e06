package forget

import (
	"fmt"
	"sort"
	"strings"
)

// GroupBy says which snapshot fields put snapshots in the same group:
// forget applies its rule to each group on its own, snapshots lists
// each group under its own heading.
type GroupBy struct {
	Host, Paths, Tags bool
}

// DefaultGroupBy is forget's grouping when none is given, restic's:
// host and paths.
var DefaultGroupBy = GroupBy{Host: true, Paths: true}

// ParseGroupBy reads a comma-separated list of host, paths and tags
// ("host,paths"); "" groups nothing (one group of every snapshot).
func ParseGroupBy(s string) (GroupBy, error) {
	var g GroupBy
	if strings.TrimSpace(s) == "" {
		return g, nil
	}
	for _, f := range strings.Split(s, ",") {
		switch strings.TrimSpace(f) {
		case "host", "hostname":
			g.Host = true
		case "paths", "path":
			g.Paths = true
		case "tags", "tag":
			g.Tags = true
		case "":
		default:
			return g, fmt.Errorf("group by %q: want a comma-separated list of host, paths and tags", f)
		}
	}
	return g, nil
}

// String is the list ParseGroupBy reads.
func (g GroupBy) String() string {
	var f []string
	if g.Host {
		f = append(f, "host")
	}
	if g.Paths {
		f = append(f, "paths")
	}
	if g.Tags {
		f = append(f, "tags")
	}
	return strings.Join(f, ",")
}

// None reports whether g puts every snapshot in one group.
func (g GroupBy) None() bool { return !g.Host && !g.Paths && !g.Tags }

// GroupKey is what the snapshots of a group share: the fields g groups
// by (paths and tags sorted), the others empty.
type GroupKey struct {
	Hostname string   `json:"hostname,omitempty"`
	Paths    []string `json:"paths,omitempty"`
	Tags     []string `json:"tags,omitempty"`

	by GroupBy
}

// Key is the group of a snapshot with these fields.
func (g GroupBy) Key(host string, paths, tags []string) GroupKey {
	k := GroupKey{by: g}
	if g.Host {
		k.Hostname = host
	}
	if g.Paths {
		k.Paths = sortedCopy(paths)
	}
	if g.Tags {
		k.Tags = sortedCopy(tags)
	}
	return k
}

// String describes the group as restic does: "host [h], paths [/a, /b]"
// ("" when nothing is grouped by).
func (k GroupKey) String() string {
	var f []string
	if k.by.Host {
		f = append(f, "host ["+k.Hostname+"]")
	}
	if k.by.Paths {
		f = append(f, "paths ["+strings.Join(k.Paths, ", ")+"]")
	}
	if k.by.Tags {
		f = append(f, "tags ["+strings.Join(k.Tags, ", ")+"]")
	}
	return strings.Join(f, ", ")
}

func sortedCopy(s []string) []string {
	c := append([]string{}, s...)
	sort.Strings(c)
	return c
}

// id is k as a map key: the fields NUL-separated (names hold no NUL).
func (k GroupKey) id() string {
	return k.Hostname + "\x00\x00" + strings.Join(k.Paths, "\x00") + "\x00\x00" + strings.Join(k.Tags, "\x00")
}
