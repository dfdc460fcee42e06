package backup

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// PruneOptions configure Prune.
type PruneOptions struct {
	// MaxUnused is the share of unused bytes (percent of the repository)
	// tolerated in partly used packs before they are repacked; nil means
	// 5, and 0 repacks every partly used pack. Packs with no used blob
	// are always deleted.
	MaxUnused *float64
	DryRun    bool
}

// PruneResult says what Prune removed or would remove.
type PruneResult struct {
	PacksTotal    int   `json:"packs_total"`
	PacksDeleted  int   `json:"packs_deleted"`
	PacksRepacked int   `json:"packs_repacked"`
	PacksWritten  int   `json:"packs_written"`
	BytesBefore   int64 `json:"bytes_before"`
	BytesUnused   int64 `json:"bytes_unused"`
	BytesFreed    int64 `json:"bytes_freed"`
	IndexFiles    int   `json:"index_files_replaced"`
	// TempFiles and TempBytes count the temporary files interrupted
	// writes left behind (deleted, unless DryRun).
	TempFiles int   `json:"temp_files"`
	TempBytes int64 `json:"temp_bytes"`
	DryRun    bool  `json:"dry_run,omitempty"`
}

// TempFileAge is how old a temporary file of a key or lock must be for
// prune to delete it (writing one takes milliseconds).
const TempFileAge = 10 * time.Minute

type packUse struct {
	id         repository.ID
	size       int64
	used       int64
	usedBlobs  []repository.PackBlob
	totalBlobs int
}

// Prune deletes data no snapshot references, repacking partly used packs
// when their unused share exceeds MaxUnused. It holds an exclusive lock.
// Write order keeps the repository consistent at every instant: new packs,
// their index, a complete new index, removal of the old index files, and
// only then removal of old packs.
func (r *Repository) Prune(ctx context.Context, opts PruneOptions) (*PruneResult, error) {
	maxUnused := 5.0
	if opts.MaxUnused != nil {
		maxUnused = *opts.MaxUnused
	}
	if maxUnused < 0 || maxUnused > 100 {
		return nil, fmt.Errorf("prune: max unused %v%% out of range 0..100", maxUnused)
	}
	lock, err := r.repo.Lock(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	defer lock.Unlock()
	repo := r.repo
	if _, err := repo.AdoptPacks(ctx); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	used, err := r.usedBlobs(ctx)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	sizes, err := repo.List(ctx, backend.Pack)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	res := &PruneResult{DryRun: opts.DryRun}
	// Under the exclusive lock no write of packs, index files or
	// snapshots is under way: a temporary file there is what a crash left
	// between writing a file and renaming it. Keys and locks are written
	// without a lock, so their temporary files must be old as well.
	var temps []string
	staleBefore := r.now().Add(-TempFileAge)
	err = repo.Backend().ListTemp(ctx, func(f backend.TempFile) error {
		if !f.Locked() && f.ModTime.After(staleBefore) {
			return nil
		}
		temps = append(temps, f.Path)
		res.TempFiles++
		res.TempBytes += f.Size
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	if !opts.DryRun {
		for _, rel := range temps {
			if err := repo.Backend().RemoveTemp(ctx, rel); err != nil {
				return nil, fmt.Errorf("prune: %w", err)
			}
		}
	}
	indexed := repo.Index().Packs()
	var partial []*packUse
	remove := map[repository.ID]bool{}
	keep := map[repository.ID][]repository.PackBlob{}
	for id, size := range sizes {
		res.PacksTotal++
		res.BytesBefore += size
		blobs, ok := indexed[id]
		if !ok {
			// Unreadable and unindexed: nothing can reference it.
			remove[id] = true
			res.BytesUnused += size
			continue
		}
		u := &packUse{id: id, size: size, totalBlobs: len(blobs)}
		for _, b := range blobs {
			if used[b.BlobHandle] {
				// A blob's share of its segment: all of it for a blob
				// that is its segment, in proportion to its plaintext
				// for one of several.
				if b.SegmentRaw > 0 && b.SegmentRaw != b.RawLength {
					u.used += int64(b.Length) * int64(b.RawLength) / int64(b.SegmentRaw)
				} else {
					u.used += int64(b.Length)
				}
				u.usedBlobs = append(u.usedBlobs, b)
			}
		}
		res.BytesUnused += size - u.used
		switch {
		case len(u.usedBlobs) == 0:
			remove[id] = true
		case u.used < size*9/10, maxUnused == 0 && len(u.usedBlobs) < u.totalBlobs:
			// Mostly unused, or holding any unused blob when nothing
			// unused is tolerated.
			partial = append(partial, u)
			keep[id] = blobs
		default:
			keep[id] = blobs
		}
	}
	// Repack the emptiest packs until the unused share left is within
	// MaxUnused.
	unusedLeft := int64(0)
	for _, u := range partial {
		unusedLeft += u.size - u.used
	}
	limit := int64(float64(res.BytesBefore) * maxUnused / 100)
	sort.Slice(partial, func(i, j int) bool {
		return float64(partial[i].used)/float64(partial[i].size) < float64(partial[j].used)/float64(partial[j].size)
	})
	var repack []*packUse
	for _, u := range partial {
		if unusedLeft <= limit {
			break
		}
		repack = append(repack, u)
		unusedLeft -= u.size - u.used
		delete(keep, u.id)
	}
	res.PacksRepacked = len(repack)
	for id := range remove {
		res.PacksDeleted++
		res.BytesFreed += sizes[id]
	}
	for _, u := range repack {
		res.BytesFreed += u.size - u.used
	}
	if opts.DryRun || (len(remove) == 0 && len(repack) == 0) {
		return res, nil
	}
	before := repo.SavedPacks()
	for _, u := range repack {
		// At most PackLimit bytes: a larger file under a pack's name is
		// damage, which repair deals with.
		data, err := repo.LoadPack(ctx, u.id)
		if errors.Is(err, backend.ErrTooLarge) {
			return nil, fmt.Errorf("prune: repack %s: damaged: %w (run check --read-data, then repair)", u.id.Short(), err)
		}
		if err != nil {
			return nil, fmt.Errorf("prune: repack %s: %w", u.id.Short(), err)
		}
		dec := repo.NewSegmentDecoder()
		for _, b := range u.usedBlobs {
			span := blobSpan(data, b)
			if span == nil {
				return nil, fmt.Errorf("prune: repack %s: damaged: blob %s at %d..%d beyond the pack's %d bytes (run check --read-data, then repair)",
					u.id.Short(), b.BlobHandle, b.Offset, uint64(b.Offset)+uint64(b.Length), len(data))
			}
			plain, err := dec.Decode(b.BlobHandle, span, b.Location(u.id), nil)
			if err != nil {
				return nil, fmt.Errorf("prune: repack %s: %w (run check --read-data, then repair)", u.id.Short(), err)
			}
			if err := repo.RepackBlob(ctx, b.Type, plain); err != nil {
				return nil, fmt.Errorf("prune: %w", err)
			}
		}
	}
	if res.PacksWritten, res.IndexFiles, err = replaceIndex(ctx, repo, keep, before); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	for id := range remove {
		if err := repo.Backend().Remove(ctx, backend.Handle{Type: backend.Pack, Name: id.String()}); err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
	}
	for _, u := range repack {
		if err := repo.Backend().Remove(ctx, backend.Handle{Type: backend.Pack, Name: u.id.String()}); err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
	}
	if err := repo.ReloadIndex(ctx); err != nil {
		return nil, fmt.Errorf("prune: reload index: %w", err)
	}
	return res, nil
}

// replaceIndex flushes the packs written since before (repacked blobs),
// adds them to keep, writes keep as one complete index file and then
// removes every other index file. It returns how many packs were written
// and how many index files removed.
func replaceIndex(ctx context.Context, repo *repository.Repository, keep, before map[repository.ID][]repository.PackBlob) (written, removed int, err error) {
	if err := repo.Flush(ctx); err != nil {
		return 0, 0, err
	}
	for id, bs := range repo.SavedPacks() {
		if _, old := before[id]; !old {
			keep[id] = bs
			written++
		}
	}
	oldIndex, err := repo.List(ctx, backend.Index)
	if err != nil {
		return written, 0, err
	}
	newIndex, err := repo.WriteIndex(ctx, keep)
	if err != nil {
		return written, 0, err
	}
	for id := range oldIndex {
		if id == newIndex {
			continue
		}
		if err := repo.Backend().Remove(ctx, backend.Handle{Type: backend.Index, Name: id.String()}); err != nil {
			return written, removed, err
		}
		removed++
	}
	return written, removed, nil
}

// usedBlobs walks every snapshot. Any unreadable snapshot or tree aborts:
// pruning on an incomplete view would delete live data.
func (r *Repository) usedBlobs(ctx context.Context) (map[repository.BlobHandle]bool, error) {
	snaps, bad, err := r.repo.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		var errs []error
		for id, e := range bad {
			errs = append(errs, fmt.Errorf("snapshot %s: %w", id.Short(), e))
		}
		return nil, fmt.Errorf("refusing to prune with unreadable snapshots (run check): %w", errors.Join(errs...))
	}
	// Each tree once (a tree named by many directories or snapshots is
	// walked once), with the depth bounded: a hostile DAG of trees costs
	// what it stores, not the paths it expands to.
	used := map[repository.BlobHandle]bool{}
	seen := map[repository.ID]bool{}
	for _, s := range snaps {
		err := r.repo.VisitTrees(ctx, s.Tree, seen, r.opts.Limits, func(v *repository.TreeVisit) error {
			if v.Err != nil {
				return fmt.Errorf("refusing to prune, snapshot %s: directory %s: tree unreadable (run check): %w", s.ID().Short(), v.Path(), v.Err)
			}
			used[repository.BlobHandle{Type: repository.TreeBlob, ID: v.ID}] = true
			for i := range v.Tree.Nodes {
				for _, c := range v.Tree.Nodes[i].Content {
					used[repository.BlobHandle{Type: repository.DataBlob, ID: c}] = true
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return used, nil
}
