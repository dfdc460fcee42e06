package containers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hostd/hostd/internal/service"
)

// Name is the service's config section.
const Name = "containers"

var _ service.Service = (*Service)(nil)
var _ service.LocalAPI = (*Service)(nil)

// ErrEngineDown is returned by Prune while the engine is not reachable.
var ErrEngineDown = errors.New("docker engine not reachable")

// Service is the Docker auto-pruner.
type Service struct {
	cfg    Config
	log    *slog.Logger
	clock  service.Clock
	health service.Health
	eng    *engine
	state  *state
	m      *metrics
	timer  *service.ScheduleTimer // nil when auto_prune is off

	// reconnect paces reconnects to the engine.
	reconnect service.Backoff
	// retry is the wait before retrying a scheduled prune that failed.
	retry time.Duration
	// saveEvery is how often last-use updates from events are written.
	saveEvery time.Duration
	// workers bounds parallel removals of one kind.
	workers int

	pruneMu sync.Mutex // one prune at a time
	stuck   bool       // disk above high watermark with nothing to remove; under pruneMu

	mu         sync.Mutex
	up         bool
	connErr    error
	info       engineInfo
	disk       diskUse
	lastReport *Report
	nextPrune  time.Time
	reclaimed  int64
}

// New builds the service from its config. It does not contact the engine:
// Serve does, and keeps trying while the engine is away.
func New(env service.Env, cfg Config) (*Service, error) {
	env = env.WithDefaults()
	s := &Service{
		cfg: cfg, log: env.Logger, clock: env.Clock, health: env.Health,
		reconnect: service.Backoff{Min: time.Second, Max: time.Minute},
		retry:     time.Minute,
		saveEvery: 10 * time.Second,
		workers:   4,
	}
	if cfg.AutoPrune.Enable {
		sched, err := service.ParseSchedule(cfg.AutoPrune.Schedule)
		if err != nil {
			return nil, fmt.Errorf("containers.auto_prune.schedule: %w", err)
		}
		s.timer = &service.ScheduleTimer{
			Schedule:        sched,
			RandomizedDelay: cfg.AutoPrune.RandomizedDelay,
			Persistent:      cfg.AutoPrune.Persistent,
		}
	}
	st, err := loadState(env.StateDir)
	if err != nil {
		return nil, err
	}
	s.state = st
	if s.m, err = newMetrics(env.Metrics); err != nil {
		return nil, err
	}
	if r := st.lastReport(); r != nil {
		s.lastReport = r
		s.m.lastPrune.Set(float64(r.Finished.UnixNano()) / 1e9)
		s.m.lastReclaimed.Set(float64(r.ReclaimedBytes))
	}
	if s.eng, err = newEngine(resolveHost(cfg.Host, os.Getenv)); err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout > 0 {
		s.eng.connectTimeout = cfg.ConnectTimeout
	}
	if cfg.RequestTimeout > 0 {
		s.eng.requestTimeout = cfg.RequestTimeout
	}
	if s.cfg.PruneTimeout <= 0 {
		s.cfg.PruneTimeout = DefaultPruneTimeout
	}
	return s, nil
}

// Name implements service.Service.
func (s *Service) Name() string { return Name }

// Serve follows the engine (reconnecting with backoff while it is down),
// runs the schedule and watches disk use until ctx ends.
func (s *Service) Serve(ctx context.Context) error {
	defer func() {
		if err := s.state.save(); err != nil {
			s.log.Error("save state", "err", err)
		}
	}()
	var g errgroup.Group
	g.Go(func() error { s.followEngine(ctx); return nil })
	if s.timer != nil {
		g.Go(func() error { s.runSchedule(ctx); return nil })
	}
	if s.cfg.AutoPrune.Enable && !s.cfg.AutoPrune.HighWatermark.IsZero() {
		g.Go(func() error { s.watchDisk(ctx); return nil })
	}
	_ = g.Wait()
	return nil
}
