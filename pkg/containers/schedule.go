package containers

import (
	"context"

	"github.com/hostd/hostd/internal/service"
)

// runSchedule runs the scheduled prune at each elapse of the schedule.
func (s *Service) runSchedule(ctx context.Context) {
	for {
		next := s.timer.Next(s.state.lastScheduled(), s.clock.Now())
		s.mu.Lock()
		s.nextPrune = next
		s.mu.Unlock()
		if service.SleepUntil(ctx, s.clock, next, 0) != nil {
			return
		}
		for {
			_, err := s.Prune(ctx, "schedule", false)
			if err == nil {
				break
			}
			s.log.Warn("scheduled prune failed; retrying", "err", err, "in", s.retry)
			if service.Sleep(ctx, s.clock, s.retry) != nil {
				return
			}
		}
		s.state.setLastScheduled(s.clock.Now())
		if err := s.state.save(); err != nil {
			s.log.Warn("save state", "err", err)
		}
	}
}
