package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backuptest"
	"github.com/hostd/hostd/pkg/backup/repository"
	"github.com/hostd/hostd/pkg/backup/restorer"
)

// flipByte flips one byte in the middle of the first file under dir/sub.
func flipFirst(t *testing.T, dir, sub string) string {
	t.Helper()
	var victim string
	_ = filepath.Walk(filepath.Join(dir, sub), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && victim == "" && !strings.HasPrefix(fi.Name(), ".") {
			victim = p
		}
		return nil
	})
	if victim == "" {
		t.Fatalf("no file under %s", sub)
	}
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 0x40
	if err := os.WriteFile(victim, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Base(victim)
}

func TestFlippedBytes(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		sub  string
	}{
		{"pack", "data"},
		{"index", "index"},
		{"snapshot", "snapshots"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, r := newRepo(t)
			src := t.TempDir()
			// Files of several chunks; chunks of different files may
			// share a segment, so damage can reach more than one file.
			for _, n := range []string{"a", "b", "c", "d"} {
				backuptest.RandomFile(t, filepath.Join(src, n), 1500<<10)
			}
			if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{filepath.Join(src, "a")}}); err != nil {
				t.Fatal(err)
			}
			// For packs, damage one holding only file data (damaged trees
			// make whole directories unrestorable, tested by check only).
			var dataPack string
			for id, blobs := range r.Internal().Index().Packs() {
				onlyData := len(blobs) > 0
				for _, b := range blobs {
					if b.Type != repository.DataBlob {
						onlyData = false
					}
				}
				if onlyData {
					dataPack = filepath.Join("data", id.String()[:2], id.String())
				}
			}
			r.Close()
			sub := tc.sub
			if tc.name == "pack" {
				if dataPack == "" {
					t.Fatal("no pack with only data blobs")
				}
				sub = dataPack
			}
			name := flipFirst(t, dir, sub)
			r2 := open(t, dir)
			res, err := r2.Check(ctx, backup.CheckOptions{ReadData: true})
			if err != nil {
				t.Fatal(err)
			}
			if res.OK() {
				t.Fatalf("check passed with a flipped byte in %s/%s", tc.sub, name)
			}
			named := false
			for _, p := range res.Errors {
				if strings.Contains(p.Object, name) {
					named = true
				}
			}
			if !named {
				t.Fatalf("check errors do not name %s: %v", name, res.Errors)
			}
			if tc.name == "pack" && len(res.Affected) == 0 {
				t.Fatalf("damaged pack reported without affected files: %+v", res)
			}
			// Restoring what is intact still works.
			snaps, err := r2.Snapshots(ctx)
			if err != nil || len(snaps) == 0 {
				t.Fatalf("snapshots after damage: %v %v", snaps, err)
			}
			target := t.TempDir()
			sum, err := r2.Restore(ctx, snaps[0].ID, backup.RestoreOptions{Target: target, Warn: func(string, error) {}})
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			// Exactly the files check named as affected in that snapshot
			// fail (the flipped byte hits one segment, and check narrows
			// the damage to it), and the others come back.
			affected := int64(0)
			for _, a := range res.Affected {
				if a.Snapshot == snaps[0].ID {
					affected = int64(len(a.Paths))
				}
			}
			if tc.name == "pack" && affected == 0 {
				t.Fatalf("no affected files named for snapshot %s: %+v", snaps[0].ID, res.Affected)
			}
			if tc.name == "pack" && (sum.Errors < 1 || sum.Errors != affected || sum.Files+sum.Errors != 4) ||
				tc.name != "pack" && (sum.Errors != 0 || sum.Files < 1) {
				t.Fatalf("restore summary %+v (affected: %+v)", sum, res.Affected)
			}
		})
	}
}

// TestFlippedByteNarrowedToSegment damages one segment of a pack that
// holds several: check names only the files with data in that segment,
// and those are exactly the files a restore cannot bring back.
func TestFlippedByteNarrowedToSegment(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	if err := backup.Init(ctx, dir, backuptest.Password, backup.InitOptions{KDF: backuptest.FastKDF(), PackSize: 16 << 20}); err != nil {
		t.Fatal(err)
	}
	r := open(t, dir)
	src := t.TempDir()
	const files = 8
	for i := range files {
		backuptest.RandomFile(t, filepath.Join(src, fmt.Sprintf("f%d", i)), 1<<20)
	}
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
		t.Fatal(err)
	}
	// The pack with the most data segments; damage the middle of one.
	var pack repository.ID
	var segs []repository.PackBlob
	for id, blobs := range r.Internal().Index().Packs() {
		var s []repository.PackBlob
		seen := map[uint32]bool{}
		for _, b := range blobs {
			if b.Type == repository.DataBlob && !seen[b.Offset] {
				seen[b.Offset] = true
				s = append(s, b)
			}
		}
		if len(s) > len(segs) {
			pack, segs = id, s
		}
	}
	if len(segs) < 2 {
		t.Fatalf("no pack with two data segments or more")
	}
	r.Close()
	victim := filepath.Join(dir, "data", pack.String()[:2], pack.String())
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	b[segs[0].Offset+segs[0].Length/2] ^= 0x01
	if err := os.WriteFile(victim, b, 0o600); err != nil {
		t.Fatal(err)
	}

	r = open(t, dir)
	res, err := r.Check(ctx, backup.CheckOptions{ReadData: true})
	if err != nil || res.OK() || len(res.DamagedPacks) != 1 || len(res.Affected) != 1 {
		t.Fatalf("check: %+v %v", res, err)
	}
	named := len(res.Affected[0].Paths)
	for _, p := range res.Affected[0].Paths {
		if filepath.Dir(p) != src {
			t.Errorf("check names %q, not a file of the damaged segment (the pack's trees are intact)", p)
		}
	}
	if named < 1 || named >= files {
		t.Fatalf("check names %d of %d files (the damaged segment is one of %d in its pack): %v", named, files, len(segs), res.Affected[0].Paths)
	}
	sum, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: t.TempDir(), Warn: func(string, error) {}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Errors != int64(named) || sum.Files != int64(files-named) {
		t.Fatalf("restore: %d files, %d errors; check named %d: %v", sum.Files, sum.Errors, named, res.Affected[0].Paths)
	}
}

func TestRestoreRefusesNonEmptyTarget(t *testing.T) {
	ctx := context.Background()
	_, r, src, _ := newRepoWithFile(t)
	target := t.TempDir()
	keep := filepath.Join(target, "precious")
	if err := os.WriteFile(keep, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: target})
	if !errors.Is(err, restorer.ErrTargetNotEmpty) {
		t.Fatalf("err = %v, want ErrTargetNotEmpty", err)
	}
	if b, _ := os.ReadFile(keep); string(b) != "keep me" {
		t.Fatal("target changed")
	}
	if _, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: target, Overwrite: true}); err != nil {
		t.Fatalf("restore with overwrite: %v", err)
	}
	got, _ := os.ReadFile(filepath.Join(target, src, "f"))
	want, _ := os.ReadFile(filepath.Join(src, "f"))
	if !bytes.Equal(got, want) {
		t.Fatal("overwrite restore differs")
	}
}

func TestUnreadableSourceIsPartial(t *testing.T) {
	if os.Geteuid() == 0 {
		// Root reads every file: run this test again as nobody.
		runAsNobody(t, "^TestUnreadableSourceIsPartial$")
		return
	}
	ctx := context.Background()
	_, r := newRepo(t)
	src := t.TempDir()
	backuptest.RandomFile(t, filepath.Join(src, "ok"), 100)
	backuptest.RandomFile(t, filepath.Join(src, "secret"), 100)
	backuptest.RandomFile(t, filepath.Join(src, "closed/inside"), 100)
	if err := os.Chmod(filepath.Join(src, "secret"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "closed"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(src, "closed"), 0o755) })
	var warned []string
	sum, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}, Warn: func(p string, err error) { warned = append(warned, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Errors != 2 || len(warned) != 2 || sum.SnapshotID == "" || sum.FilesNew != 1 {
		t.Fatalf("summary %+v warned %v", sum, warned)
	}
	if got := filepath.Base(warned[0]) + " " + filepath.Base(warned[1]); got != "closed secret" {
		t.Fatalf("warnings %v do not name the unreadable directory and file", warned)
	}
}

func TestMissingSourcePath(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	src := t.TempDir()
	backuptest.RandomFile(t, filepath.Join(src, "ok"), 100)
	if err := os.Symlink("/proc/self/fd/999999/nothing", filepath.Join(src, "dangling")); err != nil {
		t.Fatal(err)
	}
	// One missing path of several makes the backup partial
	// (TestMissingSourceIsPartial); when none exists, it fails.
	sum, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{filepath.Join(src, "missing-later"), filepath.Join(src, "dangling", "below")}})
	if err == nil {
		t.Fatalf("backup of missing source paths succeeded: %+v", sum)
	}
	if snaps, _ := r.Snapshots(ctx); len(snaps) != 0 {
		t.Fatalf("a failed backup wrote a snapshot")
	}
}

func TestLocks(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	src := t.TempDir()
	backuptest.RandomFile(t, filepath.Join(src, "f"), 100)
	// An exclusive lock held by a live process (this one) blocks backup.
	lock, err := r.Internal().Lock(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	r2 := open(t, dir)
	if _, err := r2.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); !errors.Is(err, backup.ErrLocked) {
		t.Fatalf("backup under exclusive lock: %v", err)
	}
	if err := lock.Unlock(); err != nil {
		t.Fatal(err)
	}
	// Shared locks coexist; prune (exclusive) is refused meanwhile.
	shared, err := r.Internal().Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
		t.Fatalf("backup beside a shared lock: %v", err)
	}
	if _, err := r2.Prune(ctx, backup.PruneOptions{}); !errors.Is(err, backup.ErrLocked) {
		t.Fatalf("prune beside a shared lock: %v", err)
	}
	// break-lock without --all keeps a live lock; with it removes it.
	if got, _ := r2.BreakLocks(ctx, false); len(got) != 0 {
		t.Fatalf("broke a live lock: %v", got)
	}
	if got, _ := r2.BreakLocks(ctx, true); len(got) != 1 {
		t.Fatalf("break-lock --all removed %d", len(got))
	}
	_ = shared.Unlock()
	// A stale lock (too old) is broken automatically.
	old, err := backup.Open(ctx, dir, backuptest.Password, backup.OpenOptions{Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := old.Internal().Lock(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Prune(ctx, backup.PruneOptions{}); err != nil {
		t.Fatalf("prune did not break a stale lock: %v", err)
	}
}

func TestForgetPrune(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	src := t.TempDir()
	for i := range 4 {
		backuptest.RandomFile(t, filepath.Join(src, "f"), 700<<10)
		if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}, Tags: []string{string(rune('a' + i))}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Forget(ctx, backup.RetentionPolicy{}, false); err == nil {
		t.Fatal("empty policy accepted")
	}
	dry, err := r.Forget(ctx, backup.RetentionPolicy{Last: 1}, true)
	if err != nil || len(dry.Remove) != 3 {
		t.Fatalf("dry run %+v %v", dry, err)
	}
	if s, _ := r.Snapshots(ctx); len(s) != 4 {
		t.Fatal("dry run removed snapshots")
	}
	if _, err := r.Forget(ctx, backup.RetentionPolicy{Last: 1}, false); err != nil {
		t.Fatal(err)
	}
	res, freed := pruneAndVerify(t, r, src, backup.PruneOptions{})
	if res.PacksDeleted+res.PacksRepacked == 0 || freed <= 0 {
		t.Fatalf("prune freed nothing: %+v, %d bytes", res, freed)
	}
}

// TestPruneRemovesTempFiles plants the temporary files a crash between
// writing and renaming leaves (a pack, an index file, an old lock): check
// warns of them, prune --dry-run counts them and prune removes them, and
// nothing else. A fresh temporary file of a key, which is written
// without a lock, may be a write under way and stays.
func TestPruneRemovesTempFiles(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	src := t.TempDir()
	backuptest.RandomFile(t, filepath.Join(src, "f"), 300<<10)
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
		t.Fatal(err)
	}
	temps := []string{"data/5e/.tmp-5e5e5e5e5e5e5e5e", "index/.tmp-0123456789abcdef", "locks/.tmp-00000000000000aa"}
	fresh := "keys/.tmp-00000000000000bb"
	for _, rel := range append(temps, fresh) {
		if err := os.WriteFile(filepath.Join(dir, rel), make([]byte, 1000), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-backup.TempFileAge - time.Minute)
	if err := os.Chtimes(filepath.Join(dir, temps[2]), old, old); err != nil {
		t.Fatal(err)
	}
	chk, err := r.Check(ctx, backup.CheckOptions{})
	if err != nil || !chk.OK() || len(chk.Warnings) != 1 || !strings.Contains(chk.Warnings[0].Message, "4 temporary files (4000 bytes)") {
		t.Fatalf("check with temporary files: %+v %v", chk, err)
	}
	res, err := r.Prune(ctx, backup.PruneOptions{DryRun: true})
	if err != nil || res.TempFiles != 3 || res.TempBytes != 3000 {
		t.Fatalf("prune --dry-run: %+v %v", res, err)
	}
	for _, rel := range temps {
		if _, err := os.Stat(filepath.Join(dir, rel)); err != nil {
			t.Fatalf("dry run removed %s: %v", rel, err)
		}
	}
	res, _ = pruneAndVerify(t, r, src, backup.PruneOptions{})
	if res.TempFiles != 3 || res.PacksDeleted != 0 {
		t.Fatalf("prune: %+v", res)
	}
	for _, rel := range temps {
		if _, err := os.Stat(filepath.Join(dir, rel)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s left after prune: %v", rel, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, fresh)); err != nil {
		t.Fatalf("prune removed %s, which may be a write under way: %v", fresh, err)
	}
	if chk, err := r.Check(ctx, backup.CheckOptions{}); err != nil || len(chk.Warnings) != 1 || !strings.Contains(chk.Warnings[0].Message, "1 temporary files") {
		t.Fatalf("check after prune: %+v %v", chk, err)
	}
}

// pruneAndVerify prunes with opts, then requires check --read-data to pass
// and the latest snapshot to restore as src is now. It returns the prune
// result and how many pack bytes it freed.
func pruneAndVerify(t *testing.T, r *backup.Repository, src string, opts backup.PruneOptions) (*backup.PruneResult, int64) {
	t.Helper()
	ctx := context.Background()
	before, _ := r.Stats(ctx)
	res, err := r.Prune(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := r.Stats(ctx)
	chk, err := r.Check(ctx, backup.CheckOptions{ReadData: true})
	if err != nil || !chk.OK() {
		t.Fatalf("check after prune: %+v %v", chk, err)
	}
	target := t.TempDir()
	if _, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: target}); err != nil {
		t.Fatal(err)
	}
	if err := backuptest.Compare(t, src, filepath.Join(target, src)); err != nil {
		t.Fatalf("restore after prune: %v", err)
	}
	return res, before.PackBytes - after.PackBytes
}

func TestCancelCheckpoints(t *testing.T) {
	dir, r := newRepo(t)
	src := t.TempDir()
	for i := range 12 {
		backuptest.RandomFile(t, filepath.Join(src, string(rune('a'+i))), 1<<20)
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}, ProgressInterval: time.Millisecond,
		Progress: func(p backup.Progress) {
			if p.BytesAdded > 4<<20 {
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if s, _ := r.Snapshots(context.Background()); len(s) != 0 {
		t.Fatal("cancelled backup wrote a snapshot")
	}
	r.Close()
	r2 := open(t, dir)
	st, _ := r2.Stats(context.Background())
	if st.Packs == 0 || st.IndexFiles == 0 {
		t.Fatalf("no checkpoint: %+v", st)
	}
	sum, err := r2.Backup(context.Background(), backup.BackupOptions{Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.BytesAdded >= 12<<20 {
		t.Fatalf("second run re-added everything (%d bytes): checkpoint not reused", sum.BytesAdded)
	}
	if chk, err := r2.Check(context.Background(), backup.CheckOptions{ReadData: true}); err != nil || !chk.OK() {
		t.Fatalf("check: %+v %v", chk, err)
	}
}

// runAsNobody runs the tests matching pattern in a child process as uid
// and gid 65534 and fails if they fail there.
func runAsNobody(t *testing.T, pattern string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp("", "hostd-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(tmp) })
	if err := os.Chmod(tmp, 0o777); err != nil {
		t.Fatal(err)
	}
	// The test binary must be reachable by nobody.
	bin := filepath.Join(tmp, "test.bin")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run="+pattern, "-test.count=1", "-test.v")
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "HOME="+tmp, "XDG_CACHE_HOME="+tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}

func TestFlippedConfig(t *testing.T) {
	dir, r := newRepo(t)
	r.Close()
	flipFirst(t, dir, "config")
	_, err := backup.Open(context.Background(), dir, backuptest.Password, backup.OpenOptions{})
	if err == nil || !strings.Contains(err.Error(), "config") || errors.Is(err, backup.ErrWrongPassword) {
		t.Fatalf("open with a damaged config: %v", err)
	}
}

// Small files share segments; prune repacks the live ones out of
// segments that also hold forgotten files, and what is left restores.
func TestPruneSharedSegments(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	src := t.TempDir()
	for i := range 300 {
		backuptest.RandomFile(t, filepath.Join(src, fmt.Sprintf("f%03d", i)), 3000+i)
	}
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i += 2 {
		backuptest.RandomFile(t, filepath.Join(src, fmt.Sprintf("f%03d", i)), 2000+i)
	}
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Forget(ctx, backup.RetentionPolicy{Last: 1}, false); err != nil {
		t.Fatal(err)
	}
	res, freed := pruneAndVerify(t, r, src, backup.PruneOptions{MaxUnused: new(0.0)})
	if res.PacksRepacked == 0 || freed <= 0 {
		t.Fatalf("prune repacked nothing: %+v, %d bytes freed", res, freed)
	}
}
