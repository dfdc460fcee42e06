package checker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/crypto"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// Bounds of a pack header (see repository's pack layout: segments, the
// sealed header, its length as a little-endian uint32).
const (
	// headerEntryMax is the most one blob adds to a header (format 2: a
	// segment of its own, 7 bytes, and the blob's 37).
	headerEntryMax = 7 + 1 + 4 + crypto.IDSize
	// headerMin is the smallest sealed header: a magic of 5 bytes.
	headerMin = crypto.MinOverhead + 5
	// headerMax is the largest header a pack may carry.
	headerMax = 16 << 20
	// tailSlack is read beyond the header size the index predicts, so
	// that a pack with a few blobs the index does not list (a second
	// copy of a blob indexed elsewhere) still needs one read.
	tailSlack = 2 << 10
)

// checkHeaders reads the header of every indexed pack that exists,
// authenticates it and compares it with the index: every blob the index
// places in the pack must be in the header at the same place. Packs in
// skip are left out (already reported). It returns the problems found,
// sorted by pack; only a cancelled ctx is an error.
func checkHeaders(ctx context.Context, repo *repository.Repository, packs map[repository.ID]int64, indexed map[repository.ID][]repository.PackBlob, skip map[repository.ID]bool, workers int) ([]Problem, error) {
	if workers <= 0 {
		workers = 4
	}
	var (
		mu    sync.Mutex
		probs []Problem
	)
	g, gctx := errgroup.WithContext(ctx)
	work := make(chan repository.ID)
	for range workers {
		g.Go(func() error {
			for id := range work {
				msg := checkHeader(gctx, repo, id, packs[id], indexed[id])
				if err := gctx.Err(); err != nil {
					return err
				}
				if msg != "" {
					mu.Lock()
					probs = append(probs, Problem{Object: "data/" + id.String(), Message: msg})
					mu.Unlock()
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(work)
		for _, id := range sortedIDs(indexed) {
			if _, ok := packs[id]; !ok || skip[id] {
				continue
			}
			select {
			case work <- id:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Slice(probs, func(i, j int) bool { return probs[i].Object < probs[j].Object })
	return probs, nil
}

// checkHeader checks the header of pack id of size bytes against blobs,
// the index's entries for it, and returns what is wrong ("" for
// nothing).
func checkHeader(ctx context.Context, repo *repository.Repository, id repository.ID, size int64, blobs []repository.PackBlob) string {
	hdr, err := readHeader(ctx, repo, id, size, len(blobs))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "indexed pack is missing"
		}
		return fmt.Sprintf("pack of %d bytes: %v (cut short, grown or damaged: run check --read-data, then repair)", size, err)
	}
	type place struct {
		h   repository.BlobHandle
		off uint32
	}
	have := make(map[place]repository.PackBlob, len(hdr))
	for _, b := range hdr {
		have[place{b.BlobHandle, b.Offset}] = b
	}
	for _, b := range blobs {
		hb, ok := have[place{b.BlobHandle, b.Offset}]
		if !ok {
			return fmt.Sprintf("the index places blob %s at offset %d, the pack header does not list it there", b.BlobHandle, b.Offset)
		}
		if hb.Length != b.Length || hb.RawLength != b.RawLength || hb.Compressed != b.Compressed || hb.Inner != b.Inner || hb.SegmentRaw != b.SegmentRaw {
			return fmt.Sprintf("blob %s at offset %d: the index and the pack header disagree on its length or segment", b.BlobHandle, b.Offset)
		}
	}
	return ""
}

// readHeader reads, authenticates and decodes the header of a pack of
// size bytes: one read of its end, sized from the n blobs the index
// places in it, and a second only when the header is larger than that.
// The decoded header covers the pack's data exactly, so a pack of the
// wrong size fails here.
func readHeader(ctx context.Context, repo *repository.Repository, id repository.ID, size int64, n int) ([]repository.PackBlob, error) {
	h := backend.Handle{Type: backend.Pack, Name: id.String()}
	if size < 4+headerMin {
		return nil, fmt.Errorf("pack too short")
	}
	want := min(size, int64(4+crypto.Overhead+5+n*headerEntryMax+tailSlack))
	tail, err := repo.Backend().Load(ctx, h, size-want, int(want))
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if int64(len(tail)) != want {
		return nil, fmt.Errorf("read header: got %d bytes of the last %d", len(tail), want)
	}
	hl := int64(binary.LittleEndian.Uint32(tail[len(tail)-4:]))
	if hl < headerMin || hl > headerMax || hl > size-4 {
		return nil, fmt.Errorf("pack header length %d invalid for a pack of %d bytes", hl, size)
	}
	if hl+4 > int64(len(tail)) {
		if tail, err = repo.Backend().Load(ctx, h, size-hl-4, int(hl+4)); err != nil {
			return nil, fmt.Errorf("read header: %w", err)
		}
		if int64(len(tail)) != hl+4 {
			return nil, fmt.Errorf("read header: got %d bytes of the last %d", len(tail), hl+4)
		}
	}
	plain, err := repo.Key().Open(nil, tail[int64(len(tail))-4-hl:len(tail)-4])
	if err != nil {
		return nil, fmt.Errorf("pack header: %w", err)
	}
	return repository.DecodePackHeader(plain, size-4-hl)
}
