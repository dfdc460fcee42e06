package mount

import (
	"container/list"
	"context"
	"fmt"
	"sync"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// treeCacheNodes bounds the nodes of the decoded trees a mount keeps
// (a few hundred bytes each): browsing goes back to the same
// directories, and the kernel asks for a directory's entries by name
// one by one.
const treeCacheNodes = 1 << 18

// lru keeps values by ID up to a cost, least recently used out first.
// Safe for concurrent use.
type lru[V any] struct {
	mu    sync.Mutex
	max   int
	cost  int
	order *list.List // of *lruEntry[V], most recent at the front
	byID  map[repository.ID]*list.Element
}

type lruEntry[V any] struct {
	id   repository.ID
	v    V
	cost int
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, order: list.New(), byID: map[repository.ID]*list.Element{}}
}

func (c *lru[V]) get(id repository.ID) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byID[id]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*lruEntry[V]).v, true
	}
	var zero V
	return zero, false
}

// put adds v unless it alone costs more than a quarter of the cache.
func (c *lru[V]) put(id repository.ID, v V, cost int) {
	if cost > c.max/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byID[id]; ok {
		return
	}
	for c.cost+cost > c.max && c.order.Len() > 0 {
		old := c.order.Remove(c.order.Back()).(*lruEntry[V])
		delete(c.byID, old.id)
		c.cost -= old.cost
	}
	c.byID[id] = c.order.PushFront(&lruEntry[V]{id: id, v: v, cost: cost})
	c.cost += cost
}

// treeCache keeps decoded trees; they are immutable and shared.
type treeCache struct{ c *lru[*repository.Tree] }

func newTreeCache(maxNodes int) *treeCache { return &treeCache{c: newLRU[*repository.Tree](maxNodes)} }

func (t *treeCache) load(ctx context.Context, repo *repository.Repository, id repository.ID) (*repository.Tree, error) {
	if tr, ok := t.c.get(id); ok {
		return tr, nil
	}
	tr, err := repo.LoadTree(ctx, id)
	if err != nil {
		return nil, err
	}
	t.c.put(id, tr, len(tr.Nodes)+1)
	return tr, nil
}

// segCache keeps the plaintext of recently read segments (a pack's unit
// of encryption and compression: several small blobs decoded as one, or
// one large blob), so the files of a segment, read one after another,
// cost one decryption and decompression, and the kernel's reads of one
// large blob load it once. Readers get slices of the cached plaintext,
// no copies; each blob is checked against its ID once. The buffers of
// evicted segments are reused for the next ones, so reading a tree
// through the view allocates little but the sealed bytes (the heap of a
// `hostd backup` process is kept small, and when it was filled with
// fresh buffers and copies of blobs the collector ran back to back).
// Safe for concurrent use.
type segCache struct {
	repo *repository.Repository
	max  int

	mu    sync.Mutex
	size  int        // of the segments in segs
	order *list.List // of *segment, most recent at the front
	segs  map[segKey]*segment
}

type segKey struct {
	pack repository.ID
	off  uint32
}

// segment is one segment's plaintext, loaded once by whoever asked
// first; the others wait for ready.
type segment struct {
	key    segKey
	shared bool // several blobs: held by dec; else the blob is buf
	size   int  // plaintext length from the index
	ready  chan struct{}
	err    error // set before ready is closed

	// Guarded by segCache.mu.
	refs    int           // readers holding slices of it
	elem    *list.Element // nil once out of the cache
	evicted bool

	mu    sync.Mutex
	dec   *repository.SegmentDecoder // shared: holds the plaintext
	buf   []byte                     // not shared: the blob
	blobs map[repository.ID][]byte   // blobs checked against their IDs
}

func newSegCache(repo *repository.Repository, maxBytes int) *segCache {
	return &segCache{repo: repo, max: maxBytes, order: list.New(), segs: map[segKey]*segment{}}
}

// blob returns the plaintext of data blob id at loc, valid until
// release(seg) is called.
func (c *segCache) blob(ctx context.Context, id repository.ID, loc repository.Location) (p []byte, seg *segment, err error) {
	shared := loc.Inner != 0 || loc.SegmentRaw != loc.RawLength
	size := int(loc.RawLength)
	if shared {
		size = int(loc.SegmentRaw)
	}
	k := segKey{loc.Pack, loc.Offset}
	c.mu.Lock()
	s, ok := c.segs[k]
	if ok {
		s.refs++
		c.order.MoveToFront(s.elem)
		c.mu.Unlock()
		select {
		case <-s.ready:
		case <-ctx.Done():
			c.release(s)
			return nil, nil, ctx.Err()
		}
	} else {
		s = &segment{key: k, shared: shared, size: size, ready: make(chan struct{}), refs: 1}
		// A segment larger than a quarter of the cache is read for the
		// one reader and not kept.
		if size <= c.max/4 {
			c.evict(size, s)
			s.elem = c.order.PushFront(s)
			c.segs[k] = s
			c.size += size
		}
		c.mu.Unlock()
		s.err = s.load(ctx, c.repo, id, loc)
		if s.err != nil {
			c.mu.Lock()
			c.remove(s)
			c.mu.Unlock()
		}
		close(s.ready)
	}
	if s.err != nil {
		c.release(s)
		return nil, nil, s.err
	}
	if p, err = s.get(id, loc); err != nil {
		c.release(s)
		return nil, nil, err
	}
	return p, s, nil
}

// release ends a reader's use of what blob returned.
func (c *segCache) release(s *segment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.refs--
}

// remove takes s out of the cache; c.mu is held.
func (c *segCache) remove(s *segment) {
	if s.elem == nil {
		return
	}
	c.order.Remove(s.elem)
	s.elem = nil
	delete(c.segs, s.key)
	c.size -= s.size
}

// evict makes room for size bytes, least recently used first, skipping
// segments in use; the first evicted one's buffers go to next. c.mu is
// held.
func (c *segCache) evict(size int, next *segment) {
	for e := c.order.Back(); e != nil && c.size+size > c.max; {
		old := e.Value.(*segment)
		e = e.Prev()
		if old.refs > 0 {
			continue
		}
		// Not in use: its loader is done (it held a reference) and no
		// reader holds a slice of it.
		c.remove(old)
		if old.err == nil && next.dec == nil && next.buf == nil {
			if next.shared {
				next.dec = old.dec
			} else {
				next.buf = old.buf[:0]
			}
		}
	}
}

// load reads and decodes the segment holding id at loc.
func (s *segment) load(ctx context.Context, repo *repository.Repository, id repository.ID, loc repository.Location) error {
	h := repository.BlobHandle{Type: repository.DataBlob, ID: id}
	sealed, err := repo.Backend().Load(ctx, backend.Handle{Type: backend.Pack, Name: loc.Pack.String()}, int64(loc.Offset), int(loc.Length))
	if err != nil {
		return fmt.Errorf("load blob %s: %w", h, err)
	}
	if s.dec == nil {
		s.dec = repo.NewSegmentDecoder()
	}
	p, err := s.dec.Decode(h, sealed, loc, s.buf)
	if err != nil {
		return err
	}
	s.blobs = map[repository.ID][]byte{id: p}
	if !s.shared {
		s.buf = p
	}
	return nil
}

// get returns blob id of the loaded segment s, checked against its ID
// the first time.
func (s *segment) get(id repository.ID, loc repository.Location) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.blobs[id]; ok {
		return p, nil
	}
	if !s.shared {
		// Only a damaged index places two blobs in one unshared segment.
		return nil, fmt.Errorf("blob %s: segment at %d holds another blob", id.Short(), loc.Offset)
	}
	p, err := s.dec.Decode(repository.BlobHandle{Type: repository.DataBlob, ID: id}, nil, loc, nil)
	if err != nil {
		return nil, err
	}
	s.blobs[id] = p
	return p, nil
}
