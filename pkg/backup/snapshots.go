package backup

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/hostd/hostd/pkg/backup/forget"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// GroupBy says which fields group snapshots (see forget.GroupBy).
type GroupBy = forget.GroupBy

// GroupKey is what the snapshots of a group share.
type GroupKey = forget.GroupKey

// ParseGroupBy reads "host,paths,tags" (any of them; "" groups nothing).
func ParseGroupBy(s string) (GroupBy, error) { return forget.ParseGroupBy(s) }

// SnapshotFilter selects snapshots, as restic's --host, --path and --tag
// do. Empty fields select every snapshot.
type SnapshotFilter struct {
	// Hosts: the snapshot's host is one of these.
	Hosts []string `json:"hosts,omitempty"`
	// Paths: the snapshot's paths include every one of these.
	Paths []string `json:"paths,omitempty"`
	// Tags: the snapshot has every tag of at least one entry, an entry
	// being a comma-separated list ("daily,db"); "" selects snapshots
	// without tags.
	Tags []string `json:"tags,omitempty"`
}

// Empty reports whether f selects every snapshot.
func (f SnapshotFilter) Empty() bool {
	return len(f.Hosts) == 0 && len(f.Paths) == 0 && len(f.Tags) == 0
}

// Match reports whether f selects a snapshot with these fields.
func (f SnapshotFilter) Match(host string, paths, tags []string) bool {
	if len(f.Hosts) > 0 && !slices.Contains(f.Hosts, host) {
		return false
	}
	for _, p := range f.Paths {
		want := path.Clean(p)
		if !slices.ContainsFunc(paths, func(sp string) bool { return path.Clean(sp) == want }) {
			return false
		}
	}
	return forget.HasTags(tags, f.Tags)
}

func (f SnapshotFilter) matches(s *repository.Snapshot) bool {
	return f.Match(s.Hostname, s.Paths, s.Tags)
}

// SnapshotGroup is the snapshots of one group, oldest first.
type SnapshotGroup struct {
	Key       GroupKey       `json:"group_key"`
	Snapshots []SnapshotInfo `json:"snapshots"`
}

// filteredSnapshots loads the snapshots f selects, oldest first;
// unreadable ones are logged and left out.
func (r *Repository) filteredSnapshots(ctx context.Context, f SnapshotFilter) ([]*repository.Snapshot, error) {
	snaps, bad, err := r.repo.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	for id, err := range bad {
		r.log.Warn("snapshot unreadable", "snapshot", id.Short(), "err", err)
	}
	out := snaps[:0]
	for _, s := range snaps {
		if f.matches(s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// SnapshotGroups lists the snapshots f selects in the groups of by
// (sorted by key; one group when by groups nothing), oldest first.
func (r *Repository) SnapshotGroups(ctx context.Context, f SnapshotFilter, by GroupBy) ([]SnapshotGroup, error) {
	snaps, err := r.filteredSnapshots(ctx, f)
	if err != nil {
		return nil, err
	}
	byID := map[string]*repository.Snapshot{}
	items := make([]forget.Item, 0, len(snaps))
	for _, s := range snaps {
		byID[s.ID().String()] = s
		items = append(items, forget.Item{ID: s.ID().String(), Time: s.Time, Hostname: s.Hostname, Paths: s.Paths, Tags: s.Tags})
	}
	out := []SnapshotGroup{}
	for _, g := range forget.GroupItems(items, by) {
		sg := SnapshotGroup{Key: g.Key, Snapshots: make([]SnapshotInfo, 0, len(g.Items))}
		for _, it := range g.Items {
			sg.Snapshots = append(sg.Snapshots, snapshotInfo(byID[it.ID]))
		}
		out = append(out, sg)
	}
	return out, nil
}

// TagOptions say how Tag changes the tags of snapshots: Set replaces
// them (SetTags true, an empty Set removes every tag), else Add and
// Remove are applied.
type TagOptions struct {
	Add, Remove []string
	Set         []string
	SetTags     bool
	// Snapshots names snapshots ("latest" or ID prefixes); with none,
	// every snapshot Filter selects.
	Snapshots []string
	Filter    SnapshotFilter
}

// TagChange is one snapshot whose tags changed: it was written anew
// (NewID) and the old one removed.
type TagChange struct {
	OldID string   `json:"old_id"`
	NewID string   `json:"new_id"`
	Tags  []string `json:"tags"`
}

// Tag changes the tags of snapshots. A snapshot's ID is the hash of its
// file, so each changed snapshot is saved anew (naming the one it
// replaces in Original) before the old file is removed: a crash in
// between leaves both, never neither.
func (r *Repository) Tag(ctx context.Context, o TagOptions) ([]TagChange, error) {
	if !o.SetTags && len(o.Add) == 0 && len(o.Remove) == 0 {
		return nil, errors.New("tag: nothing to do: give --add, --remove or --set")
	}
	if o.SetTags && (len(o.Add) > 0 || len(o.Remove) > 0) {
		return nil, errors.New("tag: --set cannot be combined with --add or --remove")
	}
	for _, t := range slices.Concat(o.Add, o.Remove, o.Set) {
		if t == "" || strings.Contains(t, ",") {
			return nil, fmt.Errorf("tag %q: a tag is not empty and holds no comma", t)
		}
	}
	lock, err := r.repo.Lock(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("tag: %w", err)
	}
	defer lock.Unlock()
	snaps, err := r.selectSnapshots(ctx, o.Snapshots, o.Filter)
	if err != nil {
		return nil, fmt.Errorf("tag: %w", err)
	}
	out := []TagChange{}
	for _, s := range snaps {
		tags := slices.Clone(s.Tags)
		if o.SetTags {
			tags = slices.Clone(o.Set)
		}
		tags = append(tags, o.Add...)
		tags = slices.DeleteFunc(tags, func(t string) bool { return slices.Contains(o.Remove, t) })
		sort.Strings(tags)
		tags = slices.Compact(tags)
		old := slices.Clone(s.Tags)
		sort.Strings(old)
		if slices.Equal(tags, slices.Compact(old)) {
			continue
		}
		id, err := r.replaceSnapshot(ctx, s, func(n *repository.Snapshot) { n.Tags = tags })
		if err != nil {
			return out, fmt.Errorf("tag: snapshot %s: %w", s.ID().Short(), err)
		}
		out = append(out, TagChange{OldID: s.ID().String(), NewID: id.String(), Tags: tags})
	}
	return out, nil
}

// replaceSnapshot saves a copy of s changed by edit, then removes s. The
// copy names s in Original (or s's own original, so a chain of edits
// keeps naming the snapshot the backup wrote).
func (r *Repository) replaceSnapshot(ctx context.Context, s *repository.Snapshot, edit func(*repository.Snapshot)) (repository.ID, error) {
	n := *s
	n.Tags = slices.Clone(s.Tags)
	if n.Original == nil {
		orig := s.ID()
		n.Original = &orig
	}
	edit(&n)
	id, err := r.repo.SaveSnapshot(ctx, &n)
	if err != nil {
		return id, err
	}
	if err := r.repo.RemoveSnapshot(ctx, s.ID()); err != nil {
		return id, fmt.Errorf("remove replaced snapshot: %w", err)
	}
	return id, nil
}

// selectSnapshots resolves refs ("latest" or ID prefixes; "latest"
// means the newest that filter selects), or with none every snapshot
// filter selects, oldest first, without duplicates.
func (r *Repository) selectSnapshots(ctx context.Context, refs []string, filter SnapshotFilter) ([]*repository.Snapshot, error) {
	all, err := r.filteredSnapshots(ctx, filter)
	if err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		return all, nil
	}
	seen := map[repository.ID]bool{}
	var out []*repository.Snapshot
	for _, ref := range refs {
		s, err := r.findSnapshot(ctx, ref, filter)
		if err != nil {
			return nil, err
		}
		if !seen[s.ID()] {
			seen[s.ID()] = true
			out = append(out, s)
		}
	}
	return out, nil
}

// findSnapshot resolves "latest" (the newest snapshot filter selects) or
// an ID prefix.
func (r *Repository) findSnapshot(ctx context.Context, ref string, filter SnapshotFilter) (*repository.Snapshot, error) {
	if ref != "latest" || filter.Empty() {
		return r.repo.FindSnapshot(ctx, ref)
	}
	snaps, err := r.filteredSnapshots(ctx, filter)
	if err != nil {
		return nil, err
	}
	if len(snaps) == 0 {
		return nil, errors.New("find snapshot latest: no snapshot matches the filter")
	}
	return snaps[len(snaps)-1], nil
}
