package backup_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backuptest"
)

// TestDiskFull puts the repository on an 8 MiB tmpfs and backs up more
// than fits: the run fails with ENOSPC, the repository stays consistent,
// and the earlier snapshot still restores.
func TestDiskFull(t *testing.T) {
	testenv.RequireRoot(t)
	mnt := testenv.TempDir(t)
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=8m,mode=0700"); err != nil {
		testenv.Require(t, "tmpfs mount", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	ctx := context.Background()
	dir := filepath.Join(mnt, "repo")
	if err := backup.Init(ctx, dir, backuptest.Password, backup.InitOptions{KDF: backuptest.FastKDF(), PackSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	r := open(t, dir)
	small := t.TempDir()
	backuptest.RandomFile(t, filepath.Join(small, "a"), 1<<20)
	first, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{small}})
	if err != nil {
		t.Fatal(err)
	}
	big := t.TempDir()
	for _, n := range []string{"x", "y", "z"} {
		backuptest.RandomFile(t, filepath.Join(big, n), 4<<20)
	}
	_, err = r.Backup(ctx, backup.BackupOptions{Paths: []string{big}})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("backup onto a full disk: %v, want ENOSPC", err)
	}
	r.Close()
	r2 := open(t, dir)
	if res, err := r2.Check(ctx, backup.CheckOptions{ReadData: true}); err != nil || !res.OK() {
		t.Fatalf("check after disk full: %+v %v", res, err)
	}
	snaps, _ := r2.Snapshots(ctx)
	if len(snaps) != 1 {
		t.Fatalf("%d snapshots, want the first only", len(snaps))
	}
	target := t.TempDir()
	if _, err := r2.Restore(ctx, first.SnapshotID, backup.RestoreOptions{Target: target}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(target, small, "a")); err != nil {
		t.Fatal(err)
	}
}
