package backup_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backuptest"
)

// files lists the regular files of snapshot below dir.
func files(t *testing.T, r *backup.Repository, snapshot string) []string {
	t.Helper()
	entries, err := r.Ls(context.Background(), snapshot, "/")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Type == "file" {
			out = append(out, e.Path)
		}
	}
	return out
}

func TestCreateInputSelection(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	for _, f := range []string{"a.txt", "b.log", "sub/c.txt", "sub/d.log", "odd\nname"} {
		backuptest.RandomFile(t, filepath.Join(src, f), 10)
	}
	backuptest.RandomFile(t, filepath.Join(src, "large.bin"), 200<<10)
	lists := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(lists, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	list := write("list", "# comment\n\n"+src+"/a.txt\r\n"+src+"/sub/*.log\n")
	raw := write("raw", src+"/odd\nname\x00"+src+"/b.log\x00")
	excl := write("excl", "# logs\n**/*.log\n\n")
	at := time.Date(2020, 1, 2, 3, 4, 5, 0, time.Local)
	tests := []struct {
		name string
		opts backup.BackupOptions
		want []string
	}{
		{"files-from with globs", backup.BackupOptions{FilesFrom: []string{list}}, []string{"a.txt", "sub/d.log"}},
		{"files-from-raw", backup.BackupOptions{FilesFromRaw: []string{raw}}, []string{"b.log", "odd\nname"}},
		{"files-from from stdin", backup.BackupOptions{FilesFrom: []string{"-"}, Stdin: strings.NewReader(src + "/b.log\n")}, []string{"b.log"}},
		{"exclude-file", backup.BackupOptions{Paths: []string{src}, ExcludeListFiles: []string{excl}}, []string{"a.txt", "large.bin", "odd\nname", "sub/c.txt"}},
		{"exclude-larger-than", backup.BackupOptions{Paths: []string{src}, ExcludeLargerThan: 100 << 10}, []string{"a.txt", "b.log", "odd\nname", "sub/c.txt", "sub/d.log"}},
		{"time", backup.BackupOptions{Paths: []string{src + "/a.txt"}, Time: at}, []string{"a.txt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, r := newRepo(t)
			if _, err := r.Backup(ctx, tc.opts); err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, w := range tc.want {
				want = append(want, filepath.Join(src, w))
			}
			if got := files(t, r, "latest"); !slices.Equal(got, want) {
				t.Fatalf("files %q\nwant %q", got, want)
			}
			snaps, _ := r.Snapshots(ctx)
			if !tc.opts.Time.IsZero() && !snaps[0].Time.Equal(at) {
				t.Fatalf("snapshot time %s, want %s", snaps[0].Time, at)
			}
		})
	}
}

func TestCreateDryRunWritesNothing(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	src := backuptest.MakeTree(t, t.TempDir())
	before := backuptest.Scan(t, dir)
	var listed []string
	var read int64
	sum, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src.Root}, DryRun: true,
		DryRunFile: func(p string, size, n int64, status string) {
			listed = append(listed, p)
			read += n
			if status != "new" {
				t.Errorf("%s: status %q, want new", p, status)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.SnapshotID != "" || sum.FilesNew == 0 || len(listed) != sum.FilesNew || sum.BytesRead != read {
		t.Fatalf("dry run summary %+v, %d listed, %d bytes", sum, len(listed), read)
	}
	after := backuptest.Scan(t, dir)
	if len(before) != len(after) {
		t.Fatalf("dry run changed the repository: %d entries before, %d after", len(before), len(after))
	}
	// After a real backup, nothing is left to read.
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src.Root}}); err != nil {
		t.Fatal(err)
	}
	listed = nil
	sum, err = r.Backup(ctx, backup.BackupOptions{Paths: []string{src.Root}, DryRun: true,
		DryRunFile: func(p string, _, _ int64, _ string) { listed = append(listed, p) }})
	if err != nil || sum.FilesUnmodified == 0 {
		t.Fatalf("second dry run: %v %+v", err, sum)
	}
	// Hard links and files the cache cannot vouch for may be read again;
	// what is listed is what the summary counts.
	if len(listed) != sum.FilesNew+sum.FilesChanged {
		t.Fatalf("listed %d, summary %+v", len(listed), sum)
	}
}

func TestCreateStdin(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	data := make([]byte, 3<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	sum, err := r.BackupReader(ctx, "dumps/db.sql", bytes.NewReader(data), backup.BackupOptions{Tags: []string{"db"}, Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if sum.BytesRead != int64(len(data)) || sum.FilesNew != 1 {
		t.Fatalf("summary %+v", sum)
	}
	snaps, _ := r.Snapshots(ctx)
	if len(snaps) != 1 || !slices.Equal(snaps[0].Paths, []string{"/dumps/db.sql"}) || !slices.Equal(snaps[0].Tags, []string{"db"}) {
		t.Fatalf("snapshot %+v", snaps[0])
	}
	var out bytes.Buffer
	if err := r.Dump(ctx, "latest", "/dumps/db.sql", &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("dump: %v, %d bytes equal %v", err, out.Len(), bytes.Equal(out.Bytes(), data))
	}
	target := t.TempDir()
	if _, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: target}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "dumps/db.sql")); !bytes.Equal(b, data) {
		t.Fatal("restored stdin file differs")
	}
	if res, err := r.Check(ctx, backup.CheckOptions{ReadData: true}); err != nil || !res.OK() {
		t.Fatalf("check: %v %+v", err, res)
	}
	for _, bad := range []string{"", "/", "a\x00b"} {
		if _, err := r.BackupReader(ctx, bad, strings.NewReader("x"), backup.BackupOptions{}); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
}

// TestSparseReadByExtents: a 64 MiB file with 1 MiB of data (two
// extents) is read as that 1 MiB, saved and restored identically and
// sparse.
func TestSparseReadByExtents(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	src := t.TempDir()
	p := filepath.Join(src, "sparse")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 512<<10)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{10 << 20, 30<<20 + 12345} {
		if _, err := f.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
	}
	const size = 64 << 20
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if blocks(t, p)*512 >= size {
		t.Skip("the file system here does not keep holes")
	}
	sum, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	// Extents are whole blocks: the data rounded out to 4 KiB.
	if sum.BytesTotal != size || sum.BytesRead < 1<<20 || sum.BytesRead > 1<<20+16<<10 {
		t.Fatalf("total %d, read %d: want 64 MiB total, about 1 MiB read", sum.BytesTotal, sum.BytesRead)
	}
	target := t.TempDir()
	if _, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: target}); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(target, p)
	a, _ := os.ReadFile(p)
	b, _ := os.ReadFile(restored)
	if len(a) != size || !bytes.Equal(a, b) {
		t.Fatalf("restored %d bytes, equal %v", len(b), bytes.Equal(a, b))
	}
	// The holes are kept: the restored file has data exactly where the
	// source has, one edge of which is not block-aligned (the restore
	// writes whole blocks of the file, aligned to file offsets, that hold
	// data, so the zeros next to an unaligned edge add no block). Data
	// is located with SEEK_DATA and SEEK_HOLE, not st_blocks, which also
	// counts the file system's extent-tree blocks: a file written by
	// several writers may take a few more extents, and blocks.
	got, want := dataRanges(t, restored), dataRanges(t, p)
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i] == want[i]
	}
	if !ok {
		t.Fatalf("restored data at %v, source has data at %v", got, want)
	}
}

// dataRanges returns the [start, end) ranges of p that hold data, as the
// file system reports them (SEEK_DATA, SEEK_HOLE).
func dataRanges(t *testing.T, p string) [][2]int64 {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]int64
	for off := int64(0); off < fi.Size(); {
		start, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break // no data after off
		}
		if err != nil {
			t.Fatal(err)
		}
		end, err := unix.Seek(int(f.Fd()), start, unix.SEEK_HOLE)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, [2]int64{start, end})
		off = end
	}
	return out
}

func blocks(t *testing.T, p string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks
}
