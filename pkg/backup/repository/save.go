package repository

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/crypto"
)

// indexFlushPacks is how many new packs trigger writing an index file, so
// a killed backup leaves most of its packs indexed.
const indexFlushPacks = 16

// openGroup is a segment being filled with blobs.
type openGroup struct {
	buf   []byte
	blobs []segBlob
}

// HasBlob reports whether h is stored or being stored.
func (r *Repository) HasBlob(h BlobHandle) bool {
	if r.idx.Has(h) {
		return true
	}
	r.mu.Lock()
	_, ok := r.pending[h]
	r.mu.Unlock()
	return ok
}

// SaveBlob stores data as a blob of type t unless the repository already
// has it. It returns the blob ID and whether the blob was new. Safe for
// concurrent use; compression and encryption run in the caller's
// goroutine, and the caller that fills a pack writes it.
func (r *Repository) SaveBlob(ctx context.Context, t BlobType, data []byte) (ID, bool, error) {
	return r.saveBlob(ctx, t, data, false)
}

// RepackBlob stores data again even though the index has it (prune moves
// used blobs out of packs it deletes).
func (r *Repository) RepackBlob(ctx context.Context, t BlobType, data []byte) error {
	_, _, err := r.saveBlob(ctx, t, data, true)
	return err
}

// SavedPacks returns the packs written since Open.
func (r *Repository) SavedPacks() map[ID][]PackBlob {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[ID][]PackBlob, len(r.saved))
	for id, bs := range r.saved {
		out[id] = bs
	}
	return out
}

func (r *Repository) saveBlob(ctx context.Context, t BlobType, data []byte, force bool) (ID, bool, error) {
	h := BlobHandle{Type: t, ID: r.key.ID(data)}
	if !force && r.idx.Has(h) {
		return h.ID, false, nil
	}
	r.mu.Lock()
	if r.saveErr != nil {
		err := r.saveErr
		r.mu.Unlock()
		return h.ID, false, err
	}
	if _, ok := r.pending[h]; ok {
		r.mu.Unlock()
		return h.ID, false, nil
	}
	r.pending[h] = struct{}{}
	// Data segments stay within half a pack, so small packs still hold
	// several.
	target := min(groupTargetData, r.cfg.PackSize/2)
	if t == TreeBlob {
		target = groupTargetTree
	}
	if !r.cfg.Grouped() || len(data) >= target {
		r.mu.Unlock()
		return h.ID, true, r.storeSegment(ctx, []segBlob{{h: h, rawLen: len(data)}}, data)
	}
	// The blob joins its type's open segment. A segment it would take
	// past the target is closed first. A closed data segment is
	// compressed and stored in the background, so callers go on reading
	// and chunking; a tree segment is stored by its caller.
	var full *openGroup
	g := r.groups[t]
	if g != nil && len(g.buf)+len(data) > target {
		full, g = g, nil
	}
	if g == nil {
		g = &openGroup{buf: r.getGroupBuf(t)}
		r.groups[t] = g
	}
	g.buf = append(g.buf, data...)
	g.blobs = append(g.blobs, segBlob{h: h, rawLen: len(data)})
	if len(g.buf) >= target || len(g.blobs) >= maxGroupBlobs {
		r.groups[t] = nil // filled by this blob: closed too
	} else {
		g = nil
	}
	r.mu.Unlock()
	var err error
	for _, c := range []*openGroup{full, g} {
		if c != nil {
			if cerr := r.closeGroup(ctx, t, c); err == nil {
				err = cerr
			}
		}
	}
	return h.ID, true, err
}

// getGroupBuf returns an empty buffer for an open segment of type t.
func (r *Repository) getGroupBuf(t BlobType) []byte {
	if t == TreeBlob {
		return make([]byte, 0, groupTargetTree)
	}
	return r.groupBufs.get()
}

// closeGroup stores a segment that is full: a data segment in the
// background, at most GOMAXPROCS at once (the caller waits for a slot),
// a tree segment right away.
func (r *Repository) closeGroup(ctx context.Context, t BlobType, g *openGroup) error {
	if t != DataBlob {
		return r.storeGroup(ctx, g)
	}
	select {
	case r.compressing <- struct{}{}:
	case <-ctx.Done():
		return r.storeGroup(ctx, g) // cancelled: still store it (checkpoint)
	}
	r.compressWG.Add(1)
	go func() {
		defer r.compressWG.Done()
		defer func() { <-r.compressing }()
		if err := r.storeGroup(ctx, g); err != nil {
			r.mu.Lock()
			if r.saveErr == nil {
				r.saveErr = err
			}
			r.mu.Unlock()
		}
	}()
	return nil
}

// storeGroup stores a filled (or flushed) group as one segment.
func (r *Repository) storeGroup(ctx context.Context, g *openGroup) error {
	err := r.storeSegment(ctx, g.blobs, g.buf)
	r.groupBufs.put(g.buf)
	return err
}

// storeSegment compresses and seals payload, the plaintext of blobs, into
// the pack being filled, and writes the pack when it is full.
func (r *Repository) storeSegment(ctx context.Context, blobs []segBlob, payload []byte) error {
	comp, tmp, compressed := r.compressBlob(payload)
	sealedLen := len(comp) + r.key.Overhead()

	r.mu.Lock()
	var full *packBuilder
	// A segment that would overflow the pack closes it first, so packs
	// stay within PackSize (plus the header) unless one segment is larger,
	// and so does one whose blobs' header would not fit in the room the
	// buffer has left.
	if r.cur != nil && len(r.cur.blobs) > 0 && (len(r.cur.buf)+sealedLen > r.cfg.PackSize || !headerFits(r.cur, sealedLen, len(blobs))) {
		full, r.cur = r.cur, nil
	}
	if r.cur == nil {
		r.cur = r.newPackBuilder(sealedLen)
	}
	// Reserve the segment's place in the pack and seal into it outside
	// the lock: no intermediate buffer, and workers encrypt in parallel.
	cur := r.cur
	dst := cur.reserve(blobs, sealedLen, len(payload), compressed)
	r.stats.Blobs += len(blobs)
	r.stats.BytesRaw += int64(len(payload))
	r.stats.BytesStored += int64(sealedLen)
	if full == nil && len(cur.buf) >= r.cfg.PackSize {
		full, r.cur = cur, nil
	}
	r.mu.Unlock()
	r.key.Seal(dst[:0], comp)
	cur.writers.Done()
	if tmp != nil {
		r.compBufs.put(tmp)
	}
	if full != nil {
		// Write the pack in the background (fsync is slow) while this
		// worker goes on compressing; at most uploadSlots packs are in
		// flight, which bounds memory.
		select {
		case r.uploads <- struct{}{}:
		case <-ctx.Done():
			// Cancelled: still write it, synchronously (checkpoint).
			return r.savePack(ctx, full, false)
		}
		r.uploadWG.Add(1)
		r.sealWG.Add(1)
		go func() {
			defer r.uploadWG.Done()
			defer func() { <-r.uploads }()
			data, id := r.sealPack(full)
			r.sealWG.Done()
			_ = r.storePack(ctx, full, data, id, true) // the error is kept in r.saveErr
		}()
	}
	return nil
}

// headerFits reports whether p's buffer, after a segment of sealedLen
// bytes holding n more blobs, still has room for the header of all its
// blobs, so finish never reallocates. The header is bounded as if each
// blob were a segment of its own (format 2; format 1's entries are
// smaller). The buffer's room is packSlack past the pack size plus what
// the segments leave of the pack size: a pack of many small blobs fills
// to its size less its header, where a fixed cap of blobs
// (maxPackBlobs, the header within packSlack alone) closed the packs of
// the Go tree's small files at 1488 blobs, 2 to 10 MiB of a 16 MiB pack,
// and each pack is a request on object storage.
func headerFits(p *packBuilder, sealedLen, n int) bool {
	hdr := len(packMagicV2) + crypto.Overhead + 4 + (len(p.blobs)+n)*(segHeaderSize+segBlobSize)
	return len(p.buf)+sealedLen+hdr <= cap(p.buf)
}

// newPackBuilder returns an empty pack whose buffer holds at least
// first bytes of blobs plus the header, so reserve never reallocates.
func (r *Repository) newPackBuilder(first int) *packBuilder {
	if first > r.cfg.PackSize {
		return &packBuilder{buf: make([]byte, 0, first+packSlack)}
	}
	return &packBuilder{buf: r.packBufs.get()}
}

// savePack writes a finished pack. It runs to completion even when ctx is
// cancelled, so a cancelled backup still keeps what it had packed. A pack
// written in the background, while other goroutines compress, is staged
// and committed when the backend can; one the caller waits for is saved.
func (r *Repository) savePack(ctx context.Context, p *packBuilder, background bool) error {
	data, id := r.sealPack(p)
	return r.storePack(ctx, p, data, id, background)
}

// sealPack finishes p once its segments are sealed and records it as
// being written (r.writing) until storePack is done with it.
func (r *Repository) sealPack(p *packBuilder) ([]byte, ID) {
	p.writers.Wait() // blobs still being sealed into it
	data, id := p.finish(r.key, r.cfg.Grouped())
	r.mu.Lock()
	r.writing[id] = p.blobs
	r.mu.Unlock()
	return data, id
}

// storePack writes pack id, p's bytes data, and indexes it.
func (r *Repository) storePack(ctx context.Context, p *packBuilder, data []byte, id ID, background bool) error {
	ctx = context.WithoutCancel(ctx)
	h := backend.Handle{Type: backend.Pack, Name: id.String()}
	var err error
	if stager, ok := r.be.(backend.Stager); ok && background {
		// The buffer goes back once the data is written, before the wait
		// for the disk: packs being synced hold no memory.
		var st backend.Staged
		st, err = stager.Stage(ctx, h, data)
		r.packBufs.put(p.buf)
		if err == nil {
			err = st.Commit()
		}
	} else {
		err = r.be.Save(ctx, h, data)
		r.packBufs.put(p.buf)
	}
	r.mu.Lock()
	delete(r.writing, id)
	if err != nil {
		err = fmt.Errorf("save pack %s: %w", id.Short(), err)
		if r.saveErr == nil {
			r.saveErr = err
		}
		r.mu.Unlock()
		return err
	}
	r.idx.AddPack(id, p.blobs)
	for _, b := range p.blobs {
		delete(r.pending, b.BlobHandle)
	}
	r.unindexed[id] = p.blobs
	r.saved[id] = p.blobs
	r.stats.Packs++
	flush := len(r.unindexed) >= indexFlushPacks
	r.mu.Unlock()
	if flush {
		return r.writeIndex(ctx)
	}
	return nil
}

// Flush writes the pack being filled and an index file for every pack not
// yet indexed. It completes even if ctx is cancelled (checkpoint).
//
// On storage that does not stage writes (object storage, REST, SFTP) the
// last pack is written while the packs before it still are, and the
// index file naming them all is encoded, compressed and sealed
// meanwhile: once every pack is stored, only its upload is left. The
// index file is written only after every pack it names is stored; if a
// pack fails, the index names what was stored, as it always does.
func (r *Repository) Flush(ctx context.Context) error {
	r.mu.Lock()
	groups := r.groups
	r.groups = [TreeBlob + 1]*openGroup{}
	r.mu.Unlock()
	var gerr error
	for _, g := range groups {
		if g != nil && len(g.blobs) > 0 {
			if err := r.storeGroup(ctx, g); gerr == nil {
				gerr = err
			}
		}
	}
	r.compressWG.Wait() // segments compressed in the background
	if _, ok := r.be.(backend.Stager); ok {
		return r.flushStaged(ctx, gerr)
	}
	r.sealWG.Wait() // packs written in the background are sealed
	r.mu.Lock()
	p := r.cur
	r.cur = nil
	r.mu.Unlock()
	var lastMu sync.Mutex
	var lastErr error
	if p != nil && len(p.blobs) > 0 {
		for _, part := range r.splitLast(p) {
			data, id := r.sealPack(part)
			r.uploadWG.Add(1)
			go func() {
				defer r.uploadWG.Done()
				if err := r.storePack(ctx, part, data, id, false); err != nil {
					lastMu.Lock()
					lastErr = err
					lastMu.Unlock()
				}
			}()
		}
	}
	// Every pack is sealed: the index of them all is known.
	r.mu.Lock()
	packs := maps.Clone(r.unindexed)
	maps.Copy(packs, r.writing)
	r.mu.Unlock()
	var sealed []byte
	if len(packs) > 0 {
		if b, err := EncodeIndex(packs); err == nil {
			sealed = r.encryptFile(b)
		}
	}
	r.uploadWG.Wait()
	r.mu.Lock()
	err := r.saveErr
	r.mu.Unlock()
	for _, e := range []error{gerr, lastErr} {
		if err == nil {
			err = e
		}
	}
	var ierr error
	if err == nil && sealed != nil {
		ierr = r.writeSealedIndex(ctx, packs, sealed)
	} else {
		ierr = r.writeIndex(ctx)
	}
	if err == nil {
		err = ierr
	}
	return err
}

// splitLast returns the last pack of a backup as two packs, cut at the
// segment boundary nearest its middle, when it holds at least half the
// pack size: nothing else is left to do but write it, and two writes of
// half the size at once end sooner than one. A smaller pack, or one of
// a single segment, is returned as it is.
func (r *Repository) splitLast(p *packBuilder) []*packBuilder {
	p.writers.Wait() // its segments are sealed
	if len(p.buf) < r.cfg.PackSize/2 {
		return []*packBuilder{p}
	}
	cut, best := uint32(0), len(p.buf)
	for _, b := range p.blobs {
		if d := abs(int(b.Offset) - len(p.buf)/2); b.Offset > 0 && d < best {
			cut, best = b.Offset, d
		}
	}
	if cut == 0 {
		return []*packBuilder{p}
	}
	var first, second []PackBlob
	for _, b := range p.blobs {
		if b.Offset < cut {
			first = append(first, b)
			continue
		}
		b.Offset -= cut
		second = append(second, b)
	}
	rest := len(p.buf) - int(cut)
	hdr := len(packMagicV2) + crypto.Overhead + 4 + len(second)*(segHeaderSize+segBlobSize)
	q := &packBuilder{buf: append(make([]byte, 0, rest+hdr), p.buf[cut:]...), blobs: second}
	p.buf, p.blobs = p.buf[:cut], first
	return []*packBuilder{p, q}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// flushStaged is Flush's end on storage that stages writes (a local
// directory, whose syncs are batched): the last pack is saved after the
// others, then the index.
func (r *Repository) flushStaged(ctx context.Context, gerr error) error {
	r.uploadWG.Wait()
	if st, ok := r.be.(backend.Stager); ok {
		st.Idle() // the last pack is saved in the foreground, below
	}
	r.mu.Lock()
	p := r.cur
	r.cur = nil
	err := r.saveErr
	if err == nil {
		err = gerr
	}
	r.mu.Unlock()
	if p != nil && len(p.blobs) > 0 {
		if serr := r.savePack(ctx, p, false); err == nil {
			err = serr
		}
	}
	if ierr := r.writeIndex(ctx); err == nil {
		err = ierr
	}
	return err
}

// compressBlob returns the payload to seal for data: its zstd frame in
// a buffer of r.compBufs (tmp, for the caller to put back) when that
// saves at least 1/32, else data itself (tmp nil).
func (r *Repository) compressBlob(data []byte) (payload []byte, tmp []byte, compressed bool) {
	if r.cfg.Compression > 0 && len(data) > 64 && r.samplesCompress(data) {
		// Output that does not save 1/32 is not kept, so a buffer of
		// the input's size suffices; zstd grows it if it must.
		if len(data) <= compBufSize {
			tmp = r.compBufs.get()
		} else {
			tmp = make([]byte, 0, len(data))
		}
		c := r.enc.EncodeAll(data, tmp)
		if len(c) < len(data)-len(data)/32 {
			return c, tmp, true
		}
		r.compBufs.put(tmp)
	}
	return data, nil, false
}

// compBufSize is the capacity of pooled compression buffers: a whole
// data segment.
const compBufSize = groupTargetData

// A segment larger than probeMin is compressed whole only when one of
// probeSlices slices of probeLen bytes, spread evenly over it, saves at
// least 1/32. Photos, video and archives, most of the bytes of a typical
// home directory, then cost a probe (a fifth of the time zstd takes to
// find a whole 2 MiB segment incompressible) and no compression buffer
// is written: a first backup of 51 MiB of random files on two cores
// peaks at 36-38 MiB of anonymous memory instead of 46-50 MiB.
// Compressible data shows at the first slice. The slices are
// about 64 KiB apart, 1/32 of a segment, so compressible data that would
// make the whole segment pass the 1/32 rule covers at least one of them
// unless it is scattered in pieces smaller than the gaps; borg's "auto"
// compression makes the same trade with lz4 on every chunk.
const (
	probeMin    = 256 << 10
	probeLen    = 4 << 10
	probeSlices = 32
)

// samplesCompress reports whether data is worth compressing whole (see
// probeMin).
func (r *Repository) samplesCompress(data []byte) bool {
	if len(data) <= probeMin {
		return true
	}
	var scratch []byte
	step := (len(data) - probeLen) / (probeSlices - 1)
	for i := range probeSlices {
		s := data[i*step : i*step+probeLen]
		scratch = r.enc.EncodeAll(s, scratch[:0])
		if len(scratch) < len(s)-len(s)/32 {
			return true
		}
	}
	return false
}
