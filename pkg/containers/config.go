package containers

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hostd/hostd/internal/confkit"
	"github.com/hostd/hostd/internal/service"
)

// Config is the `containers` section.
type Config struct {
	// Enable turns the service on. Default: false.
	Enable bool `yaml:"enable"`
	// Host is the Docker Engine API address, for example
	// "unix:///var/run/docker.sock" or "tcp://127.0.0.1:2375".
	// Default: "" ($DOCKER_HOST, else unix:///var/run/docker.sock).
	Host string `yaml:"host"`
	// RootDir is the directory whose filesystem disk-pressure mode watches.
	// Default: "" (the engine's DockerRootDir, usually /var/lib/docker).
	RootDir string `yaml:"root_dir"`
	// ConnectTimeout bounds each request made to reach the engine: the ping,
	// version and info of a (re)connect, and the ping that checks the
	// engine is still there after a removal failed. An engine that does not
	// answer within it is reported unreachable. Default: 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// RequestTimeout bounds each other request to the engine: one listing,
	// inspection, disk-usage query or removal. Default: 2m.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// PruneTimeout bounds a whole prune (manual, scheduled or
	// disk-pressure); what was removed until then stays removed and the
	// prune reports that it stopped early. Default: 1h.
	PruneTimeout time.Duration `yaml:"prune_timeout"`
	// AutoPrune is what is pruned, when, and what is protected.
	AutoPrune AutoPrune `yaml:"auto_prune"`
}

// AutoPrune configures the scheduled prune and disk-pressure mode.
type AutoPrune struct {
	// Enable runs the scheduled prune and disk-pressure mode. Manual prunes
	// (`hostd containers prune`) work either way. Default: true.
	Enable bool `yaml:"enable"`
	// Schedule is a systemd OnCalendar expression. Default: "weekly".
	Schedule string `yaml:"schedule"`
	// RandomizedDelay delays each scheduled run by a random time in
	// [0, RandomizedDelay), like systemd's RandomizedDelaySec. Default: 0.
	RandomizedDelay time.Duration `yaml:"randomized_delay"`
	// Persistent runs a prune at start when the last scheduled run was
	// missed (hostd or the host was down), like systemd's Persistent=.
	// Default: true.
	Persistent bool `yaml:"persistent"`
	// KeepLabels protects every object carrying one of these labels
	// ("key" or "key=value") from every kind of prune. Default: ["hostd.keep"].
	KeepLabels []string `yaml:"keep_labels"`

	// Containers prunes stopped containers (created, exited, dead).
	// Default: enable true.
	Containers Filter `yaml:"containers"`
	// Networks prunes custom networks no running container is attached to.
	// Default: enable true.
	Networks Filter `yaml:"networks"`
	// Images prunes dangling images, or every image no container uses when
	// all is set. Default: enable true, all false.
	Images ImageFilter `yaml:"images"`
	// BuildCache prunes unused build cache. Default: enable true, all false.
	BuildCache BuildCacheFilter `yaml:"build_cache"`
	// Volumes prunes local volumes no container uses: anonymous volumes
	// only unless all_volumes is set. Default: enable false.
	Volumes VolumeFilter `yaml:"volumes"`

	// HighWatermark starts disk-pressure mode when the filesystem holding
	// Docker's root dir uses more than this: a percentage ("90%") or a
	// byte size ("40GiB"). "" turns disk-pressure mode off. Default: "90%".
	HighWatermark Watermark `yaml:"high_watermark"`
	// LowWatermark is where disk-pressure mode stops removing images,
	// in the same units. Default: "80%".
	LowWatermark Watermark `yaml:"low_watermark"`
	// Keep lists image name patterns (path.Match syntax, matched against
	// "repo:tag" and "repo") that disk-pressure mode never removes.
	// Default: [].
	Keep []string `yaml:"keep"`
	// MinAge protects images used (or created) more recently than this from
	// disk-pressure mode. Default: 1h.
	MinAge time.Duration `yaml:"min_age"`
	// CheckInterval is how often disk use is measured. Default: 1m.
	CheckInterval time.Duration `yaml:"check_interval"`
}

// Filter selects the objects of one kind a prune removes.
type Filter struct {
	// Enable prunes this kind of object.
	Enable bool `yaml:"enable"`
	// Until only prunes objects created longer ago than this (Docker's
	// "until" filter). Default: 0 (any age).
	Until time.Duration `yaml:"until"`
	// Labels only prunes objects matching every entry: "key" or
	// "key=value" must be present, "!key" or "!key=value" must not (Docker's
	// "label" and "label!" filters). Default: [].
	Labels []string `yaml:"labels"`
}

// ImageFilter selects images.
type ImageFilter struct {
	Filter `yaml:",inline"`
	// All prunes every image no container uses, not only dangling ones.
	// Default: false.
	All bool `yaml:"all"`
}

// BuildCacheFilter selects build cache records.
type BuildCacheFilter struct {
	Filter `yaml:",inline"`
	// All prunes all unused build cache, not only dangling records.
	// Default: false.
	All bool `yaml:"all"`
}

// VolumeFilter selects volumes.
type VolumeFilter struct {
	Filter `yaml:",inline"`
	// AllVolumes prunes named volumes too, not only anonymous ones.
	// Default: false.
	AllVolumes bool `yaml:"all_volumes"`
}

// Default deadlines of calls to the engine.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultRequestTimeout = 2 * time.Minute
	DefaultPruneTimeout   = time.Hour
)

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		ConnectTimeout: DefaultConnectTimeout,
		RequestTimeout: DefaultRequestTimeout,
		PruneTimeout:   DefaultPruneTimeout,
		AutoPrune: AutoPrune{
			Enable:        true,
			Schedule:      "weekly",
			Persistent:    true,
			KeepLabels:    []string{"hostd.keep"},
			Containers:    Filter{Enable: true},
			Networks:      Filter{Enable: true},
			Images:        ImageFilter{Filter: Filter{Enable: true}},
			BuildCache:    BuildCacheFilter{Filter: Filter{Enable: true}},
			Volumes:       VolumeFilter{},
			HighWatermark: Watermark{Percent: 90},
			LowWatermark:  Watermark{Percent: 80},
			MinAge:        time.Hour,
			CheckInterval: time.Minute,
		},
	}
}

// Validate reports every problem with c; paths are relative to the section.
func (c *Config) Validate(v *confkit.Validator) {
	if c.Host != "" && !strings.Contains(c.Host, "://") {
		v.Errorf("host", "address %q has no scheme: want unix:///path or tcp://host:port", c.Host)
	}
	if c.RootDir != "" && !path.IsAbs(c.RootDir) {
		v.Errorf("root_dir", "path %q is not absolute", c.RootDir)
	}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"connect_timeout", c.ConnectTimeout}, {"request_timeout", c.RequestTimeout}, {"prune_timeout", c.PruneTimeout}} {
		if t.d <= 0 {
			v.Errorf(t.name, "must be positive")
		}
	}
	c.AutoPrune.validate(v.At("auto_prune"))
}

func (a *AutoPrune) validate(v *confkit.Validator) {
	if _, err := service.ParseSchedule(a.Schedule); err != nil {
		v.Errorf("schedule", "%v", err)
	}
	for i, l := range a.KeepLabels {
		if err := checkLabel(l, false); err != nil {
			v.Errorf(fmt.Sprintf("keep_labels[%d]", i), "%v", err)
		}
	}
	for name, f := range map[string]*Filter{
		"containers":  &a.Containers,
		"networks":    &a.Networks,
		"images":      &a.Images.Filter,
		"build_cache": &a.BuildCache.Filter,
		"volumes":     &a.Volumes.Filter,
	} {
		for i, l := range f.Labels {
			if err := checkLabel(l, true); err != nil {
				v.Errorf(fmt.Sprintf("%s.labels[%d]", name, i), "%v", err)
			}
		}
	}
	if len(a.BuildCache.Labels) > 0 {
		v.Errorf("build_cache.labels", "build cache records have no labels; use until")
	}
	for i, p := range a.Keep {
		if _, err := path.Match(p, ""); err != nil {
			v.Errorf(fmt.Sprintf("keep[%d]", i), "bad pattern %q: %v", p, err)
		}
	}
	hi, lo := a.HighWatermark, a.LowWatermark
	switch {
	case hi.IsZero() && !lo.IsZero():
		v.Errorf("low_watermark", "set without high_watermark")
	case !hi.IsZero() && lo.IsZero():
		v.Errorf("low_watermark", "required when high_watermark is set")
	case !hi.IsZero() && (hi.Percent > 0) != (lo.Percent > 0):
		v.Errorf("low_watermark", "%s and high_watermark %s must both be percentages or both byte sizes", lo, hi)
	case !hi.IsZero() && lo.compare(hi) >= 0:
		v.Errorf("low_watermark", "%s must be below high_watermark %s", lo, hi)
	}
	if !hi.IsZero() && a.CheckInterval <= 0 {
		v.Errorf("check_interval", "must be positive when high_watermark is set")
	}
}

// checkLabel reports whether s is a usable label expression.
func checkLabel(s string, negatable bool) error {
	if negatable {
		s = strings.TrimPrefix(s, "!")
	} else if strings.HasPrefix(s, "!") {
		return fmt.Errorf("label %q cannot be negated here", s)
	}
	k, _, _ := strings.Cut(s, "=")
	if strings.TrimSpace(k) == "" {
		return fmt.Errorf("label %q has no key", s)
	}
	return nil
}

// Watermark is a disk-use threshold: a percentage of the filesystem or an
// absolute number of used bytes. The zero value means "off".
type Watermark struct {
	Percent float64 // 0 < Percent <= 100, or 0
	Bytes   int64   // used when Percent is 0
}

// ParseWatermark parses "90%", "40GiB", "500MB" or a plain byte count.
func ParseWatermark(s string) (Watermark, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Watermark{}, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || !(f > 0 && f <= 100) {
			return Watermark{}, fmt.Errorf("invalid percentage %q: want a number in (0, 100]", s)
		}
		return Watermark{Percent: f}, nil
	}
	n, err := service.ParseByteSize(s)
	if err != nil || n <= 0 {
		return Watermark{}, fmt.Errorf("invalid watermark %q: want a percentage (\"90%%\") or a size (\"40GiB\")", s)
	}
	return Watermark{Bytes: n.Bytes()}, nil
}

// UnmarshalConfig implements confkit.Unmarshaler.
func (w *Watermark) UnmarshalConfig(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a percentage or a size, got a %s", nodeKind(n))
	}
	v, err := ParseWatermark(n.Value)
	if err != nil {
		return err
	}
	*w = v
	return nil
}

// MarshalText renders the watermark as it is written in the config.
func (w Watermark) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

func (w Watermark) String() string {
	switch {
	case w.Percent > 0:
		return strconv.FormatFloat(w.Percent, 'f', -1, 64) + "%"
	case w.Bytes > 0:
		return service.ByteSize(w.Bytes).String()
	}
	return ""
}

// IsZero reports whether the watermark is off.
func (w Watermark) IsZero() bool { return w.Percent == 0 && w.Bytes == 0 }

// Exceeded reports whether used bytes of a filesystem of size bytes are
// above the watermark.
func (w Watermark) Exceeded(used, size uint64) bool {
	switch {
	case w.Percent > 0:
		return size > 0 && float64(used)*100/float64(size) > w.Percent
	case w.Bytes > 0:
		return used > uint64(w.Bytes)
	}
	return false
}

func (w Watermark) compare(o Watermark) int {
	a, b := w.Percent, o.Percent
	if a == 0 && b == 0 {
		a, b = float64(w.Bytes), float64(o.Bytes)
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "sequence"
	}
	return "value"
}
