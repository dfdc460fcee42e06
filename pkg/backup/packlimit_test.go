package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backuptest"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// damagedPackRepo backs up two files that land in one pack, then only
// the one stored later in it, and forgets the first snapshot: the pack is
// partly used, so prune repacks it. It returns the repository's
// directory, the source directory, the pack, the kept file's segment and
// the repository's pack limit.
func damagedPackRepo(t *testing.T) (dir, src string, pack repository.ID, kept repository.Location, limit int64) {
	t.Helper()
	ctx := context.Background()
	dir, r := newRepo(t)
	src = t.TempDir()
	backuptest.RandomFile(t, filepath.Join(src, "a"), 300<<10)
	backuptest.RandomFile(t, filepath.Join(src, "b"), 300<<10)
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
		t.Fatal(err)
	}
	la := blobLocation(t, r, filepath.Join(src, "a"), 0)
	lb := blobLocation(t, r, filepath.Join(src, "b"), 0)
	if la.Pack != lb.Pack {
		t.Fatalf("files in packs %s and %s, want one", la.Pack.Short(), lb.Pack.Short())
	}
	drop, keep := "b", la
	if lb.Offset > la.Offset {
		drop, keep = "a", lb
	}
	if err := os.Remove(filepath.Join(src, drop)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Forget(ctx, backup.RetentionPolicy{Last: 1}, false); err != nil {
		t.Fatal(err)
	}
	limit = r.Internal().PackLimit()
	r.Close()
	return dir, src, keep.Pack, keep, limit
}

// TestOversizedPack: the storage grows a pack past the most a pack of the
// repository can hold (sparse, so it costs no disk). check --read-data
// reports it damaged, repair salves its blobs with one bounded read per
// segment and drops it, prune refuses to repack it; none of them reads
// it whole. Before, each read the whole file (up to 1.3 GiB) into memory.
func TestOversizedPack(t *testing.T) {
	ctx := context.Background()
	const budget = 64 << 20 // bytes any of them may allocate; the file is over 270 MiB
	tests := []struct {
		name string
		run  func(t *testing.T, r *backup.Repository, pack repository.ID) func()
		then func(t *testing.T, r *backup.Repository, dir, src string, pack repository.ID)
	}{
		{
			name: "check --read-data",
			run: func(t *testing.T, r *backup.Repository, pack repository.ID) func() {
				return func() {
					res, err := r.Check(ctx, backup.CheckOptions{ReadData: true})
					if err != nil {
						t.Fatalf("check: %v", err)
					}
					if !slices.Contains(res.DamagedPacks, pack.String()) {
						t.Errorf("damaged packs %v, want %s; errors %v", res.DamagedPacks, pack, res.Errors)
					}
				}
			},
		},
		{
			name: "repair",
			run: func(t *testing.T, r *backup.Repository, pack repository.ID) func() {
				return func() {
					res, err := r.Repair(ctx, backup.RepairOptions{})
					if err != nil {
						t.Fatalf("repair: %v", err)
					}
					// The segments before the growth are intact: every
					// blob is salvaged.
					if res.PacksDamaged != 1 || res.BlobsLost != 0 || res.BlobsSalvaged == 0 {
						t.Errorf("repair: %+v", res)
					}
				}
			},
			then: func(t *testing.T, r *backup.Repository, dir, src string, pack repository.ID) {
				if _, err := os.Stat(packPath(dir, pack)); !os.IsNotExist(err) {
					t.Fatalf("oversized pack still there after repair: %v", err)
				}
				chk, err := r.Check(ctx, backup.CheckOptions{ReadData: true})
				if err != nil || !chk.OK() {
					t.Fatalf("check after repair: %+v %v", chk, err)
				}
				target := t.TempDir()
				if _, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: target}); err != nil {
					t.Fatal(err)
				}
				if err := backuptest.Compare(t, src, filepath.Join(target, src)); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "prune",
			run: func(t *testing.T, r *backup.Repository, pack repository.ID) func() {
				return func() {
					_, err := r.Prune(ctx, backup.PruneOptions{MaxUnused: new(0.0)})
					if err == nil || !strings.Contains(err.Error(), "damaged") {
						t.Errorf("prune of an oversized pack: %v, want an error saying it is damaged", err)
					}
				}
			},
			then: func(t *testing.T, r *backup.Repository, dir, src string, pack repository.ID) {
				if _, err := os.Stat(packPath(dir, pack)); err != nil {
					t.Fatalf("prune removed the pack it could not repack: %v", err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, src, pack, _, limit := damagedPackRepo(t)
			if err := os.Truncate(packPath(dir, pack), limit+1); err != nil {
				t.Fatal(err)
			}
			r := open(t, dir)
			_, allocated := heapGrowth(tc.run(t, r, pack))
			if allocated > budget {
				t.Errorf("%s allocated %d MiB for a pack of %d MiB, want under %d MiB", tc.name, allocated>>20, limit>>20, budget>>20)
			}
			if tc.then != nil {
				tc.then(t, r, dir, src, pack)
			}
		})
	}
}

// TestPruneShortPack: the storage cuts short a pack that prune repacks,
// in the middle of a segment still in use. Prune reports the pack
// damaged instead of slicing past the end of what it read (which
// panicked), and removes nothing.
func TestPruneShortPack(t *testing.T) {
	ctx := context.Background()
	dir, _, pack, kept, _ := damagedPackRepo(t)
	if err := os.Truncate(packPath(dir, pack), int64(kept.Offset)+int64(kept.Length)/2); err != nil {
		t.Fatal(err)
	}
	r := open(t, dir)
	_, err := r.Prune(ctx, backup.PruneOptions{MaxUnused: new(0.0)})
	if err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("prune of a pack cut short: %v, want an error saying it is damaged", err)
	}
	if _, err := os.Stat(packPath(dir, pack)); err != nil {
		t.Fatalf("prune removed the pack it could not repack: %v", err)
	}
}
