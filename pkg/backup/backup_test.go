package backup_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/backuptest"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// newRepo initialises a repository in a temp dir and opens it.
func newRepo(t *testing.T) (string, *backup.Repository) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	if err := backup.Init(context.Background(), dir, backuptest.Password, backup.InitOptions{KDF: backuptest.FastKDF(), PackSize: 1 << 20}); err != nil {
		t.Fatalf("init: %v", err)
	}
	r := open(t, dir)
	return dir, r
}

// newRepoWithFile is newRepo with one snapshot, of a new directory (src)
// holding a random 1000-byte file f.
func newRepoWithFile(t *testing.T) (dir string, r *backup.Repository, src string, snap *backup.BackupSummary) {
	t.Helper()
	dir, r = newRepo(t)
	src = t.TempDir()
	backuptest.RandomFile(t, filepath.Join(src, "f"), 1000)
	snap, err := r.Backup(context.Background(), backup.BackupOptions{Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	return dir, r, src, snap
}

func open(t *testing.T, dir string) *backup.Repository {
	t.Helper()
	r, err := backup.Open(context.Background(), dir, backuptest.Password, backup.OpenOptions{CacheDir: filepath.Join(filepath.Dir(dir), "cache")})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestBackupRestoreExact(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	src := backuptest.MakeTree(t, t.TempDir())
	sum, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src.Root}, Tags: []string{"t1"}})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if sum.Errors != 0 || sum.SnapshotID == "" {
		t.Fatalf("summary %+v", sum)
	}
	target := t.TempDir()
	rs, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: target})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if rs.Errors != 0 {
		t.Fatalf("restore summary %+v", rs)
	}
	if err := backuptest.Compare(t, src.Root, filepath.Join(target, src.Root)); err != nil {
		t.Fatalf("restored tree differs:\n%v", err)
	}
	if rs.HardLinks != 2 {
		t.Errorf("hard links restored = %d, want 2", rs.HardLinks)
	}
}

func TestBackupIncremental(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	src := t.TempDir()
	for i := range 20 {
		backuptest.RandomFile(t, filepath.Join(src, "f", string(rune('a'+i))), 100<<10)
	}
	first, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	if first.FilesNew != 20 || first.BytesAdded < 20*100<<10 {
		t.Fatalf("first %+v", first)
	}
	second, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	if second.FilesUnmodified != 20 || second.BytesRead != 0 || second.BytesAdded > 4096 { // only trees of ancestors whose mtime moved
		t.Fatalf("unchanged re-run %+v", second)
	}
	backuptest.RandomFile(t, filepath.Join(src, "f", "a"), 100<<10)
	third, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	if third.FilesChanged != 1 || third.FilesUnmodified != 19 || third.BytesRead != 100<<10 {
		t.Fatalf("one changed %+v", third)
	}
	snaps, err := r.Snapshots(ctx)
	if err != nil || len(snaps) != 3 {
		t.Fatalf("snapshots %d %v", len(snaps), err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	dir, _ := newRepo(t)
	tests := []struct {
		name     string
		dir      string
		password string
		want     error
	}{
		{"wrong password", dir, "nope", backup.ErrWrongPassword},
		{"not a repository", t.TempDir(), "x", backup.ErrNotRepository},
		{"missing", filepath.Join(t.TempDir(), "none"), "x", backup.ErrNotRepository},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := listFiles(t, tc.dir)
			_, err := backup.Open(ctx, tc.dir, []byte(tc.password), backup.OpenOptions{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if after := listFiles(t, tc.dir); after != before {
				t.Fatalf("repository changed: %s -> %s", before, after)
			}
		})
	}
}

func listFiles(t *testing.T, dir string) string {
	t.Helper()
	var s string
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			s += p + " "
		}
		return nil
	})
	return s
}

// TestBackupOlderFormats backs up into repositories of format versions 1
// and 2, which keep one blob per segment: their chunks go through the
// archiver's blob workers instead of the repository's shared segments.
// Restores must be exact and every segment must hold one blob.
func TestBackupOlderFormats(t *testing.T) {
	ctx := context.Background()
	for _, version := range []int{repository.VersionXChaCha, repository.VersionAESGCM} {
		t.Run(fmt.Sprint("version", version), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "repo")
			cfg := repository.DefaultConfig()
			cfg.Version = version
			cfg.PackSize = 1 << 20
			kdf := *backuptest.FastKDF()
			created, err := repository.Create(ctx, backend.NewLocal(dir), backuptest.Password, cfg, kdf, repository.Options{})
			if err != nil {
				t.Fatal(err)
			}
			created.Close()
			r := open(t, dir)
			src := backuptest.MakeTree(t, t.TempDir())
			for i := range 3 {
				// Several chunks each, so blob workers get some.
				backuptest.RandomFile(t, filepath.Join(src.Root, fmt.Sprintf("large%d", i)), 3<<20)
			}
			if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src.Root}}); err != nil {
				t.Fatalf("backup: %v", err)
			}
			for pack, blobs := range r.Internal().Index().Packs() {
				for _, b := range blobs {
					if b.SegmentRaw != 0 && b.SegmentRaw != b.RawLength {
						t.Fatalf("pack %s: blob %s shares a segment in a version %d repository", pack.Short(), b.ID.Short(), version)
					}
				}
			}
			target := t.TempDir()
			rs, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: target})
			if err != nil || rs.Errors != 0 {
				t.Fatalf("restore: %v %+v", err, rs)
			}
			if err := backuptest.Compare(t, src.Root, filepath.Join(target, src.Root)); err != nil {
				t.Fatalf("restored tree differs:\n%v", err)
			}
		})
	}
}
