package containers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/internal/testenv"
)

// buildWorld makes the twin setup: imported and loaded images (some
// dangling, some labelled keep, some created long ago), running, created
// and exited containers, used and unused networks and volumes.
func buildWorld(t *testing.T, d *testenv.Docker) {
	t.Helper()
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	labels := func(name string, kv ...string) map[string]string {
		m := map[string]string{nameLabel: name}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	d.ImportImage(t, "w-run:1", testenv.ImageSpec{Labels: labels("run")})
	d.ImportImage(t, "w-stopped:1", testenv.ImageSpec{Labels: labels("stopped")})
	d.ImportImage(t, "w-unused:1", testenv.ImageSpec{Labels: labels("unused")})
	d.ImportImage(t, "", testenv.ImageSpec{Labels: labels("dangling")})
	d.ImportImage(t, "w-keep:1", testenv.ImageSpec{Labels: labels("keep", "hostd.keep", "1")})
	d.ImportImage(t, "w-dev:1", testenv.ImageSpec{Labels: labels("dev", "env", "dev")})
	d.LoadImage(t, "w-old:1", old, testenv.ImageSpec{Labels: labels("old")})
	d.LoadImage(t, "", old, testenv.ImageSpec{Labels: labels("old-dangling")})
	d.LoadImage(t, "w-old-keep:1", old, testenv.ImageSpec{Labels: labels("old-keep", "hostd.keep", "")})

	d.Build(t, "w-built:1", map[string][]byte{
		"Dockerfile": []byte("FROM w-unused:1\nLABEL " + nameLabel + "=built\nCOPY data /data\n"),
		"data":       make([]byte, 64<<10),
	})

	d.CLI(t, "network", "create", "w-used")
	d.CLI(t, "network", "create", "w-unused")
	d.CLI(t, "network", "create", "--label", "hostd.keep", "w-keep")
	d.CLI(t, "network", "create", "--label", "env=dev", "w-dev")

	d.CLI(t, "volume", "create", "w-vol-used")
	d.CLI(t, "volume", "create", "w-vol-stopped")
	d.CLI(t, "volume", "create", "w-vol-named")
	d.CLI(t, "volume", "create", "--label", "hostd.keep", "w-vol-keep")
	d.CLI(t, "volume", "create", "--label", nameLabel+"=anon")
	d.CLI(t, "volume", "create", "--label", nameLabel+"=anon-dev", "--label", "env=dev")

	d.CLI(t, "run", "-d", "--name", "w-running", "--network", "w-used", "-v", "w-vol-used:/data", "w-run:1")
	d.CLI(t, "create", "--name", "w-created", "--network", "none", "w-stopped:1")
	d.CLI(t, "run", "--name", "w-exited", "--network", "none", "-v", "w-vol-stopped:/data", "w-stopped:1", "/bin/busybox", "true")
	d.CLI(t, "create", "--name", "w-keep", "--label", "hostd.keep=1", "--network", "none", "w-stopped:1")
	d.CLI(t, "create", "--name", "w-dev", "--label", "env=dev", "--network", "none", "w-dev:1")
}

func TestPruneMatchesDockerSystemPrune(t *testing.T) {
	d := docker.Get(t)
	c := apiClient(t, d)
	wipe(t, d)
	t.Cleanup(func() { wipe(t, d) })

	stoppedDev := []string{"container/w-created", "container/w-exited", "container/w-dev"}
	// The build's records: without "all" only the unshared ones (its
	// context and the layer copied from it) go.
	contextCache := []string{
		"build_cache/regular:http url http://build-context:68096",
		"build_cache/regular:fileop target:65596",
	}
	allCache := append([]string{
		"build_cache/regular:from local :0",
		"build_cache/regular:fileop target:65536",
	}, contextCache...)
	tests := []struct {
		name string
		edit func(*AutoPrune)
		cli  []string
		want []string // what goes
	}{
		{
			name: "defaults",
			edit: func(*AutoPrune) {},
			cli:  []string{"--filter", "label!=hostd.keep"},
			want: append(append(slices.Clone(stoppedDev), "network/w-unused", "network/w-dev", "image/dangling", "image/old-dangling"), contextCache...),
		},
		{
			name: "all images and volumes",
			edit: func(p *AutoPrune) {
				p.Images.All, p.BuildCache.All = true, true
				p.Volumes.Enable, p.Volumes.AllVolumes = true, true
			},
			cli: []string{"-a", "--volumes", "--filter", "label!=hostd.keep"},
			want: slices.Concat(stoppedDev, allCache, []string{"network/w-unused", "network/w-dev",
				"volume/w-vol-stopped", "volume/w-vol-named", "volume/anon", "volume/anon-dev",
				"image/unused", "image/dangling", "image/dev", "image/old", "image/old-dangling", "image/built"}),
		},
		{
			name: "label filter",
			edit: func(p *AutoPrune) {
				p.KeepLabels = nil
				p.Images.All, p.BuildCache.All = true, true
				p.Volumes.Enable, p.Volumes.AllVolumes = true, true
				for _, f := range []*Filter{&p.Containers, &p.Networks, &p.Images.Filter, &p.Volumes.Filter} {
					f.Labels = []string{"env=dev"}
				}
			},
			// Docker applies no label filter to build cache.
			cli:  []string{"-a", "--volumes", "--filter", "label=env=dev"},
			want: append([]string{"container/w-dev", "network/w-dev", "volume/anon-dev", "image/dev"}, allCache...),
		},
		{
			name: "until spares recent objects",
			edit: func(p *AutoPrune) {
				p.Images.All, p.BuildCache.All = true, true
				for _, f := range []*Filter{&p.Containers, &p.Networks, &p.Images.Filter, &p.BuildCache.Filter} {
					f.Until = time.Hour
				}
			},
			cli:  []string{"-a", "--filter", "until=1h", "--filter", "label!=hostd.keep"},
			want: []string{"image/old", "image/old-dangling"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Enable = true
			tt.edit(&cfg.AutoPrune)
			s, _ := newTestService(t, d.Host, cfg, "", nil)

			// Twin 1: hostd.
			tb := time.Now()
			buildWorld(t, d)
			t.Logf("world built in %v", time.Since(tb))
			before := inventory(t, c)
			ctx := context.Background()
			dry, err := s.Prune(ctx, "manual", true)
			if err != nil {
				t.Fatalf("dry run: %v", err)
			}
			if got := inventory(t, c); !maps.Equal(got, before) {
				t.Fatalf("dry run changed the engine")
			}
			rep, err := s.Prune(ctx, "manual", false)
			if err != nil {
				t.Fatalf("prune: %v", err)
			}
			hostdGone := minus(before, inventory(t, c))
			wipe(t, d)

			// Twin 2: docker system prune with the same filters.
			buildWorld(t, d)
			before = inventory(t, c)
			d.CLI(t, append([]string{"system", "prune", "-f"}, tt.cli...)...)
			cliGone := minus(before, inventory(t, c))
			wipe(t, d)

			want := setOf(tt.want...)
			if missing, extra := diff(want, hostdGone); len(missing)+len(extra) > 0 {
				t.Errorf("hostd removed %v; missing %v, extra %v", sorted(hostdGone), missing, extra)
			}
			if missing, extra := diff(cliGone, hostdGone); len(missing)+len(extra) > 0 {
				t.Errorf("docker system prune %v removed %v, hostd %v", tt.cli, sorted(cliGone), sorted(hostdGone))
			}
			if len(rep.Skipped) > 0 {
				t.Errorf("skipped: %+v", rep.Skipped)
			}
			if got, want := objectKeys(rep.Objects), objectKeys(dry.Objects); !slices.Equal(got, want) {
				t.Errorf("dry run listed %v, prune removed %v", want, got)
			}
			if len(rep.Objects) != len(hostdGone) {
				t.Errorf("report lists %d objects, %d went", len(rep.Objects), len(hostdGone))
			}
			var total int64
			for _, o := range rep.Objects {
				total += o.Size
				if o.Kind == KindImage && o.Size <= 0 {
					t.Errorf("image %s reported with size %d", o.Name, o.Size)
				}
			}
			if rep.ReclaimedBytes != total || dry.TotalBytes != total {
				t.Errorf("reclaimed %d, dry-run total %d, sum of sizes %d", rep.ReclaimedBytes, dry.TotalBytes, total)
			}
		})
	}
}

func objectKeys(objs []Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, fmt.Sprintf("%s/%s", o.Kind, o.ID))
	}
	sort.Strings(out)
	return out
}

func sorted(m map[string]bool) []string {
	out := slices.Collect(maps.Keys(m))
	sort.Strings(out)
	return out
}

// TestPruneAnonymousVolumesOnly: with volumes on but not all_volumes,
// only unused anonymous volumes go (Docker 23+'s default; on API 1.41 they
// are told apart by their generated names).
func TestPruneAnonymousVolumesOnly(t *testing.T) {
	d := docker.Get(t)
	c := apiClient(t, d)
	wipe(t, d)
	t.Cleanup(func() { wipe(t, d) })
	buildWorld(t, d)
	before := inventory(t, c)

	cfg := DefaultConfig()
	cfg.AutoPrune.Containers.Enable, cfg.AutoPrune.Networks.Enable = false, false
	cfg.AutoPrune.Images.Enable, cfg.AutoPrune.BuildCache.Enable = false, false
	cfg.AutoPrune.Volumes.Enable = true
	s, _ := newTestService(t, d.Host, cfg, "", nil)
	rep, err := s.Prune(context.Background(), "manual", false)
	if err != nil {
		t.Fatal(err)
	}
	gone := minus(before, inventory(t, c))
	want := setOf("volume/anon", "volume/anon-dev")
	if missing, extra := diff(want, gone); len(missing)+len(extra) > 0 {
		t.Errorf("removed %v, want %v", sorted(gone), sorted(want))
	}
	if len(rep.Objects) != 2 || rep.Objects[0].Kind != KindVolume {
		t.Errorf("report: %+v", rep.Objects)
	}
}

// TestUntilCutoffMatchesDockerSystemPrune: objects made before a cutoff go,
// those made after stay, for hostd's until (a duration before its clock)
// as for Docker's until (a timestamp), on twin setups.
func TestUntilCutoffMatchesDockerSystemPrune(t *testing.T) {
	d := docker.Get(t)
	c := apiClient(t, d)
	wipe(t, d)
	t.Cleanup(func() { wipe(t, d) })

	batch := func(p string) {
		d.ImportImage(t, "", testenv.ImageSpec{Labels: map[string]string{nameLabel: p + "-dangling"}})
		d.ImportImage(t, p+"-img:1", testenv.ImageSpec{Labels: map[string]string{nameLabel: p + "-img"}})
		d.CLI(t, "create", "--name", p+"-stopped", "--network", "none", p+"-img:1")
		d.CLI(t, "network", "create", p+"-net")
	}
	// twin makes batch a, waits for the next whole second (the engine's
	// listings count creation in seconds), makes batch b, and returns the
	// second between them.
	twin := func() (before map[string]bool, cutoff time.Time) {
		batch("a")
		cutoff = time.Unix(time.Now().Unix()+1, 0)
		testenv.WaitFor(t, 3*time.Second, func() error {
			if time.Now().Before(cutoff) {
				return errString("clock before the cutoff")
			}
			return nil
		})
		batch("b")
		return inventory(t, c), cutoff
	}

	cfg := DefaultConfig()
	cfg.AutoPrune.Images.All = true
	cfg.AutoPrune.BuildCache.Enable = false
	for _, f := range []*Filter{&cfg.AutoPrune.Containers, &cfg.AutoPrune.Networks, &cfg.AutoPrune.Images.Filter} {
		f.Until = time.Hour
	}
	s, _ := newTestService(t, d.Host, cfg, "", nil)
	before, cutoff := twin()
	s.clock = servicetest.NewFakeClock(cutoff.Add(time.Hour))
	if _, err := s.Prune(context.Background(), "manual", false); err != nil {
		t.Fatal(err)
	}
	hostdGone := minus(before, inventory(t, c))
	wipe(t, d)

	before, cutoff = twin()
	// `docker system prune` takes only durations for build cache, so the
	// kinds are pruned one by one, in its order.
	until := fmt.Sprintf("until=%d", cutoff.Unix())
	d.CLI(t, "container", "prune", "-f", "--filter", until)
	d.CLI(t, "network", "prune", "-f", "--filter", until)
	d.CLI(t, "image", "prune", "-f", "-a", "--filter", until)
	cliGone := minus(before, inventory(t, c))

	want := setOf("image/a-dangling", "image/a-img", "container/a-stopped", "network/a-net")
	if missing, extra := diff(want, hostdGone); len(missing)+len(extra) > 0 {
		t.Errorf("hostd removed %v, want %v", sorted(hostdGone), sorted(want))
	}
	if missing, extra := diff(cliGone, hostdGone); len(missing)+len(extra) > 0 {
		t.Errorf("docker system prune removed %v, hostd %v", sorted(cliGone), sorted(hostdGone))
	}
}
