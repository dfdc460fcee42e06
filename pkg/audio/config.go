package audio

import (
	"fmt"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hostd/hostd/internal/confkit"
)

// Config is the "audio" section of hostd's config file.
type Config struct {
	// Enable turns the service on. Default: false.
	Enable bool `yaml:"enable"`
	// Server is the pulse server address: "unix:/run/user/1000/pulse/native",
	// a socket path, or "tcp:host:port". Default: empty, meaning
	// $PULSE_SERVER from hostd's environment, else the pulse socket in the
	// runtime dir of User, else in hostd's own $XDG_RUNTIME_DIR.
	Server string `yaml:"server"`
	// User is the login (name or numeric UID) whose session runs PipeWire;
	// hostd runs as a system service and uses /run/user/UID/pulse/native
	// and that user's pulse cookie. Default: empty (see Server).
	User string `yaml:"user"`
	// PreferredSinks are sink name patterns in order of preference
	// ("bluez_output.*", "alsa_output.usb-*", "alsa_output.pci-*"). When a
	// sink appears or goes, and at connect, the first pattern that matches
	// a present sink picks the default sink; a default that already
	// matches the best present pattern is left alone. Patterns use
	// path.Match syntax. Default: none (the default sink is left to
	// WirePlumber and the user).
	PreferredSinks []string `yaml:"preferred_sinks"`
	// PreferredSources is the same for sources (microphones).
	// Default: none.
	PreferredSources []string `yaml:"preferred_sources"`
	// VolumeLimit is the highest sink volume allowed, "80%" or 80. Any
	// channel above it, set by anyone, is pulled back to it. Default: 0,
	// no limit (hostd itself never sets more than 200%).
	VolumeLimit Percent `yaml:"volume_limit"`
	// StartupVolume is set on a sink the first time hostd meets it after
	// starting, unless Remember knows its last volume. Default: unset.
	StartupVolume *Percent `yaml:"startup_volume"`
	// Remember keeps each device's last volume and mute in the state dir
	// and restores them when the device comes back. Default: true.
	Remember bool `yaml:"remember"`
	// Quantum is PipeWire's default clock quantum in samples (a power of
	// two, 16..8192; lower is lower latency). Needs ConfigDir.
	// Default: 0, PipeWire's own (1024).
	Quantum int `yaml:"quantum"`
	// Rate is PipeWire's default clock rate in Hz. Needs ConfigDir.
	// Default: 0, PipeWire's own (48000).
	Rate int `yaml:"rate"`
	// ConfigDir is the PipeWire config directory hostd manages, for example
	// /etc/pipewire or /home/alice/.config/pipewire; hostd writes
	// Quantum and Rate to ConfigDir/pipewire.conf.d/50-hostd.conf (and
	// removes that file when both are unset). PipeWire reads it when it
	// starts. Default: empty, hostd writes nothing.
	ConfigDir string `yaml:"config_dir"`
	// Timeout bounds each call to the audio server: connecting, each
	// request, and each run of pw-metadata. A server that does not answer
	// within it is dropped, the service reports itself degraded and
	// reconnects with backoff. Default: 3s.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultTimeout is the default of Config.Timeout.
const DefaultTimeout = 3 * time.Second

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Remember: true, Timeout: DefaultTimeout}
}

// Percent is a volume percentage in config: "80%" or 80.
type Percent float64

// String formats the percentage as the config takes it ("80%").
func (p Percent) String() string {
	return strconv.FormatFloat(float64(p), 'f', -1, 64) + "%"
}

// UnmarshalConfig implements confkit.Unmarshaler.
func (p *Percent) UnmarshalConfig(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a percentage such as 80%%")
	}
	s := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(n.Value), "%"))
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || s != strings.Trim(s, "+-") || strings.ContainsAny(s, "eEnNiIxX") {
		return fmt.Errorf("invalid percentage %q: want a number such as 80%%", n.Value)
	}
	*p = Percent(v)
	return nil
}

// validRates are the clock rates PipeWire accepts as defaults.
var validRates = []int{8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 176400, 192000, 352800, 384000}

// Validate reports every problem in the section.
func (c *Config) Validate(v *confkit.Validator) {
	if c.Server != "" {
		if _, _, err := dialAddress(c.Server); err != nil {
			v.Errorf("server", "%v", err)
		}
	}
	if c.User != "" {
		if _, err := lookupUser(c.User); err != nil {
			v.Errorf("user", "%v", err)
		}
	}
	for i, p := range c.PreferredSinks {
		checkPattern(v, fmt.Sprintf("preferred_sinks[%d]", i), p)
	}
	for i, p := range c.PreferredSources {
		checkPattern(v, fmt.Sprintf("preferred_sources[%d]", i), p)
	}
	if c.VolumeLimit < 0 || c.VolumeLimit > MaxPercent {
		v.Errorf("volume_limit", "%g%% is outside 0..%d%%", float64(c.VolumeLimit), MaxPercent)
	}
	if c.StartupVolume != nil {
		sv := *c.StartupVolume
		switch {
		case sv < 0 || sv > MaxPercent:
			v.Errorf("startup_volume", "%g%% is outside 0..%d%%", float64(sv), MaxPercent)
		case c.VolumeLimit > 0 && sv > c.VolumeLimit:
			v.Errorf("startup_volume", "%g%% is above volume_limit %g%%", float64(sv), float64(c.VolumeLimit))
		}
	}
	if c.Quantum != 0 && (c.Quantum < 16 || c.Quantum > 8192 || c.Quantum&(c.Quantum-1) != 0) {
		v.Errorf("quantum", "%d is not a power of two between 16 and 8192", c.Quantum)
	}
	if c.Rate != 0 && !containsInt(validRates, c.Rate) {
		v.Errorf("rate", "%d Hz is not a sample rate PipeWire accepts (%s)", c.Rate, joinInts(validRates))
	}
	if c.Timeout <= 0 {
		v.Errorf("timeout", "must be positive")
	}
	switch {
	case c.ConfigDir != "" && !filepath.IsAbs(c.ConfigDir):
		v.Errorf("config_dir", "%q is not an absolute path", c.ConfigDir)
	case c.ConfigDir == "" && c.Quantum != 0:
		v.Errorf("quantum", "needs config_dir: hostd writes the quantum into PipeWire's config")
	case c.ConfigDir == "" && c.Rate != 0:
		v.Errorf("rate", "needs config_dir: hostd writes the rate into PipeWire's config")
	}
}

func checkPattern(v *confkit.Validator, at, p string) {
	if p == "" {
		v.Errorf(at, "empty pattern")
		return
	}
	if _, err := path.Match(p, ""); err != nil {
		v.Errorf(at, "invalid pattern %q: %v", p, err)
	}
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

// lookupUser finds a user by name or numeric UID.
func lookupUser(name string) (*user.User, error) {
	if _, err := strconv.Atoi(name); err == nil {
		u, err := user.LookupId(name)
		if err != nil {
			return nil, fmt.Errorf("no user with uid %s", name)
		}
		return u, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("no user named %q", name)
	}
	return u, nil
}

// endpoint is where and how to connect.
type endpoint struct {
	Address string
	Cookie  string // path of the pulse cookie, empty for none
}

// resolveEndpoint picks the server address as documented on Config.Server.
func (c *Config) resolveEndpoint(getenv func(string) string) (endpoint, error) {
	if c.Server != "" {
		return endpoint{Address: c.Server, Cookie: getenv("PULSE_COOKIE")}, nil
	}
	if s := getenv("PULSE_SERVER"); s != "" {
		return endpoint{Address: s, Cookie: getenv("PULSE_COOKIE")}, nil
	}
	if c.User != "" {
		u, err := lookupUser(c.User)
		if err != nil {
			return endpoint{}, err
		}
		return endpoint{
			Address: "unix:" + filepath.Join("/run/user", u.Uid, "pulse/native"),
			Cookie:  filepath.Join(u.HomeDir, ".config/pulse/cookie"),
		}, nil
	}
	dir := getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		dir = filepath.Join("/run/user", strconv.Itoa(os.Geteuid()))
	}
	cookie := getenv("PULSE_COOKIE")
	if cookie == "" && getenv("HOME") != "" {
		cookie = filepath.Join(getenv("HOME"), ".config/pulse/cookie")
	}
	return endpoint{Address: "unix:" + filepath.Join(dir, "pulse/native"), Cookie: cookie}, nil
}
