package restorer

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// maxSpan bounds the bytes one worker reads from a pack at once, so a
// pack holding many small files is shared among workers.
const maxSpan = 4 << 20

// plannedFile is a file being restored from blobs spread over packs.
type plannedFile struct {
	path    string
	node    *repository.Node
	pending atomic.Int64 // blob writes still to do
	mu      sync.Mutex
	f       *os.File
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

// restoreContents writes every file's content pack by pack: each span of
// a pack is read once and its blobs written to every file (and offset)
// that uses them. Files are finished (sparse tail, metadata) as their
// last blob lands.
func (r *restorer) restoreContents(ctx context.Context, files []fileJob) error {
	uses := map[repository.BlobHandle]*blobUse{}
	var planned []*plannedFile
	for _, j := range files {
		pf := &plannedFile{path: j.path, node: j.node}
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
	// Create every file first (empty files are done right away).
	for _, pf := range planned {
		if pf.failed != nil {
			r.warn(pf.path, pf.failed)
			pf.pending.Store(-1 << 40)
			continue
		}
		r.clear(pf.path)
		f, err := os.OpenFile(pf.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			r.warn(pf.path, err)
			pf.failed = err
			pf.pending.Store(-1 << 40)
			continue
		}
		if pf.pending.Load() == 0 {
			_ = f.Close()
			r.finish(pf)
			continue
		}
		_ = f.Close()
	}
	// Group blobs into spans per pack, in pack order.
	byPack := map[repository.ID][]*blobUse{}
	for _, u := range uses {
		byPack[u.loc.Pack] = append(byPack[u.loc.Pack], u)
	}
	var spans []span
	for p, us := range byPack {
		sort.Slice(us, func(i, j int) bool { return us[i].loc.Offset < us[j].loc.Offset })
		cur := span{pack: p}
		for _, u := range us {
			end := u.loc.Offset + u.loc.Length
			if len(cur.blobs) > 0 && (end-cur.start > maxSpan || u.loc.Offset-cur.end > 1<<20) {
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
			for s := range work {
				if err := r.restoreSpan(gctx, s); err != nil {
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

func (r *restorer) restoreSpan(ctx context.Context, s span) error {
	data, err := r.repo.Backend().Load(ctx, backend.Handle{Type: backend.Pack, Name: s.pack.String()}, int64(s.start), int(s.end-s.start))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for _, u := range s.blobs {
			r.blobFailed(u, err)
		}
		return nil
	}
	var buf []byte
	for _, u := range s.blobs {
		raw := data[u.loc.Offset-s.start : u.loc.Offset-s.start+u.loc.Length]
		plain, err := r.repo.DecodeBlobAt(u.h, raw, u.loc, buf)
		if err != nil {
			r.blobFailed(u, err)
			continue
		}
		for _, t := range u.targets {
			r.write(t, plain)
		}
		buf = plain
	}
	return nil
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

func (r *restorer) write(t target, data []byte) {
	pf := t.file
	pf.mu.Lock()
	if pf.failed == nil {
		if pf.f == nil {
			pf.f, pf.failed = os.OpenFile(pf.path, os.O_WRONLY, 0)
		}
		if pf.failed == nil {
			if pf.node.Sparse {
				pf.failed = writeSparse(pf.f, data, t.offset)
			} else {
				_, pf.failed = pf.f.WriteAt(data, t.offset)
			}
		}
	}
	pf.mu.Unlock()
	r.bytes.Add(int64(len(data)))
	r.done(pf)
}

// done counts one blob of pf as handled and finishes pf after the last.
func (r *restorer) done(pf *plannedFile) {
	if pf.pending.Add(-1) != 0 {
		return
	}
	pf.mu.Lock()
	err := pf.failed
	if pf.f != nil {
		if err == nil && pf.node.Sparse {
			err = pf.f.Truncate(int64(pf.node.Size))
		}
		if cerr := pf.f.Close(); err == nil {
			err = cerr
		}
		pf.f = nil
	}
	pf.failed = err
	pf.mu.Unlock()
	if err != nil {
		r.warn(pf.path, err)
		return
	}
	r.finish(pf)
}

func (r *restorer) finish(pf *plannedFile) {
	if fi, err := os.Lstat(pf.path); err == nil && uint64(fi.Size()) != pf.node.Size {
		r.warn(pf.path, fmt.Errorf("restored %d bytes, snapshot records %d", fi.Size(), pf.node.Size))
		return
	}
	r.files.Add(1)
	if err := r.applyMeta(pf.path, pf.node); err != nil {
		r.warn(pf.path, err)
	}
}
