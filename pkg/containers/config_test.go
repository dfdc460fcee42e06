package containers

import (
	"strings"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/confkit"
)

func TestDecodeConfig(t *testing.T) {
	const doc = `
enable: true
host: unix:///run/docker.sock
prune_timeout: 90m
auto_prune:
  schedule: "Sun 03:00"
  randomized_delay: 30m
  persistent: false
  keep_labels: [hostd.keep, "tier=prod"]
  images: {all: true, until: 10d, labels: ["!pinned"]}
  volumes: {enable: true, all_volumes: true}
  high_watermark: 85%
  low_watermark: 70%
  keep: ["registry.example.com/base/*"]
  min_age: 2h
`
	cfg := DefaultConfig()
	if _, errs := confkit.Decode("hostd.yaml", []byte(doc), &cfg); len(errs) > 0 {
		t.Fatalf("decode: %v", errs)
	}
	v := confkit.NewValidator("containers")
	cfg.Validate(v)
	if errs := v.Errors(); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	a := cfg.AutoPrune
	checks := []struct {
		name      string
		got, want any
	}{
		{"enable", cfg.Enable, true},
		{"auto_prune.enable default", a.Enable, true},
		{"schedule", a.Schedule, "Sun 03:00"},
		{"randomized_delay", a.RandomizedDelay, 30 * time.Minute},
		{"persistent", a.Persistent, false},
		{"images.all", a.Images.All, true},
		{"images.enable default", a.Images.Enable, true},
		{"images.until", a.Images.Until, 10 * 24 * time.Hour},
		{"volumes.all_volumes", a.Volumes.AllVolumes, true},
		{"high_watermark", a.HighWatermark, Watermark{Percent: 85}},
		{"low_watermark", a.LowWatermark, Watermark{Percent: 70}},
		{"min_age", a.MinAge, 2 * time.Hour},
		{"containers.enable default", a.Containers.Enable, true},
		{"check_interval default", a.CheckInterval, time.Minute},
		{"connect_timeout default", cfg.ConnectTimeout, 10 * time.Second},
		{"request_timeout default", cfg.RequestTimeout, 2 * time.Minute},
		{"prune_timeout", cfg.PruneTimeout, 90 * time.Minute},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want []string // "path: fragment"
	}{
		{"defaults are valid", func(*Config) {}, nil},
		{"bad schedule", func(c *Config) { c.AutoPrune.Schedule = "every other tuesday" },
			[]string{"containers.auto_prune.schedule: "}},
		{"host without scheme", func(c *Config) { c.Host = "/var/run/docker.sock" },
			[]string{"containers.host: address \"/var/run/docker.sock\" has no scheme"}},
		{"relative root dir", func(c *Config) { c.RootDir = "var/lib/docker" },
			[]string{"containers.root_dir: path \"var/lib/docker\" is not absolute"}},
		{"empty label key", func(c *Config) { c.AutoPrune.Images.Labels = []string{"ok", "!=v"} },
			[]string{"containers.auto_prune.images.labels[1]: label \"=v\" has no key"}},
		{"keep label negated", func(c *Config) { c.AutoPrune.KeepLabels = []string{"!x"} },
			[]string{}},
		{"bad keep pattern", func(c *Config) { c.AutoPrune.Keep = []string{"[a-"} },
			[]string{"containers.auto_prune.keep[0]: bad pattern"}},
		{"low above high", func(c *Config) { c.AutoPrune.LowWatermark = Watermark{Percent: 95} },
			[]string{"containers.auto_prune.low_watermark: 95% must be below high_watermark 90%"}},
		{"mixed units", func(c *Config) { c.AutoPrune.LowWatermark = Watermark{Bytes: 1 << 30} },
			[]string{"containers.auto_prune.low_watermark: 1GiB and high_watermark 90% must both be percentages"}},
		{"low without high", func(c *Config) { c.AutoPrune.HighWatermark = Watermark{} },
			[]string{"containers.auto_prune.low_watermark: set without high_watermark"}},
		{"build cache labels and several problems", func(c *Config) {
			c.AutoPrune.BuildCache.Labels = []string{"a"}
			c.AutoPrune.CheckInterval = 0
		}, []string{"containers.auto_prune.build_cache.labels: build cache records have no labels",
			"containers.auto_prune.check_interval: must be positive"}},
		{"deadlines not positive", func(c *Config) {
			c.ConnectTimeout, c.RequestTimeout, c.PruneTimeout = 0, -time.Second, 0
		}, []string{"containers.connect_timeout: must be positive", "containers.request_timeout: must be positive",
			"containers.prune_timeout: must be positive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(&cfg)
			v := confkit.NewValidator("containers")
			cfg.Validate(v)
			var got []string
			for _, e := range v.Errors() {
				got = append(got, e.Path+": "+e.Msg)
			}
			if tt.want == nil && len(got) > 0 {
				t.Fatalf("unexpected problems: %q", got)
			}
			if len(tt.want) == 0 && tt.want != nil && len(got) == 0 {
				t.Fatalf("want a problem, got none")
			}
			for _, w := range tt.want {
				found := false
				for _, g := range got {
					found = found || strings.HasPrefix(g, w)
				}
				if !found {
					t.Errorf("missing problem %q in %q", w, got)
				}
			}
		})
	}
}

func TestDecodeConfigErrorsHavePositions(t *testing.T) {
	tests := []struct{ doc, want string }{
		{"auto_prune:\n  high_watermark: 120%\n", "hostd.yaml:2:19"},
		{"auto_prune:\n  high_watermark: lots\n", "invalid watermark \"lots\""},
		{"auto_prune:\n  high_watermark: [1]\n", "expected a percentage or a size"},
		{"auto_prune:\n  min_age: soon\n", "hostd.yaml:2:12"},
		{"auto_prune:\n  imagez: {}\n", "imagez"},
	}
	for _, tt := range tests {
		cfg := DefaultConfig()
		_, errs := confkit.Decode("hostd.yaml", []byte(tt.doc), &cfg)
		if len(errs) == 0 || !strings.Contains(errs.Error(), tt.want) {
			t.Errorf("decode %q: got %v, want an error containing %q", tt.doc, errs, tt.want)
		}
	}
}

func TestParseWatermark(t *testing.T) {
	tests := []struct {
		in      string
		want    Watermark
		wantErr bool
	}{
		{"90%", Watermark{Percent: 90}, false},
		{" 12.5 % ", Watermark{Percent: 12.5}, false},
		{"40GiB", Watermark{Bytes: 40 << 30}, false},
		{"500m", Watermark{Bytes: 500 << 20}, false},
		{"1048576", Watermark{Bytes: 1 << 20}, false},
		{"", Watermark{}, false},
		{"0%", Watermark{}, true},
		{"101%", Watermark{}, true},
		{"-5GiB", Watermark{}, true},
		{"0", Watermark{}, true},
		{"x%", Watermark{}, true},
		{"ten", Watermark{}, true},
	}
	for _, tt := range tests {
		got, err := ParseWatermark(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseWatermark(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestWatermarkExceeded(t *testing.T) {
	tests := []struct {
		w          Watermark
		used, size uint64
		want       bool
	}{
		{Watermark{Percent: 90}, 91, 100, true},
		{Watermark{Percent: 90}, 90, 100, false},
		{Watermark{Percent: 90}, 1, 0, false},
		{Watermark{Bytes: 100}, 101, 1000, true},
		{Watermark{Bytes: 100}, 100, 1000, false},
		{Watermark{}, 1000, 1000, false},
	}
	for _, tt := range tests {
		if got := tt.w.Exceeded(tt.used, tt.size); got != tt.want {
			t.Errorf("%v.Exceeded(%d, %d) = %v, want %v", tt.w, tt.used, tt.size, got, tt.want)
		}
	}
}

func FuzzParseWatermark(f *testing.F) {
	for _, s := range []string{"90%", "40GiB", "1", "", "%", "1e400%", "NaN%", "9999999999999999999999TB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWatermark(s)
		if err != nil {
			return
		}
		if w.Percent < 0 || w.Percent > 100 || w.Bytes < 0 || (w.Percent > 0 && w.Bytes > 0) {
			t.Fatalf("ParseWatermark(%q) = %+v: out of range", s, w)
		}
		if w.IsZero() {
			return
		}
		back, err := ParseWatermark(w.String())
		if err != nil || back.IsZero() {
			t.Fatalf("%q -> %v does not parse back: %v", s, w, err)
		}
	})
}
