package audio

import (
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

	"github.com/hostd/hostd/internal/atomicfile"
	"github.com/hostd/hostd/internal/safefile"
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

// maxRememberedChannels is the most channels a remembered device has
// (pulse's own limit is 32).
const maxRememberedChannels = 32

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
		if len(r.Volumes) == 0 || len(r.Volumes) > maxRememberedChannels {
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

// memoryLimit caps the memory file: a few hundred bytes per device.
const memoryLimit = 4 << 20

// openMemory loads the memory file in dir. A file that cannot be parsed
// (or is larger than memoryLimit, or is not a regular file) is moved aside
// (to devices.json.corrupt) and reported, and hostd starts
// afresh rather than refusing to run.
func openMemory(dir string) (*memory, error) {
	m := &memory{path: filepath.Join(dir, memoryFile), devices: map[string]Remembered{}}
	data, err := safefile.Read(m.path, memoryLimit)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	var devs map[string]Remembered
	switch {
	case errors.Is(err, safefile.ErrTooLarge), errors.Is(err, safefile.ErrNotRegular):
		// Not a file hostd wrote: treated as damaged, below.
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", m.path, err)
	default:
		devs, err = decodeMemory(data)
	}
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
//
// Only what decodeMemory reads back is kept: a device with no channels or
// more than maxRememberedChannels is not remembered, and volumes above
// MaxPercent are remembered as MaxPercent. One odd device (as a server
// may describe it) must not make the whole file unreadable.
func (m *memory) update(kind Kind, name string, vols []uint32, mute bool, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := memoryKey(kind, name)
	prev, had := m.devices[key]
	if !m.recordLocked(kind, name, vols, mute, now) {
		return nil
	}
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

// record is update without saving.
func (m *memory) record(kind Kind, name string, vols []uint32, mute bool, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recordLocked(kind, name, vols, mute, now)
}

// recordLocked stores a device's settings in memory and reports whether
// they changed.
func (m *memory) recordLocked(kind Kind, name string, vols []uint32, mute bool, now time.Time) bool {
	if len(vols) == 0 || len(vols) > maxRememberedChannels {
		return false
	}
	top := fromPercent(MaxPercent)
	vols = slices.Clone(vols)
	for i, v := range vols {
		vols[i] = min(v, top)
	}
	key := memoryKey(kind, name)
	if r, ok := m.devices[key]; ok && r.Mute == mute && slices.Equal(r.Volumes, vols) {
		return false
	}
	m.devices[key] = Remembered{Volumes: vols, Mute: mute, Seen: now.UTC()}
	return true
}

// encodeMemory renders the memory file.
func encodeMemory(devices map[string]Remembered) ([]byte, error) {
	doc := memoryDoc{Version: 1, Devices: maps.Clone(devices)}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode remembered devices: %w", err)
	}
	return append(data, '\n'), nil
}

func (m *memory) saveLocked() error {
	data, err := encodeMemory(m.devices)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(m.path, data, 0o600)
}
