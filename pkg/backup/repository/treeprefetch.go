package repository

import (
	"context"
	"errors"
	"runtime"
	"sort"
	"sync"

	"github.com/hostd/hostd/pkg/backup/backend"
)

// Tree prefetching. A walk reads trees one after another: each depends
// on its parent, so on object storage every tree segment not yet read
// costs a round trip while nothing else happens (a walk of the Go tree
// read its 18 tree segments one request at a time), and every tree is
// decoded on the walk's goroutine. A prefetching walk instead:
//
//   - when it first needs a tree of a pack, reads every tree segment of
//     that pack at once: ranges of neighbouring segments coalesced into
//     one ranged read each (at most PrefetchRangeBytes, gaps up to
//     prefetchMaxGap read and dropped), PrefetchReaders of them in
//     flight, each segment checked (MAC, lengths) as it arrives;
//   - as each tree is handed to the walk, decodes its subtrees ahead on
//     GOMAXPROCS workers (each checked against its ID), and starts the
//     reads of the packs holding them.
//
// In a small repository, whose tree segments lie in at most
// PrefetchEagerPacks packs and fit the budget together, every one of
// those packs is read from the start, the root's first: the walk then
// waits for one round of reads instead of one per level at which it
// meets a new pack (the Go tree's restore met its 5 packs in 4 rounds).
//
// Only the trees the walk reaches are decoded: a pack also holds trees
// of other snapshots, which cost their read and decryption but are never
// decoded.
//
// Memory stays bounded: the plaintext of the segments read counts
// against PrefetchBytes for the rest of the walk; a pack whose segments
// do not fit is not prefetched (its trees are read one by one, as
// without prefetching). Trees decoded ahead wait for the walk; they are
// trees of the snapshot, which the walk holds anyway.
const (
	// PrefetchReaders is how many ranged reads of tree segments a
	// prefetching walk keeps in flight.
	PrefetchReaders = 8
	// PrefetchBytes bounds the plaintext of the tree segments one walk
	// reads ahead.
	PrefetchBytes = 64 << 20
	// PrefetchRangeBytes bounds one ranged read of tree segments.
	PrefetchRangeBytes = 4 << 20
	// PrefetchEagerPacks is how many packs holding tree segments a
	// repository may have for a walk to read all of them at once.
	PrefetchEagerPacks = 16
	// prefetchMaxGap is the largest gap between two tree segments of a
	// pack read and dropped rather than paid for with a second request.
	prefetchMaxGap = 256 << 10
)

// treePrefetcher serves a walk's trees from segments read ahead.
type treePrefetcher struct {
	r      *Repository
	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	sem    chan struct{} // PrefetchReaders
	wg     sync.WaitGroup

	once   sync.Once
	byPack map[ID][]PackBlob // tree blobs of each pack, by offset

	mu      sync.Mutex
	started map[ID]bool
	segs    map[segKey]*prefSeg
	budget  int64 // plaintext bytes still allowed
	trees   map[ID]*prefTree
	queue   []*prefTree // trees to decode ahead
	wake    *sync.Cond
	closed  bool
	workers int
}

// prefSeg is a tree segment being read or read; done is closed once
// plain or err is set.
type prefSeg struct {
	done       chan struct{}
	plain      []byte
	err        error
	off, len   uint32
	compressed bool
	raw        uint32
	fin        bool // done is closed (set by the reader only)
}

// prefTree is a tree being decoded ahead; done is closed once t or err
// is set.
type prefTree struct {
	done chan struct{}
	id   ID
	loc  Location
	seg  *prefSeg
	t    *Tree
	err  error
}

// newTreePrefetcher returns a prefetcher for one walk; close it when the
// walk ends.
func (r *Repository) newTreePrefetcher(ctx context.Context) *treePrefetcher {
	ctx, cancel := context.WithCancel(ctx)
	p := &treePrefetcher{r: r, ctx: ctx, cancel: cancel, sem: make(chan struct{}, PrefetchReaders),
		started: map[ID]bool{}, segs: map[segKey]*prefSeg{}, budget: PrefetchBytes, trees: map[ID]*prefTree{}}
	p.wake = sync.NewCond(&p.mu)
	return p
}

// close stops the reads and decodes still under way and waits for them.
func (p *treePrefetcher) close() {
	p.cancel()
	p.mu.Lock()
	p.closed = true
	p.wake.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}

// load returns tree id: decoded ahead, decoded from a segment read
// ahead, or, when its pack cannot be prefetched or anything about it
// fails, read on its own (LoadTree, whose error names the blob).
func (p *treePrefetcher) load(ctx context.Context, id ID) (*Tree, error) {
	t, err := p.get(ctx, id)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return p.r.LoadTree(ctx, id)
	}
	for i := range t.Nodes {
		if s := t.Nodes[i].Subtree; s != nil {
			p.ahead(*s)
		}
	}
	return t, nil
}

var errNotPrefetched = errors.New("not prefetched")

// get returns tree id from what was read or decoded ahead.
func (p *treePrefetcher) get(ctx context.Context, id ID) (*Tree, error) {
	p.mu.Lock()
	f := p.trees[id]
	delete(p.trees, id) // used once; a tree met again is read again
	p.mu.Unlock()
	if f != nil {
		select {
		case <-f.done:
			if f.err == nil {
				return f.t, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	loc, seg := p.segment(id)
	if seg == nil {
		return nil, errNotPrefetched
	}
	select {
	case <-seg.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p.decode(id, loc, seg)
}

// decode decodes tree id at loc from its segment read ahead.
func (p *treePrefetcher) decode(id ID, loc Location, seg *prefSeg) (*Tree, error) {
	if seg.err != nil {
		return nil, seg.err
	}
	b, err := p.r.blobInSegment(BlobHandle{Type: TreeBlob, ID: id}, seg.plain, loc)
	if err != nil {
		return nil, err
	}
	return DecodeTree(b)
}

// segment returns where tree id is and its segment, starting the reads
// of its pack's tree segments if they are not under way; nil when the
// tree cannot be prefetched.
func (p *treePrefetcher) segment(id ID) (Location, *prefSeg) {
	loc, ok := p.r.idx.Lookup(BlobHandle{Type: TreeBlob, ID: id})
	if !ok {
		return loc, nil
	}
	p.once.Do(func() { p.byPack = p.r.idx.blobsOfType(TreeBlob) })
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return loc, nil
	}
	if !p.started[loc.Pack] {
		p.started[loc.Pack] = true
		p.startPack(loc.Pack)
		if len(p.started) == 1 {
			p.startAll()
		}
	}
	return loc, p.segs[segKey{loc.Pack, loc.Offset}]
}

// ahead queues tree id to be decoded before the walk reaches it.
func (p *treePrefetcher) ahead(id ID) {
	p.mu.Lock()
	_, queued := p.trees[id]
	p.mu.Unlock()
	if queued {
		return
	}
	loc, seg := p.segment(id)
	if seg == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, queued := p.trees[id]; queued || p.closed {
		return
	}
	f := &prefTree{done: make(chan struct{}), id: id, loc: loc, seg: seg}
	p.trees[id] = f
	p.queue = append(p.queue, f)
	if p.workers < runtime.GOMAXPROCS(0) {
		p.workers++
		p.wg.Add(1)
		go p.decoder()
	}
	p.wake.Signal()
}

// decoder decodes queued trees until the walk ends.
func (p *treePrefetcher) decoder() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		for len(p.queue) == 0 && !p.closed {
			p.wake.Wait()
		}
		if p.closed {
			for _, f := range p.queue {
				f.err = errNotPrefetched
				close(f.done)
			}
			p.queue = nil
			p.mu.Unlock()
			return
		}
		f := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		p.mu.Unlock()
		select {
		case <-f.seg.done:
			f.t, f.err = p.decode(f.id, f.loc, f.seg)
		case <-p.ctx.Done():
			f.err = p.ctx.Err()
		}
		close(f.done)
	}
}

// startAll starts reading every pack's tree segments if there are at
// most PrefetchEagerPacks such packs and their plaintext fits the
// budget. p.mu is held.
func (p *treePrefetcher) startAll() {
	if len(p.byPack) > PrefetchEagerPacks {
		return
	}
	var raw int64
	for pack, bs := range p.byPack {
		if !p.started[pack] {
			raw += segmentsRaw(bs)
		}
	}
	if raw > p.budget {
		return
	}
	for pack := range p.byPack {
		if !p.started[pack] {
			p.started[pack] = true
			p.startPack(pack)
		}
	}
}

// segmentsRaw is the plaintext of the segments holding bs, blobs of one
// pack sorted by offset.
func segmentsRaw(bs []PackBlob) int64 {
	var raw int64
	for i, b := range bs {
		if i == 0 || bs[i-1].Offset != b.Offset {
			raw += int64(b.SegmentRaw)
		}
	}
	return raw
}

// startPack starts reading the tree segments of pack, if their plaintext
// fits the budget. p.mu is held.
func (p *treePrefetcher) startPack(pack ID) {
	var segs []*prefSeg
	var raw int64
	for _, b := range p.byPack[pack] {
		if n := len(segs); n > 0 && segs[n-1].off == b.Offset {
			continue // another blob of the same segment
		}
		if b.Length == 0 || b.Length > PrefetchRangeBytes || b.SegmentRaw > maxSegmentRaw {
			return // an odd pack: its trees are read one by one
		}
		segs = append(segs, &prefSeg{done: make(chan struct{}), off: b.Offset, len: b.Length, compressed: b.Compressed, raw: b.SegmentRaw})
		raw += int64(b.SegmentRaw)
	}
	if len(segs) == 0 || raw > p.budget {
		return
	}
	p.budget -= raw
	for _, s := range segs {
		p.segs[segKey{pack, s.off}] = s
	}
	// Coalesce neighbouring segments into ranged reads.
	for i := 0; i < len(segs); {
		j := i + 1
		for j < len(segs) && segs[j].off >= segs[j-1].off+segs[j-1].len &&
			segs[j].off-(segs[j-1].off+segs[j-1].len) <= prefetchMaxGap &&
			segs[j].off+segs[j].len-segs[i].off <= PrefetchRangeBytes {
			j++
		}
		p.wg.Add(1)
		go p.read(pack, segs[i:j])
		i = j
	}
}

// read fetches one range of tree segments of pack and opens each
// segment (MAC, decompression, length).
func (p *treePrefetcher) read(pack ID, segs []*prefSeg) {
	defer p.wg.Done()
	var err error
	defer func() {
		for _, s := range segs {
			if !s.fin {
				s.err = err
				if s.err == nil {
					s.err = errNotPrefetched
				}
				close(s.done)
			}
		}
	}()
	select {
	case p.sem <- struct{}{}:
	case <-p.ctx.Done():
		err = p.ctx.Err()
		return
	}
	defer func() { <-p.sem }()
	start := segs[0].off
	last := segs[len(segs)-1]
	n := int(last.off + last.len - start)
	data, err := p.r.be.Load(p.ctx, backend.Handle{Type: backend.Pack, Name: pack.String()}, int64(start), n)
	if err != nil {
		return
	}
	if len(data) != n {
		err = errors.New("short read")
		return
	}
	for _, s := range segs {
		plain, serr := p.r.openSegment(data[s.off-start:s.off-start+s.len], s.compressed, s.raw, nil)
		s.plain, s.err, s.fin = plain, serr, true
		close(s.done)
	}
}

// blobsOfType returns, for every pack holding blobs of type t, those
// blobs sorted by offset and inner position.
func (x *Index) blobsOfType(t BlobType) map[ID][]PackBlob {
	x.mu.RLock()
	out := map[ID][]PackBlob{}
	for h, e := range x.blobs {
		if h.Type != t {
			continue
		}
		p := x.packs[e.pack]
		out[p] = append(out[p], PackBlob{BlobHandle: h, Offset: e.offset, Length: e.length, RawLength: e.rawLength, Compressed: e.compressed, Inner: e.inner, SegmentRaw: e.segRaw})
	}
	x.mu.RUnlock()
	for _, bs := range out {
		sort.Slice(bs, func(i, j int) bool {
			if bs[i].Offset != bs[j].Offset {
				return bs[i].Offset < bs[j].Offset
			}
			return bs[i].Inner < bs[j].Inner
		})
	}
	return out
}
