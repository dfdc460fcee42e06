package backup_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backuptest"
)

// TestDumpTarExtractsAsRestore: GNU tar extracting a dump of a
// directory gives what restore gives (modes, times, symlinks, hard
// links, xattrs, odd names).
func TestDumpTarExtractsAsRestore(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no tar")
	}
	ctx := context.Background()
	_, r := newRepo(t)
	src := backuptest.MakeTree(t, t.TempDir())
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src.Root}}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.DumpTo(ctx, "latest", src.Root, backup.DumpOptions{Archive: "tar"}, &buf); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	args := []string{"-x", "-C", out, "--xattrs", "--xattrs-include=*", "--same-permissions", "--numeric-owner"}
	if os.Geteuid() != 0 {
		args = append(args, "--no-same-owner")
	}
	cmd := exec.Command("tar", args...)
	cmd.Stdin = &buf
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, b)
	}
	// The archive carries a sparse file's zeros, not its holes (as
	// restic's dump): dig them again before comparing block counts.
	sparse := filepath.Join(out, src.Root, "sparse")
	if b, err := exec.Command("fallocate", "--dig-holes", sparse).CombinedOutput(); err != nil {
		t.Fatalf("fallocate --dig-holes: %v %s", err, b)
	}
	if st, err := os.Stat(filepath.Join(src.Root, "sparse")); err != nil {
		t.Fatal(err)
	} else if err := os.Chtimes(sparse, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := backuptest.Compare(t, src.Root, filepath.Join(out, src.Root)); err != nil {
		t.Fatal(err)
	}
}

func TestDumpArchives(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	src := t.TempDir()
	mkfile := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	mkfile(filepath.Join(src, "d/a"), "alpha")
	mkfile(filepath.Join(src, "b"), "beta")
	if err := os.Symlink("b", filepath.Join(src, "l")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "b"), filepath.Join(src, "d/b2")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
		t.Fatal(err)
	}
	rel := strings.TrimPrefix(src, "/")

	var tb bytes.Buffer
	if err := r.Dump(ctx, "latest", src, &tb); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	tr := tar.NewReader(&tb)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got[strings.TrimPrefix(h.Name, rel)] = string(h.Typeflag) + ":" + h.Linkname + ":" + string(b)
	}
	want := map[string]string{"/": "5::", "/b": "0::beta", "/d/": "5::", "/d/a": "0::alpha", "/d/b2": "1:" + rel + "/b:", "/l": "2:b:"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("tar member %q: %q, want %q", k, got[k], v)
		}
	}

	var zb bytes.Buffer
	if err := r.DumpTo(ctx, "latest", "/", backup.DumpOptions{Archive: "zip"}, &zb); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(zb.Bytes()), int64(zb.Len()))
	if err != nil {
		t.Fatal(err)
	}
	zgot := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		zgot[strings.TrimPrefix(f.Name, rel)] = f.Mode().String() + ":" + string(b)
	}
	for k, v := range map[string]string{"/d/a": "-rw-r-----:alpha", "/d/b2": "-rw-r-----:beta", "/l": "Lrwxrwxrwx:b"} {
		if zgot[k] != v {
			t.Errorf("zip member %q: %q, want %q", k, zgot[k], v)
		}
	}

	var fb bytes.Buffer
	if err := r.Dump(ctx, "latest", filepath.Join(src, "d/a"), &fb); err != nil || fb.String() != "alpha" {
		t.Fatalf("dump of a file: %v %q", err, fb.String())
	}
	if err := r.DumpTo(ctx, "latest", src, backup.DumpOptions{Archive: "rar"}, io.Discard); err == nil {
		t.Error("dump accepted archive format rar")
	}
}

func TestRestoreExcludeAndVerify(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	src := backuptest.MakeTree(t, t.TempDir())
	backuptest.RandomFile(t, filepath.Join(src.Root, "logs/x.log"), 1000)
	backuptest.RandomFile(t, filepath.Join(src.Root, "logs/keep.txt"), 3<<20)
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src.Root}}); err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	sum, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: target, Exclude: []string{"**/*.log"}, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(target, src.Root, "logs/x.log")); !os.IsNotExist(err) {
		t.Fatalf("excluded file restored: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(target, src.Root, "logs/keep.txt")); err != nil {
		t.Fatal(err)
	}
	if sum.Errors != 0 || sum.Verified != sum.Files+sum.HardLinks || sum.Verified == 0 {
		t.Fatalf("summary %+v: want every file and link verified", sum)
	}
	// A restored file changed on disk before verification is an error
	// naming it: verify the same target again over a changed file.
	p := filepath.Join(target, src.Root, "logs/keep.txt")
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("X"), 2<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var warned []string
	sum, err = r.Restore(ctx, "latest", backup.RestoreOptions{Target: target, Overwrite: true, Include: []string{filepath.Join(src.Root, "logs")}, Verify: true,
		Warn: func(p string, err error) { warned = append(warned, p+": "+err.Error()) }})
	if err != nil {
		t.Fatal(err)
	}
	// Overwrite restores the file again, so it verifies.
	if sum.Errors != 0 || sum.Verified != 2 {
		t.Fatalf("summary %+v, warnings %q", sum, warned)
	}
	if _, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: t.TempDir(), Exclude: []string{"re:("}}); err == nil {
		t.Error("a bad exclude pattern was accepted")
	}
}
