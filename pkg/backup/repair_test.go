package backup_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backuptest"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// TestRepairHealsDamagedData damages the pack holding a small file's
// data. Until a repair, a new backup of the same content refers to the
// damaged copy, even without the file cache. Repair drops the lost blob
// and keeps the intact ones; the next backup stores the content again,
// and with it the snapshot taken before the damage restores in full.
func TestRepairHealsDamagedData(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	small, big := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(small, "x"), []byte("hello, repair\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	backuptest.RandomFile(t, filepath.Join(big, "big"), 3<<20)
	first, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{small}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{big}}); err != nil {
		t.Fatal(err)
	}
	// The pack of the small file's data blob.
	var pack repository.ID
	var seg repository.PackBlob
	for id, blobs := range r.Internal().Index().Packs() {
		for _, b := range blobs {
			if b.Type == repository.DataBlob && b.RawLength == uint32(len("hello, repair\n")) {
				pack, seg = id, b
			}
		}
	}
	if seg.Length == 0 {
		t.Fatal("no pack holds the small file's blob")
	}
	r.Close()
	victim := filepath.Join(dir, "data", pack.String()[:2], pack.String())
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	b[seg.Offset+seg.Length/2] ^= 0x10
	if err := os.WriteFile(victim, b, 0o600); err != nil {
		t.Fatal(err)
	}

	r = open(t, dir)
	again := filepath.Join(big, "again")
	if err := os.WriteFile(again, []byte("hello, repair\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{big}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Dump(ctx, "latest", again, io.Discard); err == nil {
		t.Fatal("dump of content deduplicated against a damaged blob succeeded before repair")
	}

	dry, err := r.Repair(ctx, backup.RepairOptions{DryRun: true})
	if err != nil || dry.PacksDamaged != 1 || dry.BlobsLost != 1 {
		t.Fatalf("repair --dry-run: %+v %v", dry, err)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Fatalf("dry run removed the damaged pack: %v", err)
	}
	res, err := r.Repair(ctx, backup.RepairOptions{})
	if err != nil || res.PacksDamaged != 1 || res.BlobsLost != 1 || len(res.Affected) != 2 {
		t.Fatalf("repair: %+v %v", res, err)
	}
	if _, err := os.Stat(victim); !os.IsNotExist(err) {
		t.Fatalf("damaged pack still there after repair: %v", err)
	}
	// The intact blobs of the damaged pack were kept: only the lost
	// blob is missing.
	chk, err := r.Check(ctx, backup.CheckOptions{ReadData: true})
	if err != nil || len(chk.Errors) != 2 {
		t.Fatalf("check after repair, before the next backup: %+v %v", chk, err)
	}

	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{small}}); err != nil {
		t.Fatal(err)
	}
	chk, err = r.Check(ctx, backup.CheckOptions{ReadData: true})
	if err != nil || !chk.OK() {
		t.Fatalf("check after repair and a backup: %+v %v", chk, err)
	}
	target := t.TempDir()
	if _, err := r.Restore(ctx, first.SnapshotID, backup.RestoreOptions{Target: target}); err != nil {
		t.Fatalf("restore of the snapshot taken before the damage: %v", err)
	}
	if err := backuptest.Compare(t, small, filepath.Join(target, small)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Prune(ctx, backup.PruneOptions{MaxUnused: new(0.0)}); err != nil {
		t.Fatalf("prune after repair: %v", err)
	}
}
