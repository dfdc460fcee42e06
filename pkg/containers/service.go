package containers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/events"
	"github.com/prometheus/client_golang/prometheus"
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
	now    func() time.Time
	health service.Health
	eng    *engine
	state  *state
	m      *metrics
	sched  nexter // nil when auto_prune is off

	// delay draws the randomized delay of a scheduled run.
	delay func(max time.Duration) time.Duration
	// minBackoff and maxBackoff bound the wait between reconnects.
	minBackoff, maxBackoff time.Duration
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
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Health == nil {
		env.Health = service.NopHealth{}
	}
	if env.Metrics == nil {
		env.Metrics = prometheus.NewRegistry()
	}
	s := &Service{
		cfg: cfg, log: env.Logger, now: env.Now, health: env.Health,
		delay:      randomDelay,
		minBackoff: time.Second, maxBackoff: time.Minute,
		retry:     time.Minute,
		saveEvery: 10 * time.Second,
		workers:   4,
	}
	if cfg.AutoPrune.Enable {
		sched, err := parseSchedule(cfg.AutoPrune.Schedule)
		if err != nil {
			return nil, fmt.Errorf("containers.auto_prune.schedule: %w", err)
		}
		s.sched = sched
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
	if s.sched != nil {
		g.Go(func() error { s.runSchedule(ctx); return nil })
	}
	if s.cfg.AutoPrune.Enable && !s.cfg.AutoPrune.HighWatermark.IsZero() {
		g.Go(func() error { s.watchDisk(ctx); return nil })
	}
	_ = g.Wait()
	return nil
}

// followEngine connects to the engine and follows its event stream,
// recording image use; when the engine goes away it reports the service
// degraded and reconnects with exponential backoff.
func (s *Service) followEngine(ctx context.Context) {
	wait := s.minBackoff
	var since time.Time
	for ctx.Err() == nil {
		info, err := s.eng.connect(ctx)
		if err == nil {
			if err = s.seed(ctx); err == nil {
				started := s.now()
				// Ready once the event stream is subscribed: from then on
				// no use of an image goes unseen.
				since, err = s.followEvents(ctx, since, func() { s.setUp(info) })
				if s.now().Sub(started) > s.maxBackoff {
					wait = s.minBackoff
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		s.setDown(err)
		if !sleep(ctx, wait) {
			return
		}
		wait = min(wait*2, s.maxBackoff)
	}
}

func (s *Service) setUp(info engineInfo) {
	s.mu.Lock()
	wasUp := s.up
	s.up, s.connErr, s.info = true, nil, info
	s.mu.Unlock()
	s.m.engineUp.Set(1)
	if !wasUp {
		s.log.Info("docker engine reachable", "host", s.eng.host, "version", info.Version, "api", info.APIVersion)
	}
	s.health.Ready()
	if _, err := s.measureDisk(); err != nil {
		s.log.Warn("measure docker disk use", "err", err)
	}
}

func (s *Service) setDown(err error) {
	if err == nil {
		err = ErrEngineDown
	}
	s.mu.Lock()
	wasUp := s.up
	same := s.connErr != nil && s.connErr.Error() == err.Error()
	s.up, s.connErr = false, err
	s.mu.Unlock()
	s.m.engineUp.Set(0)
	switch {
	case wasUp:
		s.log.Warn("docker engine lost", "err", err)
	case same:
		s.log.Debug("docker engine still unreachable", "err", err)
		return // reported already
	}
	s.health.Degraded(err)
}

// seed learns image use from the engine's containers: a running container
// uses its image now, a stopped one used it until it finished.
func (s *Service) seed(ctx context.Context) error {
	snap, err := s.eng.snapshot(ctx, false, false)
	if err != nil {
		return err
	}
	now := s.now()
	for _, c := range snap.containers {
		if c.running() {
			s.state.used(c.ImageID, now)
			continue
		}
		last := c.Created
		if t := s.eng.finishedAt(ctx, c.ID); t.After(last) {
			last = t
		}
		s.state.used(c.ImageID, last)
	}
	ids := map[string]bool{}
	for _, i := range snap.images {
		ids[i.ID] = true
	}
	s.state.forget(func(id string) bool { return ids[id] })
	if err := s.state.save(); err != nil {
		s.log.Warn("save state", "err", err)
	}
	return nil
}

// followEvents records image use from the event stream until it fails,
// and returns the time of the last event seen (to resume from).
func (s *Service) followEvents(ctx context.Context, since time.Time, subscribed func()) (time.Time, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, errs := s.eng.events(ctx, since)
	select {
	case err := <-errs:
		return since, fmt.Errorf("docker event stream: %w", s.eng.explain(err))
	default:
		subscribed()
	}
	lastSave := s.now()
	for {
		select {
		case m := <-msgs:
			t := time.Unix(0, m.TimeNano)
			if m.TimeNano == 0 {
				t = time.Unix(m.Time, 0)
			}
			since = t
			s.observe(ctx, m, t)
			if s.now().Sub(lastSave) >= s.saveEvery {
				lastSave = s.now()
				if err := s.state.save(); err != nil {
					s.log.Warn("save state", "err", err)
				}
			}
		case err := <-errs:
			if err == nil {
				err = errors.New("event stream closed")
			}
			return since, fmt.Errorf("docker event stream: %w", s.eng.explain(err))
		}
	}
}

// observe records what one event says about image use.
func (s *Service) observe(ctx context.Context, m events.Message, t time.Time) {
	var ref string
	switch m.Type {
	case events.ContainerEventType:
		// Start and end of use; exec and health-check events would only
		// add noise (and an image lookup each).
		switch m.Action {
		case events.ActionCreate, events.ActionStart, events.ActionRestart, events.ActionDie:
			ref = m.Actor.Attributes["image"]
		}
	case events.ImageEventType:
		switch m.Action {
		case events.ActionPull, events.ActionImport, events.ActionLoad, events.ActionTag:
			ref = m.Actor.ID
		case events.ActionDelete:
			gone := m.Actor.ID
			s.state.forget(func(id string) bool { return id != gone })
		}
	}
	if ref == "" {
		return
	}
	id, err := s.eng.imageID(ctx, ref)
	if err != nil {
		return // removed since; nothing to remember
	}
	s.state.used(id, t)
}

// runSchedule runs the scheduled prune at each elapse of the schedule.
func (s *Service) runSchedule(ctx context.Context) {
	p := s.cfg.AutoPrune
	for {
		next := nextRun(s.sched, p.Persistent, s.state.lastScheduled(), s.now(), s.delay(p.RandomizedDelay))
		s.mu.Lock()
		s.nextPrune = next
		s.mu.Unlock()
		if !sleep(ctx, next.Sub(s.now())) {
			return
		}
		for {
			_, err := s.Prune(ctx, "schedule", false)
			if err == nil {
				break
			}
			s.log.Warn("scheduled prune failed; retrying", "err", err, "in", s.retry)
			if !sleep(ctx, s.retry) {
				return
			}
		}
		s.state.setLastScheduled(s.now())
		if err := s.state.save(); err != nil {
			s.log.Warn("save state", "err", err)
		}
	}
}

// watchDisk measures the disk every check_interval and relieves pressure
// above the high watermark.
func (s *Service) watchDisk(ctx context.Context) {
	t := time.NewTicker(s.cfg.AutoPrune.CheckInterval)
	defer t.Stop()
	var lastErr string
	for {
		if s.reachable() {
			_, err := s.RelievePressure(ctx)
			switch {
			case ctx.Err() != nil:
			case err != nil && err.Error() != lastErr:
				// Logged when it changes, not every check.
				s.log.Warn("disk pressure check", "err", err)
				lastErr = err.Error()
			case err == nil:
				lastErr = ""
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Service) reachable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up
}

func (s *Service) rootDir() string {
	if s.cfg.RootDir != "" {
		return s.cfg.RootDir
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info.RootDir
}

// measureDisk measures the filesystem holding Docker's root dir.
func (s *Service) measureDisk() (diskUse, error) {
	dir := s.rootDir()
	if dir == "" {
		return diskUse{}, errors.New("docker root dir not known yet")
	}
	d, err := statDisk(dir)
	if err != nil {
		return d, err
	}
	s.mu.Lock()
	s.disk = d
	s.mu.Unlock()
	s.m.diskUsed.Set(float64(d.Used))
	s.m.diskSize.Set(float64(d.Size))
	return d, nil
}

// Prune runs one prune of everything the config selects (or, with dryRun,
// only lists it). trigger says who asked: "manual" or "schedule".
func (s *Service) Prune(ctx context.Context, trigger string, dryRun bool) (*Report, error) {
	s.pruneMu.Lock()
	defer s.pruneMu.Unlock()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PruneTimeout)
	defer cancel()
	r := &Report{Trigger: trigger, DryRun: dryRun, Started: s.now(), Objects: []Object{}}
	p := s.cfg.AutoPrune
	snap, err := s.eng.snapshot(ctx, p.Volumes.Enable, p.BuildCache.Enable)
	if err != nil {
		return nil, s.pruneFailed(parent, ctx, s.engineFailed(err))
	}
	planned := planPrune(snap, p, s.now())
	if dryRun {
		r.Objects = planned
		for _, o := range planned {
			r.TotalBytes += o.Size
		}
		r.Finished = s.now()
		return r, nil
	}
	err = s.pruneFailed(parent, ctx, s.removeAll(ctx, r, planned))
	s.finish(r, err)
	return r, err
}

// pruneFailed names containers.prune_timeout when a prune's own deadline
// (not its caller) cut it short.
func (s *Service) pruneFailed(parent, ctx context.Context, err error) error {
	if err != nil && parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("prune did not finish within %s (containers.prune_timeout): %w", s.cfg.PruneTimeout, err)
	}
	return err
}

// removeAll removes a planned prune kind by kind, in plan order. Objects
// of one kind are independent and go in parallel (removal is mostly the
// engine waiting on the disk); build cache records depend on each other
// and go one by one.
func (s *Service) removeAll(ctx context.Context, r *Report, objs []Object) error {
	for len(objs) > 0 {
		n := 1
		for n < len(objs) && objs[n].Kind == objs[0].Kind {
			n++
		}
		batch := objs[:n]
		objs = objs[n:]
		if batch[0].Kind == KindBuildCache || s.workers <= 1 {
			if err := s.execute(ctx, r, batch, nil); err != nil {
				return err
			}
			continue
		}
		errs := make([]error, len(batch))
		var g errgroup.Group
		g.SetLimit(s.workers)
		for i, o := range batch {
			g.Go(func() error {
				errs[i] = s.eng.remove(ctx, o, s.cfg.AutoPrune)
				return nil
			})
		}
		_ = g.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var hard []int
		for i, o := range batch {
			switch {
			case errs[i] == nil:
				s.removed(r, o)
			case skippable(errs[i]):
				s.skip(r, o, errs[i])
			default:
				hard = append(hard, i)
			}
		}
		if len(hard) > 0 {
			// Not a verdict on the objects: is the engine still there?
			if err := s.eng.ping(ctx); err != nil {
				return s.engineFailed(errs[hard[0]])
			}
			for _, i := range hard {
				s.skip(r, batch[i], errs[i])
			}
		}
	}
	return nil
}

// RelievePressure removes unused images, least recently used first, while
// the disk holding Docker's root is above the low watermark, when it is
// above the high watermark. It returns nil when there was no pressure.
func (s *Service) RelievePressure(ctx context.Context) (*Report, error) {
	p := s.cfg.AutoPrune
	if p.HighWatermark.IsZero() {
		return nil, nil
	}
	d, err := s.measureDisk()
	if err != nil {
		return nil, fmt.Errorf("measure disk of docker root (set containers.root_dir, or high_watermark \"\" for a remote engine): %w", err)
	}
	s.pruneMu.Lock()
	defer s.pruneMu.Unlock()
	if !p.HighWatermark.Exceeded(d.Used, d.Size) {
		s.stuck = false
		return nil, nil
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PruneTimeout)
	defer cancel()
	snap, err := s.eng.snapshot(ctx, false, false)
	if err != nil {
		return nil, s.pruneFailed(parent, ctx, s.engineFailed(err))
	}
	s.eng.refineImageTimes(ctx, &snap)
	cands := pressureCandidates(snap, p, s.state.lastUse(), s.now())
	if len(cands) == 0 {
		// Said once until the disk goes below the high watermark again.
		if !s.stuck {
			s.log.Warn("disk above high watermark, but no image may be removed", "dir", s.rootDir(),
				"used", units.BytesSize(float64(d.Used)), "high_watermark", p.HighWatermark.String())
		}
		s.stuck = true
		return nil, nil
	}
	s.stuck = false
	s.log.Info("disk above high watermark", "dir", s.rootDir(), "used", units.BytesSize(float64(d.Used)),
		"size", units.BytesSize(float64(d.Size)), "high_watermark", p.HighWatermark.String())
	r := &Report{Trigger: "disk_pressure", Started: s.now(), Objects: []Object{}}
	err = s.execute(ctx, r, cands, func() bool {
		d, err := s.measureDisk()
		return err == nil && !p.LowWatermark.Exceeded(d.Used, d.Size)
	})
	err = s.pruneFailed(parent, ctx, err)
	s.finish(r, err)
	if d, err := s.measureDisk(); err == nil && p.LowWatermark.Exceeded(d.Used, d.Size) {
		s.log.Warn("disk still above low watermark: nothing more hostd may remove",
			"used", units.BytesSize(float64(d.Used)), "low_watermark", p.LowWatermark.String())
	}
	return r, err
}

// execute removes objects in order, skipping those the engine refuses
// (in use, already gone), until done reports enough or the engine fails.
// Build cache records the engine keeps because another record still
// needs them are tried again after the rest, while that makes progress.
func (s *Service) execute(ctx context.Context, r *Report, objs []Object, done func() bool) error {
	p := s.cfg.AutoPrune
	for len(objs) > 0 {
		var again []Object
		progress := false
		for _, o := range objs {
			if done != nil && done() {
				return nil
			}
			err := s.eng.remove(ctx, o, p)
			if err == nil {
				s.removed(r, o)
				progress = true
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, errNotPruned) {
				again = append(again, o)
				continue
			}
			if !skippable(err) {
				// Not a verdict on the object: is the engine still there?
				if perr := s.eng.ping(ctx); perr != nil {
					return s.engineFailed(err)
				}
			}
			s.skip(r, o, err)
		}
		if !progress {
			for _, o := range again {
				s.skip(r, o, fmt.Errorf("remove %s %s: %w", o.Kind, o.display(), errNotPruned))
			}
			return nil
		}
		objs = again
	}
	return nil
}

func (s *Service) removed(r *Report, o Object) {
	s.log.Info("removed", "kind", o.Kind, "id", shortID(o.ID), "name", o.Name, "size", o.Size, "reason", o.Reason)
	r.Objects = append(r.Objects, o)
	r.TotalBytes += o.Size
	s.m.removed.WithLabelValues(string(o.Kind)).Inc()
}

func (s *Service) skip(r *Report, o Object, err error) {
	s.log.Warn("skipped", "kind", o.Kind, "id", shortID(o.ID), "name", o.Name, "err", err)
	r.Skipped = append(r.Skipped, Skipped{Object: o, Error: err.Error()})
	s.m.skipped.WithLabelValues(string(o.Kind)).Inc()
}

// engineFailed marks the engine down when err is a connection problem and
// returns the error to report.
func (s *Service) engineFailed(err error) error {
	err = s.eng.explain(err)
	if errors.Is(err, ErrPermission) || errors.Is(err, ErrUnreachable) {
		s.setDown(err)
		return fmt.Errorf("%w: %w", ErrEngineDown, err)
	}
	return err
}

// finish records a completed (or aborted) prune.
func (s *Service) finish(r *Report, err error) {
	r.Finished = s.now()
	r.ReclaimedBytes = r.TotalBytes
	if err != nil {
		r.Error = err.Error()
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.m.prunes.WithLabelValues(r.Trigger, result).Inc()
	s.m.lastPrune.Set(float64(r.Finished.UnixNano()) / 1e9)
	s.m.lastReclaimed.Set(float64(r.ReclaimedBytes))
	s.m.reclaimedTotal.Add(float64(r.ReclaimedBytes))
	s.mu.Lock()
	s.lastReport = r
	s.reclaimed += r.ReclaimedBytes
	s.mu.Unlock()
	s.state.setLastReport(r)
	if err := s.state.save(); err != nil {
		s.log.Warn("save state", "err", err)
	}
	s.log.Info("prune finished", "trigger", r.Trigger, "took", r.Finished.Sub(r.Started).Round(time.Millisecond), "removed", len(r.Objects), "skipped", len(r.Skipped),
		"reclaimed", units.BytesSize(float64(r.ReclaimedBytes)), "err", err)
	if _, err := s.measureDisk(); err != nil {
		s.log.Debug("measure docker disk use", "err", err)
	}
}

// Details returns the current status details.
func (s *Service) Details() StatusDetails {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := StatusDetails{
		Host:                s.eng.host,
		Reachable:           s.up,
		EngineVersion:       s.info.Version,
		APIVersion:          s.info.APIVersion,
		RootDir:             s.cfg.RootDir,
		DiskUsedBytes:       s.disk.Used,
		DiskSizeBytes:       s.disk.Size,
		HighWatermark:       s.cfg.AutoPrune.HighWatermark.String(),
		LowWatermark:        s.cfg.AutoPrune.LowWatermark.String(),
		LastPrune:           s.lastReport,
		NextPrune:           s.nextPrune,
		ReclaimedBytesTotal: s.reclaimed,
		TrackedImages:       s.state.tracked(),
	}
	if d.RootDir == "" {
		d.RootDir = s.info.RootDir
	}
	if s.connErr != nil {
		d.Error = s.connErr.Error()
	}
	if s.sched != nil {
		d.Schedule = s.cfg.AutoPrune.Schedule
	}
	return d
}

// Status implements service.Service.
func (s *Service) Status() service.Status {
	d := s.Details()
	return service.Status{Summary: d.Summary(), Details: d}
}

// Summary is the one-line form of d for `hostd status`.
func (d StatusDetails) Summary() string {
	var parts []string
	if d.Reachable {
		parts = append(parts, fmt.Sprintf("engine %s (API %s)", d.EngineVersion, d.APIVersion))
	} else {
		parts = append(parts, "engine unreachable")
	}
	if d.DiskSizeBytes > 0 {
		parts = append(parts, fmt.Sprintf("disk %.0f%%", float64(d.DiskUsedBytes)*100/float64(d.DiskSizeBytes)))
	}
	if d.LastPrune != nil {
		parts = append(parts, fmt.Sprintf("last prune %s freed %s", d.LastPrune.Finished.UTC().Format("Jan 2 15:04"),
			units.HumanSize(float64(d.LastPrune.ReclaimedBytes))))
	}
	if !d.NextPrune.IsZero() {
		parts = append(parts, "next "+d.NextPrune.UTC().Format("Jan 2 15:04"))
	}
	return strings.Join(parts, ", ")
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
