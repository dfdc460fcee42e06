package backup_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backuptest"
)

// A restore opened before a prune that rewrote the index (another
// process's forget and prune, between Open and the restore's lock)
// restores from the index the storage holds under its lock, not from
// the one Open read: every file, exact.
func TestRestoreAfterPruneSinceOpen(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	src := t.TempDir()
	old := filepath.Join(src, "old")
	backuptest.RandomFile(t, old, 300<<10)
	backuptest.RandomFile(t, filepath.Join(src, "kept"), 300<<10)
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(old); err != nil {
		t.Fatal(err)
	}
	backuptest.RandomFile(t, filepath.Join(src, "new"), 300<<10)
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
		t.Fatal(err)
	}
	restorer := open(t, dir) // reads the index now
	pruner := open(t, dir)
	snaps, err := pruner.Snapshots(ctx)
	if err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots: %v %v", snaps, err)
	}
	if _, err := pruner.ForgetWith(ctx, backup.ForgetOptions{Snapshots: []string{snaps[0].ID}}); err != nil {
		t.Fatal(err)
	}
	zero := 0.0
	res, err := pruner.Prune(ctx, backup.PruneOptions{MaxUnused: &zero})
	if err != nil {
		t.Fatal(err)
	}
	if res.PacksDeleted+res.PacksRepacked == 0 {
		t.Fatalf("prune changed no pack: %+v", res)
	}
	target := t.TempDir()
	sum, err := restorer.Restore(ctx, "latest", backup.RestoreOptions{Target: target})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Errors != 0 {
		t.Fatalf("restore after prune: %d files left out", sum.Errors)
	}
	if err := backuptest.Compare(t, src, filepath.Join(target, src)); err != nil {
		t.Fatal(err)
	}
}

// A restore does not proceed against an exclusive lock taken after its
// repository was opened (after Open listed the lock files), and writes
// nothing into its target.
func TestRestoreRefusesExclusiveLockSinceOpen(t *testing.T) {
	ctx := context.Background()
	dir, _, _, _ := newRepoWithFile(t)
	restorer, err := backup.Open(ctx, dir, backuptest.Password, backup.OpenOptions{CacheDir: t.TempDir(), PrefetchSnapshots: true})
	if err != nil {
		t.Fatal(err)
	}
	defer restorer.Close()
	l, err := open(t, dir).Internal().Lock(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	target := t.TempDir()
	if _, err := restorer.Restore(ctx, "latest", backup.RestoreOptions{Target: target}); !errors.Is(err, backup.ErrLocked) {
		t.Fatalf("restore under an exclusive lock: %v", err)
	}
	if ents, _ := os.ReadDir(target); len(ents) != 0 {
		t.Fatalf("restore under an exclusive lock wrote %d entries", len(ents))
	}
}
