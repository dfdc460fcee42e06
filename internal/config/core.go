package config

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hostd/hostd/internal/confkit"
)

// Core is the `hostd` section: the daemon's own settings.
type Core struct {
	// LogLevel is debug, info, warn or error. Default: info.
	LogLevel string `yaml:"log_level"`
	// LogFormat is auto, text or json. auto is key=value lines when stderr
	// is the journal ($JOURNAL_STREAM) and human text on a terminal.
	// Default: auto.
	LogFormat string `yaml:"log_format"`
	// StateDir holds every service's data. Default: $STATE_DIRECTORY, else
	// /var/lib/hostd as root, else $XDG_STATE_HOME/hostd
	// (~/.local/state/hostd).
	StateDir string `yaml:"state_dir"`
	// Socket is the local API's unix socket. Default:
	// $RUNTIME_DIRECTORY/hostd.sock, else /run/hostd/hostd.sock as root,
	// else $XDG_RUNTIME_DIR/hostd.sock.
	Socket string `yaml:"socket"`
	// SocketGroup, if set, owns the socket so its members may read status.
	// Default: none.
	SocketGroup string `yaml:"socket_group"`
	// HTTP is the health/metrics listener.
	HTTP HTTP `yaml:"http"`
	// ShutdownTimeout bounds how long stopping all services may take.
	// Default: 15s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// StopTimeout bounds how long one service may take to stop. Default: 10s.
	StopTimeout time.Duration `yaml:"stop_timeout"`
	// ReloadTimeout bounds reading and checking the config file on a
	// reload (SIGHUP or `hostd config reload`); a reload that takes longer
	// is abandoned and the running config kept. Restarting the services
	// whose section changed is bounded by stop_timeout each. Default: 30s.
	ReloadTimeout time.Duration `yaml:"reload_timeout"`
	// RestartBackoff is the first wait before restarting a failed service;
	// it doubles per consecutive failure up to RestartBackoffMax.
	// Default: 1s.
	RestartBackoff time.Duration `yaml:"restart_backoff"`
	// RestartBackoffMax caps the restart wait. Default: 1m.
	RestartBackoffMax time.Duration `yaml:"restart_backoff_max"`
	// GCPercent is the Go garbage collector's target for the whole
	// daemon, as the GOGC environment variable sets it: the heap may grow
	// by this percentage of the live heap before the next collection.
	// Lower keeps hostd's memory smaller and spends more CPU collecting.
	// At least 10. A GOGC set in hostd's environment wins. Default: 100.
	GCPercent int `yaml:"gc_percent"`
	// CodeTrimInterval is how often hostd releases the pages of its own
	// executable it has mapped but no longer runs (start-up code, a
	// backup that finished) from its resident set. The pages stay in the
	// kernel's page cache, and code still in use maps them back on its next
	// run. hostd also releases them once all services have started, and
	// before and after each backup job. 0 turns releasing off.
	// Default: 10m.
	CodeTrimInterval time.Duration `yaml:"code_trim_interval"`
}

// DefaultReloadTimeout is hostd.reload_timeout's default.
const DefaultReloadTimeout = 30 * time.Second

// DefaultGCPercent is hostd.gc_percent's default.
const DefaultGCPercent = 100

// DefaultCodeTrimInterval is hostd.code_trim_interval's default.
const DefaultCodeTrimInterval = 10 * time.Minute

// HTTP is the health and metrics listener.
type HTTP struct {
	// Listen is host:port; empty turns the listener off.
	// Default: 127.0.0.1:9273.
	Listen string `yaml:"listen"`
}

// Secrets is the `secrets` section.
type Secrets struct {
	// AgeKeyFile holds the age identities that decrypt SOPS files.
	// Default: $SOPS_AGE_KEY_FILE.
	AgeKeyFile string `yaml:"age_key_file"`
}

// DefaultCore returns the core defaults for this process's environment.
func DefaultCore(getenv func(string) string) Core {
	return Core{
		LogLevel:          "info",
		LogFormat:         "auto",
		StateDir:          DefaultStateDir(getenv),
		Socket:            DefaultSocket(getenv),
		HTTP:              HTTP{Listen: DefaultHTTPListen},
		ShutdownTimeout:   15 * time.Second,
		StopTimeout:       10 * time.Second,
		ReloadTimeout:     DefaultReloadTimeout,
		RestartBackoff:    time.Second,
		RestartBackoffMax: time.Minute,
		GCPercent:         DefaultGCPercent,
		CodeTrimInterval:  DefaultCodeTrimInterval,
	}
}

// DefaultStateDir is $STATE_DIRECTORY (first entry), else /var/lib/hostd as
// root, else $XDG_STATE_HOME/hostd.
func DefaultStateDir(getenv func(string) string) string {
	if d := getenv("STATE_DIRECTORY"); d != "" {
		first, _, _ := strings.Cut(d, ":")
		return first
	}
	if os.Geteuid() == 0 {
		return DefaultStateDirRoot
	}
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "hostd")
	}
	return filepath.Join(getenv("HOME"), ".local", "state", "hostd")
}

// DefaultSocket is $RUNTIME_DIRECTORY/hostd.sock, else /run/hostd/hostd.sock
// as root, else $XDG_RUNTIME_DIR/hostd.sock.
func DefaultSocket(getenv func(string) string) string {
	if d := getenv("RUNTIME_DIRECTORY"); d != "" {
		first, _, _ := strings.Cut(d, ":")
		return filepath.Join(first, "hostd.sock")
	}
	if os.Geteuid() == 0 {
		return DefaultSocketRoot
	}
	if d := getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "hostd.sock")
	}
	return filepath.Join(os.TempDir(), "hostd-"+getenv("USER"), "hostd.sock")
}

// Validate implements the section validation contract.
func (c *Core) Validate(v *confkit.Validator) {
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		v.Errorf("log_level", "must be debug, info, warn or error, not %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "auto", "text", "json":
	default:
		v.Errorf("log_format", "must be auto, text or json, not %q", c.LogFormat)
	}
	if c.StateDir == "" {
		v.Errorf("state_dir", "must not be empty")
	}
	if c.Socket == "" {
		v.Errorf("socket", "must not be empty")
	} else if !filepath.IsAbs(c.Socket) {
		v.Errorf("socket", "must be an absolute path, not %q", c.Socket)
	}
	v.CheckListen("http.listen", c.HTTP.Listen)
	for path, d := range map[string]time.Duration{
		"shutdown_timeout": c.ShutdownTimeout, "stop_timeout": c.StopTimeout, "reload_timeout": c.ReloadTimeout,
		"restart_backoff": c.RestartBackoff, "restart_backoff_max": c.RestartBackoffMax,
	} {
		if d <= 0 {
			v.Errorf(path, "must be positive")
		}
	}
	if c.GCPercent < 10 {
		v.Errorf("gc_percent", "must be at least 10, not %d", c.GCPercent)
	}
	if c.RestartBackoffMax < c.RestartBackoff {
		v.Errorf("restart_backoff_max", "must not be less than restart_backoff (%s)", c.RestartBackoff)
	}
}
