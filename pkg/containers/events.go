package containers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/events"

	"github.com/hostd/hostd/internal/service"
)

// followEngine connects to the engine and follows its event stream,
// recording image use; when the engine goes away it reports the service
// degraded and reconnects with exponential backoff.
func (s *Service) followEngine(ctx context.Context) {
	b := s.reconnect
	var since time.Time
	for ctx.Err() == nil {
		info, err := s.eng.connect(ctx)
		if err == nil {
			if err = s.seed(ctx); err == nil {
				started := s.clock.Now()
				// Ready once the event stream is subscribed: from then on
				// no use of an image goes unseen.
				since, err = s.followEvents(ctx, since, func() { s.setUp(info) })
				if s.clock.Now().Sub(started) > b.Max {
					b.Reset() // a connection that lasted starts over
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		s.setDown(err)
		if service.Sleep(ctx, s.clock, b.Next()) != nil {
			return
		}
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
	now := s.clock.Now()
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
	lastSave := s.clock.Now()
	for {
		select {
		case m := <-msgs:
			t := time.Unix(0, m.TimeNano)
			if m.TimeNano == 0 {
				t = time.Unix(m.Time, 0)
			}
			since = t
			s.observe(ctx, m, t)
			if s.clock.Now().Sub(lastSave) >= s.saveEvery {
				lastSave = s.clock.Now()
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

func (s *Service) reachable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up
}
