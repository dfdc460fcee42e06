package audio

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Lookup errors; the local API answers 404 for ErrNoDevice and 400 for
// ErrAmbiguous and ErrBadRequest.
var (
	ErrNoDevice   = errors.New("no such device")
	ErrAmbiguous  = errors.New("ambiguous device")
	ErrBadRequest = errors.New("bad request")
)

// Lookup finds a sink or source by exact name, by index ("3" or "#3"), or
// by a part of its description that only one device of that kind has
// (case-insensitive). An empty ref means the default device.
func (s *Status) Lookup(kind Kind, ref string) (*Device, error) {
	devs := s.devices(kind)
	if ref == "" {
		def := s.DefaultSink
		if kind == KindSource {
			def = s.DefaultSource
		}
		if d := s.Find(kind, def); d != nil {
			return d, nil
		}
		return nil, fmt.Errorf("%w: there is no default %s", ErrNoDevice, kind)
	}
	if d := s.Find(kind, ref); d != nil {
		return d, nil
	}
	if idx, err := strconv.ParseUint(strings.TrimPrefix(ref, "#"), 10, 32); err == nil {
		for i := range devs {
			if devs[i].Index == uint32(idx) {
				return &devs[i], nil
			}
		}
		return nil, fmt.Errorf("%w: no %s with index %d (%s)", ErrNoDevice, kind, idx, listNames(kind, devs))
	}
	var found []int
	needle := strings.ToLower(ref)
	for i := range devs {
		if devs[i].Description != "" && strings.Contains(strings.ToLower(devs[i].Description), needle) {
			found = append(found, i)
		}
	}
	switch len(found) {
	case 1:
		return &devs[found[0]], nil
	case 0:
		return nil, fmt.Errorf("%w: no %s named %q or with it in its description (%s)", ErrNoDevice, kind, ref, listNames(kind, devs))
	}
	names := make([]string, len(found))
	for i, j := range found {
		names[i] = devs[j].Name
	}
	return nil, fmt.Errorf("%w: %q is in the description of %d %ss: %s", ErrAmbiguous, ref, len(found), kind, strings.Join(names, ", "))
}

func listNames(kind Kind, devs []Device) string {
	if len(devs) == 0 {
		return "there are no " + string(kind) + "s"
	}
	names := make([]string, len(devs))
	for i, d := range devs {
		names[i] = d.Name
	}
	return string(kind) + "s: " + strings.Join(names, ", ")
}

// LookupCard finds a card by exact name, index, or a unique part of its
// name or description.
func (s *Status) LookupCard(ref string) (*Card, error) {
	if ref == "" {
		return nil, fmt.Errorf("%w: no card given", ErrBadRequest)
	}
	names := make([]string, len(s.Cards))
	for i := range s.Cards {
		names[i] = s.Cards[i].Name
		if s.Cards[i].Name == ref {
			return &s.Cards[i], nil
		}
	}
	available := "there are no cards"
	if len(names) > 0 {
		available = "cards: " + strings.Join(names, ", ")
	}
	if idx, err := strconv.ParseUint(strings.TrimPrefix(ref, "#"), 10, 32); err == nil {
		for i := range s.Cards {
			if s.Cards[i].Index == uint32(idx) {
				return &s.Cards[i], nil
			}
		}
		return nil, fmt.Errorf("%w: no card with index %d (%s)", ErrNoDevice, idx, available)
	}
	var found []int
	needle := strings.ToLower(ref)
	for i, c := range s.Cards {
		if strings.Contains(strings.ToLower(c.Name), needle) || strings.Contains(strings.ToLower(c.Description), needle) {
			found = append(found, i)
		}
	}
	switch len(found) {
	case 1:
		return &s.Cards[found[0]], nil
	case 0:
		return nil, fmt.Errorf("%w: no card matches %q (%s)", ErrNoDevice, ref, available)
	}
	return nil, fmt.Errorf("%w: %q matches %d cards (%s)", ErrAmbiguous, ref, len(found), available)
}

// Profile returns the card's profile of that name, or an error listing the
// card's profiles.
func (c *Card) Profile(name string) (*Profile, error) {
	names := make([]string, len(c.Profiles))
	for i := range c.Profiles {
		if c.Profiles[i].Name == name {
			return &c.Profiles[i], nil
		}
		names[i] = c.Profiles[i].Name
	}
	return nil, fmt.Errorf("%w: card %s has no profile %q (profiles: %s)", ErrBadRequest, c.Name, name, strings.Join(names, ", "))
}
