package audio

import (
	"context"
	"fmt"
	"strings"
)

// ParseKind parses "sink" or "source"; empty means sink.
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "sink":
		return KindSink, nil
	case "source":
		return KindSource, nil
	}
	return "", fmt.Errorf("%w: device kind %q: want sink or source", ErrBadRequest, s)
}

// MuteMode is a parsed mute request.
type MuteMode string

// Mute modes.
const (
	MuteOn     MuteMode = "on"
	MuteOff    MuteMode = "off"
	MuteToggle MuteMode = "toggle"
)

// ParseMute parses on|off|toggle (also yes/no, true/false, 1/0).
func ParseMute(s string) (MuteMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "on", "yes", "true", "1":
		return MuteOn, nil
	case "off", "no", "false", "0":
		return MuteOff, nil
	case "toggle":
		return MuteToggle, nil
	}
	return "", fmt.Errorf("%w: mute %q: want on, off or toggle", ErrBadRequest, s)
}

// Current reads the state from the server now. While the server is away it
// returns the last known state, marked disconnected, and no error.
func (s *Service) Current(ctx context.Context) (*Status, error) {
	c, err := s.live()
	if err != nil {
		return s.Snapshot(), nil
	}
	st, err := c.snapshot(ctx)
	if err != nil {
		return s.Snapshot(), nil
	}
	if s.quantumStale() {
		s.refreshQuantum(ctx)
	}
	last := s.Snapshot()
	st.Address, st.Reconnects, st.Quantum = last.Address, last.Reconnects, last.Quantum
	st.DropIn, st.DropInError = last.DropIn, last.DropInError
	st.VolumeLimit = float64(s.cfg.VolumeLimit)
	st.Updated = s.clock.Now()
	return st, nil
}

// lookup takes a fresh snapshot and finds a device in it.
func (s *Service) lookup(ctx context.Context, kind Kind, ref string) (*conn, *Device, error) {
	c, err := s.live()
	if err != nil {
		return nil, nil, err
	}
	st, err := c.snapshot(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read audio devices: %w", err)
	}
	d, err := st.Lookup(kind, ref)
	if err != nil {
		return nil, nil, err
	}
	return c, d, nil
}

// reread returns a device's state after a change.
func (s *Service) reread(ctx context.Context, c *conn, kind Kind, name string) (*Device, error) {
	st, err := c.snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("read audio devices: %w", err)
	}
	if d := st.Find(kind, name); d != nil {
		return d, nil
	}
	return nil, fmt.Errorf("%w: %s %s went away", ErrNoDevice, kind, name)
}

// SetVolume sets a device's volume: "40%", "+5%" or "-5%". ref addresses
// the device as Status.Lookup does (empty: the default). Sinks never go
// above volume_limit. The volume is parsed before anything else, so a bad
// one changes nothing.
func (s *Service) SetVolume(ctx context.Context, kind Kind, ref, volume string) (*Device, error) {
	change, err := ParseVolume(volume)
	if err != nil {
		return nil, err
	}
	c, d, err := s.lookup(ctx, kind, ref)
	if err != nil {
		return nil, err
	}
	limit := 0.0
	if kind == KindSink {
		limit = float64(s.cfg.VolumeLimit)
	}
	vols := change.Apply(d.rawVolumes(), limit)
	if err := c.setVolume(ctx, kind, d.Index, vols); err != nil {
		return nil, fmt.Errorf("set volume of %s %s: %w", kind, d.Name, err)
	}
	return s.reread(ctx, c, kind, d.Name)
}

// SetMute mutes, unmutes or toggles a device.
func (s *Service) SetMute(ctx context.Context, kind Kind, ref, mode string) (*Device, error) {
	m, err := ParseMute(mode)
	if err != nil {
		return nil, err
	}
	c, d, err := s.lookup(ctx, kind, ref)
	if err != nil {
		return nil, err
	}
	mute := m == MuteOn || (m == MuteToggle && !d.Mute)
	if err := c.setMute(ctx, kind, d.Index, mute); err != nil {
		return nil, fmt.Errorf("set mute of %s %s: %w", kind, d.Name, err)
	}
	return s.reread(ctx, c, kind, d.Name)
}

// SetDefault makes a device the default sink or source. The choice stands
// until a device comes or goes, when preferred_sinks/preferred_sources (if
// set) choose again.
func (s *Service) SetDefault(ctx context.Context, kind Kind, ref string) (*Device, error) {
	if ref == "" {
		return nil, fmt.Errorf("%w: no %s given", ErrBadRequest, kind)
	}
	c, d, err := s.lookup(ctx, kind, ref)
	if err != nil {
		return nil, err
	}
	if err := c.setDefault(ctx, kind, d.Name); err != nil {
		return nil, fmt.Errorf("set default %s to %s: %w", kind, d.Name, err)
	}
	return s.reread(ctx, c, kind, d.Name)
}

// SetProfile switches a card to one of its profiles.
func (s *Service) SetProfile(ctx context.Context, cardRef, profile string) (*Card, error) {
	if profile == "" {
		return nil, fmt.Errorf("%w: no profile given", ErrBadRequest)
	}
	c, err := s.live()
	if err != nil {
		return nil, err
	}
	st, err := c.snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("read audio cards: %w", err)
	}
	cd, err := st.LookupCard(cardRef)
	if err != nil {
		return nil, err
	}
	if _, err := cd.Profile(profile); err != nil {
		return nil, err
	}
	if err := c.setProfile(ctx, cd.Index, profile); err != nil {
		return nil, fmt.Errorf("set profile of card %s to %s: %w", cd.Name, profile, err)
	}
	st, err = c.snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("read audio cards: %w", err)
	}
	for i := range st.Cards {
		if st.Cards[i].Name == cd.Name {
			return &st.Cards[i], nil
		}
	}
	return nil, fmt.Errorf("%w: card %s went away", ErrNoDevice, cd.Name)
}
