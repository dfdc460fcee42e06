package repository

import (
	"context"
	"sync"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/crypto"
)

// Files Open reads ahead, while it derives the key: the lock files (the
// first check of Lock uses them) and, with Options.PrefetchSnapshots, the
// snapshots. They are small; what the storage lists beyond these bounds
// is read when it is used, as without reading ahead.
const (
	// MaxEarlyFiles is how many files of one type Open reads ahead.
	MaxEarlyFiles = 256
	// EarlyFileLimit bounds a file read ahead (a larger one is read when
	// used, within its type's backend.FileLimit).
	EarlyFileLimit = 64 << 10
	// earlyReaders is how many files of one type are read at once.
	earlyReaders = 8
)

// earlyFetch is the list of one type's files and the sealed contents of
// the first MaxEarlyFiles of them; both are set once done is closed.
type earlyFetch struct {
	done  chan struct{}
	names map[ID]int64 // nil if the listing failed
	files map[backend.Handle][]byte
}

// fetchEarly lists the files of type t and reads those listed with at
// most EarlyFileLimit bytes, up to MaxEarlyFiles; a file that cannot be
// read is left out (its later read reports why).
func fetchEarly(ctx context.Context, be backend.Backend, t backend.FileType) *earlyFetch {
	f := &earlyFetch{done: make(chan struct{}), files: map[backend.Handle][]byte{}}
	go func() {
		defer close(f.done)
		names := map[ID]int64{}
		if err := be.List(ctx, t, func(name string, size int64) error {
			if id, err := crypto.ParseID(name); err == nil {
				names[id] = size
			}
			return nil
		}); err != nil {
			return
		}
		f.names = names
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, earlyReaders)
		n := 0
		for id, size := range names {
			if n == MaxEarlyFiles {
				break
			}
			if size > EarlyFileLimit || size < 0 {
				continue
			}
			n++
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				wg.Wait()
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				h := backend.Handle{Type: t, Name: id.String()}
				b, err := backend.LoadFile(ctx, be, h, EarlyFileLimit)
				if err != nil {
					return
				}
				mu.Lock()
				f.files[h] = b
				mu.Unlock()
			}()
		}
		wg.Wait()
	}()
	return f
}

// wait waits for f's reads; a nil f has none.
func (f *earlyFetch) wait() {
	if f != nil {
		<-f.done
	}
}

// keepEarly keeps what the fetches read for later use; they are done.
func (r *Repository) keepEarly(locks *earlyFetch, snaps *earlyFetch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.early = locks.files
	r.earlyLocks = locks.names
	if snaps != nil {
		for h, b := range snaps.files {
			r.early[h] = b
		}
	}
}

// takeEarly returns, once, the bytes of file h read ahead.
func (r *Repository) takeEarly(h backend.Handle) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.early[h]
	if ok {
		delete(r.early, h)
	}
	return b, ok
}

// takeEarlyLocks returns, once, the lock files Open listed (nil if none
// were listed).
func (r *Repository) takeEarlyLocks() map[ID]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.earlyLocks
	r.earlyLocks = nil
	return l
}

// dropEarly forgets the files of type t read ahead and not used.
func (r *Repository) dropEarly(t backend.FileType) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for h := range r.early {
		if h.Type == t {
			delete(r.early, h)
		}
	}
}
