package audio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jfreymuth/pulse/proto"

	"github.com/hostd/hostd/internal/service"
)

// Service is the "audio" service.
type Service struct {
	cfg   Config
	env   service.Env
	log   *slog.Logger
	clock service.Clock
	// retry paces reconnects, and its Delay the resyncs while the server
	// is unsettled.
	retry  service.Backoff
	ep     endpoint
	policy policy
	mem    *memory // nil unless cfg.Remember
	met    *metrics

	// connMu guards conn, the live connection (nil while away).
	connMu sync.Mutex
	conn   *conn

	// mu guards the published snapshot and counters.
	mu          sync.Mutex
	status      *Status
	reconnects  int
	connections int
	quantumAt   time.Time // when the quantum was last read

	// seen is the set of devices (memoryKeys) present at the last sync,
	// known every device met since Serve started; only the Serve goroutine
	// touches them.
	seen  map[string]bool
	known map[string]bool
}

var (
	_ service.Service  = (*Service)(nil)
	_ service.LocalAPI = (*Service)(nil)
)

// New builds the service. It reads the remembered device settings from
// env.StateDir and registers the metrics; it does not connect yet.
func New(env service.Env, cfg Config) (*Service, error) {
	return newService(env, cfg, os.Getenv)
}

func newService(env service.Env, cfg Config, getenv func(string) string) (*Service, error) {
	env = env.WithDefaults()
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	ep, err := cfg.resolveEndpoint(getenv)
	if err != nil {
		return nil, fmt.Errorf("resolve audio server address: %w", err)
	}
	s := &Service{
		cfg:    cfg,
		env:    env,
		log:    env.Logger,
		clock:  env.Clock,
		retry:  service.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second},
		ep:     ep,
		policy: newPolicy(&cfg),
		status: &Status{Address: ep.Address, VolumeLimit: float64(cfg.VolumeLimit)},
	}
	if cfg.Remember {
		if env.StateDir == "" {
			return nil, errors.New("remember needs a state directory")
		}
		m, err := openMemory(env.StateDir)
		if m == nil {
			return nil, err
		}
		if err != nil {
			s.log.Warn("remembered device settings were unreadable; starting afresh", "err", err)
		}
		s.mem = m
	}
	s.met = newMetrics(s)
	if err := s.met.register(env.Metrics); err != nil {
		return nil, fmt.Errorf("register audio metrics: %w", err)
	}
	return s, nil
}

// Name implements service.Service.
func (s *Service) Name() string { return "audio" }

// Status implements service.Service.
func (s *Service) Status() service.Status {
	st := s.Snapshot()
	return service.Status{Summary: st.Summary(), Details: st}
}

// Snapshot returns the last state read from the server.
func (s *Service) Snapshot() *Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status.clone()
	st.Reconnects = s.reconnects
	return st
}

// Serve implements service.Service: it connects, applies the policy, follows
// server events, and reconnects with backoff whenever the server goes away.
func (s *Service) Serve(ctx context.Context) error {
	s.manageDropIn()
	s.retry.Reset()
	for {
		c, err := dial(ctx, s.ep.Address, s.ep.Cookie, s.cfg.Timeout)
		if err == nil {
			s.retry.Reset()
			s.connected()
			err = s.session(ctx, c)
			c.close(errors.New("session ended"))
			s.setConn(nil)
		}
		if ctx.Err() != nil {
			s.setDisconnected(errors.New("stopped"))
			return nil
		}
		s.setDisconnected(err)
		s.env.Health.Degraded(fmt.Errorf("audio server %s: %w", s.ep.Address, err))
		// One warning per outage; the retries that follow log at debug.
		level := slog.LevelDebug
		if s.retry.Attempts() == 0 {
			level = slog.LevelWarn
		}
		wait := s.retry.Next()
		s.log.Log(ctx, level, "audio server unavailable; retrying", "address", s.ep.Address, "err", err, "retry_in", wait)
		if service.Sleep(ctx, s.clock, wait) != nil {
			return nil
		}
	}
}

// manageDropIn writes (or removes) the pipewire.conf.d drop-in. A failure
// is logged and shown in the status; the control plane runs regardless.
func (s *Service) manageDropIn() {
	if s.cfg.ConfigDir == "" {
		return
	}
	path := filepath.Join(s.cfg.ConfigDir, "pipewire.conf.d", dropInName)
	changed, err := writeDropIn(s.cfg.ConfigDir, s.cfg.Quantum, s.cfg.Rate)
	s.mu.Lock()
	st := s.status.clone()
	st.DropIn, st.DropInError = path, ""
	if err != nil {
		st.DropInError = err.Error()
	}
	s.status = st
	s.mu.Unlock()
	switch {
	case err != nil:
		s.log.Error("cannot write the PipeWire drop-in; quantum and rate stay as they are", "err", err)
	case changed:
		s.log.Info("updated the PipeWire drop-in; it takes effect when PipeWire restarts",
			"path", path, "quantum", s.cfg.Quantum, "rate", s.cfg.Rate)
	}
}

func (s *Service) connected() {
	s.mu.Lock()
	s.connections++
	if s.connections > 1 {
		s.reconnects++
		s.met.reconnects.Inc()
	}
	n := s.connections
	s.mu.Unlock()
	s.log.Info("connected to audio server", "address", s.ep.Address, "connection", n)
}

func (s *Service) setConn(c *conn) {
	s.connMu.Lock()
	s.conn = c
	s.connMu.Unlock()
}

// live returns the current connection or ErrNotConnected.
func (s *Service) live() (*conn, error) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.conn == nil {
		s.mu.Lock()
		reason := s.status.Error
		s.mu.Unlock()
		if reason != "" {
			return nil, fmt.Errorf("%w (%s): %s", ErrNotConnected, s.ep.Address, reason)
		}
		return nil, fmt.Errorf("%w (%s)", ErrNotConnected, s.ep.Address)
	}
	return s.conn, nil
}

func (s *Service) setDisconnected(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status.clone()
	st.Connected = false
	st.Error = err.Error()
	s.status = st
}

func (s *Service) publish(st *Status) {
	st.Address = s.ep.Address
	st.VolumeLimit = float64(s.cfg.VolumeLimit)
	st.Updated = s.clock.Now()
	s.mu.Lock()
	if st.Quantum == nil && s.status.Quantum != nil {
		q := *s.status.Quantum
		st.Quantum = &q
	}
	st.DropIn, st.DropInError = s.status.DropIn, s.status.DropInError
	s.status = st
	s.mu.Unlock()
}

// session runs one connection until it ends or ctx is done.
func (s *Service) session(ctx context.Context, c *conn) error {
	// Subscribe before the first read so no change falls between them.
	if err := c.subscribe(ctx); err != nil {
		return err
	}
	s.seen = nil
	s.refreshQuantum(ctx)
	settled, err := s.sync(ctx, c, true)
	if err != nil {
		return err
	}
	// Controls see the connection once the policy has run on it.
	s.setConn(c)
	s.env.Health.Ready()
	var resync <-chan time.Time // armed while unsettled
	var timer service.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	unsettled := 0 // resyncs in a row; their pauses grow as reconnects' do
	for {
		switch {
		case settled:
			unsettled = 0
		case resync == nil:
			timer = s.clock.NewTimer(s.retry.Delay(unsettled))
			resync = timer.C()
			unsettled++
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.closed:
			return c.err
		case <-resync:
			resync = nil
			if settled, err = s.sync(ctx, c, false); err != nil {
				return err
			}
		case <-c.changed:
			ev := c.takeEvents()
			if settled, err = s.sync(ctx, c, ev&evDeviceSet != 0); err != nil {
				return err
			}
		}
	}
}

// quantumMaxAge is how long a quantum read stays fresh for status requests.
// The pulse protocol reports no quantum changes, so it is read again when a
// status is asked for after this long.
const quantumMaxAge = 30 * time.Second

func (s *Service) refreshQuantum(ctx context.Context) {
	dir := runtimeDirOf(s.ep.Address)
	if dir == "" {
		return
	}
	q, err := readQuantum(ctx, dir, s.cfg.Timeout)
	if err != nil {
		s.log.Info("effective quantum unknown", "err", err)
		return
	}
	s.mu.Lock()
	st := s.status.clone()
	st.Quantum = q
	s.status = st
	s.quantumAt = s.clock.Now()
	s.mu.Unlock()
}

// quantumStale reports whether the quantum should be read again.
func (s *Service) quantumStale() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clock.Now().Sub(s.quantumAt) > quantumMaxAge
}

// sync reads the server's state, applies the policy and records device
// settings. Errors returned end the session (the connection is unusable);
// a failed policy action is logged and the next event retries it.
//
// settled is false while the server has devices but no default resolved:
// WirePlumber picks one a moment after a default goes away, and the server
// does not always send an event for that, so session reads again after a
// pause.
func (s *Service) sync(ctx context.Context, c *conn, devicesChanged bool) (settled bool, err error) {
	st, err := c.snapshot(ctx)
	if err != nil {
		return false, err
	}
	first := s.seen == nil
	fresh := map[string]bool{}
	present := map[string]bool{}
	for _, kind := range []Kind{KindSink, KindSource} {
		for _, d := range st.devices(kind) {
			k := memoryKey(kind, d.Name)
			present[k] = true
			if !s.seen[k] {
				fresh[k] = true
			}
		}
	}
	var recall recall
	if s.mem != nil {
		recall = s.mem.get
	}
	if s.known == nil {
		s.known = map[string]bool{}
	}
	acts := s.policy.plan(st, fresh, s.known, devicesChanged || first, recall)
	touched := map[string]bool{}
	for _, a := range acts {
		touched[memoryKey(a.Kind, a.Name)] = true
		if err := s.apply(ctx, c, a); err != nil {
			select {
			case <-c.closed:
				return false, c.err
			default:
			}
			if errors.Is(err, proto.ErrNoSuchEntity) {
				s.log.Debug("device went away before the policy applied", "action", a.String())
				continue
			}
			s.log.Warn("audio policy action failed", "action", a.String(), "err", err)
			continue
		}
		s.met.actions.WithLabelValues(a.Reason).Inc()
		s.log.Info("audio policy", "action", a.String())
	}
	s.seen = present
	for k := range present {
		s.known[k] = true
	}
	if len(acts) > 0 {
		// Publish what the server says after the changes.
		if st2, err := c.snapshot(ctx); err == nil {
			st = st2
		}
	}
	s.publish(st)
	if s.mem != nil {
		s.remember(st, fresh, touched)
	}
	settled = (st.DefaultSink != "" || len(st.Sinks) == 0) && (st.DefaultSource != "" || len(st.Sources) == 0)
	return settled, nil
}

// remember records the settings of devices that were already known and that
// the policy did not just change (their next change event records them).
func (s *Service) remember(st *Status, fresh, touched map[string]bool) {
	now := s.clock.Now()
	for _, kind := range []Kind{KindSink, KindSource} {
		for _, d := range st.devices(kind) {
			k := memoryKey(kind, d.Name)
			if d.Monitor || fresh[k] || touched[k] {
				continue
			}
			if err := s.mem.update(kind, d.Name, d.rawVolumes(), d.Mute, now); err != nil {
				s.log.Warn("cannot save device settings", "device", d.Name, "err", err)
			}
		}
	}
}

func (s *Service) apply(ctx context.Context, c *conn, a action) error {
	switch a.Type {
	case actDefault:
		return c.setDefault(ctx, a.Kind, a.Name)
	case actMute:
		return c.setMute(ctx, a.Kind, a.Index, a.Mute)
	case actVolume:
		return c.setVolume(ctx, a.Kind, a.Index, a.Volumes)
	}
	return fmt.Errorf("unknown action %q", a.Type)
}
