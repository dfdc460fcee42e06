package containers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hostd/hostd/internal/service"
)

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
	cands := pressureCandidates(snap, p, s.state.lastUse(), s.clock.Now())
	if len(cands) == 0 {
		// Said once until the disk goes below the high watermark again.
		if !s.stuck {
			s.log.Warn("disk above high watermark, but no image may be removed", "dir", s.rootDir(),
				"used", service.FormatBytes(int64(d.Used)), "high_watermark", p.HighWatermark.String())
		}
		s.stuck = true
		return nil, nil
	}
	s.stuck = false
	s.log.Info("disk above high watermark", "dir", s.rootDir(), "used", service.FormatBytes(int64(d.Used)),
		"size", service.FormatBytes(int64(d.Size)), "high_watermark", p.HighWatermark.String())
	r := &Report{Trigger: "disk_pressure", Started: s.clock.Now(), Objects: []Object{}}
	err = s.execute(ctx, r, cands, func() bool {
		d, err := s.measureDisk()
		return err == nil && !p.LowWatermark.Exceeded(d.Used, d.Size)
	})
	err = s.pruneFailed(parent, ctx, err)
	s.finish(r, err)
	if d, err := s.measureDisk(); err == nil && p.LowWatermark.Exceeded(d.Used, d.Size) {
		s.log.Warn("disk still above low watermark: nothing more hostd may remove",
			"used", service.FormatBytes(int64(d.Used)), "low_watermark", p.LowWatermark.String())
	}
	return r, err
}
