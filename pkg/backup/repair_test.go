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

// TestRepairDamageKinds: a pack cut short (its header gone), a pack
// deleted, an index file damaged or deleted. Repair saves what is intact
// (from the index's offsets when a header is gone), drops what is lost,
// writes a complete index, and after the next backup the snapshot taken
// before the damage restores in full.
func TestRepairDamageKinds(t *testing.T) {
	tests := []struct {
		name                 string
		damage               func(t *testing.T, dir, pack string)
		damaged, missing     int
		lost                 bool
		checkOKBeforeHealing bool
	}{
		{"pack truncated", func(t *testing.T, dir, pack string) {
			fi, err := os.Stat(pack)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(pack, fi.Size()-10); err != nil {
				t.Fatal(err)
			}
		}, 1, 0, false, true},
		{"pack deleted", func(t *testing.T, dir, pack string) {
			if err := os.Remove(pack); err != nil {
				t.Fatal(err)
			}
		}, 0, 1, true, false},
		{"index damaged", func(t *testing.T, dir, _ string) {
			idx, _ := filepath.Glob(filepath.Join(dir, "index", "*"))
			b, err := os.ReadFile(idx[0])
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x01
			if err := os.WriteFile(idx[0], b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, 0, 0, false, true},
		{"index deleted", func(t *testing.T, dir, _ string) {
			idx, _ := filepath.Glob(filepath.Join(dir, "index", "*"))
			for _, f := range idx {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
		}, 0, 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			dir, r := newRepo(t)
			src := t.TempDir()
			for _, n := range []string{"a", "b", "c"} {
				backuptest.RandomFile(t, filepath.Join(src, n), 900<<10)
			}
			first, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}})
			if err != nil {
				t.Fatal(err)
			}
			// A pack holding only data, so that the snapshot's trees stay.
			var pack string
			for id, blobs := range r.Internal().Index().Packs() {
				onlyData := true
				for _, b := range blobs {
					onlyData = onlyData && b.Type == repository.DataBlob
				}
				if onlyData {
					pack = filepath.Join(dir, "data", id.String()[:2], id.String())
				}
			}
			if pack == "" {
				t.Fatal("no pack with only data")
			}
			r.Close()
			tt.damage(t, dir, pack)

			r = open(t, dir)
			res, err := r.Repair(ctx, backup.RepairOptions{})
			if err != nil || res.PacksDamaged != tt.damaged || res.PacksMissing != tt.missing || (res.BlobsLost > 0) != tt.lost {
				t.Fatalf("repair: %+v %v", res, err)
			}
			if chk, err := r.Check(ctx, backup.CheckOptions{ReadData: true}); err != nil || chk.OK() != tt.checkOKBeforeHealing || len(chk.Warnings) != 0 {
				t.Fatalf("check after repair: %+v %v", chk, err)
			}
			again, err := r.Repair(ctx, backup.RepairOptions{})
			if err != nil || again.PacksDamaged+again.PacksMissing+again.IndexFiles+again.PacksWritten != 0 {
				t.Fatalf("second repair changed something: %+v %v", again, err)
			}
			if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
				t.Fatal(err)
			}
			if chk, err := r.Check(ctx, backup.CheckOptions{ReadData: true}); err != nil || !chk.OK() {
				t.Fatalf("check after repair and a backup: %+v %v", chk, err)
			}
			target := t.TempDir()
			if _, err := r.Restore(ctx, first.SnapshotID, backup.RestoreOptions{Target: target}); err != nil {
				t.Fatal(err)
			}
			if err := backuptest.Compare(t, src, filepath.Join(target, src)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
