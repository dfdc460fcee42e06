package repository

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bufList hands out the large buffers of a backup (open segments,
// compressed segments, packs): anonymous memory mappings of one size,
// reused for the whole run. They live outside the Go heap, so the
// collector neither counts them towards its goal nor scans them: with
// 30-40 MiB of them in flight, a heap-allocated pipeline under the CLI's
// memory limit spent 13% of its CPU in back-to-back collections, and a
// sync.Pool lost them at every collection and faulted fresh ones in.
// Pages never written (the tail of a compressed segment) cost no memory.
type bufList struct {
	size int
	mu   sync.Mutex
	free [][]byte
	keep int                // free buffers kept; more are unmapped
	ours map[*byte]struct{} // every live mapping, by first byte
}

func newBufList(size, keep int) *bufList {
	return &bufList{size: size, keep: keep, ours: map[*byte]struct{}{}}
}

// get returns an empty buffer of capacity l.size.
func (l *bufList) get() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.free); n > 0 {
		b := l.free[n-1]
		l.free = l.free[:n-1]
		return b[:0]
	}
	b, err := unix.Mmap(-1, 0, l.size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		// Out of address space or mappings: fall back to the heap.
		return make([]byte, 0, l.size)
	}
	l.ours[unsafe.SliceData(b)] = struct{}{}
	return b[:0]
}

// put returns b, obtained from get, for reuse. Buffers that get did not
// map (a heap fallback, or a slice zstd reallocated) are left to the
// collector.
func (l *bufList) put(b []byte) {
	if cap(b) != l.size {
		return
	}
	b = b[:l.size]
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.ours[unsafe.SliceData(b)]; !ok {
		return
	}
	if len(l.free) < l.keep {
		l.free = append(l.free, b)
		return
	}
	delete(l.ours, unsafe.SliceData(b))
	_ = unix.Munmap(b)
}

// release unmaps the free buffers. Buffers still out are unmapped when
// they come back.
func (l *bufList) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.free {
		delete(l.ours, unsafe.SliceData(b))
		_ = unix.Munmap(b)
	}
	l.free = nil
	l.keep = 0
}
