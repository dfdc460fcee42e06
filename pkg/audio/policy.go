package audio

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// policy is the device policy from config. plan is pure: it looks at a
// snapshot and returns the changes to make, so it is tested without a
// server.
type policy struct {
	PreferredSinks   []string
	PreferredSources []string
	// Limit is the sink volume limit in percent (0: none).
	Limit float64
	// Startup is the volume for sinks seen for the first time (nil: none).
	Startup *float64
	// Remember restores remembered volume and mute on devices that appear.
	Remember bool
}

func newPolicy(c *Config) policy {
	p := policy{
		PreferredSinks:   c.PreferredSinks,
		PreferredSources: c.PreferredSources,
		Limit:            float64(c.VolumeLimit),
		Remember:         c.Remember,
	}
	if c.StartupVolume != nil {
		v := float64(*c.StartupVolume)
		p.Startup = &v
	}
	return p
}

// actionType is what an action changes.
type actionType string

const (
	actDefault actionType = "default"
	actVolume  actionType = "volume"
	actMute    actionType = "mute"
)

// action is one change the policy makes.
type action struct {
	Type    actionType
	Kind    Kind
	Index   uint32
	Name    string
	Volumes []uint32
	Mute    bool
	// Reason is a short label for logs and the actions metric: "limit",
	// "restore", "startup", "preferred".
	Reason string
}

func (a action) String() string {
	switch a.Type {
	case actDefault:
		return fmt.Sprintf("default %s := %s (%s)", a.Kind, a.Name, a.Reason)
	case actMute:
		return fmt.Sprintf("%s %s mute := %t (%s)", a.Kind, a.Name, a.Mute, a.Reason)
	}
	return fmt.Sprintf("%s %s volume := %d%% (%s)", a.Kind, a.Name, roundPercent(maxVolume(a.Volumes)), a.Reason)
}

// recall looks up remembered settings.
type recall func(kind Kind, name string) (Remembered, bool)

// plan returns the actions for snapshot st. fresh holds memoryKeys of
// devices that appeared since the last plan (all of them at connect), and
// known those hostd has met before in this run (they get no startup
// volume again); devicesChanged is true at connect and when a device came
// or went, the moments the preferred defaults are re-chosen.
func (p *policy) plan(st *Status, fresh, known map[string]bool, devicesChanged bool, mem recall) []action {
	var acts []action
	for _, kind := range []Kind{KindSink, KindSource} {
		for _, d := range st.devices(kind) {
			if d.Monitor {
				continue
			}
			cur := d.rawVolumes()
			want := cur
			reason := ""
			key := memoryKey(kind, d.Name)
			if fresh[key] {
				if r, ok := p.remembered(mem, kind, d.Name); ok {
					want = fitChannels(r.Volumes, len(cur))
					reason = "restore"
					if r.Mute != d.Mute {
						acts = append(acts, action{Type: actMute, Kind: kind, Index: d.Index, Name: d.Name, Mute: r.Mute, Reason: "restore"})
					}
				} else if p.Startup != nil && kind == KindSink && !known[key] {
					want = VolumeChange{Percent: *p.Startup}.Apply(cur, 0)
					reason = "startup"
				}
			}
			if kind == KindSink && p.Limit > 0 {
				clamped := clampVolumes(want, p.Limit)
				if !slices.Equal(clamped, want) {
					want = clamped
					if reason == "" {
						reason = "limit"
					}
				}
			}
			if !slices.Equal(want, cur) && len(want) > 0 {
				acts = append(acts, action{Type: actVolume, Kind: kind, Index: d.Index, Name: d.Name, Volumes: want, Reason: reason})
			}
		}
	}
	if devicesChanged {
		if name, ok := choose(p.PreferredSinks, st.Sinks, st.DefaultSink); ok {
			acts = append(acts, action{Type: actDefault, Kind: KindSink, Name: name, Reason: "preferred"})
		}
		if name, ok := choose(p.PreferredSources, st.Sources, st.DefaultSource); ok {
			acts = append(acts, action{Type: actDefault, Kind: KindSource, Name: name, Reason: "preferred"})
		}
	}
	return acts
}

func (p *policy) remembered(mem recall, kind Kind, name string) (Remembered, bool) {
	if !p.Remember || mem == nil {
		return Remembered{}, false
	}
	return mem(kind, name)
}

// fitChannels adapts remembered volumes to a device whose channel count
// changed (a profile switch): the loudest remembered channel for all.
func fitChannels(vols []uint32, n int) []uint32 {
	if len(vols) == n {
		return slices.Clone(vols)
	}
	out := make([]uint32, n)
	m := maxVolume(vols)
	for i := range out {
		out[i] = m
	}
	return out
}

// limitSlack is how far (in raw volume) a channel may exceed the limit
// before it is pulled back: PipeWire stores volumes as cubed floats, so a
// volume set exactly at the limit can come back a unit or two above it.
const limitSlack = 8

// clampVolumes pulls every channel above limit percent down to it.
func clampVolumes(vols []uint32, limit float64) []uint32 {
	top := fromPercent(limit)
	out := slices.Clone(vols)
	for i, v := range out {
		if v > top+limitSlack {
			out[i] = top
		}
	}
	return out
}

// choose picks the device the preferred patterns want as default, if that
// is a change: the first present device matching the earliest pattern,
// unless the current default matches that pattern too.
func choose(patterns []string, devs []Device, current string) (string, bool) {
	if len(patterns) == 0 {
		return "", false
	}
	best, bestName := -1, ""
	for _, d := range devs {
		if r := deviceRank(patterns, d); r >= 0 && (best < 0 || r < best) {
			best, bestName = r, d.Name
		}
	}
	if best < 0 {
		return "", false
	}
	for _, d := range devs {
		if d.Name == current && deviceRank(patterns, d) == best {
			return "", false
		}
	}
	return bestName, true
}

// deviceRank is the index of the first pattern matching d, or -1. A monitor source only matches
// patterns that end in ".monitor", so "*" does not pick one.
func deviceRank(patterns []string, d Device) int {
	for i, p := range patterns {
		if d.Monitor && !strings.HasSuffix(p, ".monitor") {
			continue
		}
		if ok, _ := path.Match(p, d.Name); ok {
			return i
		}
	}
	return -1
}
