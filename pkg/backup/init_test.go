package backup_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/backuptest"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// TestInitRefuses: init leaves alone a directory in use and refuses
// compression levels zstd does not have, writing nothing.
func TestInitRefuses(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func(dir string)
		opts  backup.InitOptions
		is    error
	}{
		{"non-empty directory", func(dir string) { _ = os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600) }, backup.InitOptions{}, backend.ErrNotEmpty},
		{"compression too high", nil, backup.InitOptions{Compression: backup.MaxCompression + 1}, nil},
		{"compression below -1", nil, backup.InitOptions{Compression: -2}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "repo")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup(dir)
			}
			before, _ := os.ReadDir(dir)
			tt.opts.KDF = backuptest.FastKDF()
			err := backup.Init(ctx, dir, backuptest.Password, tt.opts)
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("init: %v", err)
			}
			if after, _ := os.ReadDir(dir); len(after) != len(before) {
				t.Fatalf("init wrote %d entries before failing", len(after)-len(before))
			}
		})
	}
}

// TestInitAfterInterruptedInit: the layout and key file an init left
// when it stopped before writing the config do not stop a new init, and
// the old key file, whose master key is not the new repository's, goes.
func TestInitAfterInterruptedInit(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	if err := backup.Init(ctx, dir, backuptest.Password, backup.InitOptions{KDF: backuptest.FastKDF()}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "config")); err != nil {
		t.Fatal(err)
	}
	if err := backup.Init(ctx, dir, backuptest.Password, backup.InitOptions{KDF: backuptest.FastKDF()}); err != nil {
		t.Fatalf("init over an interrupted init: %v", err)
	}
	keys, _ := os.ReadDir(filepath.Join(dir, "keys"))
	if len(keys) != 1 {
		t.Fatalf("%d key files, want 1", len(keys))
	}
	r := open(t, dir)
	if _, err := r.Snapshots(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestNoLock: check and restore with NoLock run while another process
// holds an exclusive lock (as on a repository nothing can be written to,
// where no lock can be taken), and without it they are refused.
func TestNoLock(t *testing.T) {
	ctx := context.Background()
	dir, r, src, _ := newRepoWithFile(t)
	holder := open(t, dir)
	unlock, err := holder.Internal().Lock(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock.Unlock()
	if _, err := r.Check(ctx, backup.CheckOptions{}); !errors.Is(err, backup.ErrLocked) {
		t.Fatalf("check under an exclusive lock: %v", err)
	}
	locks, _ := os.ReadDir(filepath.Join(dir, "locks"))
	if res, err := r.Check(ctx, backup.CheckOptions{ReadData: true, NoLock: true}); err != nil || !res.OK() {
		t.Fatalf("check --no-lock: %+v %v", res, err)
	}
	target := t.TempDir()
	if _, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: target, NoLock: true}); err != nil {
		t.Fatalf("restore --no-lock: %v", err)
	}
	if err := backuptest.Compare(t, src, filepath.Join(target, src)); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadDir(filepath.Join(dir, "locks")); len(after) != len(locks) {
		t.Fatalf("locks %d -> %d: NoLock wrote a lock", len(locks), len(after))
	}
}

// TestEmptyFileNeedsNoData: an empty file references no blob, so no
// damage to the repository's data can make it unrestorable.
func TestEmptyFileNeedsNoData(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "empty"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	sum, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	for _, blobs := range r.Internal().Index().Packs() {
		for _, b := range blobs {
			if b.Type == repository.DataBlob {
				t.Fatalf("a backup of one empty file stored data blob %s", b.ID.Short())
			}
		}
	}
	entries, err := r.Ls(ctx, sum.SnapshotID, filepath.Join(src, "empty"))
	if err != nil || len(entries) != 1 || entries[0].Size != 0 {
		t.Fatalf("ls: %+v %v", entries, err)
	}
	target := t.TempDir()
	if _, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: target}); err != nil {
		t.Fatal(err)
	}
	if err := backuptest.Compare(t, src, filepath.Join(target, src)); err != nil {
		t.Fatal(err)
	}
}
