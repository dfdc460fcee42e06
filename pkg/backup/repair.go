package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/checker"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// RepairOptions configure Repair.
type RepairOptions struct {
	DryRun bool
}

// RepairResult says what Repair found and did.
type RepairResult struct {
	PacksRead    int `json:"packs_read"`
	PacksDamaged int `json:"packs_damaged"`
	// PacksMissing are packs an index names that are not there.
	PacksMissing int `json:"packs_missing"`
	// BlobsSalvaged are the intact blobs of damaged packs, stored again
	// in new packs; BlobsLost the blobs that fail their authentication
	// or whose pack is missing, dropped from the index.
	BlobsSalvaged int `json:"blobs_salvaged"`
	BlobsLost     int `json:"blobs_lost"`
	PacksWritten  int `json:"packs_written"`
	IndexFiles    int `json:"index_files_replaced"`
	// Affected are the files of each snapshot that use a lost blob: they
	// restore again once a backup stores the same content again. A path
	// ending in "/" is a directory whose listing was lost: nothing below
	// it restores until a backup stores the same directory (same entries
	// and metadata) again.
	Affected []checker.Affected `json:"affected"`
	DryRun   bool               `json:"dry_run,omitempty"`
}

// Repair reads every pack and drops what is damaged, so that later
// backups store that content again instead of referring to the damaged
// copy, and prune can work: intact blobs of a damaged pack are stored in
// new packs, a new index lists only intact blobs, and then the damaged
// packs are deleted. It holds an exclusive lock. Snapshots that used a
// lost blob stay as they are; they restore in full again once a backup
// has stored the lost content anew (blob IDs depend only on content), so
// the next backup of the affected paths heals them.
//
// The write order is prune's: new packs, a complete new index, removal
// of the old index files, and only then removal of damaged packs, so a
// crash at any point leaves a consistent repository.
func (r *Repository) Repair(ctx context.Context, opts RepairOptions) (*RepairResult, error) {
	lock, err := r.repo.Lock(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	defer lock.Unlock()
	repo := r.repo
	adopted, err := repo.AdoptPacks(ctx)
	if err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	packs, err := repo.List(ctx, backend.Pack)
	if err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	ids := make([]repository.ID, 0, len(packs))
	for id := range packs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	indexed := repo.Index().Packs()
	res := &RepairResult{Affected: []checker.Affected{}, DryRun: opts.DryRun}
	keep := map[repository.ID][]repository.PackBlob{}
	lost := map[repository.BlobHandle]bool{}
	salvaged := map[repository.BlobHandle]bool{}
	var damaged []repository.ID
	before := repo.SavedPacks()
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// At most PackLimit bytes: a larger file under a pack's name is
		// damage, and its segments are read one by one below instead.
		data, err := repo.LoadPack(ctx, id)
		if errors.Is(err, fs.ErrNotExist) {
			delete(packs, id) // gone since it was listed: missing
			continue
		}
		tooLarge := errors.Is(err, backend.ErrTooLarge)
		if err != nil && !tooLarge {
			// Not proof of damage (the disk or the connection may fail
			// for a moment): nothing is dropped on a guess.
			return nil, fmt.Errorf("repair: read pack %s: %w", id.Short(), err)
		}
		res.PacksRead++
		var blobs []repository.PackBlob
		var errs []error
		if !tooLarge {
			blobs, errs, err = repo.DecodePack(id, data)
			if err == nil && !anyErr(errs) {
				keep[id] = blobs
				continue
			}
		}
		res.PacksDamaged++
		damaged = append(damaged, id)
		if blobs == nil {
			// The header is unreadable (or the file too large to be a
			// pack): the index says where the blobs were, and those
			// still intact are saved from there.
			blobs, errs = indexed[id], nil
		}
		seg := segmentSource{ctx: ctx, repo: repo, pack: id, data: data, whole: !tooLarge}
		dec := repo.NewSegmentDecoder()
		for i, b := range blobs {
			var plain []byte
			if errs == nil || errs[i] == nil {
				var span []byte
				if span, err = seg.span(b); err != nil {
					return nil, fmt.Errorf("repair: %w", err)
				}
				plain, err = dec.Decode(b.BlobHandle, span, b.Location(id), nil)
			} else {
				err = errs[i]
			}
			if err != nil {
				lost[b.BlobHandle] = true
				continue
			}
			res.BlobsSalvaged++
			salvaged[b.BlobHandle] = true
			if !opts.DryRun {
				if err := repo.RepackBlob(ctx, b.Type, plain); err != nil {
					return nil, fmt.Errorf("repair: %w", err)
				}
			}
		}
	}
	// The blobs of packs an index names but the repository lacks are
	// lost as well.
	for id, bs := range indexed {
		if _, ok := packs[id]; ok {
			continue
		}
		res.PacksMissing++
		for _, b := range bs {
			lost[b.BlobHandle] = true
		}
	}
	// A blob lost in one pack may still be intact in another (a second
	// copy a repack or an interrupted backup left).
	for _, bs := range keep {
		for _, b := range bs {
			delete(lost, b.BlobHandle)
		}
	}
	for h := range salvaged {
		delete(lost, h)
	}
	res.BlobsLost = len(lost)
	if len(lost) > 0 {
		snaps, _, err := repo.Snapshots(ctx)
		if err != nil {
			return nil, fmt.Errorf("repair: %w", err)
		}
		res.Affected = checker.AffectedBy(ctx, repo, snaps, lost)
	}
	// The index is written anew when anything in it is wrong: damaged
	// or missing packs, index files that cannot be read, packs no index
	// file names.
	rewrite := len(damaged) > 0 || res.PacksMissing > 0 || len(repo.IndexErrors()) > 0 || adopted > 0
	if opts.DryRun || !rewrite {
		return res, nil
	}
	if res.PacksWritten, res.IndexFiles, err = replaceIndex(ctx, repo, keep, before); err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	for _, id := range damaged {
		if err := repo.Backend().Remove(ctx, backend.Handle{Type: backend.Pack, Name: id.String()}); err != nil {
			return nil, fmt.Errorf("repair: %w", err)
		}
	}
	if err := repo.ReloadIndex(ctx); err != nil {
		return nil, fmt.Errorf("repair: reload index: %w", err)
	}
	return res, nil
}

func anyErr(errs []error) bool {
	for _, err := range errs {
		if err != nil {
			return true
		}
	}
	return false
}

// blobSpan is b's sealed segment in data, or nil when the pack is too
// short to hold it (truncated).
func blobSpan(data []byte, b repository.PackBlob) []byte {
	end := uint64(b.Offset) + uint64(b.Length)
	if end > uint64(len(data)) {
		return nil
	}
	return data[b.Offset:end]
}

// segmentSource gives the sealed segments of a damaged pack: from data
// when the whole pack was read, else by one bounded read per segment (of
// its length in the index, at most one sealed segment), for a file too
// large to read whole.
type segmentSource struct {
	ctx   context.Context
	repo  *repository.Repository
	pack  repository.ID
	data  []byte
	whole bool
	// off and buf are the last segment read: the blobs of a shared
	// segment come one after another.
	off uint32
	buf []byte
}

// span returns b's sealed segment, or nil when the pack does not hold it
// (cut short). Only a failed read is an error: it is not proof of damage.
func (s *segmentSource) span(b repository.PackBlob) ([]byte, error) {
	if s.whole {
		return blobSpan(s.data, b), nil
	}
	if b.Length == 0 || int64(b.Offset)+int64(b.Length) > s.repo.PackLimit() {
		return nil, nil // no pack of this repository holds it
	}
	if s.buf != nil && s.off == b.Offset && len(s.buf) == int(b.Length) {
		return s.buf, nil
	}
	h := backend.Handle{Type: backend.Pack, Name: s.pack.String()}
	buf, err := backend.LoadInto(s.ctx, s.repo.Backend(), h, int64(b.Offset), int(b.Length), s.buf)
	if err != nil {
		s.buf = nil
		return nil, fmt.Errorf("read segment at %d of pack %s: %w", b.Offset, s.pack.Short(), err)
	}
	s.off, s.buf = b.Offset, buf
	return buf, nil
}
