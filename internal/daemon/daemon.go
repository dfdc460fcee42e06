package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/config"
	"github.com/hostd/hostd/internal/logging"
	"github.com/hostd/hostd/internal/secrets"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/supervisor"
)

// Options configure a daemon run.
type Options struct {
	// ConfigFile is the config to load; empty runs on embedded defaults.
	ConfigFile string
	// Registrations are the services hostd knows, in start order.
	Registrations []Registration
	// Version is hostd's version string.
	Version string
	// Getenv reads the environment. Default: os.Getenv.
	Getenv func(string) string
	// Stderr receives logs. Default: os.Stderr.
	Stderr *os.File
	// Signals delivers SIGTERM, SIGINT and SIGHUP. Default: signal.Notify.
	Signals <-chan os.Signal
}

// ConfigError is returned when the config cannot be loaded; the CLI exits
// with status 2.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Daemon is one running hostd.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	level   *slog.LevelVar
	started time.Time

	mu       sync.Mutex
	cfg      *config.Config
	loadedAt time.Time

	tree     *supervisor.Tree
	root     *prometheus.Registry
	gatherer *gatherer
	regs     map[string]Registration
}

// LoadConfig loads the config named in opts, or the embedded defaults.
func LoadConfig(file string, regs []Registration, getenv func(string) string) (*config.Config, error) {
	if file == "" {
		return config.Defaults(Sections(regs), getenv)
	}
	return config.Load(file, Sections(regs), getenv)
}

// Run runs hostd until SIGTERM or SIGINT (or ctx ends), then stops every
// service within the shutdown deadline. A config that does not load returns
// a *ConfigError before anything starts.
func Run(ctx context.Context, opts Options) error {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.ConfigFile != "" {
		if abs, err := filepath.Abs(opts.ConfigFile); err == nil {
			opts.ConfigFile = abs
		}
	}
	cfg, err := LoadConfig(opts.ConfigFile, opts.Registrations, opts.Getenv)
	if err != nil {
		return &ConfigError{Err: err}
	}
	d := &Daemon{opts: opts, level: new(slog.LevelVar), started: time.Now(), regs: map[string]Registration{}}
	for _, r := range opts.Registrations {
		d.regs[r.Name] = r
	}
	lvl, _ := logging.ParseLevel(cfg.Core.LogLevel)
	d.level.Set(lvl)
	d.log = logging.New(opts.Stderr, cfg.Core.LogFormat, d.level)
	applyMemorySettings(cfg.Core, opts.Getenv, d.log)
	return d.run(ctx, cfg)
}

func (d *Daemon) run(ctx context.Context, cfg *config.Config) error {
	if err := os.MkdirAll(cfg.Core.StateDir, 0o700); err != nil {
		return fmt.Errorf("create state directory %s: %w", cfg.Core.StateDir, err)
	}
	d.cfg, d.loadedAt = cfg, time.Now()
	d.trimCode("start")
	d.root = prometheus.NewRegistry()
	d.root.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "hostd_build_info",
			Help:        "hostd's version; always 1.",
			ConstLabels: prometheus.Labels{"version": d.opts.Version, "goversion": runtime.Version()},
		}, func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hostd_start_time_seconds",
			Help: "When hostd started, in seconds since the epoch.",
		}, func() float64 { return float64(d.started.UnixNano()) / 1e9 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hostd_config_last_reload_success_timestamp_seconds",
			Help: "When the config in use was loaded, in seconds since the epoch.",
		}, func() float64 { d.mu.Lock(); defer d.mu.Unlock(); return float64(d.loadedAt.UnixNano()) / 1e9 }),
	)
	d.gatherer = newGatherer(d.root)
	d.tree = supervisor.New(supervisor.Options{
		Logger:      d.log,
		BackoffMin:  cfg.Core.RestartBackoff,
		BackoffMax:  cfg.Core.RestartBackoffMax,
		StopTimeout: cfg.Core.StopTimeout,
	})
	d.root.MustRegister(d.tree)

	sock, err := d.listenSocket(cfg.Core)
	if err != nil {
		return err
	}
	defer os.Remove(cfg.Core.Socket)
	var httpLn net.Listener
	if cfg.Core.HTTP.Listen != "" {
		httpLn, err = net.Listen("tcp", cfg.Core.HTTP.Listen)
		if err != nil {
			sock.Close()
			return fmt.Errorf("listen for HTTP on %s: %w", cfg.Core.HTTP.Listen, err)
		}
	}

	for _, name := range cfg.Names() {
		d.apply(name, cfg)
	}

	treeCtx, stopTree := context.WithCancel(context.Background())
	treeDone := make(chan error, 1)
	go func() { treeDone <- d.tree.Serve(treeCtx) }()

	sockSrv := &http.Server{Handler: d.socketHandler(), ConnContext: api.ConnContext, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = sockSrv.Serve(sock) }()
	var httpSrv *http.Server
	if httpLn != nil {
		httpSrv = &http.Server{Handler: d.httpHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = httpSrv.Serve(httpLn) }()
	}
	d.log.Info("hostd started", "version", d.opts.Version, "config", cfgName(cfg), "state_dir", cfg.Core.StateDir,
		"socket", cfg.Core.Socket, "http", cfg.Core.HTTP.Listen)

	sigs := d.opts.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		defer signal.Stop(ch)
		sigs = ch
	}
	notifyCtx, stopNotify := context.WithCancel(context.Background())
	notifyDone := make(chan struct{})
	go func() { defer close(notifyDone); d.notifyLoop(notifyCtx) }()
	trimDone := make(chan struct{})
	go func() { defer close(trimDone); d.codeTrimLoop(notifyCtx) }()

	var reason string
loop:
	for {
		select {
		case <-ctx.Done():
			reason = "context done"
			break loop
		case s := <-sigs:
			if s == syscall.SIGHUP {
				d.reload()
				continue
			}
			reason = s.String()
			break loop
		case err := <-treeDone:
			d.log.Error("supervisor tree stopped", "err", fmt.Sprint(err))
			treeDone <- err
			reason = "supervisor stopped"
			break loop
		}
	}
	notify(d.log, "STOPPING=1\nSTATUS=stopping")
	d.log.Info("hostd stopping", "reason", reason)
	stopNotify()
	<-notifyDone
	<-trimDone
	d.mu.Lock()
	deadline := d.cfg.Core.ShutdownTimeout
	d.mu.Unlock()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	stopTree()
	select {
	case <-treeDone:
		d.log.Info("all services stopped")
	case <-shutdownCtx.Done():
		d.log.Error("services did not stop within the shutdown deadline; exiting anyway", "deadline", deadline.String(), "not_stopped", d.running())
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	_ = sockSrv.Shutdown(ctx2)
	if httpSrv != nil {
		_ = httpSrv.Shutdown(ctx2)
	}
	return nil
}

func cfgName(c *config.Config) string {
	if c.File == "" {
		return "(embedded defaults)"
	}
	return c.File
}

// running names services that have not stopped.
func (d *Daemon) running() []string {
	var out []string
	for _, s := range d.tree.Status() {
		if s.State != supervisor.Stopped && s.State != supervisor.Disabled {
			out = append(out, s.Name)
		}
	}
	return out
}

// apply builds (or disables) the named service from cfg.
func (d *Daemon) apply(name string, cfg *config.Config) {
	reg := d.regs[name]
	sectionCfg := cfg.Sections[name]
	if !config.Enabled(sectionCfg) {
		d.tree.Disable(name)
		d.gatherer.drop(name)
		return
	}
	_ = d.tree.Set(name, func(h service.Health) (service.Service, error) {
		dir := filepath.Join(cfg.Core.StateDir, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create state directory %s: %w", dir, err)
		}
		base := ""
		if cfg.File != "" {
			base = filepath.Dir(cfg.File)
		}
		env := service.Env{
			Logger:   d.log.With("service", name),
			Now:      time.Now,
			StateDir: dir,
			Metrics:  d.gatherer.fresh(name),
			Gatherer: d.gatherer,
			Secrets:  secrets.NewResolver(base, cfg.Secrets.AgeKeyFile),
			Health:   h,
			Peers:    d.tree,
		}
		return reg.Build(env, sectionCfg)
	})
}

// reload re-reads the config file; a bad config is rejected and the old
// one kept. Only services whose section changed are restarted.
func (d *Daemon) reload() api.ConfigReload {
	d.mu.Lock()
	old := d.cfg
	d.mu.Unlock()
	d.log.Info("reloading config", "config", cfgName(old))
	cur, err := LoadConfig(old.File, d.opts.Registrations, d.opts.Getenv)
	if err != nil {
		lines := splitLines(err.Error())
		for _, l := range lines {
			d.log.Error("config rejected; keeping the running config", "error", l)
		}
		return api.ConfigReload{Errors: lines}
	}
	if cur.Core.Socket != old.Core.Socket || cur.Core.HTTP.Listen != old.Core.HTTP.Listen || cur.Core.StateDir != old.Core.StateDir {
		d.log.Warn("changes to hostd.socket, hostd.http.listen and hostd.state_dir take effect at the next start")
		cur.Core.Socket, cur.Core.HTTP.Listen, cur.Core.StateDir = old.Core.Socket, old.Core.HTTP.Listen, old.Core.StateDir
	}
	if lvl, err := logging.ParseLevel(cur.Core.LogLevel); err == nil {
		d.level.Set(lvl)
	}
	applyMemorySettings(cur.Core, d.opts.Getenv, d.log)
	changed := config.Changed(old, cur)
	d.mu.Lock()
	d.cfg, d.loadedAt = cur, time.Now()
	d.mu.Unlock()
	for _, name := range changed {
		d.log.Info("config section changed; restarting service", "section", name)
		d.apply(name, cur)
	}
	d.log.Info("config reloaded", "restarted", changed)
	if changed == nil {
		changed = []string{}
	}
	return api.ConfigReload{Restarted: changed}
}

func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// listenSocket creates the local API socket: parent directory, stale socket
// removed, mode 0660, optional group.
func (d *Daemon) listenSocket(core config.Core) (net.Listener, error) {
	path := core.Socket
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket directory %s: %w", filepath.Dir(path), err)
	}
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen on %s: another hostd is running", path)
		}
		_ = os.Remove(path)
	}
	old := syscall.Umask(0o117)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	if core.SocketGroup != "" {
		g, err := user.LookupGroup(core.SocketGroup)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("socket group %s: %w", core.SocketGroup, err)
		}
		gid, _ := strconv.Atoi(g.Gid)
		if err := os.Chown(path, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("chown %s: %w", path, err)
		}
	}
	return ln, nil
}

// Status builds the status report.
func (d *Daemon) Status() api.Status {
	d.mu.Lock()
	cfg, loaded := d.cfg, d.loadedAt
	d.mu.Unlock()
	st := api.Status{
		Version:        d.opts.Version,
		PID:            os.Getpid(),
		StartedAt:      d.started.UTC(),
		UptimeSeconds:  time.Since(d.started).Seconds(),
		ConfigFile:     cfg.File,
		ConfigLoadedAt: loaded.UTC(),
		StateDir:       cfg.Core.StateDir,
		Ready:          true,
	}
	for _, u := range d.tree.Status() {
		ss := api.ServiceStatus{
			Name:       u.Name,
			State:      string(u.State),
			Since:      u.Since.UTC(),
			Restarts:   u.Restarts,
			LastError:  u.LastError,
			WaitingFor: u.WaitingFor,
			Summary:    u.Service.Summary,
		}
		if !u.LastErrorAt.IsZero() {
			t := u.LastErrorAt.UTC()
			ss.LastErrorAt = &t
		}
		if u.Service.Details != nil {
			if b, err := json.Marshal(u.Service.Details); err == nil {
				ss.Details = b
			}
		}
		if u.State != supervisor.Ready && u.State != supervisor.Disabled {
			st.Ready = false
		}
		st.Services = append(st.Services, ss)
	}
	return st
}

// Ready builds the readiness report.
func (d *Daemon) Ready() api.Ready {
	nr := d.tree.NotReady()
	if len(nr) == 0 {
		return api.Ready{Ready: true}
	}
	return api.Ready{Ready: false, NotReady: nr}
}

var errNoService = errors.New("no such service")
