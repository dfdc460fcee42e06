package containers

import (
	"cmp"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
)

// snapshot is what the planner knows about the engine's objects at one
// moment. It is gathered by engine.snapshot and is plain data, so planning
// is a pure function of it.
type snapshot struct {
	containers []ctrInfo
	images     []imgInfo
	networks   []netInfo
	volumes    []volInfo
	buildCache []cacheInfo
}

type ctrInfo struct {
	ID, Name, ImageID string
	Labels            map[string]string
	State             string
	Created           time.Time
	Size              int64
	Volumes           []string // names of volumes mounted
}

// running reports whether the container counts as running for pruning:
// Docker's prune leaves running, paused and restarting containers (and
// one being removed) alone.
func (c ctrInfo) running() bool {
	switch c.State {
	case "created", "exited", "dead":
		return false
	}
	return true
}

type imgInfo struct {
	ID       string
	Tags     []string // repo:tag, without "<none>:<none>"
	Digests  []string // repo@digest, without "<none>@<none>"
	ParentID string
	Labels   map[string]string
	Created  time.Time
	Size     int64 // unique size
}

func (i imgInfo) name() string {
	if len(i.Tags) > 0 {
		return i.Tags[0]
	}
	if len(i.Digests) > 0 {
		return i.Digests[0]
	}
	return ""
}

type netInfo struct {
	ID, Name, Driver string
	Labels           map[string]string
	Created          time.Time
	Endpoints        int
	Ingress          bool
	Scope            string
}

type volInfo struct {
	Name, Driver string
	Labels       map[string]string
	Created      time.Time
	Size         int64
	Anonymous    bool
}

type cacheInfo struct {
	ID       string
	Type     string
	InUse    bool
	Shared   bool
	Size     int64
	Created  time.Time
	LastUsed time.Time
}

// predefinedNetworks are the networks Docker creates itself and never
// prunes.
func predefinedNetwork(name string) bool {
	switch name {
	case "bridge", "host", "none", "default", "ingress", "docker_gwbridge":
		return true
	}
	return false
}

// anonymousVolume matches the names Docker gives anonymous volumes before
// API 1.42, which has no com.docker.volume.anonymous label.
var anonymousVolume = regexp.MustCompile(`^[0-9a-f]{64}$`)

// planPrune decides what a scheduled or manual prune removes, mirroring
// `docker system prune` (containers, networks, volumes, images, build cache,
// in that order) with the configured filters, and keep_labels on top.
func planPrune(s snapshot, p AutoPrune, now time.Time) []Object {
	var out []Object
	kept := func(labels map[string]string) bool { return hasAnyLabel(labels, p.KeepLabels) }
	selected := func(f Filter, created time.Time, labels map[string]string) bool {
		if f.Until > 0 && !created.Before(now.Add(-f.Until)) {
			return false
		}
		return matchLabels(labels, f.Labels) && !kept(labels)
	}

	// Containers: everything not running. What stays uses images and
	// volumes below.
	removed := map[string]bool{}
	if p.Containers.Enable {
		for _, c := range s.containers {
			if c.running() || !selected(p.Containers, c.Created, c.Labels) {
				continue
			}
			removed[c.ID] = true
			out = append(out, Object{Kind: KindContainer, ID: c.ID, Name: c.Name, Size: c.Size, Created: c.Created, Reason: "stopped"})
		}
	}
	usedImages, usedVolumes := map[string]bool{}, map[string]bool{}
	for _, c := range s.containers {
		if removed[c.ID] {
			continue
		}
		usedImages[c.ImageID] = true
		for _, v := range c.Volumes {
			usedVolumes[v] = true
		}
	}

	if p.Networks.Enable {
		for _, n := range s.networks {
			if predefinedNetwork(n.Name) || n.Ingress || n.Endpoints > 0 || (n.Scope != "" && n.Scope != "local") {
				continue
			}
			if !selected(p.Networks, n.Created, n.Labels) {
				continue
			}
			out = append(out, Object{Kind: KindNetwork, ID: n.ID, Name: n.Name, Created: n.Created, Reason: "unused"})
		}
	}

	if p.Volumes.Enable {
		for _, v := range s.volumes {
			if v.Driver != "local" || usedVolumes[v.Name] || (!p.Volumes.AllVolumes && !v.Anonymous) {
				continue
			}
			if !selected(p.Volumes.Filter, v.Created, v.Labels) {
				continue
			}
			out = append(out, Object{Kind: KindVolume, ID: v.Name, Name: v.Name, Size: v.Size, Created: v.Created, Reason: "unused"})
		}
	}

	if p.Images.Enable {
		parents := map[string]bool{}
		for _, i := range s.images {
			if i.ParentID != "" {
				parents[i.ParentID] = true
			}
		}
		for _, i := range s.images {
			dangling := len(i.Tags) == 0
			if dangling && parents[i.ID] {
				continue // an intermediate layer of another image
			}
			if (!p.Images.All && !dangling) || usedImages[i.ID] {
				continue
			}
			if !selected(p.Images.Filter, i.Created, i.Labels) {
				continue
			}
			reason := "unused"
			if dangling {
				reason = "dangling"
			}
			o := Object{Kind: KindImage, ID: i.ID, Name: i.name(), Size: i.Size, Created: i.Created, Reason: reason}
			if !dangling || len(i.Digests) > 0 {
				o.refs = append(slices.Clone(i.Tags), i.Digests...)
			}
			out = append(out, o)
		}
	}

	if p.BuildCache.Enable {
		for _, b := range s.buildCache {
			if b.InUse || (!p.BuildCache.All && b.Shared) {
				continue
			}
			last := b.Created
			if b.LastUsed.After(last) {
				last = b.LastUsed
			}
			if p.BuildCache.Until > 0 && !last.Before(now.Add(-p.BuildCache.Until)) {
				continue
			}
			out = append(out, Object{Kind: KindBuildCache, ID: b.ID, Name: b.Type, Size: b.Size, Created: b.Created, LastUsed: b.LastUsed, Reason: "unused"})
		}
	}
	return out
}

// pressureCandidates lists the images disk-pressure mode may remove, least
// recently used first: images no container uses (running or not), older
// than min_age by last use, not matching keep patterns or keep_labels.
func pressureCandidates(s snapshot, p AutoPrune, lastUse map[string]time.Time, now time.Time) []Object {
	used := map[string]bool{}
	for _, c := range s.containers {
		used[c.ImageID] = true
	}
	parents := map[string]bool{}
	for _, i := range s.images {
		if i.ParentID != "" {
			parents[i.ParentID] = true
		}
	}
	var out []Object
	for _, i := range s.images {
		if used[i.ID] || parents[i.ID] || hasAnyLabel(i.Labels, p.KeepLabels) || matchesKeep(i, p.Keep) {
			continue
		}
		last := i.Created
		if t, ok := lastUse[i.ID]; ok && t.After(last) {
			last = t
		}
		if p.MinAge > 0 && now.Sub(last) < p.MinAge {
			continue
		}
		o := Object{Kind: KindImage, ID: i.ID, Name: i.name(), Size: i.Size, Created: i.Created, LastUsed: last, Reason: "disk pressure"}
		o.refs = append(slices.Clone(i.Tags), i.Digests...)
		out = append(out, o)
	}
	slices.SortStableFunc(out, func(a, b Object) int {
		return cmp.Or(a.LastUsed.Compare(b.LastUsed), a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// matchesKeep reports whether one of the image's names matches a keep
// pattern, as "repo:tag" or as "repo".
func matchesKeep(i imgInfo, patterns []string) bool {
	for _, pat := range patterns {
		for _, ref := range append(slices.Clone(i.Tags), i.Digests...) {
			repo := ref
			if at := strings.LastIndex(repo, "@"); at >= 0 {
				repo = repo[:at]
			} else if c := strings.LastIndex(repo, ":"); c > strings.LastIndex(repo, "/") {
				repo = repo[:c]
			}
			for _, name := range []string{ref, repo} {
				if ok, _ := path.Match(pat, name); ok {
					return true
				}
			}
		}
	}
	return false
}

// matchLabels reports whether labels satisfy every filter: "key" and
// "key=value" must be present, "!key" and "!key=value" must not.
func matchLabels(labels map[string]string, filters []string) bool {
	for _, f := range filters {
		neg := strings.HasPrefix(f, "!")
		if hasLabel(labels, strings.TrimPrefix(f, "!")) == neg {
			return false
		}
	}
	return true
}

func hasAnyLabel(labels map[string]string, exprs []string) bool {
	for _, e := range exprs {
		if hasLabel(labels, e) {
			return true
		}
	}
	return false
}

func hasLabel(labels map[string]string, expr string) bool {
	k, v, withValue := strings.Cut(expr, "=")
	got, ok := labels[k]
	return ok && (!withValue || got == v)
}
