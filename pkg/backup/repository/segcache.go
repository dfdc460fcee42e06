package repository

import "sync"

// segmentCacheBytes bounds the plaintext a repository keeps of recently
// read shared segments.
const segmentCacheBytes = 8 << 20

// segmentCache keeps the plaintext of recently read shared segments, so
// LoadBlob of neighbouring small blobs (the trees of a directory walk, the
// files of a dump) decodes each segment once. Oldest out first.
type segmentCache struct {
	mu    sync.Mutex
	max   int
	size  int
	order []segKey
	segs  map[segKey][]byte
}

type segKey struct {
	pack ID
	off  uint32
}

func (c *segmentCache) get(pack ID, off uint32) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.segs[segKey{pack, off}]
	return b, ok
}

func (c *segmentCache) put(pack ID, off uint32, seg []byte) {
	if len(seg) > c.max/2 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := segKey{pack, off}
	if c.segs == nil {
		c.segs = map[segKey][]byte{}
	}
	if _, ok := c.segs[k]; ok {
		return
	}
	for c.size+len(seg) > c.max && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		c.size -= len(c.segs[old])
		delete(c.segs, old)
	}
	c.segs[k] = seg
	c.order = append(c.order, k)
	c.size += len(seg)
}
