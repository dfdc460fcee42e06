package repository

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/secrets"
	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/crypto"
)

// countingBackend counts the reads and listings of each file type.
type countingBackend struct {
	backend.Backend
	mu    sync.Mutex
	loads map[backend.FileType]int
	lists map[backend.FileType]int
}

func newCounting(be backend.Backend) *countingBackend {
	return &countingBackend{Backend: be, loads: map[backend.FileType]int{}, lists: map[backend.FileType]int{}}
}

func (c *countingBackend) count(m map[backend.FileType]int, t backend.FileType) {
	c.mu.Lock()
	m[t]++
	c.mu.Unlock()
}

func (c *countingBackend) Load(ctx context.Context, h backend.Handle, off int64, n int) ([]byte, error) {
	c.count(c.loads, h.Type)
	return c.Backend.Load(ctx, h, off, n)
}

func (c *countingBackend) LoadWhole(ctx context.Context, h backend.Handle, limit int64) ([]byte, error) {
	c.count(c.loads, h.Type)
	if wl, ok := c.Backend.(backend.WholeLoader); ok {
		return wl.LoadWhole(ctx, h, limit)
	}
	size, err := c.Backend.Stat(ctx, h)
	if err != nil {
		return nil, err
	}
	if size > limit {
		return nil, fmt.Errorf("load %s: %w", h, backend.ErrTooLarge)
	}
	return c.Backend.Load(ctx, h, 0, int(size))
}

func (c *countingBackend) List(ctx context.Context, t backend.FileType, fn func(string, int64) error) error {
	c.count(c.lists, t)
	return c.Backend.List(ctx, t, fn)
}

func (c *countingBackend) reset() (loads, lists map[backend.FileType]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	loads, lists = c.loads, c.lists
	c.loads, c.lists = map[backend.FileType]int{}, map[backend.FileType]int{}
	return loads, lists
}

// snapshotsRepo creates a repository in be with n snapshots (and an
// index file each), closed.
func snapshotsRepo(t *testing.T, be backend.Backend, n int) {
	t.Helper()
	ctx := context.Background()
	r, err := Create(ctx, be, []byte("pw"), DefaultConfig(), crypto.NewKDFParams(1, 64, 1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		id, _, err := r.SaveBlob(ctx, DataBlob, []byte(fmt.Sprintf("data of snapshot %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		tree := &Tree{Nodes: []Node{{Name: Bytes(fmt.Sprint(i)), Type: NodeFile, Mode: 0o644, Size: 19, Content: []ID{id}}}}
		tid, err := r.SaveTree(ctx, tree)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := r.SaveSnapshot(ctx, &Snapshot{Time: time.Unix(int64(1700000000+i), 0), Tree: tid, Paths: []string{"/x"}, Hostname: "h"}); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
}

// Opening a repository on the S3 server, locking it and resolving
// "latest" reads each index and snapshot file once, the snapshots while
// the key is derived, and no lock file: the first check of the lock
// uses the list Open read, the second does not read the lock it wrote.
// After the lock, one listing each brings the index and the snapshots up
// to date.
func TestOpenReadsAheadS3(t *testing.T) {
	s := testenv.StartSeaweedFS(t)
	ctx := context.Background()
	ak, sk := s.KeyFiles(t)
	s3, err := backend.Open(ctx, "s3:"+s.Endpoint+"/early/repo", backend.Options{
		S3: backend.S3Options{AccessKey: secrets.Ref("file:" + ak), SecretKey: secrets.Ref("file:" + sk)}})
	if err != nil {
		t.Fatal(err)
	}
	be := newCounting(s3)
	const n = 3
	snapshotsRepo(t, be, n)
	be.reset()

	r, err := Open(ctx, be, []byte("pw"), Options{PrefetchSnapshots: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	loads, lists := be.reset()
	want := map[backend.FileType]int{backend.Config: 1, backend.Key: 1, backend.Index: n, backend.Snapshot: n}
	if fmt.Sprint(loads) != fmt.Sprint(want) {
		t.Errorf("Open read %v, want %v", loads, want)
	}
	if want := map[backend.FileType]int{backend.Key: 1, backend.Index: 1, backend.Lock: 1, backend.Snapshot: 1}; fmt.Sprint(lists) != fmt.Sprint(want) {
		t.Errorf("Open listed %v, want %v", lists, want)
	}
	l, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if err := r.RefreshIndex(ctx); err != nil {
		t.Fatal(err)
	}
	snap, err := r.FindSnapshot(ctx, "latest")
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Time.Equal(time.Unix(1700000000+n-1, 0)) {
		t.Errorf("latest is the snapshot of %v", snap.Time)
	}
	loads, lists = be.reset()
	if len(loads) != 0 {
		t.Errorf("lock, index refresh and latest read %v, want nothing", loads)
	}
	if want := map[backend.FileType]int{backend.Index: 1, backend.Lock: 1, backend.Snapshot: 1}; fmt.Sprint(lists) != fmt.Sprint(want) {
		t.Errorf("lock, index refresh and latest listed %v, want %v", lists, want)
	}
}

// localRepo is a repository of n snapshots in a directory.
func localRepo(t *testing.T, n int) (string, backend.Backend) {
	t.Helper()
	dir := t.TempDir()
	be := backend.NewLocal(dir)
	snapshotsRepo(t, be, n)
	return dir, be
}

// Files read ahead are checked as files read when used are: a snapshot
// or index file whose bytes do not match its name, a lock file that does
// not decrypt, or a snapshot larger than a file read ahead may be, are
// refused or reported, never used.
func TestOpenReadAheadChecked(t *testing.T) {
	ctx := context.Background()
	dir, be := localRepo(t, 3)
	files := func(sub string) []string {
		t.Helper()
		var out []string
		err := filepath.Walk(filepath.Join(dir, sub), func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				out = append(out, p)
			}
			return err
		})
		if err != nil || len(out) == 0 {
			t.Fatalf("files of %s: %v %v", sub, out, err)
		}
		return out
	}
	// Two snapshots swap their bytes; a third is replaced by something
	// larger than EarlyFileLimit.
	snaps := files("snapshots")
	a, _ := os.ReadFile(snaps[0])
	b, _ := os.ReadFile(snaps[1])
	for p, data := range map[string][]byte{snaps[0]: b, snaps[1]: a, snaps[2]: make([]byte, EarlyFileLimit+1)} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// An index file cut short.
	idx := files("index")[0]
	if err := os.Truncate(idx, 10); err != nil {
		t.Fatal(err)
	}
	// A lock file that is not sealed with the key.
	lockName := strings.Repeat("ab", 32)
	if err := os.MkdirAll(filepath.Join(dir, "locks"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "locks", lockName), []byte("not a lock"), 0o600); err != nil {
		t.Fatal(err)
	}

	r, err := Open(ctx, be, []byte("pw"), Options{PrefetchSnapshots: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if errs := r.IndexErrors(); len(errs) != 1 {
		t.Errorf("index errors %v, want the file cut short", errs)
	}
	got, bad, err := r.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 || len(bad) != 3 {
		t.Fatalf("snapshots: %d read, %d refused, want 0 and 3", len(got), len(bad))
	}
	for id, err := range bad {
		if !strings.Contains(err.Error(), "does not match its name") && !errors.Is(err, backend.ErrTooLarge) {
			t.Errorf("snapshot %s: %v", id.Short(), err)
		}
	}
	if _, err := r.Lock(ctx, false); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "unreadable") {
		t.Errorf("lock with an unreadable lock file: %v", err)
	}
}

// A lock taken after Open listed the lock files, which therefore does
// not know it, still stops a conflicting Lock: only the check after the
// new lock file is written decides.
func TestLockAfterOpenListedLocks(t *testing.T) {
	ctx := context.Background()
	_, be := localRepo(t, 1)
	r, err := Open(ctx, be, []byte("pw"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	other, err := Open(ctx, be, []byte("pw"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	excl, err := other.Lock(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := r.Lock(ctx, false); !errors.Is(err, ErrLocked) {
		l.Unlock()
		t.Fatalf("shared lock beside an exclusive one taken after Open: %v", err)
	}
	if err := excl.Unlock(); err != nil {
		t.Fatal(err)
	}
	// And an exclusive lock Open saw, released since, does not stop it.
	excl, err = other.Lock(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Open(ctx, be, []byte("pw"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if err := excl.Unlock(); err != nil {
		t.Fatal(err)
	}
	l, err := r2.Lock(ctx, false)
	if err != nil {
		t.Fatalf("lock after the exclusive lock Open listed was released: %v", err)
	}
	l.Unlock()
}

// slowConfigBackend answers for the config file only after delay (or
// when the request is cancelled), as a remote server may.
type slowConfigBackend struct {
	backend.Backend
	delay time.Duration
}

func (s *slowConfigBackend) wait(ctx context.Context, h backend.Handle) error {
	if h.Type != backend.Config {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(s.delay):
		return nil
	}
}

func (s *slowConfigBackend) Stat(ctx context.Context, h backend.Handle) (int64, error) {
	if err := s.wait(ctx, h); err != nil {
		return 0, err
	}
	return s.Backend.Stat(ctx, h)
}

func (s *slowConfigBackend) Load(ctx context.Context, h backend.Handle, off int64, n int) ([]byte, error) {
	if err := s.wait(ctx, h); err != nil {
		return nil, err
	}
	return s.Backend.Load(ctx, h, off, n)
}

// TestOpenNoRepositorySlowConfig opens a location that holds no
// repository on a server slow to answer for the config: the key search
// finds no key file before the config's answer is in, and Open must
// still say there is no repository (which a job with init: true acts
// on), not report the config read it cancelled.
func TestOpenNoRepositorySlowConfig(t *testing.T) {
	be := &slowConfigBackend{Backend: backend.NewLocal(t.TempDir()), delay: 200 * time.Millisecond}
	_, err := Open(context.Background(), be, []byte("pw"), Options{})
	if !errors.Is(err, ErrNotRepository) {
		t.Fatalf("Open of an empty location = %v, want %v", err, ErrNotRepository)
	}
}
