package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hostd/hostd/pkg/backup/backend"
)

// Lock timing: a lock is refreshed every LockRefresh and considered stale
// when not refreshed for LockStale.
const (
	LockRefresh = 5 * time.Minute
	LockStale   = 30 * time.Minute
)

// ErrLocked is wrapped when a conflicting lock is held.
var ErrLocked = errors.New("repository is locked")

// LockInfo is the JSON of a lock file.
type LockInfo struct {
	Time      time.Time `json:"time"`
	Exclusive bool      `json:"exclusive"`
	Hostname  string    `json:"hostname"`
	Username  string    `json:"username,omitempty"`
	PID       int       `json:"pid"`
}

// LockEntry is a lock file and what it says.
type LockEntry struct {
	ID   ID
	Info LockInfo
	Err  error // set when the file could not be read
}

// DecodeLock parses lock JSON.
func DecodeLock(b []byte) (LockInfo, error) {
	var l LockInfo
	if err := json.Unmarshal(b, &l); err != nil {
		return l, fmt.Errorf("decode lock: %w", err)
	}
	if l.Time.IsZero() {
		return l, errors.New("decode lock: no time")
	}
	return l, nil
}

func (l LockInfo) String() string {
	kind := "shared"
	if l.Exclusive {
		kind = "exclusive"
	}
	return fmt.Sprintf("%s lock of pid %d on %s (user %s) since %s", kind, l.PID, l.Hostname, l.Username, l.Time.Format(time.RFC3339))
}

// Stale reports whether the lock's owner is gone: not refreshed within
// LockStale, or a process of this host that no longer exists.
func (l LockInfo) Stale(now time.Time, hostname string) bool {
	if now.Sub(l.Time) > LockStale {
		return true
	}
	if l.Hostname == hostname && l.PID > 0 {
		err := syscall.Kill(l.PID, 0)
		return errors.Is(err, syscall.ESRCH)
	}
	return false
}

// Lock is a held repository lock, refreshed in the background.
type Lock struct {
	r      *Repository
	mu     sync.Mutex
	id     ID
	info   LockInfo
	stop   chan struct{}
	done   chan struct{}
	closed bool
}

// Locks lists the lock files.
func (r *Repository) Locks(ctx context.Context) ([]LockEntry, error) {
	ids, err := r.List(ctx, backend.Lock)
	if err != nil {
		return nil, err
	}
	return r.readLocks(ctx, ids, ID{}, nil), nil
}

// readLocks reads the lock files ids but own. Lock files are named by
// the hash of their contents, so one read before (in seen, which gets
// what is read) is not read again.
func (r *Repository) readLocks(ctx context.Context, ids map[ID]int64, own ID, seen map[ID]LockEntry) []LockEntry {
	var out []LockEntry
	for id := range ids {
		if id == own {
			continue
		}
		if e, ok := seen[id]; ok {
			out = append(out, e)
			continue
		}
		e := LockEntry{ID: id}
		b, err := r.LoadFile(ctx, backend.Lock, id)
		if err == nil {
			e.Info, err = DecodeLock(b)
		}
		if errors.Is(err, os.ErrNotExist) {
			continue // released meanwhile
		}
		e.Err = err
		if seen != nil && err == nil {
			seen[id] = e
		}
		out = append(out, e)
	}
	return out
}

// Lock takes a shared or exclusive lock. Stale conflicting locks are
// removed with a warning; live ones make Lock fail with ErrLocked.
//
// The lock files are checked before the new one is written (from the
// list Open read ahead, when there is one, and again from the storage
// if that finds a conflict) and after it is: only the second check,
// listed after the new lock file is stored, decides.
func (r *Repository) Lock(ctx context.Context, exclusive bool) (*Lock, error) {
	host, _ := os.Hostname()
	seen := map[ID]LockEntry{}
	early := r.takeEarlyLocks()
	err := r.checkLocks(ctx, exclusive, host, ID{}, early, seen)
	if err != nil && early != nil && errors.Is(err, ErrLocked) {
		err = r.checkLocks(ctx, exclusive, host, ID{}, nil, seen) // the list read ahead may be old
	}
	r.dropEarly(backend.Lock) // what was used is in seen
	if err != nil {
		return nil, err
	}
	l := &Lock{r: r, info: LockInfo{Time: r.now().UTC(), Exclusive: exclusive, Hostname: host, Username: currentUser(), PID: os.Getpid()}}
	id, err := r.saveLock(ctx, l.info)
	if err != nil {
		return nil, err
	}
	l.id = id
	if err := r.checkLocks(ctx, exclusive, host, id, nil, seen); err != nil {
		_ = r.be.Remove(context.WithoutCancel(ctx), backend.Handle{Type: backend.Lock, Name: id.String()})
		return nil, err
	}
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.refresh()
	return l, nil
}

func (r *Repository) saveLock(ctx context.Context, info LockInfo) (ID, error) {
	b, err := json.Marshal(info)
	if err != nil {
		return ID{}, err
	}
	id, err := r.SaveFile(ctx, backend.Lock, b)
	if err != nil {
		return id, fmt.Errorf("create lock: %w", err)
	}
	return id, nil
}

// checkLocks fails if a lock file but own conflicts with a lock of this
// kind, removing stale ones; ids lists the lock files (nil: list them
// now).
func (r *Repository) checkLocks(ctx context.Context, exclusive bool, host string, own ID, ids map[ID]int64, seen map[ID]LockEntry) error {
	if ids == nil {
		var err error
		if ids, err = r.List(ctx, backend.Lock); err != nil {
			return fmt.Errorf("check locks: %w", err)
		}
	}
	locks := r.readLocks(ctx, ids, own, seen)
	now := r.now()
	for _, e := range locks {
		if e.ID == own {
			continue
		}
		if e.Err != nil {
			return fmt.Errorf("%w: lock file %s unreadable (%v); run break-lock if no other process uses the repository", ErrLocked, e.ID.Short(), e.Err)
		}
		if !exclusive && !e.Info.Exclusive {
			continue
		}
		if e.Info.Stale(now, host) {
			r.log.Warn("removing stale lock", "lock", e.ID.Short(), "owner", e.Info.String())
			if err := r.be.Remove(ctx, backend.Handle{Type: backend.Lock, Name: e.ID.String()}); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove stale lock %s: %w", e.ID.Short(), err)
			}
			continue
		}
		return fmt.Errorf("%w: %s; run break-lock if that process is gone", ErrLocked, e.Info)
	}
	return nil
}

func (l *Lock) refresh() {
	defer close(l.done)
	t := time.NewTicker(LockRefresh)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			info := l.info
			info.Time = l.r.now().UTC()
			ctx := context.Background()
			id, err := l.r.saveLock(ctx, info)
			if err != nil {
				l.r.log.Warn("refresh lock", "err", err)
			} else {
				_ = l.r.be.Remove(ctx, backend.Handle{Type: backend.Lock, Name: l.id.String()})
				l.id, l.info = id, info
			}
			l.mu.Unlock()
		}
	}
}

// Unlock stops refreshing and removes the lock file.
func (l *Lock) Unlock() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.r.be.Remove(context.Background(), backend.Handle{Type: backend.Lock, Name: l.id.String()}); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove lock: %w", err)
	}
	return nil
}

// BreakLocks removes lock files: only stale ones, or all when all is set.
// It returns the locks removed.
func (r *Repository) BreakLocks(ctx context.Context, all bool) ([]LockEntry, error) {
	locks, err := r.Locks(ctx)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	var removed []LockEntry
	for _, e := range locks {
		if !all && e.Err == nil && !e.Info.Stale(r.now(), host) {
			continue
		}
		if err := r.be.Remove(ctx, backend.Handle{Type: backend.Lock, Name: e.ID.String()}); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, fmt.Errorf("break lock %s: %w", e.ID.Short(), err)
		}
		removed = append(removed, e)
	}
	return removed, nil
}
