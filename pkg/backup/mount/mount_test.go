package mount_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backuptest"
	"github.com/hostd/hostd/pkg/backup/mount"
)

// needFUSE skips the test where FUSE cannot be mounted.
func needFUSE(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no FUSE: %v", err)
	}
	f.Close()
	if _, err := exec.LookPath("fusermount3"); err != nil {
		if _, err := exec.LookPath("fusermount"); err != nil {
			t.Skip("no fusermount3 (Debian: fuse3)")
		}
	}
}

// mounted backs up a test tree (with what prep, if not nil, adds to it)
// twice (tags, hosts), mounts the repository and returns the source tree
// and the mount point; the mount is undone when the test ends.
func mounted(t *testing.T, o mount.Options, prep func(root string)) (backuptest.Tree, string, *mount.Mounted) {
	t.Helper()
	needFUSE(t)
	ctx := context.Background()
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	if err := backup.Init(ctx, repo, backuptest.Password, backup.InitOptions{KDF: backuptest.FastKDF(), PackSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	r, err := backup.Open(ctx, repo, backuptest.Password, backup.OpenOptions{CacheDir: filepath.Join(dir, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	src := backuptest.MakeTree(t, dir)
	if prep != nil {
		prep(src.Root)
	}
	for _, bo := range []backup.BackupOptions{
		{Paths: []string{src.Root}, Hostname: "h1", Tags: []string{"daily"}},
		{Paths: []string{src.Root}, Hostname: "h2", Tags: []string{"weekly", "a/b"}},
	} {
		if _, err := r.Backup(ctx, bo); err != nil {
			t.Fatal(err)
		}
	}
	mp := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := mount.Mount(ctx, r.Internal(), mp, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
		m.Wait()
	})
	return src, mp, m
}

func TestMountMatchesSource(t *testing.T) {
	src, mp, m := mounted(t, mount.Options{}, nil)
	if m.Snapshots != 2 {
		t.Fatalf("mounted %d snapshots, want 2", m.Snapshots)
	}
	latest := filepath.Join(mp, "snapshots", "latest", src.Root)
	// Modes, owners, sizes, contents, mtimes, link targets, devices,
	// xattrs and hard link groups, as restore must give them.
	if err := backuptest.Compare(t, src.Root, latest); err != nil {
		t.Fatalf("mounted snapshot differs from the source:\n%v", err)
	}
	// diff compares no FIFOs or devices (Compare did).
	if out, err := exec.Command("diff", "-r", "--no-dereference", "-x", "fifo", "-x", "null-dev", src.Root, latest).CombinedOutput(); err != nil {
		t.Fatalf("diff -r: %v\n%s", err, out)
	}
	// stat(1) of a few files agrees with the source.
	// (A directory's size is the file system's business: not compared.)
	for _, rel := range []string{"small.txt", "big.bin", "setgid", "link-rel", "deep/a/b/c/d/file", "emptydir"} {
		format := "%F %a %u %g %s %Y %y"
		if rel == "emptydir" {
			format = "%F %a %u %g %Y %y"
		}
		want, err := exec.Command("stat", "-c", format, filepath.Join(src.Root, rel)).Output()
		if err != nil {
			t.Fatal(err)
		}
		got, err := exec.Command("stat", "-c", format, filepath.Join(latest, rel)).Output()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("stat %s: %q, source %q", rel, got, want)
		}
	}
	// Reads at odd offsets across blob boundaries.
	want, err := os.ReadFile(filepath.Join(src.Root, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(latest, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, off := range []int64{0, 1, 511 << 10, 1<<20 + 7, int64(len(want)) - 3, int64(len(want))} {
		buf := make([]byte, 300<<10)
		n, err := f.ReadAt(buf, off)
		if err != nil && n == 0 && off < int64(len(want)) {
			t.Fatalf("read at %d: %v", off, err)
		}
		if string(buf[:n]) != string(want[off:min(off+int64(len(buf)), int64(len(want)))]) {
			t.Fatalf("read at %d: wrong bytes", off)
		}
	}
	// Read-only.
	if err := os.WriteFile(filepath.Join(latest, "small.txt"), []byte("x"), 0o644); err == nil {
		t.Fatal("write to the mount succeeded")
	}
}

func TestMountLayout(t *testing.T) {
	_, mp, _ := mounted(t, mount.Options{}, nil)
	ents, err := os.ReadDir(filepath.Join(mp, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 3 || !strings.Contains(strings.Join(names, " "), "latest") {
		t.Fatalf("snapshots/: %v", names)
	}
	latest, err := os.Readlink(filepath.Join(mp, "snapshots", "latest"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		link string
		want string
	}{
		{"hosts/h2/latest", "../../snapshots/" + latest},
		{"tags/weekly/latest", "../../snapshots/" + latest},
		{"tags/a_b/" + latest, "../../snapshots/" + latest}, // "/" in a tag
	}
	for _, tc := range tests {
		got, err := os.Readlink(filepath.Join(mp, tc.link))
		if err != nil || got != tc.want {
			t.Errorf("%s -> %q, %v; want %q", tc.link, got, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(mp, "hosts", "h1", "latest")); err != nil {
		t.Errorf("hosts/h1/latest does not resolve: %v", err)
	}
	if ents, err := os.ReadDir(filepath.Join(mp, "tags", "daily")); err != nil || len(ents) != 2 {
		t.Errorf("tags/daily: %d entries, %v", len(ents), err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(mp, &st); err != nil {
		t.Fatal(err)
	}
}

func TestMountFilter(t *testing.T) {
	_, mp, m := mounted(t, mount.Options{Filter: backup.SnapshotFilter{Hosts: []string{"h1"}}}, nil)
	if m.Snapshots != 1 {
		t.Fatalf("mounted %d snapshots, want 1", m.Snapshots)
	}
	if _, err := os.Stat(filepath.Join(mp, "hosts", "h2")); !os.IsNotExist(err) {
		t.Fatalf("hosts/h2 with a filter on h1: %v", err)
	}
}

// Many small files share segments: readers in parallel, with a cache
// that keeps nothing, one that evicts and reuses buffers while others
// read, and the default, all get the source's bytes.
func TestMountConcurrentReads(t *testing.T) {
	many := func(root string) {
		rnd := rand.New(rand.NewPCG(1, 2))
		for i := range 400 {
			data := make([]byte, rnd.IntN(40<<10))
			for j := range data {
				data[j] = byte('a' + rnd.IntN(8))
			}
			d := filepath.Join(root, "many", fmt.Sprint(i%7))
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%03d", i)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name  string
		bytes int
	}{
		{"nothing kept", 1 << 20},
		{"evicting", 12 << 20},
		{"default", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, mp, _ := mounted(t, mount.Options{BlobCacheBytes: tc.bytes}, many)
			latest := filepath.Join(mp, "snapshots", "latest", src.Root)
			var files []string
			err := filepath.WalkDir(src.Root, func(p string, e os.DirEntry, err error) error {
				if err == nil && e.Type().IsRegular() {
					files = append(files, strings.TrimPrefix(p, src.Root))
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			var g errgroup.Group
			for w := range 6 {
				g.Go(func() error {
					for i := range files {
						rel := files[(i+w*len(files)/6)%len(files)]
						got, err := os.ReadFile(filepath.Join(latest, rel))
						if err != nil {
							return err
						}
						want, err := os.ReadFile(filepath.Join(src.Root, rel))
						if err != nil {
							return err
						}
						if !bytes.Equal(got, want) {
							return fmt.Errorf("%s: content differs from the source", rel)
						}
					}
					return nil
				})
			}
			if err := g.Wait(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
