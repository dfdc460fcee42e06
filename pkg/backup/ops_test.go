package backup_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backuptest"
)

func TestExcludes(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	files := []string{"keep.txt", "a.o", "sub/b.o", "sub/keep.c", "cache/CACHEDIR.TAG", "cache/blob", "skipme/.nobackup", "skipme/x",
		"node/.cache/important/k", "node/.cache/junk"}
	for _, f := range files {
		backuptest.RandomFile(t, filepath.Join(src, f), 10)
	}
	if err := os.WriteFile(filepath.Join(src, "cache/CACHEDIR.TAG"), []byte("Signature: 8a477f597d28d172789f06886806bc55\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	patterns := filepath.Join(t.TempDir(), "patterns.lst")
	if err := os.WriteFile(patterns, []byte("+ "+src+"/node/.cache/important\n- "+src+"/node/.cache\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts backup.BackupOptions
		want []string
	}{
		{"sh glob", backup.BackupOptions{Excludes: []string{"**/*.o"}}, []string{"a.o", "sub/b.o"}},
		{"fm crosses dirs", backup.BackupOptions{Excludes: []string{"fm:*/sub"}}, []string{"sub/b.o", "sub/keep.c"}},
		{"re", backup.BackupOptions{Excludes: []string{`re:\.c$`}}, []string{"sub/keep.c"}},
		{"exclude caches", backup.BackupOptions{ExcludeCaches: true}, []string{"cache/CACHEDIR.TAG", "cache/blob"}},
		{"exclude if present", backup.BackupOptions{ExcludeIfPresent: []string{".nobackup"}}, []string{"skipme/.nobackup", "skipme/x"}},
		{"pattern file include wins", backup.BackupOptions{ExcludeFiles: []string{patterns}}, []string{"node/.cache/junk"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, r := newRepo(t)
			tc.opts.Paths = []string{src}
			if _, err := r.Backup(ctx, tc.opts); err != nil {
				t.Fatal(err)
			}
			entries, err := r.Ls(ctx, "latest", src)
			if err != nil {
				t.Fatal(err)
			}
			have := map[string]bool{}
			for _, e := range entries {
				if e.Type == "file" {
					have[strings.TrimPrefix(e.Path, src+"/")] = true
				}
			}
			excluded := map[string]bool{}
			for _, w := range tc.want {
				excluded[w] = true
			}
			for _, f := range files {
				if have[f] == excluded[f] {
					t.Errorf("%s: in snapshot = %v, excluded = %v", f, have[f], excluded[f])
				}
			}
		})
	}
}

func TestBadPatterns(t *testing.T) {
	_, r := newRepo(t)
	src := t.TempDir()
	bad := filepath.Join(t.TempDir(), "p.lst")
	_ = os.WriteFile(bad, []byte("+ ok\nP nope\n"), 0o644)
	for _, opts := range []backup.BackupOptions{
		{Paths: []string{src}, Excludes: []string{"re:("}},
		{Paths: []string{src}, Excludes: []string{"zz:foo"}},
		{Paths: []string{src}, ExcludeFiles: []string{bad}},
		{Paths: []string{src}, ExcludeFiles: []string{"/nonexistent/p.lst"}},
		{Paths: []string{"/nonexistent/source"}},
		{Paths: []string{"/nonexistent/source", "/nonexistent/other"}},
		{},
	} {
		if _, err := r.Backup(context.Background(), opts); err == nil {
			t.Errorf("%+v accepted", opts)
		}
	}
	if snaps, _ := r.Snapshots(context.Background()); len(snaps) != 0 {
		t.Fatal("a rejected backup wrote a snapshot")
	}
}

// TestMissingSourceIsPartial: of several paths, one that does not exist
// is skipped with a warning and makes the backup partial, as in restic.
func TestMissingSourceIsPartial(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	src := t.TempDir()
	backuptest.RandomFile(t, filepath.Join(src, "f"), 100)
	missing := filepath.Join(t.TempDir(), "gone")
	var warned []string
	sum, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{missing, src}, Warn: func(p string, _ error) { warned = append(warned, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Errors != 1 || sum.SnapshotID == "" || len(warned) != 1 || warned[0] != missing {
		t.Fatalf("summary %+v, warned %v", sum, warned)
	}
	snaps, _ := r.Snapshots(ctx)
	if len(snaps) != 1 || len(snaps[0].Paths) != 1 || snaps[0].Paths[0] != src {
		t.Fatalf("snapshot paths %+v, want only %s", snaps, src)
	}
}

// TestPatternFileRoots: R lines of a pattern file are paths to back up,
// with or without paths on the command line.
func TestPatternFileRoots(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	src := t.TempDir()
	backuptest.RandomFile(t, filepath.Join(src, "a/keep"), 10)
	backuptest.RandomFile(t, filepath.Join(src, "a/drop.o"), 10)
	backuptest.RandomFile(t, filepath.Join(src, "b/keep"), 10)
	pf := filepath.Join(t.TempDir(), "patterns")
	body := "R " + filepath.Join(src, "a") + "\nR" + filepath.Join(src, "b") + "\n-**/*.o\n"
	if err := os.WriteFile(pf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Backup(ctx, backup.BackupOptions{ExcludeFiles: []string{pf}}); err != nil {
		t.Fatal(err)
	}
	entries, err := r.Ls(ctx, "latest", "")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if e.Type == "file" {
			files = append(files, strings.TrimPrefix(e.Path, src+"/"))
		}
	}
	if strings.Join(files, " ") != "a/keep b/keep" {
		t.Fatalf("files %v, want a/keep b/keep", files)
	}
}

func TestLsDiffDump(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	src := t.TempDir()
	backuptest.RandomFile(t, filepath.Join(src, "same"), 3000)
	backuptest.RandomFile(t, filepath.Join(src, "changes"), 3000)
	backuptest.RandomFile(t, filepath.Join(src, "goes"), 10)
	a, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	backuptest.RandomFile(t, filepath.Join(src, "changes"), 3001)
	backuptest.RandomFile(t, filepath.Join(src, "new/file"), 10)
	_ = os.Remove(filepath.Join(src, "goes"))
	// Only an extended attribute changes: still a modification.
	if err := unix.Setxattr(filepath.Join(src, "same"), "user.hostd.diff", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	b, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	changes, err := r.Diff(ctx, a.SnapshotID[:8], b.SnapshotID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		if strings.HasPrefix(c.Path, src) {
			got = append(got, c.Op+" "+strings.TrimPrefix(c.Path, src))
		}
	}
	sort.Strings(got)
	if want := "+ /new,+ /new/file,- /goes,M /changes,M /same"; strings.Join(got, ",") != want {
		t.Fatalf("diff %v, want %s", got, want)
	}
	if same, err := r.Diff(ctx, b.SnapshotID, b.SnapshotID); err != nil || same == nil || len(same) != 0 {
		t.Fatalf("diff of a snapshot with itself: %#v %v (want an empty, non-nil list)", same, err)
	}
	var out bytes.Buffer
	if err := r.Dump(ctx, "latest", filepath.Join(src, "changes"), &out); err != nil {
		t.Fatal(err)
	}
	if want, _ := os.ReadFile(filepath.Join(src, "changes")); !bytes.Equal(out.Bytes(), want) {
		t.Fatal("dump differs")
	}
	// A directory is dumped as a tar archive (see TestDumpArchives).
	out.Reset()
	if err := r.Dump(ctx, "latest", src, &out); err != nil || out.Len() == 0 {
		t.Fatalf("dump of a directory: %v, %d bytes", err, out.Len())
	}
	if err := r.Dump(ctx, "latest", filepath.Join(src, "nosuchfile"), &out); err == nil {
		t.Fatal("dump of a missing path accepted")
	}
	if _, err := r.Ls(ctx, "nosuchsnapshot", "/"); err == nil {
		t.Fatal("unknown snapshot accepted")
	}
}

func TestKeys(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	if _, err := r.AddKey(ctx, []byte("second"), backuptest.FastKDF()); err != nil {
		t.Fatal(err)
	}
	r2, err := backup.Open(ctx, dir, []byte("second"), backup.OpenOptions{})
	if err != nil {
		t.Fatalf("open with added key: %v", err)
	}
	if _, err := r2.ChangePassword(ctx, []byte("third"), backuptest.FastKDF()); err != nil {
		t.Fatal(err)
	}
	r2.Close()
	if _, err := backup.Open(ctx, dir, []byte("second"), backup.OpenOptions{}); !errors.Is(err, backup.ErrWrongPassword) {
		t.Fatalf("old password still opens: %v", err)
	}
	for _, pw := range []string{"third", string(backuptest.Password)} {
		r3, err := backup.Open(ctx, dir, []byte(pw), backup.OpenOptions{})
		if err != nil {
			t.Fatalf("open with %q: %v", pw, err)
		}
		r3.Close()
	}
	if err := backup.Init(ctx, dir, []byte("x"), backup.InitOptions{KDF: backuptest.FastKDF()}); err == nil {
		t.Fatal("init over an existing repository succeeded")
	}
}

// TestChangedWhileRead backs up a file whose size changes between stat
// and read (a /proc file: size 0, content on read): it is saved as read
// and flagged.
func TestChangedWhileRead(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	p := "/proc/1/stat"
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no %s: %v", p, err)
	}
	sum, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{p}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Warnings) != 1 || !strings.Contains(sum.Warnings[0], "changed while being read") {
		t.Fatalf("warnings %v", sum.Warnings)
	}
	var out bytes.Buffer
	if err := r.Dump(ctx, "latest", p, &out); err != nil || out.Len() == 0 {
		t.Fatalf("dump: %v, %d bytes", err, out.Len())
	}
	entries, _ := r.Ls(ctx, "latest", p)
	if len(entries) != 1 || entries[0].Size != uint64(out.Len()) {
		t.Fatalf("recorded size %v does not match the %d bytes read", entries, out.Len())
	}
}

func TestOneFileSystem(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	_, r := newRepo(t)
	src := t.TempDir()
	backuptest.RandomFile(t, filepath.Join(src, "here"), 10)
	mnt := filepath.Join(src, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		testenv.Require(t, "tmpfs mount", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	backuptest.RandomFile(t, filepath.Join(mnt, "elsewhere"), 10)
	for _, one := range []bool{false, true} {
		if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}, OneFileSystem: one}); err != nil {
			t.Fatal(err)
		}
		entries, err := r.Ls(ctx, "latest", src)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, strings.TrimPrefix(e.Path, src))
		}
		got := strings.Join(names, " ")
		want := " /here /mnt /mnt/elsewhere"
		if one {
			want = " /here /mnt"
		}
		if got != want {
			t.Fatalf("one-file-system=%v: %q, want %q", one, got, want)
		}
	}
}

// TestRawNames: names that are not valid UTF-8 come with their bytes in
// ls and diff results, since JSON strings would replace them.
func TestRawNames(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	src := t.TempDir()
	a, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(src, "bad\xffname")
	if err := os.WriteFile(bad, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := r.Ls(ctx, b.SnapshotID, bad)
	if err != nil || len(entries) != 1 || string(entries[0].PathRaw) != bad {
		t.Fatalf("ls: %+v %v", entries, err)
	}
	changes, err := r.Diff(ctx, a.SnapshotID, b.SnapshotID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range changes {
		if string(c.PathRaw) == bad && c.Op == "+" {
			found = true
		} else if c.PathRaw != nil {
			t.Errorf("raw bytes for a valid name: %+v", c)
		}
	}
	if !found {
		t.Fatalf("diff %+v lacks the raw name", changes)
	}
}
