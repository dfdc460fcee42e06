package restorer

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// maxSpan bounds the bytes one worker reads from a pack at once, so a
// pack holding many small files is shared among workers; blobs further
// apart than maxGap are read with two requests rather than one that
// reads the gap too.
const (
	maxSpan = 4 << 20
	maxGap  = 1 << 20
)

// plannedFile is a file being restored from blobs spread over packs.
type plannedFile struct {
	path    string // the real name, given once every blob is written
	tmp     string // the name it is written under until then
	node    *repository.Node
	pending atomic.Int64 // blob writes still to do
	mu      sync.Mutex
	fd      int // open while blobs are being written; -1 when closed
	created bool
	written int64 // bytes written to tmp
	failed  error
}

// target is one place a blob is written to.
type target struct {
	file   *plannedFile
	offset int64
}

type blobUse struct {
	h       repository.BlobHandle
	loc     repository.Location
	targets []target
}

// span is a contiguous run of blobs in one pack, read with one request.
type span struct {
	pack  repository.ID
	start uint32
	end   uint32
	blobs []*blobUse
}

// contentPlan is what restoreContents writes: every regular file, and
// the blobs each pack holds for them with the places each is written to.
type contentPlan struct {
	planned []*plannedFile
	byPack  map[repository.ID][]*blobUse
}

// planContents works out, from the index, where each blob of files is
// read from and written to. It only reads the index.
func (r *restorer) planContents(files []fileJob) *contentPlan {
	uses := map[repository.BlobHandle]*blobUse{}
	planned := make([]*plannedFile, 0, len(files))
	for i, j := range files {
		pf := &plannedFile{path: j.path, tmp: r.tempName(j.path, i), node: j.node, fd: -1}
		planned = append(planned, pf)
		var off int64
		for _, id := range j.node.Content {
			h := repository.BlobHandle{Type: repository.DataBlob, ID: id}
			loc, ok := r.repo.Index().Lookup(h)
			if !ok {
				pf.failed = fmt.Errorf("blob %s not in index", id.Short())
				break
			}
			u := uses[h]
			if u == nil {
				u = &blobUse{h: h, loc: loc}
				uses[h] = u
			}
			u.targets = append(u.targets, target{file: pf, offset: off})
			off += int64(loc.RawLength)
			pf.pending.Add(1)
		}
	}
	byPack := map[repository.ID][]*blobUse{}
	for _, u := range uses {
		byPack[u.loc.Pack] = append(byPack[u.loc.Pack], u)
	}
	return &contentPlan{planned: planned, byPack: byPack}
}

// restoreContents writes every file's content pack by pack: each span of
// a pack is read once and its blobs written to every file (and offset)
// that uses them. Each file is written under a temporary name and
// finished (sparse tail, size check, metadata, rename to its real name)
// as its last blob lands; a file any of whose blobs fails is removed
// instead, so its real name never holds unverified or missing bytes
// (with Overwrite, whatever was there stays). With st (a remote
// repository, whose packs st has been reading since the plan was
// made) the blobs come from st's streams.
func (r *restorer) restoreContents(ctx context.Context, cp *contentPlan, st *streamer) error {
	planned, byPack := cp.planned, cp.byPack
	// Failed plans are reported; empty files are created right away. The
	// others are created when their first blob arrives, so each file is
	// opened once and only while it is being written.
	for _, pf := range planned {
		switch {
		case pf.failed != nil:
			r.warn(pf.path, fmt.Errorf("left out: %w", pf.failed))
			pf.pending.Store(-1 << 40)
		case pf.pending.Load() == 0:
			pf.pending.Store(1)
			pf.mu.Lock()
			pf.failed = pf.open()
			pf.mu.Unlock()
			r.done(pf)
		}
	}
	if st != nil {
		return st.finish()
	}
	// Group blobs into spans per pack, in pack order.
	var spans []span
	for p, us := range byPack {
		sort.Slice(us, func(i, j int) bool { return us[i].loc.Offset < us[j].loc.Offset })
		cur := span{pack: p}
		for _, u := range us {
			end := u.loc.Offset + u.loc.Length
			// Blobs of one segment share its extent, so a blob may start
			// before the span's end: no gap then.
			gap := uint32(0)
			if u.loc.Offset > cur.end {
				gap = u.loc.Offset - cur.end
			}
			if len(cur.blobs) > 0 && (end-cur.start > r.maxSpan || gap > r.maxGap) {
				spans = append(spans, cur)
				cur = span{pack: p}
			}
			if len(cur.blobs) == 0 {
				cur.start = u.loc.Offset
			}
			cur.end = max(cur.end, end)
			cur.blobs = append(cur.blobs, u)
		}
		spans = append(spans, cur)
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].pack != spans[j].pack {
			return string(spans[i].pack[:]) < string(spans[j].pack[:])
		}
		return spans[i].start < spans[j].start
	})
	g, gctx := errgroup.WithContext(ctx)
	work := make(chan span)
	for range r.opts.Workers {
		g.Go(func() error {
			w := spanBuffers{dec: r.repo.NewSegmentDecoder()}
			for s := range work {
				if err := r.restoreSpan(gctx, s, &w); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(work)
		for _, s := range spans {
			select {
			case work <- s:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	return g.Wait()
}

// spanBuffers are one worker's buffers, reused from span to span.
type spanBuffers struct {
	read  []byte // sealed bytes of the span
	plain []byte // the blob being written
	dec   *repository.SegmentDecoder
}

func (r *restorer) restoreSpan(ctx context.Context, s span, w *spanBuffers) error {
	data, err := backend.LoadInto(ctx, r.repo.Backend(), backend.Handle{Type: backend.Pack, Name: s.pack.String()}, int64(s.start), int(s.end-s.start), w.read)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for _, u := range s.blobs {
			r.blobFailed(u, err)
		}
		return nil
	}
	if cap(data) > cap(w.read) {
		w.read = data[:0]
	}
	r.writeBlobs(s.blobs, s.start, data, w)
	return nil
}

// writeBlobs authenticates, decodes and checks each of blobs, read from
// its pack into data (which starts at the pack's offset start), and
// writes it to every place that uses it.
func (r *restorer) writeBlobs(blobs []*blobUse, start uint32, data []byte, w *spanBuffers) {
	for _, u := range blobs {
		raw := data[u.loc.Offset-start : u.loc.Offset-start+u.loc.Length]
		plain, err := w.dec.Decode(u.h, raw, u.loc, w.plain)
		if err != nil {
			r.blobFailed(u, err)
			continue
		}
		for _, t := range u.targets {
			r.write(t, plain)
		}
		if cap(plain) > cap(w.plain) && u.loc.Inner == 0 && u.loc.SegmentRaw == u.loc.RawLength {
			w.plain = plain[:0] // not the decoder's segment buffer
		}
	}
}

func (r *restorer) blobFailed(u *blobUse, err error) {
	for _, t := range u.targets {
		t.file.mu.Lock()
		if t.file.failed == nil {
			t.file.failed = err
		}
		t.file.mu.Unlock()
		r.done(t.file)
	}
}

// open creates the file under its temporary name (exclusively: the name
// is this run's) with raw syscalls, bypassing the runtime poller.
func (pf *plannedFile) open() error {
	if pf.fd >= 0 {
		return nil
	}
	flags := unix.O_WRONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW
	if !pf.created {
		flags |= unix.O_CREAT | unix.O_EXCL
	}
	// Created with its final permissions where the umask allows (the
	// owner keeps write access until done), so most files need no chmod.
	fd, err := unix.Open(pf.tmp, flags, (pf.node.Mode&0o777)|0o200)
	if err != nil {
		return &os.PathError{Op: "create", Path: pf.tmp, Err: err}
	}
	pf.fd, pf.created = fd, true
	return nil
}

// write writes a verified blob to one place in a file. Only bytes
// written count: they are taken back if the file fails later.
func (r *restorer) write(t target, data []byte) {
	pf := t.file
	pf.mu.Lock()
	if pf.failed == nil {
		pf.failed = pf.open()
		if pf.failed == nil {
			if pf.node.Sparse {
				pf.failed = writeSparseFd(pf.fd, data, t.offset)
			} else {
				pf.failed = pwriteAll(pf.fd, data, t.offset)
			}
		}
		if pf.failed == nil {
			pf.written += int64(len(data))
			r.bytes.Add(int64(len(data)))
		}
	}
	pf.mu.Unlock()
	r.done(pf)
}

func pwriteAll(fd int, data []byte, off int64) error {
	for len(data) > 0 {
		n, err := unix.Pwrite(fd, data, off)
		if err != nil {
			return err
		}
		data, off = data[n:], off+int64(n)
	}
	return nil
}

// writeSparseFd writes data at off into a new file, leaving holes where
// a 4 KiB block of the file (aligned to file offsets, as the file
// system's blocks are) would hold only zeros. Blobs start anywhere, so
// windows counted from the blob's start straddled two blocks, and the
// zeros of one written next to the data of the other allocated a block
// the original did not have.
func writeSparseFd(fd int, data []byte, off int64) error {
	const block = 4096
	for len(data) > 0 {
		n := min(block-int(off%block), len(data))
		if !allZero(data[:n]) {
			if err := pwriteAll(fd, data[:n], off); err != nil {
				return err
			}
		}
		data, off = data[n:], off+int64(n)
	}
	return nil
}

// done counts one blob of pf as handled; after the last it sets the size
// of a sparse file, checks the size, applies owner and mode through the
// open descriptor, sets the times, closes it and renames it to its real
// name; or, if anything failed, removes it and takes its bytes back from
// the count.
func (r *restorer) done(pf *plannedFile) {
	if pf.pending.Add(-1) != 0 {
		return
	}
	pf.mu.Lock()
	defer pf.mu.Unlock()
	err := pf.failed
	if pf.fd >= 0 {
		if err == nil && pf.node.Sparse {
			err = unix.Ftruncate(pf.fd, int64(pf.node.Size))
		}
		var st unix.Stat_t
		if err == nil {
			if err = unix.Fstat(pf.fd, &st); err == nil && uint64(st.Size) != pf.node.Size {
				err = fmt.Errorf("restored %d bytes, snapshot records %d", st.Size, pf.node.Size)
			}
		}
		if err == nil {
			err = r.applyFdMeta(pf.fd, pf.node, &st)
		}
		if err == nil {
			err = applyFdTimes(pf.fd, pf.node)
		}
		if cerr := unix.Close(pf.fd); err == nil {
			err = cerr
		}
		pf.fd = -1
	}
	if err == nil && pf.created {
		if rerr := unix.Rename(pf.tmp, pf.path); rerr != nil {
			err = &os.LinkError{Op: "rename", Old: pf.tmp, New: pf.path, Err: rerr}
		}
	}
	if err != nil {
		if pf.created {
			_ = unix.Unlink(pf.tmp)
		}
		r.bytes.Add(-pf.written)
		pf.written = 0
		r.warn(pf.path, fmt.Errorf("left out: %w", err))
		return
	}
	r.files.Add(1)
}
