package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backuptest"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// TestRestoreIncludeMatchingNothing: a restore whose include paths match
// nothing fails and creates nothing, neither the directories leading to
// the includes nor a missing target.
func TestRestoreIncludeMatchingNothing(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	src := backuptest.MakeTree(t, t.TempDir()).Root
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
		t.Fatalf("backup: %v", err)
	}
	tests := []struct {
		name    string
		include []string
		missing bool // the target does not exist yet
	}{
		{"missing entry of a directory", []string{filepath.Join(src, "nope")}, false},
		{"missing entry, missing target", []string{filepath.Join(src, "nope")}, true},
		{"below a file", []string{filepath.Join(src, "small.txt", "x")}, false},
		{"below a symlink", []string{filepath.Join(src, "link-dir", "b")}, true},
		{"deep", []string{filepath.Join(src, "deep/a/b/c/nope/further")}, false},
		{"outside the snapshot", []string{"/elsewhere/entirely"}, true},
		{"several", []string{filepath.Join(src, "nope"), filepath.Join(src, "deep/nope")}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := t.TempDir()
			if tc.missing {
				target = filepath.Join(target, "not", "yet")
			}
			_, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: target, Include: tc.include})
			if err == nil || !strings.Contains(err.Error(), "match nothing") {
				t.Fatalf("err = %v, want include paths matching nothing", err)
			}
			if tc.missing {
				if _, err := os.Lstat(filepath.Dir(target)); !os.IsNotExist(err) {
					t.Fatalf("target created: %v", err)
				}
				return
			}
			if left := listFiles(t, target); left != target+" " {
				t.Fatalf("target changed: %s", left)
			}
		})
	}
}

// TestRestoreIncludeParents: the directories leading to an included path
// are restored with the metadata the snapshot recorded (mode, owner,
// mtime, xattrs), set after their contents as in a full restore; what is
// included is restored exactly.
func TestRestoreIncludeParents(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	tr := backuptest.MakeTree(t, t.TempDir())
	src := tr.Root
	// Modes no parent would get by accident (0700 is what mkdir uses),
	// and an xattr on a parent. Neither moves the mtimes MakeTree set.
	for p, mode := range map[string]os.FileMode{src: 0o751, filepath.Join(src, "deep"): 0o705, filepath.Join(src, "deep/a/b"): 0o755} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	if tr.HasXattrs {
		if err := unix.Lsetxattr(filepath.Join(src, "deep"), "user.parent", []byte("on the way"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
		t.Fatalf("backup: %v", err)
	}
	snap, err := r.Internal().FindSnapshot(ctx, "latest")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		include []string // relative to src
	}{
		{"file", []string{"deep/a/b/c/d/file"}},
		{"directory", []string{"deep/a"}},
		{"the source root", []string{"."}},
		{"two sharing parents", []string{"deep/a/b/c", "weird"}},
		{"one inside another", []string{"deep", "deep/a/b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := t.TempDir()
			var includes []string
			for _, inc := range tc.include {
				includes = append(includes, filepath.Join(src, inc))
			}
			rs, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: target, Include: includes})
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			if rs.Errors != 0 {
				t.Fatalf("restore summary %+v", rs)
			}
			parents := map[string]bool{}
			for _, inc := range includes {
				if err := backuptest.Compare(t, inc, filepath.Join(target, inc)); err != nil {
					t.Errorf("include %s restored differently:\n%v", inc, err)
				}
				for p := filepath.Dir(inc); p != "/"; p = filepath.Dir(p) {
					parents[p] = true
				}
			}
			for p := range parents {
				checkDirMeta(t, r.Internal(), snap, p, filepath.Join(target, p))
			}
		})
	}
}

// checkDirMeta compares the directory restored at dst with what the
// snapshot recorded for p.
func checkDirMeta(t *testing.T, repo *repository.Repository, snap *repository.Snapshot, p, dst string) {
	t.Helper()
	n, err := repo.FindNode(context.Background(), snap.Tree, p)
	if err != nil {
		t.Fatalf("find %s in snapshot: %v", p, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(dst, &st); err != nil {
		t.Fatalf("parent %s: %v", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Mode&0o7777 != n.Mode&0o7777 {
		t.Errorf("parent %s: mode %o, snapshot has %o", p, st.Mode, n.Mode)
	}
	if got := st.Mtim.Nano(); got != n.MTimeNs {
		t.Errorf("parent %s: mtime %s, snapshot has %s", p, time.Unix(0, got), time.Unix(0, n.MTimeNs))
	}
	if os.Geteuid() == 0 && (st.Uid != n.UID || st.Gid != n.GID) {
		t.Errorf("parent %s: owner %d:%d, snapshot has %d:%d", p, st.Uid, st.Gid, n.UID, n.GID)
	}
	for _, x := range n.Xattrs {
		buf := make([]byte, 4096)
		k, err := unix.Lgetxattr(dst, string(x.Name), buf)
		if err != nil || string(buf[:k]) != string(x.Value) {
			t.Errorf("parent %s: xattr %s = %q (%v), snapshot has %q", p, x.Name, buf[:max(k, 0)], err, x.Value)
		}
	}
}

// TestRestoreEmptyFile backs up empty files and restores them, in full
// and on their own. Whether the archiver records an empty file with no
// content or with the empty blob, it comes back empty with its metadata.
func TestRestoreEmptyFile(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	old := time.Date(2002, 3, 4, 5, 6, 7, 0, time.UTC)
	for name, mode := range map[string]os.FileMode{"empty": 0o600, "sub/empty-exec": 0o751, "sub/empty-ro": 0o444} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
		t.Fatalf("backup: %v", err)
	}
	snap, err := r.Internal().FindSnapshot(ctx, "latest")
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.Internal().FindNode(ctx, snap.Tree, filepath.Join(src, "empty"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the archiver records an empty file with %d content blobs", len(n.Content))
	tests := []struct {
		name    string
		include string // relative to src; empty: everything
	}{
		{"full", ""},
		{"directory", "sub"},
		{"file", "sub/empty-exec"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := t.TempDir()
			opts := backup.RestoreOptions{Target: target}
			from := src
			if tc.include != "" {
				from = filepath.Join(src, tc.include)
				opts.Include = []string{from}
			}
			rs, err := r.Restore(ctx, "latest", opts)
			if err != nil || rs.Errors != 0 {
				t.Fatalf("restore: %v %+v", err, rs)
			}
			if err := backuptest.Compare(t, from, filepath.Join(target, from)); err != nil {
				t.Fatalf("restored tree differs:\n%v", err)
			}
		})
	}
}
