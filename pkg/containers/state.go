package containers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"sync"
	"time"

	"github.com/hostd/hostd/internal/atomicfile"
	"github.com/hostd/hostd/internal/safefile"
)

// stateFile is the name of the persisted state in the service's state dir.
const stateFile = "state.json"

// stateLimit caps the state file: a last-use time per image and the last
// prune's report take a few hundred bytes per object, so 16 MiB is tens of
// thousands of images.
const stateLimit = 16 << 20

// persisted is the on-disk form of the pruner's memory.
type persisted struct {
	Version int `json:"version"`
	// LastScheduled is when the last scheduled prune ran (for persistent).
	LastScheduled time.Time `json:"last_scheduled,omitzero"`
	// LastUse maps image IDs to when a container last used them.
	LastUse map[string]time.Time `json:"last_use"`
	// LastReport is the last prune that ran (not a dry run).
	LastReport *Report `json:"last_report,omitempty"`
}

// state is the pruner's persisted memory: when the scheduled prune last
// ran, and when each image was last used. Safe for concurrent use.
type state struct {
	path string

	mu    sync.Mutex
	p     persisted
	dirty bool
}

// loadState reads dir/state.json. A missing file is an empty state; a
// corrupt one, one that is not a regular file or one larger than
// stateLimit is an error naming the file (it is left in place).
func loadState(dir string) (*state, error) {
	s := &state{path: filepath.Join(dir, stateFile), p: persisted{Version: 1, LastUse: map[string]time.Time{}}}
	data, err := safefile.Read(s.path, stateLimit)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", s.path, err)
	}
	var p persisted
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("decode state %s: %w", s.path, err)
	}
	if p.Version != 1 {
		return nil, fmt.Errorf("decode state %s: unknown version %d", s.path, p.Version)
	}
	if p.LastUse == nil {
		p.LastUse = map[string]time.Time{}
	}
	s.p = p
	return s, nil
}

// used records that image id was used at t (later uses win).
func (s *state) used(id string, t time.Time) {
	if id == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.p.LastUse[id]; !ok || t.After(old) {
		s.p.LastUse[id] = t.UTC()
		s.dirty = true
	}
}

// forget drops images that no longer exist, keeping the file small.
func (s *state) forget(exists func(id string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.p.LastUse {
		if !exists(id) {
			delete(s.p.LastUse, id)
			s.dirty = true
		}
	}
}

func (s *state) lastUse() map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.p.LastUse)
}

func (s *state) tracked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.p.LastUse)
}

func (s *state) lastScheduled() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p.LastScheduled
}

func (s *state) lastReport() *Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p.LastReport
}

func (s *state) setLastReport(r *Report) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.LastReport = r
	s.dirty = true
}

func (s *state) setLastScheduled(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.LastScheduled = t.UTC()
	s.dirty = true
}

// save writes the state if it changed: to a temporary file, fsynced, then
// renamed over the old one, so a crash leaves the old or the new state.
func (s *state) save() error {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	data, err := json.MarshalIndent(s.p, "", "  ")
	s.dirty = false
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := atomicfile.WriteFile(s.path, data, 0o600); err != nil {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return err
	}
	return nil
}
