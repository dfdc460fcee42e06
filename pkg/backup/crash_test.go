package backup_test

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backuptest"
)

// TestCrashChild is the subprocess TestKill9 kills: it backs up
// $CRASH_SRC into $CRASH_REPO forever.
func TestCrashChild(t *testing.T) {
	repo, src := os.Getenv("CRASH_REPO"), os.Getenv("CRASH_SRC")
	if repo == "" {
		t.Skip("run by TestKill9")
	}
	r, err := backup.Open(context.Background(), repo, backuptest.Password, backup.OpenOptions{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := r.Backup(context.Background(), backup.BackupOptions{Paths: []string{src}}); err != nil {
			t.Fatal(err)
		}
	}
}

func countPacks(dir string) int {
	n := 0
	_ = filepath.Walk(filepath.Join(dir, "data"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && !strings.HasPrefix(fi.Name(), ".tmp-") {
			n++
		}
		return nil
	})
	return n
}

// TestKill9 kills a backup process with SIGKILL at random points (after a
// random number of packs reached the disk) and checks each time that the
// repository passes check --read-data and that the next backup reuses
// the packs already written.
func TestKill9(t *testing.T) {
	dir, r := newRepo(t)
	src := t.TempDir()
	for i := range 24 {
		backuptest.RandomFile(t, filepath.Join(src, fmt.Sprintf("f%02d", i)), 512<<10)
	}
	r.Close()
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for round := range 3 {
		if round > 0 {
			// New data, so the killed run has packs to write.
			for i := range 12 {
				backuptest.RandomFile(t, filepath.Join(src, fmt.Sprintf("round%d", round), fmt.Sprintf("f%02d", i)), 512<<10)
			}
		}
		before := countPacks(dir)
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "CRASH_REPO="+dir, "CRASH_SRC="+src)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		target := before + 1 + rnd.IntN(8)
		testenv.WaitFor(t, 60*time.Second, func() error {
			if n := countPacks(dir); n < target {
				return fmt.Errorf("%d packs, waiting for %d", n, target)
			}
			return nil
		})
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		t.Logf("round %d: killed after %d packs", round, countPacks(dir))

		r := open(t, dir)
		ctx := context.Background()
		res, err := r.Check(ctx, backup.CheckOptions{ReadData: true})
		if err != nil || !res.OK() {
			t.Fatalf("round %d: check after kill -9: %+v %v", round, res, err)
		}
		packs := countPacks(dir)
		sum, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}})
		if err != nil {
			t.Fatalf("round %d: backup after kill -9 (stale lock must be broken): %v", round, err)
		}
		// Everything the killed run packed is reused: each of its packs
		// (but one, which may hold only trees) holds a 512 KiB chunk that
		// is not added again.
		total := 24 + 12*round // 512 KiB files to back up
		if limit := int64(total-(packs-1)+1) * 512 << 10; sum.BytesAdded > max(limit, 64<<10) {
			t.Fatalf("round %d: added %d bytes, but %d packs existed (limit %d): packs not reused", round, sum.BytesAdded, packs, limit)
		}
		r.Close()
	}
	// Whatever temporary files of packs, index files and snapshots the
	// kills left (a kill between writing a pack and renaming it leaves
	// one), prune removes them and only them.
	temps := tempFiles(t, dir)
	r = open(t, dir)
	res, err := r.Prune(context.Background(), backup.PruneOptions{})
	if err != nil || res.TempFiles != len(temps) {
		t.Fatalf("prune after kill -9 with %d temporary files: %+v %v", len(temps), res, err)
	}
	if left := tempFiles(t, dir); len(left) != 0 {
		t.Fatalf("temporary files left after prune: %v", left)
	}
	if chk, err := r.Check(context.Background(), backup.CheckOptions{ReadData: true}); err != nil || !chk.OK() || len(chk.Warnings) > 1 {
		t.Fatalf("check after prune: %+v %v", chk, err)
	}
}

// tempFiles lists the temporary files of packs, index files and
// snapshots under dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"data", "index", "snapshots"} {
		err := filepath.WalkDir(filepath.Join(dir, sub), func(p string, d fs.DirEntry, err error) error {
			if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
				out = append(out, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}
