package backup_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backuptest"
	"github.com/hostd/hostd/pkg/backup/repository"
	"github.com/hostd/hostd/pkg/backup/restorer"
)

// packPath returns the file of pack id in the local repository dir.
func packPath(dir string, id repository.ID) string {
	return filepath.Join(dir, "data", id.String()[:2], id.String())
}

// blobLocation returns where the i-th content blob (negative: from the
// end) of file p in the latest snapshot is stored.
func blobLocation(t *testing.T, r *backup.Repository, p string, i int) repository.Location {
	t.Helper()
	ctx := context.Background()
	snap, err := r.Internal().FindSnapshot(ctx, "latest")
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.Internal().FindNode(ctx, snap.Tree, p)
	if err != nil {
		t.Fatal(err)
	}
	if i < 0 {
		i += len(n.Content)
	}
	loc, ok := r.Internal().Index().Lookup(repository.BlobHandle{Type: repository.DataBlob, ID: n.Content[i]})
	if !ok {
		t.Fatalf("blob %d of %s not indexed", i, p)
	}
	return loc
}

// flipAt flips one bit of the byte at off in file p.
func flipAt(t *testing.T, p string, off int64) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// namesUnder lists the names of the regular files below dir, relative.
func namesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRestoreDamagedFileLeftOut flips a byte late in the last data
// segment of a 3,000,000-byte file: the restore must not bring the file
// back under its name (zero-filled from the damage on, as it once did),
// must name it, and must count only the bytes of the files it restored.
func TestRestoreDamagedFileLeftOut(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	src := t.TempDir()
	backuptest.RandomFile(t, filepath.Join(src, "rand.bin"), 3_000_000)
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
		t.Fatal(err)
	}
	// Added by a second backup, so its data is in a pack of its own.
	backuptest.RandomFile(t, filepath.Join(src, "ok.bin"), 100_000)
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
		t.Fatal(err)
	}
	loc := blobLocation(t, r, filepath.Join(src, "rand.bin"), -1)
	if okLoc := blobLocation(t, r, filepath.Join(src, "ok.bin"), 0); okLoc.Pack == loc.Pack && okLoc.Offset == loc.Offset {
		t.Fatal("both files share the damaged segment")
	}
	r.Close()
	flipAt(t, packPath(dir, loc.Pack), int64(loc.Offset+loc.Length*3/4))

	for _, overwrite := range []bool{false, true} {
		target := t.TempDir()
		old := filepath.Join(target, src, "rand.bin")
		if overwrite {
			// An earlier version of the file stays as it was.
			if err := os.MkdirAll(filepath.Dir(old), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(old, []byte("earlier"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		r = open(t, dir)
		var warned []string
		sum, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: target, Overwrite: overwrite,
			Warn: func(p string, err error) { warned = append(warned, p+": "+err.Error()) }})
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		if sum.Errors != 1 || sum.Files != 1 || sum.Bytes != 100_000 {
			t.Errorf("overwrite=%v: summary %+v, want 1 file of 100000 bytes and 1 error", overwrite, sum)
		}
		if len(warned) != 1 || !strings.HasPrefix(warned[0], filepath.Join(target, src, "rand.bin")+": ") {
			t.Errorf("overwrite=%v: warnings %q do not name rand.bin alone", overwrite, warned)
		}
		got, err := os.ReadFile(old)
		switch {
		case overwrite && string(got) != "earlier":
			t.Errorf("overwrite: rand.bin replaced by %d bytes (%v), want the earlier version kept", len(got), err)
		case !overwrite && !errors.Is(err, fs.ErrNotExist):
			t.Errorf("damaged rand.bin restored under its name: %d bytes (%v)", len(got), err)
		}
		want, _ := os.ReadFile(filepath.Join(src, "ok.bin"))
		if got, _ := os.ReadFile(filepath.Join(target, src, "ok.bin")); !bytes.Equal(got, want) {
			t.Errorf("ok.bin not restored exactly")
		}
		for _, n := range namesUnder(t, target) {
			if strings.HasPrefix(filepath.Base(n), restorer.TempPrefix) {
				t.Errorf("temporary file left: %s", n)
			}
		}
		r.Close()
	}
}

// TestRestoreRemovesStaleTemps: the temporary files an interrupted
// restore leaves (kill -9) are removed by the next restore into the same
// target, and nothing else is.
func TestRestoreRemovesStaleTemps(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	src := t.TempDir()
	backuptest.RandomFile(t, filepath.Join(src, "sub", "f"), 1000)
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	stale := []string{filepath.Join(target, restorer.TempPrefix+"0a1b2c-7"), filepath.Join(target, src, "sub", restorer.TempPrefix+"0a1b2c-3")}
	keep := filepath.Join(target, src, "sub", "unrelated")
	for _, p := range append(stale, keep) {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: target, Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stale temporary file %s kept (%v)", p, err)
		}
	}
	if _, err := os.Lstat(keep); err != nil {
		t.Errorf("unrelated file removed: %v", err)
	}
}

// saveBomb stores, through the repository API (as a holder of the key
// could), levels tree blobs where tree i has two directories both naming
// tree i-1: 2^levels paths from a few dozen blobs. It returns the
// snapshot's ID.
func saveBomb(t *testing.T, repo *repository.Repository, levels int) string {
	t.Helper()
	ctx := context.Background()
	id, err := repo.SaveTree(ctx, &repository.Tree{})
	if err != nil {
		t.Fatal(err)
	}
	for range levels {
		sub := id
		tr := &repository.Tree{Nodes: []repository.Node{
			{Name: "a", Type: repository.NodeDir, Mode: 0o700, Subtree: &sub},
			{Name: "b", Type: repository.NodeDir, Mode: 0o700, Subtree: &sub},
		}}
		if id, err = repo.SaveTree(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := repo.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	snap := &repository.Snapshot{Time: time.Now(), Tree: id, Paths: []string{"/bomb"}, Hostname: "attacker"}
	sid, err := repo.SaveSnapshot(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	return sid.String()
}

// heapGrowth runs f and returns how far the live heap grew over it (its
// peak is not observable without timing; the live heap after f and the
// total allocated during it bound what f kept and churned).
func heapGrowth(f func()) (live, allocated uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	if after.HeapAlloc > before.HeapAlloc {
		live = after.HeapAlloc - before.HeapAlloc
	}
	return live, after.TotalAlloc - before.TotalAlloc
}

// TestTreeDAGBomb: 41 tree blobs naming each other twice expand to 2^40
// paths. Restore, ls and diff must stop at the walk limit with a clear
// error, having allocated memory in proportion to the limit; check and
// prune visit each tree once and see a healthy repository.
func TestTreeDAGBomb(t *testing.T) {
	ctx := context.Background()
	dir, good, bomb := bombRepo(t)

	const limit = 200_000
	r, err := backup.Open(ctx, dir, backuptest.Password, backup.OpenOptions{NoCache: true, Limits: repository.Limits{MaxNodes: limit}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// A walk of `limit` nodes of this tree allocates a few hundred bytes
	// a node; unbounded, it would not stop.
	const maxAlloc = 512 << 20
	wantErr := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, repository.ErrWalkLimit) {
			t.Fatalf("%s of the bomb: err = %v, want the walk limit", what, err)
		}
		if msg := err.Error(); !strings.Contains(msg, bomb[:8]) || !strings.Contains(msg, "expands past 200000 entries") || !strings.Contains(msg, "hostile or damaged") {
			t.Fatalf("%s: error %q does not name the snapshot and the limit", what, msg)
		}
	}
	tests := []struct {
		name string
		run  func() error
	}{
		{"restore", func() error {
			target := t.TempDir()
			_, err := r.Restore(ctx, bomb, backup.RestoreOptions{Target: target})
			if names, _ := os.ReadDir(target); len(names) != 0 {
				t.Errorf("restore of the bomb wrote into the target: %v", names)
			}
			return err
		}},
		{"ls", func() error { _, err := r.Ls(ctx, bomb, "/"); return err }},
		{"diff", func() error { _, err := r.Diff(ctx, good, bomb); return err }},
		{"diff reversed", func() error { _, err := r.Diff(ctx, bomb, good); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			_, alloc := heapGrowth(func() { err = tc.run() })
			wantErr(t, tc.name, err)
			if alloc > maxAlloc {
				t.Errorf("%s allocated %d MiB before stopping", tc.name, alloc>>20)
			}
		})
	}

	// The same bomb under the default limits: check and prune visit its
	// 41 trees once each.
	r2 := open(t, dir)
	res, err := r2.Check(ctx, backup.CheckOptions{})
	if err != nil || !res.OK() {
		t.Fatalf("check of a repository holding the bomb: %+v %v", res, err)
	}
	if _, err := r2.Prune(ctx, backup.PruneOptions{}); err != nil {
		t.Fatalf("prune of a repository holding the bomb: %v", err)
	}
	// The good snapshot is unharmed and the bomb's trees still there.
	if _, err := r2.Restore(ctx, good, backup.RestoreOptions{Target: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Internal().FindNode(ctx, mustSnapshot(t, r2, bomb).Tree, strings.Repeat("/a", 40)); err != nil {
		t.Fatalf("prune removed trees of the bomb: %v", err)
	}
}

func mustSnapshot(t *testing.T, r *backup.Repository, id string) *repository.Snapshot {
	t.Helper()
	s, err := r.Internal().FindSnapshot(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCheckPackSizeAndHeader: a plain check (without read-data) finds a
// pack cut short or grown by one byte, and a flipped byte in a pack's
// header, naming the pack; before, it found "no errors".
func TestCheckPackSizeAndHeader(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		damage func(t *testing.T, p string, size int64)
	}{
		{"truncated by one byte", func(t *testing.T, p string, size int64) {
			if err := os.Truncate(p, size-1); err != nil {
				t.Fatal(err)
			}
		}},
		{"grown by one byte", func(t *testing.T, p string, size int64) {
			if err := os.Truncate(p, size+1); err != nil {
				t.Fatal(err)
			}
		}},
		{"flipped header byte", func(t *testing.T, p string, size int64) { flipAt(t, p, size-4-20) }},
		{"flipped header length", func(t *testing.T, p string, size int64) { flipAt(t, p, size-4) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, r := newRepo(t)
			src := t.TempDir()
			backuptest.RandomFile(t, filepath.Join(src, "f"), 3_000_000)
			if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
				t.Fatal(err)
			}
			if res, err := r.Check(ctx, backup.CheckOptions{}); err != nil || !res.OK() {
				t.Fatalf("check before damage: %+v %v", res, err)
			}
			loc := blobLocation(t, r, filepath.Join(src, "f"), 0)
			r.Close()
			p := packPath(dir, loc.Pack)
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, p, fi.Size())
			r = open(t, dir)
			res, err := r.Check(ctx, backup.CheckOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.OK() {
				t.Fatalf("plain check found no errors in a pack %s", tc.name)
			}
			if len(res.Errors) != 1 || res.Errors[0].Object != "data/"+loc.Pack.String() {
				t.Fatalf("errors %v, want one naming data/%s", res.Errors, loc.Pack)
			}
		})
	}
}

// TestRestoreCrashChild is the subprocess TestRestoreKill9 kills: it
// restores the latest snapshot of $RESTORE_REPO into $RESTORE_TARGET and
// waits to be killed.
func TestRestoreCrashChild(t *testing.T) {
	repo, target := os.Getenv("RESTORE_REPO"), os.Getenv("RESTORE_TARGET")
	if repo == "" {
		t.Skip("run by TestRestoreKill9")
	}
	r, err := backup.Open(context.Background(), repo, backuptest.Password, backup.OpenOptions{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Restore(context.Background(), "latest", backup.RestoreOptions{Target: target, NoLock: true}); err != nil {
		t.Fatal(err)
	}
	select {}
}

// TestRestoreKill9 kills a restore with SIGKILL as soon as its first file
// appears: wherever the kill lands, every file under a real name is
// complete and exact (only temporary names hold partial content), and
// the next restore into the target removes the temporary files.
func TestRestoreKill9(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	src := t.TempDir()
	backuptest.RandomFile(t, filepath.Join(src, "big"), 24<<20)
	for _, n := range []string{"a", "b", "c"} {
		backuptest.RandomFile(t, filepath.Join(src, "small", n), 200<<10)
	}
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
		t.Fatal(err)
	}
	r.Close()
	target := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRestoreCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "RESTORE_REPO="+dir, "RESTORE_TARGET="+target)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	testenv.WaitFor(t, 60*time.Second, func() error {
		if len(namesUnder(t, target)) == 0 {
			return errors.New("no file restored yet")
		}
		return nil
	})
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	verify := func(after string) (temps int) {
		t.Helper()
		for _, n := range namesUnder(t, target) {
			if strings.HasPrefix(filepath.Base(n), restorer.TempPrefix) {
				temps++
				continue
			}
			rel, err := filepath.Rel(src, "/"+n)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(src, rel))
			if err != nil {
				t.Fatalf("%s: %s is not a file of the snapshot: %v", after, n, err)
			}
			if got, _ := os.ReadFile(filepath.Join(target, n)); !bytes.Equal(got, want) {
				t.Errorf("%s: %s differs from the snapshot (%d bytes, want %d)", after, n, len(got), len(want))
			}
		}
		return temps
	}
	t.Logf("after kill -9: %d temporary files", verify("after kill -9"))
	r = open(t, dir)
	if _, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: target, Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if temps := verify("after a second restore"); temps != 0 {
		t.Errorf("%d temporary files left after a second restore", temps)
	}
	if n := len(namesUnder(t, target)); n != 4 {
		t.Errorf("%d files after a second restore, want 4", n)
	}
}

// TestTreeDAGBombDefaultLimits walks the bomb under the default limits:
// the walks stop once they meet the same entries more than
// DefaultMaxExpansion times over, within DefaultExpansionFloor nodes,
// long before DefaultMaxWalkNodes and its gigabytes.
func TestTreeDAGBombDefaultLimits(t *testing.T) {
	ctx := context.Background()
	dir, good, bomb := bombRepo(t)
	r := open(t, dir)
	const maxAlloc = 512 << 20
	tests := []struct {
		name string
		run  func() error
	}{
		{"restore", func() error {
			_, err := r.Restore(ctx, bomb, backup.RestoreOptions{Target: t.TempDir()})
			return err
		}},
		{"ls", func() error { _, err := r.Ls(ctx, bomb, "/"); return err }},
		{"diff", func() error { _, err := r.Diff(ctx, good, bomb); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			_, alloc := heapGrowth(func() { err = tc.run() })
			if !errors.Is(err, repository.ErrWalkLimit) || !strings.Contains(err.Error(), "-fold") {
				t.Fatalf("%s of the bomb: err = %v, want the expansion limit", tc.name, err)
			}
			if alloc > maxAlloc {
				t.Errorf("%s allocated %d MiB before stopping", tc.name, alloc>>20)
			}
		})
	}
	// A real snapshot walks as before.
	if _, err := r.Restore(ctx, good, backup.RestoreOptions{Target: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
}

// bombRepo makes a repository holding one real snapshot and the DAG bomb
// (saveBomb, 40 levels) and returns its directory and both snapshot IDs.
func bombRepo(t *testing.T) (dir, good, bomb string) {
	t.Helper()
	dir, r, _, snap := newRepoWithFile(t)
	bomb = saveBomb(t, r.Internal(), 40)
	r.Close()
	return dir, snap.SnapshotID, bomb
}
