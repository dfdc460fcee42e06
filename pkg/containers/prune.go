package containers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hostd/hostd/internal/service"
)

// Prune runs one prune of everything the config selects (or, with dryRun,
// only lists it). trigger says who asked: "manual" or "schedule".
func (s *Service) Prune(ctx context.Context, trigger string, dryRun bool) (*Report, error) {
	s.pruneMu.Lock()
	defer s.pruneMu.Unlock()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PruneTimeout)
	defer cancel()
	r := &Report{Trigger: trigger, DryRun: dryRun, Started: s.clock.Now(), Objects: []Object{}}
	p := s.cfg.AutoPrune
	snap, err := s.eng.snapshot(ctx, p.Volumes.Enable, p.BuildCache.Enable)
	if err != nil {
		return nil, s.pruneFailed(parent, ctx, s.engineFailed(err))
	}
	planned := planPrune(snap, p, s.clock.Now())
	if dryRun {
		r.Objects = planned
		for _, o := range planned {
			r.TotalBytes += o.Size
		}
		r.Finished = s.clock.Now()
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
	r.Finished = s.clock.Now()
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
		"reclaimed", service.FormatBytes(r.ReclaimedBytes), "err", err)
	if _, err := s.measureDisk(); err != nil {
		s.log.Debug("measure docker disk use", "err", err)
	}
}
