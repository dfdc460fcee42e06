package mount

import (
	"container/list"
	"context"
	"sync"

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

// blobCache keeps the plaintext of data blobs; callers only read it.
type blobCache struct{ c *lru[[]byte] }

func newBlobCache(maxBytes int) *blobCache { return &blobCache{c: newLRU[[]byte](maxBytes)} }

func (b *blobCache) load(ctx context.Context, repo *repository.Repository, id repository.ID) ([]byte, error) {
	if p, ok := b.c.get(id); ok {
		return p, nil
	}
	p, err := repo.LoadBlob(ctx, repository.BlobHandle{Type: repository.DataBlob, ID: id}, nil)
	if err != nil {
		return nil, err
	}
	b.c.put(id, p, len(p))
	return p, nil
}
