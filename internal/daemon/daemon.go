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
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"

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
	// SocketCheckInterval is how often the daemon checks that its API
	// socket file still exists, and recreates it when it was deleted or
	// replaced. Default: DefaultSocketCheckInterval.
	SocketCheckInterval time.Duration
}

// DefaultSocketCheckInterval is Options.SocketCheckInterval's default.
const DefaultSocketCheckInterval = 5 * time.Second

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

	// reloading holds one token while a reload reads, checks or applies
	// a config; a reload that finds it taken fails at once.
	reloading chan struct{}
	// stopping is set when the main loop ends; reloads then apply nothing.
	stopping atomic.Bool

	tree     *supervisor.Tree
	root     *registry
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
	// hostd serves no memory profiles. Left on, the profiler records the
	// stack of one allocation per 512 KiB for the life of the process, in
	// a hash table of 1.4 MiB that those records spread over: resident
	// memory and CPU for nothing.
	runtime.MemProfileRate = 0
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
	d := &Daemon{opts: opts, level: new(slog.LevelVar), started: time.Now(), regs: map[string]Registration{}, reloading: make(chan struct{}, 1)}
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
	// One instance per state directory and per socket: a second hostd
	// fails here, before it touches the first one's socket or data.
	stateLock, err := lockInstance(filepath.Join(cfg.Core.StateDir, LockFile), cfg.Core.StateDir)
	if err != nil {
		return err
	}
	defer stateLock.release()
	if err := os.MkdirAll(filepath.Dir(cfg.Core.Socket), 0o755); err != nil {
		return fmt.Errorf("create socket directory %s: %w", filepath.Dir(cfg.Core.Socket), err)
	}
	sockLock, err := lockInstance(socketLockPath(cfg.Core.Socket), cfg.Core.Socket)
	if err != nil {
		return err
	}
	defer sockLock.release()

	d.cfg, d.loadedAt = cfg, time.Now()
	d.trimCode("start")
	d.root = newRegistry()
	d.root.MustRegister(
		collectors.NewGoCollector(),
		newProcessCollector(),
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
	governorReleases := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hostd_memory_governor_releases_total",
		Help: "Times the memory governor collected the Go heap and returned its free pages to the system, by reason: free (free heap above its bound after a burst of work), idle (garbage left uncollected at idle).",
	}, []string{"reason"})
	governorBytes := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hostd_memory_governor_released_bytes_total",
		Help: "Free heap and garbage bytes the memory governor found when it collected and returned them to the system.",
	})
	for _, r := range []string{"free", "idle"} {
		governorReleases.WithLabelValues(r)
	}
	d.root.MustRegister(governorReleases, governorBytes)
	d.gatherer = newGatherer(d.root)
	d.tree = supervisor.New(supervisor.Options{
		Logger:      d.log,
		BackoffMin:  cfg.Core.RestartBackoff,
		BackoffMax:  cfg.Core.RestartBackoffMax,
		StopTimeout: cfg.Core.StopTimeout,
	})
	d.root.MustRegister(d.tree)

	sock, err := newAPISocket(cfg.Core)
	if err != nil {
		return err
	}
	defer os.Remove(cfg.Core.Socket)
	var httpLn net.Listener
	if cfg.Core.HTTP.Listen != "" {
		httpLn, err = net.Listen("tcp", cfg.Core.HTTP.Listen)
		if err != nil {
			sock.close()
			return fmt.Errorf("listen for HTTP on %s (hostd.http.listen): %w", cfg.Core.HTTP.Listen, err)
		}
	}

	for _, name := range cfg.Names() {
		d.apply(name, cfg)
	}

	treeCtx, stopTree := context.WithCancel(context.Background())
	treeDone := make(chan error, 1)
	go func() { treeDone <- d.tree.Serve(treeCtx) }()

	sockSrv := &http.Server{Handler: d.socketHandler(), ConnContext: api.ConnContext, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = sockSrv.Serve(sock.ln) }()
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
	// Reloads run off this loop; runCtx ends them when hostd stops.
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	var reloads sync.WaitGroup
	notifyCtx, stopNotify := context.WithCancel(context.Background())
	notifyDone := make(chan struct{})
	go func() { defer close(notifyDone); d.notifyLoop(notifyCtx) }()
	trimDone := make(chan struct{})
	go func() { defer close(trimDone); d.codeTrimLoop(notifyCtx) }()
	gov := newGovernor(func(reason string, bytes int64) {
		governorReleases.WithLabelValues(reason).Inc()
		governorBytes.Add(float64(bytes))
		d.log.Debug("collected the heap and returned its free pages", "reason", reason, "bytes", bytes)
	})
	govDone := make(chan struct{})
	go func() { defer close(govDone); gov.run(notifyCtx) }()

	// The loop itself feeds systemd's watchdog: if it stops turning,
	// WATCHDOG=1 stops and systemd restarts hostd.
	var watchdog <-chan time.Time
	if iv, err := sddaemon.SdWatchdogEnabled(false); err == nil && iv > 0 {
		t := time.NewTicker(iv / 2)
		defer t.Stop()
		watchdog = t.C
		d.log.Debug("systemd watchdog enabled", "interval", (iv / 2).String())
	}
	// The socket check ticks on its interval's grid (service.NextTick),
	// with the daemon's other periodic work.
	socketEvery := d.socketCheckInterval()
	socketCheck := time.NewTimer(time.Until(service.NextTick(time.Now(), socketEvery)))
	defer socketCheck.Stop()

	var reason string
loop:
	for {
		select {
		case <-ctx.Done():
			reason = "context done"
			break loop
		case s := <-sigs:
			if s == syscall.SIGHUP {
				reloads.Add(1)
				go func() { defer reloads.Done(); d.reloadFromSignal(runCtx) }()
				continue
			}
			reason = s.String()
			break loop
		case <-watchdog:
			notify(d.log, "WATCHDOG=1")
		case <-socketCheck.C:
			sock.recreateIfGone(d.log, func(ln net.Listener) { go func() { _ = sockSrv.Serve(ln) }() })
			socketCheck.Reset(time.Until(service.NextTick(time.Now(), socketEvery)))
		case err := <-treeDone:
			d.log.Error("supervisor tree stopped", "err", fmt.Sprint(err))
			treeDone <- err
			reason = "supervisor stopped"
			break loop
		}
	}
	d.stopping.Store(true)
	stopRun()
	notify(d.log, "STOPPING=1\nSTATUS=stopping")
	d.log.Info("hostd stopping", "reason", reason)
	stopNotify()
	<-notifyDone
	<-trimDone
	<-govDone
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
	reloadsDone := make(chan struct{})
	go func() { reloads.Wait(); close(reloadsDone) }()
	select {
	case <-reloadsDone:
	case <-shutdownCtx.Done():
		d.log.Error("a config reload did not end within the shutdown deadline; exiting anyway")
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	_ = sockSrv.Shutdown(ctx2)
	sock.close()
	if httpSrv != nil {
		_ = httpSrv.Shutdown(ctx2)
	}
	return nil
}

// socketCheckInterval is how often the main loop checks that the API
// socket file is still there.
func (d *Daemon) socketCheckInterval() time.Duration {
	if d.opts.SocketCheckInterval > 0 {
		return d.opts.SocketCheckInterval
	}
	return DefaultSocketCheckInterval
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
			// Backup jobs run under a bounded heap and give back their
			// memory when they end.
			ReleaseMemory: d.releaseMemory,
			LimitMemory:   d.limitMemory,
		}
		return reg.Build(env, sectionCfg)
	})
}

// errReloadBusy is returned when a reload is asked for while another one
// is still reading, checking or applying a config.
var errReloadBusy = errors.New("a config reload is already in progress; try again when it ends")

// reloadFromSignal runs a reload for SIGHUP and logs its outcome.
func (d *Daemon) reloadFromSignal(ctx context.Context) {
	if _, err := d.reload(ctx); err != nil {
		d.log.Error("config reload failed; keeping the running config", "err", err.Error())
	}
}

// reload re-reads the config file; a bad config is rejected and the old
// one kept. Only services whose section changed are restarted. It runs off
// the main loop: reading and checking the file is bounded by
// hostd.reload_timeout (and ctx), restarting each changed service by
// hostd.stop_timeout. A config that does not load is reported in the
// reply's Errors; a reload that cannot run (another is in progress, the
// deadline passed, hostd is stopping) is an error.
func (d *Daemon) reload(ctx context.Context) (api.ConfigReload, error) {
	select {
	case d.reloading <- struct{}{}:
	default:
		return api.ConfigReload{}, errReloadBusy
	}
	release := true
	defer func() {
		if release {
			<-d.reloading
		}
	}()
	d.mu.Lock()
	old := d.cfg
	d.mu.Unlock()
	d.log.Info("reloading config", "config", cfgName(old))

	type loaded struct {
		cfg *config.Config
		err error
	}
	// Loading cannot be interrupted once it sits in a system call (a hung
	// file system); it runs in its own goroutine, which keeps the reload
	// token until it returns, so stuck loads never pile up.
	done := make(chan loaded, 1)
	go func() {
		cfg, err := LoadConfig(old.File, d.opts.Registrations, d.opts.Getenv)
		done <- loaded{cfg, err}
	}()
	timeout := old.Core.ReloadTimeout
	if timeout <= 0 {
		timeout = config.DefaultReloadTimeout
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var res loaded
	select {
	case res = <-done:
	case <-tctx.Done():
		release = false
		go func() { <-done; <-d.reloading }()
		if ctx.Err() != nil {
			return api.ConfigReload{}, fmt.Errorf("reload %s: abandoned: %w", cfgName(old), ctx.Err())
		}
		return api.ConfigReload{}, fmt.Errorf("reload %s: reading and checking the config took longer than hostd.reload_timeout (%s)", cfgName(old), timeout)
	}
	if res.err != nil {
		lines := splitLines(res.err.Error())
		for _, l := range lines {
			d.log.Error("config rejected; keeping the running config", "error", l)
		}
		return api.ConfigReload{Error: "config rejected; the running config is kept", Errors: lines}, nil
	}
	if d.stopping.Load() {
		return api.ConfigReload{}, errors.New("reload abandoned: hostd is stopping")
	}
	cur := res.cfg
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
		if d.stopping.Load() {
			return api.ConfigReload{}, errors.New("reload abandoned: hostd is stopping")
		}
		d.log.Info("config section changed; restarting service", "section", name)
		d.apply(name, cur)
	}
	d.log.Info("config reloaded", "restarted", changed)
	if changed == nil {
		changed = []string{}
	}
	return api.ConfigReload{Restarted: changed}, nil
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
