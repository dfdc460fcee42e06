package repository

import (
	"encoding/json"
	"fmt"
	"time"
)

// Snapshot records one backup run: when, of what, and the root tree.
type Snapshot struct {
	Time     time.Time        `json:"time"`
	Tree     ID               `json:"tree"`
	Paths    []string         `json:"paths"`
	Hostname string           `json:"hostname"`
	Username string           `json:"username,omitempty"`
	Tags     []string         `json:"tags,omitempty"`
	Parent   *ID              `json:"parent,omitempty"`
	Summary  *SnapshotSummary `json:"summary,omitempty"`

	id ID
}

// SnapshotSummary is what the backup run counted.
type SnapshotSummary struct {
	Start          time.Time `json:"start"`
	End            time.Time `json:"end"`
	FilesNew       int       `json:"files_new"`
	FilesChanged   int       `json:"files_changed"`
	FilesUnchanged int       `json:"files_unchanged"`
	Dirs           int       `json:"dirs"`
	BytesRead      int64     `json:"bytes_read"`
	BytesTotal     int64     `json:"bytes_total"`
	BytesAdded     int64     `json:"bytes_added"`  // plaintext bytes of new blobs
	BytesStored    int64     `json:"bytes_stored"` // bytes of new blobs after compression and encryption
	Errors         int       `json:"errors"`
}

// ID returns the snapshot's file ID (set when loaded or saved).
func (s *Snapshot) ID() ID { return s.id }

// DecodeSnapshot parses and validates snapshot JSON.
func DecodeSnapshot(b []byte) (*Snapshot, error) {
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	if s.Tree.IsNull() {
		return nil, fmt.Errorf("decode snapshot: no tree")
	}
	if s.Time.IsZero() {
		return nil, fmt.Errorf("decode snapshot: no time")
	}
	return &s, nil
}
