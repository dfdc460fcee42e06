package repository

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/crypto"
)

// remoteLocal is a local backend that hints a pack size, as object
// storage does (so walks prefetch), and counts the ranged reads of packs.
type remoteLocal struct {
	*backend.Local
	packLoads atomic.Int64
}

func (b *remoteLocal) PackSizeHint() int { return backend.RemotePackSize }

func (b *remoteLocal) Load(ctx context.Context, h backend.Handle, off int64, n int) ([]byte, error) {
	if h.Type == backend.Pack {
		b.packLoads.Add(1)
	}
	return b.Local.Load(ctx, h, off, n)
}

// prefetchRepo stores a snapshot-like DAG of trees (40 directories of 20
// directories of 12 files, each tree distinct) in a repository that
// hints a pack size, and reopens it, so nothing is cached.
func prefetchRepo(t *testing.T) (*Repository, *remoteLocal, ID, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	be := &remoteLocal{Local: backend.NewLocal(dir)}
	cfg := DefaultConfig()
	cfg.PackSize = backend.RemotePackSize
	r, err := Create(ctx, be, []byte("pw"), cfg, crypto.NewKDFParams(1, 64, 1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var top Tree
	for i := range 40 {
		var mid Tree
		for j := range 20 {
			var leaf Tree
			for k := range 12 {
				leaf.Nodes = append(leaf.Nodes, Node{Name: Bytes(fmt.Sprintf("file-%02d-%02d-%02d.go", i, j, k)), Type: NodeFile,
					Mode: 0o644, Size: uint64(i*1000 + j*10 + k), MTimeNs: int64(i*j*k + 1), User: "someone", Group: "staff"})
			}
			id, err := r.SaveTree(ctx, &leaf)
			if err != nil {
				t.Fatal(err)
			}
			mid.Nodes = append(mid.Nodes, Node{Name: Bytes(fmt.Sprintf("dir-%02d", j)), Type: NodeDir, Mode: 0o755, Subtree: &id})
		}
		id, err := r.SaveTree(ctx, &mid)
		if err != nil {
			t.Fatal(err)
		}
		top.Nodes = append(top.Nodes, Node{Name: Bytes(fmt.Sprintf("top-%02d", i)), Type: NodeDir, Mode: 0o755, Subtree: &id})
	}
	root, err := r.SaveTree(ctx, &top)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r.Close()
	return reopen(t, be), be, root, dir
}

// reopen opens the repository in be afresh.
func reopen(t *testing.T, be *remoteLocal) *Repository {
	t.Helper()
	r, err := Open(context.Background(), be, []byte("pw"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// walkPaths lists the paths a walk meets.
func walkPaths(ctx context.Context, r *Repository, root ID, prefetch bool) ([]string, error) {
	var paths []string
	fn := func(p string, n *Node) error {
		paths = append(paths, fmt.Sprintf("%s %s %d", p, n.Type, n.Size))
		return nil
	}
	walk := r.WalkTreeBudget
	if prefetch {
		walk = r.WalkTreePrefetch
	}
	err := walk(ctx, root, "/", NewBudget(Limits{}), fn)
	return paths, err
}

// A prefetching walk meets what a plain walk meets, reading the tree
// segments of a pack with a few ranged reads instead of one read per
// segment (the cause of slow restores from object storage).
func TestWalkTreePrefetch(t *testing.T) {
	ctx := context.Background()
	r, be, root, _ := prefetchRepo(t)
	segs, packs := map[[2]uint32]bool{}, map[ID]bool{}
	var treeBytes int64
	for p, bs := range r.idx.blobsOfType(TreeBlob) {
		packs[p] = true
		for _, b := range bs {
			k := [2]uint32{uint32(len(packs)), b.Offset}
			if !segs[k] {
				treeBytes += int64(b.Length)
			}
			segs[k] = true
		}
	}
	// Each walk on a fresh Open: nothing read before is cached.
	be.packLoads.Store(0)
	plain, err := walkPaths(ctx, reopen(t, be), root, false)
	if err != nil {
		t.Fatal(err)
	}
	plainLoads := be.packLoads.Swap(0)
	pre, err := walkPaths(ctx, reopen(t, be), root, true)
	if err != nil {
		t.Fatal(err)
	}
	preLoads := be.packLoads.Load()
	if len(plain) != 40+40*20+40*20*12 || strings.Join(plain, "\n") != strings.Join(pre, "\n") {
		t.Fatalf("prefetching walk met %d nodes, plain walk %d (or in another order)", len(pre), len(plain))
	}
	most := int64(len(packs)) + treeBytes/PrefetchRangeBytes + 1
	if int64(len(segs)) <= most {
		t.Fatalf("only %d tree segments in %d packs: the test needs more", len(segs), len(packs))
	}
	if preLoads > most {
		t.Errorf("prefetching walk read packs %d times (plain walk: %d), want at most %d for %d tree segments in %d packs",
			preLoads, plainLoads, most, len(segs), len(packs))
	}
	t.Logf("%d tree segments in %d packs: plain walk %d reads, prefetching walk %d", len(segs), len(packs), plainLoads, preLoads)
}

// Damaged tree segments: the prefetching walk fails as the plain walk
// does, naming the tree, without hanging or crashing; a cancelled walk
// returns.
func TestWalkTreePrefetchDamaged(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		damage func(t *testing.T, pack string)
	}{
		{"flipped byte", func(t *testing.T, pack string) {
			b, err := os.ReadFile(pack)
			if err != nil {
				t.Fatal(err)
			}
			for i := 64; i < len(b)-64; i += 4096 {
				b[i] ^= 0x55
			}
			if err := os.WriteFile(pack, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, pack string) {
			if err := os.Truncate(pack, 100); err != nil {
				t.Fatal(err)
			}
		}},
		{"removed", func(t *testing.T, pack string) {
			if err := os.Remove(pack); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, be, root, dir := prefetchRepo(t)
			for p := range r.idx.blobsOfType(TreeBlob) {
				matches, _ := filepath.Glob(filepath.Join(dir, "data", "*", p.String()))
				if len(matches) != 1 {
					t.Fatalf("pack %s: %v", p.Short(), matches)
				}
				tc.damage(t, matches[0])
			}
			_, plainErr := walkPaths(ctx, reopen(t, be), root, false)
			_, preErr := walkPaths(ctx, reopen(t, be), root, true)
			if plainErr == nil || preErr == nil {
				t.Fatalf("walks of damaged trees: plain %v, prefetching %v", plainErr, preErr)
			}
			if preErr.Error() != plainErr.Error() {
				t.Errorf("prefetching walk: %v\nplain walk: %v", preErr, plainErr)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		r, _, root, _ := prefetchRepo(t)
		cctx, cancel := context.WithCancel(ctx)
		n := 0
		err := r.WalkTreePrefetch(cctx, root, "/", NewBudget(Limits{}), func(string, *Node) error {
			if n++; n == 100 {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled walk: %v", err)
		}
	})
}

// A walk of a repository whose tree segments lie in at most
// PrefetchEagerPacks packs starts reading all of them when it needs its
// first tree; with more packs, only the pack of that tree.
func TestWalkTreePrefetchEager(t *testing.T) {
	ctx := context.Background()
	for _, packs := range []int{1, 5, PrefetchEagerPacks, PrefetchEagerPacks + 1, 40} {
		t.Run(fmt.Sprint(packs), func(t *testing.T) {
			be := &remoteLocal{Local: backend.NewLocal(t.TempDir())}
			r, err := Create(ctx, be, []byte("pw"), DefaultConfig(), crypto.NewKDFParams(1, 64, 1), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			// Trees in packs the storage does not have: their reads fail,
			// and the walk would read them one by one.
			var first ID
			for i := range packs {
				id := ID{1, byte(i)}
				if i == 0 {
					first = id
				}
				r.idx.AddPack(ID{2, byte(i)}, []PackBlob{{BlobHandle: BlobHandle{Type: TreeBlob, ID: id}, Length: 100, RawLength: 50, SegmentRaw: 50}})
			}
			p := r.newTreePrefetcher(ctx)
			defer p.close()
			if _, seg := p.segment(first); seg == nil {
				t.Fatal("first tree not prefetched")
			}
			p.mu.Lock()
			started := len(p.started)
			p.mu.Unlock()
			want := packs
			if packs > PrefetchEagerPacks {
				want = 1
			}
			if started != want {
				t.Errorf("%d packs of trees: %d started at the first tree, want %d", packs, started, want)
			}
		})
	}
}
