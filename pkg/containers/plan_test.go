package containers

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixtureSnapshot is a small engine: one of each interesting case.
func fixtureSnapshot() snapshot {
	return snapshot{
		containers: []ctrInfo{
			{ID: "c-run", Name: "run", ImageID: "i-run", State: "running", Created: t0.Add(-48 * time.Hour), Volumes: []string{"v-run"}},
			{ID: "c-paused", Name: "paused", ImageID: "i-run", State: "paused", Created: t0.Add(-48 * time.Hour)},
			{ID: "c-exited", Name: "exited", ImageID: "i-stopped", State: "exited", Created: t0.Add(-48 * time.Hour), Size: 10, Volumes: []string{"v-stopped"}},
			{ID: "c-new", Name: "new", ImageID: "i-stopped", State: "created", Created: t0.Add(-time.Minute), Size: 1},
			{ID: "c-keep", Name: "keep", ImageID: "i-keepctr", State: "exited", Created: t0.Add(-48 * time.Hour), Labels: map[string]string{"hostd.keep": ""}},
			{ID: "c-dev", Name: "dev", ImageID: "i-stopped", State: "dead", Created: t0.Add(-48 * time.Hour), Labels: map[string]string{"env": "dev"}},
		},
		images: []imgInfo{
			{ID: "i-run", Tags: []string{"app:1"}, Created: t0.Add(-100 * time.Hour), Size: 100},
			{ID: "i-stopped", Tags: []string{"tool:1"}, Created: t0.Add(-100 * time.Hour), Size: 200},
			{ID: "i-keepctr", Tags: []string{"kept:1"}, Created: t0.Add(-100 * time.Hour), Size: 1},
			{ID: "i-unused", Tags: []string{"old:1", "old:latest"}, Created: t0.Add(-100 * time.Hour), Size: 300},
			{ID: "i-recent", Tags: []string{"new:1"}, Created: t0.Add(-time.Minute), Size: 400},
			{ID: "i-dangling", Created: t0.Add(-100 * time.Hour), Size: 500},
			{ID: "i-digest", Digests: []string{"repo@sha256:abc"}, Created: t0.Add(-100 * time.Hour), Size: 50},
			{ID: "i-parent", Created: t0.Add(-100 * time.Hour), Size: 600},
			{ID: "i-child", Tags: []string{"child:1"}, ParentID: "i-parent", Created: t0.Add(-100 * time.Hour), Size: 700},
			{ID: "i-keep", Tags: []string{"pinned:1"}, Labels: map[string]string{"hostd.keep": "yes"}, Created: t0.Add(-100 * time.Hour), Size: 800},
		},
		networks: []netInfo{
			{ID: "n-bridge", Name: "bridge", Scope: "local"},
			{ID: "n-used", Name: "used", Endpoints: 1, Scope: "local", Created: t0.Add(-48 * time.Hour)},
			{ID: "n-unused", Name: "unused", Scope: "local", Created: t0.Add(-48 * time.Hour)},
			{ID: "n-swarm", Name: "overlay", Scope: "swarm", Created: t0.Add(-48 * time.Hour)},
			{ID: "n-dev", Name: "devnet", Scope: "local", Labels: map[string]string{"env": "dev"}, Created: t0.Add(-48 * time.Hour)},
		},
		volumes: []volInfo{
			{Name: "v-run", Driver: "local", Anonymous: true},
			{Name: "v-stopped", Driver: "local", Anonymous: true, Size: 5},
			{Name: "v-named", Driver: "local", Size: 6},
			{Name: "v-anon", Driver: "local", Anonymous: true, Size: 7},
			{Name: "v-nfs", Driver: "nfs", Anonymous: true},
		},
		buildCache: []cacheInfo{
			{ID: "b-inuse", InUse: true, Size: 1},
			{ID: "b-shared", Shared: true, Size: 2, Created: t0.Add(-100 * time.Hour)},
			{ID: "b-free", Size: 3, Created: t0.Add(-100 * time.Hour)},
			{ID: "b-recent", Size: 4, Created: t0.Add(-100 * time.Hour), LastUsed: t0.Add(-time.Minute)},
		},
	}
}

func ids(objs []Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.ID)
	}
	return out
}

func TestPlanPrune(t *testing.T) {
	base := DefaultConfig().AutoPrune
	tests := []struct {
		name string
		edit func(*AutoPrune)
		want []string
	}{
		{"defaults", func(*AutoPrune) {},
			[]string{"c-exited", "c-new", "c-dev", "n-unused", "n-dev", "i-dangling", "i-digest", "b-free", "b-recent"}},
		{"all images and all volumes", func(p *AutoPrune) {
			p.Images.All = true
			p.Volumes.Enable, p.Volumes.AllVolumes = true, true
			p.BuildCache.All = true
		}, []string{"c-exited", "c-new", "c-dev", "n-unused", "n-dev", "v-stopped", "v-named", "v-anon",
			"i-stopped", "i-unused", "i-recent", "i-dangling", "i-digest", "i-child", "b-shared", "b-free", "b-recent"}},
		{"anonymous volumes only", func(p *AutoPrune) { p.Volumes.Enable = true },
			[]string{"c-exited", "c-new", "c-dev", "n-unused", "n-dev", "v-stopped", "v-anon", "i-dangling", "i-digest", "b-free", "b-recent"}},
		{"until spares recent objects", func(p *AutoPrune) {
			for _, f := range []*Filter{&p.Containers, &p.Networks, &p.Images.Filter, &p.BuildCache.Filter} {
				f.Until = time.Hour
			}
			p.Images.All = true
		}, []string{"c-exited", "c-dev", "n-unused", "n-dev", "i-unused", "i-dangling", "i-digest", "i-child", "b-free"}},
		{"label filters", func(p *AutoPrune) {
			p.Containers.Labels = []string{"env=dev"}
			p.Networks.Labels = []string{"!env"}
			p.Images.Enable, p.BuildCache.Enable = false, false
		}, []string{"c-dev", "n-unused"}},
		{"no keep labels", func(p *AutoPrune) {
			p.KeepLabels = nil
			p.Images.All = true
			p.Images.Enable, p.BuildCache.Enable, p.Networks.Enable = true, false, false
		}, []string{"c-exited", "c-new", "c-keep", "c-dev", "i-stopped", "i-keepctr", "i-unused", "i-recent", "i-dangling", "i-digest", "i-child", "i-keep"}},
		{"nothing enabled", func(p *AutoPrune) {
			p.Containers.Enable, p.Networks.Enable, p.Images.Enable, p.BuildCache.Enable = false, false, false, false
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base
			tt.edit(&p)
			got := ids(planPrune(fixtureSnapshot(), p, t0))
			if !slices.Equal(got, tt.want) {
				t.Errorf("planned\n %q\nwant\n %q", got, tt.want)
			}
		})
	}
}

func TestPlanPruneImageRefs(t *testing.T) {
	p := DefaultConfig().AutoPrune
	p.Images.All = true
	for _, o := range planPrune(fixtureSnapshot(), p, t0) {
		switch o.ID {
		case "i-unused":
			if !slices.Equal(o.refs, []string{"old:1", "old:latest"}) || o.Name != "old:1" || o.Reason != "unused" {
				t.Errorf("i-unused: refs %q name %q reason %q", o.refs, o.Name, o.Reason)
			}
		case "i-dangling":
			if len(o.refs) != 0 || o.Reason != "dangling" {
				t.Errorf("i-dangling: refs %q reason %q; want removal by ID", o.refs, o.Reason)
			}
		case "i-digest":
			if !slices.Equal(o.refs, []string{"repo@sha256:abc"}) {
				t.Errorf("i-digest: refs %q", o.refs)
			}
		}
	}
}

func TestPressureCandidates(t *testing.T) {
	snap := snapshot{
		containers: []ctrInfo{
			{ID: "c1", ImageID: "i-running", State: "running"},
			{ID: "c2", ImageID: "i-stopped", State: "exited"},
		},
		images: []imgInfo{
			{ID: "i-running", Tags: []string{"a:1"}, Created: t0.Add(-90 * time.Hour)},
			{ID: "i-stopped", Tags: []string{"b:1"}, Created: t0.Add(-90 * time.Hour)},
			{ID: "i-old-used-recently", Tags: []string{"c:1"}, Created: t0.Add(-80 * time.Hour)},
			{ID: "i-never-used", Tags: []string{"d:1"}, Created: t0.Add(-70 * time.Hour)},
			{ID: "i-used-long-ago", Tags: []string{"e:1"}, Created: t0.Add(-60 * time.Hour)},
			{ID: "i-fresh", Tags: []string{"f:1"}, Created: t0.Add(-10 * time.Minute)},
			{ID: "i-kept-name", Tags: []string{"registry.example.com/base/debian:12"}, Created: t0.Add(-90 * time.Hour)},
			{ID: "i-kept-label", Tags: []string{"g:1"}, Labels: map[string]string{"hostd.keep": ""}, Created: t0.Add(-90 * time.Hour)},
			{ID: "i-dangling", Created: t0.Add(-50 * time.Hour)},
		},
	}
	lastUse := map[string]time.Time{
		"i-old-used-recently": t0.Add(-2 * time.Hour),
		"i-used-long-ago":     t0.Add(-59 * time.Hour),
		"i-fresh":             t0.Add(-5 * time.Minute),
	}
	p := DefaultConfig().AutoPrune
	p.Keep = []string{"registry.example.com/base/*"}
	got := pressureCandidates(snap, p, lastUse, t0)
	want := []string{"i-never-used", "i-used-long-ago", "i-dangling", "i-old-used-recently"}
	if !slices.Equal(ids(got), want) {
		t.Fatalf("candidates %q, want %q (LRU order)", ids(got), want)
	}
	if !got[1].LastUsed.Equal(t0.Add(-59 * time.Hour)) {
		t.Errorf("LastUsed = %v", got[1].LastUsed)
	}
	p.MinAge = 0
	if got := ids(pressureCandidates(snap, p, lastUse, t0)); !slices.Contains(got, "i-fresh") {
		t.Errorf("min_age 0 should allow i-fresh: %q", got)
	}
}

func TestMatchLabels(t *testing.T) {
	labels := map[string]string{"env": "dev", "team": ""}
	tests := []struct {
		filters []string
		want    bool
	}{
		{nil, true},
		{[]string{"env"}, true},
		{[]string{"env=dev"}, true},
		{[]string{"env=prod"}, false},
		{[]string{"!env"}, false},
		{[]string{"!env=prod"}, true},
		{[]string{"team="}, true},
		{[]string{"env", "!missing"}, true},
		{[]string{"env", "missing"}, false},
	}
	for _, tt := range tests {
		if got := matchLabels(labels, tt.filters); got != tt.want {
			t.Errorf("matchLabels(%q) = %v, want %v", tt.filters, got, tt.want)
		}
	}
}

func TestMatchesKeep(t *testing.T) {
	img := imgInfo{Tags: []string{"registry.example.com:5000/base/debian:12"}, Digests: []string{"ghcr.io/x/y@sha256:00"}}
	tests := []struct {
		pattern string
		want    bool
	}{
		{"registry.example.com:5000/base/*", true},
		{"registry.example.com:5000/base/debian", true},
		{"registry.example.com:5000/base/debian:12", true},
		{"registry.example.com:5000/base/debian:11", false},
		{"ghcr.io/x/y", true},
		{"debian", false},
	}
	for _, tt := range tests {
		if got := matchesKeep(img, []string{tt.pattern}); got != tt.want {
			t.Errorf("matchesKeep(%q) = %v, want %v", tt.pattern, got, tt.want)
		}
	}
}
