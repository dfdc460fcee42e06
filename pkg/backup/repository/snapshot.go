package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hostd/hostd/pkg/backup/backend"
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
	// Original names the snapshot this one replaces, when it was
	// written by tag or rewrite rather than by a backup.
	Original *ID `json:"original,omitempty"`

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

// SaveSnapshot stores s and sets its ID.
func (r *Repository) SaveSnapshot(ctx context.Context, s *Snapshot) (ID, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return ID{}, err
	}
	id, err := r.SaveFile(ctx, backend.Snapshot, b)
	if err != nil {
		return id, fmt.Errorf("save snapshot: %w", err)
	}
	s.id = id
	return id, nil
}

// LoadSnapshot loads snapshot id.
func (r *Repository) LoadSnapshot(ctx context.Context, id ID) (*Snapshot, error) {
	b, err := r.LoadFile(ctx, backend.Snapshot, id)
	if err != nil {
		return nil, err
	}
	s, err := DecodeSnapshot(b)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id.Short(), err)
	}
	s.id = id
	return s, nil
}

// Snapshots loads every snapshot, sorted by time. Unreadable snapshot
// files are returned in bad rather than failing the listing.
func (r *Repository) Snapshots(ctx context.Context) (snaps []*Snapshot, bad map[ID]error, err error) {
	ids, err := r.List(ctx, backend.Snapshot)
	if err != nil {
		return nil, nil, err
	}
	bad = map[ID]error{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for id := range ids {
		g.Go(func() error {
			s, err := r.LoadSnapshot(gctx, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				bad[id] = err
				return nil
			}
			snaps = append(snaps, s)
			return nil
		})
	}
	err = g.Wait()
	r.dropEarly(backend.Snapshot) // read ahead for this listing
	if err != nil {
		return nil, nil, err
	}
	sort.Slice(snaps, func(i, j int) bool {
		if !snaps[i].Time.Equal(snaps[j].Time) {
			return snaps[i].Time.Before(snaps[j].Time)
		}
		return strings.Compare(snaps[i].id.String(), snaps[j].id.String()) < 0
	})
	return snaps, bad, nil
}

// FindSnapshot resolves "latest" or a unique ID prefix.
func (r *Repository) FindSnapshot(ctx context.Context, ref string) (*Snapshot, error) {
	if ref == "" {
		return nil, errors.New("find snapshot: empty reference")
	}
	if ref == "latest" {
		snaps, _, err := r.Snapshots(ctx)
		if err != nil {
			return nil, err
		}
		if len(snaps) == 0 {
			return nil, errors.New("find snapshot latest: repository has no snapshots")
		}
		return snaps[len(snaps)-1], nil
	}
	ids, err := r.List(ctx, backend.Snapshot)
	if err != nil {
		return nil, err
	}
	var found []ID
	for id := range ids {
		if strings.HasPrefix(id.String(), strings.ToLower(ref)) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("find snapshot %q: no such snapshot", ref)
	case 1:
		return r.LoadSnapshot(ctx, found[0])
	}
	return nil, fmt.Errorf("find snapshot %q: prefix matches %d snapshots", ref, len(found))
}

// RemoveSnapshot deletes snapshot id.
func (r *Repository) RemoveSnapshot(ctx context.Context, id ID) error {
	return r.be.Remove(ctx, backend.Handle{Type: backend.Snapshot, Name: id.String()})
}
