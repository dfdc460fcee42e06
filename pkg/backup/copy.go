package backup

import (
	"context"
	"fmt"
	"slices"

	"github.com/hostd/hostd/pkg/backup/repository"
)

// CopyOptions configure Copy.
type CopyOptions struct {
	// Snapshots are ID prefixes (or "latest") of the snapshots to copy;
	// empty: every snapshot the filter selects.
	Snapshots []string
	// Filter selects snapshots by host, path and tag.
	Filter SnapshotFilter
	// Progress is called after each snapshot copied.
	Progress func(done, total int)
}

// CopyResult lists what Copy did, by snapshot ID in the source.
type CopyResult struct {
	Copied []CopiedSnapshot `json:"copied"`
	// Skipped are snapshots the destination already holds (same time,
	// host, paths and tags).
	Skipped    []string `json:"skipped"`
	BlobsAdded int      `json:"blobs_added"`
	BytesAdded int64    `json:"bytes_added"` // plaintext bytes of new blobs
}

// CopiedSnapshot is one snapshot Copy wrote to the destination.
type CopiedSnapshot struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
}

// Copy copies snapshots of r into dst (the 3-2-1 rule: a local repository
// copied to S3, say), each with every tree and data blob it needs that
// dst does not already hold. The two repositories have their own keys,
// so every blob is read, authenticated and decrypted from r, and sealed
// and named again with dst's keys; chunk boundaries stay those of r, so
// data copied from r deduplicates against other copies from r, not
// against dst's own backups. A snapshot dst already holds (same time,
// host, paths and tags, as a previous copy writes it) is skipped. The
// copy keeps the snapshot's time, host, user, paths, tags and summary;
// its parent is dropped. Shared locks are held on both repositories;
// the snapshots are written only once their data and index are.
func (r *Repository) Copy(ctx context.Context, dst *Repository, opts CopyOptions) (*CopyResult, error) {
	if r.repo.Config().ID == dst.repo.Config().ID {
		return nil, fmt.Errorf("copy: source and destination are the same repository")
	}
	srcLock, err := r.repo.Lock(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("copy: source: %w", err)
	}
	defer srcLock.Unlock()
	dstLock, err := dst.repo.Lock(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("copy: destination: %w", err)
	}
	defer dstLock.Unlock()
	if _, err := dst.repo.AdoptPacks(ctx); err != nil {
		return nil, fmt.Errorf("copy: destination: %w", err)
	}
	var snaps []*repository.Snapshot
	if len(opts.Snapshots) > 0 {
		for _, ref := range opts.Snapshots {
			s, err := r.repo.FindSnapshot(ctx, ref)
			if err != nil {
				return nil, fmt.Errorf("copy: %w", err)
			}
			snaps = append(snaps, s)
		}
	} else if snaps, err = r.filteredSnapshots(ctx, opts.Filter); err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	have, _, err := dst.repo.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("copy: destination: %w", err)
	}
	c := &copier{src: r.repo, dst: dst.repo, trees: map[repository.ID]repository.ID{}, data: map[repository.ID]repository.ID{}}
	res := &CopyResult{Copied: []CopiedSnapshot{}, Skipped: []string{}}
	var pending []*repository.Snapshot
	for _, s := range snaps {
		if slices.ContainsFunc(have, func(d *repository.Snapshot) bool { return sameSnapshot(s, d) }) {
			res.Skipped = append(res.Skipped, s.ID().String())
			continue
		}
		root, err := c.tree(ctx, s.Tree, 0)
		if err != nil {
			_ = dst.repo.Flush(context.WithoutCancel(ctx)) // keep what was copied (checkpoint)
			return res, fmt.Errorf("copy snapshot %s: %w", s.ID().Short(), err)
		}
		cp := *s
		cp.Tree, cp.Parent, cp.Original = root, nil, nil
		pending = append(pending, &cp)
		have = append(have, &cp)
		if opts.Progress != nil {
			opts.Progress(len(pending), len(snaps)-len(res.Skipped))
		}
	}
	if err := dst.repo.Flush(ctx); err != nil {
		return res, fmt.Errorf("copy: %w", err)
	}
	for _, cp := range pending {
		id, err := dst.repo.SaveSnapshot(ctx, cp)
		if err != nil {
			return res, fmt.Errorf("copy: %w", err)
		}
		res.Copied = append(res.Copied, CopiedSnapshot{Source: sourceID(snaps, cp), Destination: id.String()})
	}
	res.BlobsAdded, res.BytesAdded = c.blobs, c.bytes
	return res, nil
}

// sourceID finds the ID of the source snapshot cp was copied from.
func sourceID(snaps []*repository.Snapshot, cp *repository.Snapshot) string {
	for _, s := range snaps {
		if sameSnapshot(s, cp) {
			return s.ID().String()
		}
	}
	return ""
}

// sameSnapshot reports whether a and b record the same backup run.
func sameSnapshot(a, b *repository.Snapshot) bool {
	return a.Time.Equal(b.Time) && a.Hostname == b.Hostname && slices.Equal(a.Paths, b.Paths) && slices.Equal(a.Tags, b.Tags)
}

// copier copies trees and their data, each blob once per run.
type copier struct {
	src, dst    *repository.Repository
	trees, data map[repository.ID]repository.ID // source ID -> destination ID
	buf         []byte
	blobs       int
	bytes       int64
}

// maxCopyDepth bounds the nesting of trees, as every walk is bounded.
const maxCopyDepth = repository.DefaultMaxTreeDepth

func (c *copier) tree(ctx context.Context, id repository.ID, depth int) (repository.ID, error) {
	if d, ok := c.trees[id]; ok {
		return d, nil
	}
	if depth > maxCopyDepth {
		return repository.ID{}, fmt.Errorf("trees nested deeper than %d", maxCopyDepth)
	}
	if err := ctx.Err(); err != nil {
		return repository.ID{}, err
	}
	t, err := c.src.LoadTree(ctx, id)
	if err != nil {
		return repository.ID{}, err
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if n.Subtree != nil {
			sub, err := c.tree(ctx, *n.Subtree, depth+1)
			if err != nil {
				return repository.ID{}, err
			}
			n.Subtree = &sub
		}
		for j, b := range n.Content {
			if n.Content[j], err = c.blob(ctx, b); err != nil {
				return repository.ID{}, fmt.Errorf("%s: %w", n.Name, err)
			}
		}
	}
	b, err := repository.EncodeTree(t)
	if err != nil {
		return repository.ID{}, err
	}
	nid, added, err := c.dst.SaveBlob(ctx, repository.TreeBlob, b)
	if err != nil {
		return repository.ID{}, err
	}
	if added {
		c.blobs++
		c.bytes += int64(len(b))
	}
	c.trees[id] = nid
	return nid, nil
}

func (c *copier) blob(ctx context.Context, id repository.ID) (repository.ID, error) {
	if d, ok := c.data[id]; ok {
		return d, nil
	}
	p, err := c.src.LoadBlob(ctx, repository.BlobHandle{Type: repository.DataBlob, ID: id}, c.buf)
	if err != nil {
		return repository.ID{}, err
	}
	c.buf = p[:0]
	nid, added, err := c.dst.SaveBlob(ctx, repository.DataBlob, p)
	if err != nil {
		return repository.ID{}, err
	}
	if added {
		c.blobs++
		c.bytes += int64(len(p))
	}
	c.data[id] = nid
	return nid, nil
}
