package audio

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/hostd/hostd/internal/config"
)

func parseConfig(t *testing.T, yaml string) (*Config, error) {
	t.Helper()
	sections := []config.Section{{Name: "audio", Default: func() any { c := DefaultConfig(); return &c }}}
	c, err := config.Parse("hostd.yaml", []byte(yaml), sections, func(string) string { return "" })
	if err != nil {
		return nil, err
	}
	return c.Sections["audio"].(*Config), nil
}

func TestConfigDecode(t *testing.T) {
	c, err := parseConfig(t, `
audio:
  enable: true
  user: root
  preferred_sinks: ["bluez_output.*", "alsa_output.usb-*"]
  preferred_sources: ["alsa_input.usb-*"]
  volume_limit: 80%
  startup_volume: 35
  remember: false
  quantum: 256
  rate: 48000
  config_dir: /etc/pipewire
`)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Enable || c.User != "root" || len(c.PreferredSinks) != 2 || c.VolumeLimit != 80 ||
		c.StartupVolume == nil || *c.StartupVolume != 35 || c.Remember || c.Quantum != 256 || c.Rate != 48000 {
		t.Errorf("decoded %+v", c)
	}
	def, err := parseConfig(t, "audio:\n  enable: true\n")
	if err != nil {
		t.Fatal(err)
	}
	if !def.Remember || def.VolumeLimit != 0 || def.StartupVolume != nil {
		t.Errorf("defaults %+v", def)
	}
}

func TestConfigErrors(t *testing.T) {
	// Every problem is reported at once, with line and column.
	_, err := parseConfig(t, `audio:
  enable: true
  server: "http://nope"
  user: no-such-user-hostd
  preferred_sinks: ["[bad"]
  preferred_sources: [""]
  volume_limit: 300%
  startup_volume: loud
  quantum: 300
  rate: 12345
  config_dir: relative/dir
  timeout: 0s
`)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		`hostd.yaml:3:11: audio.server: invalid server address "http://nope"`,
		`hostd.yaml:4:9: audio.user: no user named "no-such-user-hostd"`,
		`hostd.yaml:5:21: audio.preferred_sinks[0]: invalid pattern "[bad"`,
		`hostd.yaml:6:23: audio.preferred_sources[0]: empty pattern`,
		`hostd.yaml:7:17: audio.volume_limit: 300% is outside 0..200%`,
		`hostd.yaml:8:19: audio.startup_volume: invalid percentage "loud"`,
		`hostd.yaml:9:12: audio.quantum: 300 is not a power of two between 16 and 8192`,
		`hostd.yaml:10:9: audio.rate: 12345 Hz is not a sample rate PipeWire accepts`,
		`hostd.yaml:11:15: audio.config_dir: "relative/dir" is not an absolute path`,
		`hostd.yaml:12:12: audio.timeout: must be positive`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("errors lack %q:\n%s", want, msg)
		}
	}
}

func TestConfigCrossChecks(t *testing.T) {
	tests := []struct {
		yaml, want string
	}{
		{"audio:\n  enable: true\n  quantum: 128\n", "audio.quantum: needs config_dir"},
		{"audio:\n  enable: true\n  rate: 44100\n", "audio.rate: needs config_dir"},
		{"audio:\n  enable: true\n  volume_limit: 50\n  startup_volume: 60%\n", "audio.startup_volume: 60% is above volume_limit 50%"},
		{"audio:\n  enable: true\n  volume_limit: -5\n", `invalid percentage "-5"`},
		{"audio:\n  enable: true\n  volume_limit: [1]\n", "want a percentage"},
		{"audio:\n  enable: true\n  volume: 5\n", "volume"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := parseConfig(t, tt.yaml)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// A disabled section is not validated.
	if _, err := parseConfig(t, "audio:\n  quantum: 300\n"); err != nil {
		t.Errorf("disabled section validated: %v", err)
	}
}

func TestResolveEndpoint(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	tests := []struct {
		name   string
		cfg    Config
		env    map[string]string
		want   string
		cookie string
	}{
		{"config wins", Config{Server: "tcp:127.0.0.1:4713", User: "root"}, map[string]string{"PULSE_SERVER": "/x"}, "tcp:127.0.0.1:4713", ""},
		{"PULSE_SERVER", Config{User: "root"}, map[string]string{"PULSE_SERVER": "unix:/x/native", "PULSE_COOKIE": "/c"}, "unix:/x/native", "/c"},
		{"user by name", Config{User: "root"}, nil, "unix:/run/user/0/pulse/native", "/root/.config/pulse/cookie"},
		{"user by uid", Config{User: "0"}, nil, "unix:/run/user/0/pulse/native", "/root/.config/pulse/cookie"},
		{"own runtime dir", Config{}, map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000", "HOME": "/home/a"}, "unix:/run/user/1000/pulse/native", "/home/a/.config/pulse/cookie"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep, err := tt.cfg.resolveEndpoint(env(tt.env))
			if err != nil || ep.Address != tt.want || ep.Cookie != tt.cookie {
				t.Errorf("endpoint = %+v, %v; want %s cookie %q", ep, err, tt.want, tt.cookie)
			}
		})
	}
	if _, err := (&Config{User: "no-such-user-hostd"}).resolveEndpoint(env(nil)); err == nil {
		t.Error("unknown user resolved")
	}
	ep, _ := (&Config{}).resolveEndpoint(env(nil))
	if want := "/run/user/" + strconv.Itoa(os.Geteuid()) + "/pulse/native"; !strings.HasSuffix(ep.Address, want) {
		t.Errorf("fallback %s, want %s", ep.Address, want)
	}
}
