package audio

import (
	"github.com/hostd/hostd/internal/atomicfile"

	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// memoryFile is the name of the remembered-settings file in the state dir.
const memoryFile = "devices.json"

// Remembered is the last volume and mute hostd saw on one device.
type Remembered struct {
	// Volumes is the raw per-channel volume (65536 is 100%).
	Volumes []uint32  `json:"volumes"`
	Mute    bool      `json:"mute"`
	Seen    time.Time `json:"seen"`
}

// memory keeps per-device settings in a JSON file, written atomically
// (temp file, fsync, rename, fsync of the directory), so a crash at any
// moment leaves either the old or the new file.
type memory struct {
	path string

	mu      sync.Mutex
	devices map[string]Remembered // key: kind + ":" + device name
}

func memoryKey(kind Kind, name string) string { return string(kind) + ":" + name }

// memoryDoc is the file format.
type memoryDoc struct {
	Version int                   `json:"version"`
	Devices map[string]Remembered `json:"devices"`
}

// decodeMemory parses a memory file.
func decodeMemory(data []byte) (map[string]Remembered, error) {
	var doc memoryDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if doc.Version != 1 {
		return nil, fmt.Errorf("unsupported version %d", doc.Version)
	}
	for k, r := range doc.Devices {
		if len(r.Volumes) == 0 || len(r.Volumes) > 32 {
			return nil, fmt.Errorf("device %q: %d channels", k, len(r.Volumes))
		}
		for _, v := range r.Volumes {
			if v > fromPercent(MaxPercent) {
				return nil, fmt.Errorf("device %q: volume %d above %d%%", k, v, MaxPercent)
			}
		}
	}
	if doc.Devices == nil {
		doc.Devices = map[string]Remembered{}
	}
	return doc.Devices, nil
}

// openMemory loads the memory file in dir. A file that cannot be parsed is
// moved aside (to devices.json.corrupt) and reported, and hostd starts
// afresh rather than refusing to run.
func openMemory(dir string) (*memory, error) {
	m := &memory{path: filepath.Join(dir, memoryFile), devices: map[string]Remembered{}}
	data, err := os.ReadFile(m.path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", m.path, err)
	}
	devs, err := decodeMemory(data)
	if err != nil {
		bad := m.path + ".corrupt"
		if rerr := os.Rename(m.path, bad); rerr != nil {
			return nil, fmt.Errorf("parse %s: %w (and moving it aside failed: %v)", m.path, err, rerr)
		}
		return m, fmt.Errorf("parse %s: %w; moved it to %s", m.path, err, bad)
	}
	m.devices = devs
	return m, nil
}

// get returns what is remembered for a device.
func (m *memory) get(kind Kind, name string) (Remembered, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.devices[memoryKey(kind, name)]
	return r, ok
}

// update records a device's settings and saves the file when they differ
// from what was remembered.
func (m *memory) update(kind Kind, name string, vols []uint32, mute bool, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := memoryKey(kind, name)
	if r, ok := m.devices[key]; ok && r.Mute == mute && slices.Equal(r.Volumes, vols) {
		return nil
	}
	prev, had := m.devices[key]
	m.devices[key] = Remembered{Volumes: slices.Clone(vols), Mute: mute, Seen: now.UTC()}
	if err := m.saveLocked(); err != nil {
		if had {
			m.devices[key] = prev
		} else {
			delete(m.devices, key)
		}
		return err
	}
	return nil
}

func (m *memory) saveLocked() error {
	doc := memoryDoc{Version: 1, Devices: maps.Clone(m.devices)}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode remembered devices: %w", err)
	}
	return atomicfile.WriteFile(m.path, append(data, '\n'), 0o600)
}
