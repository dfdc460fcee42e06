package backuptest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/pkg/backup/crypto"
)

// Password is the passphrase test repositories use.
var Password = []byte("correct horse battery staple")

// FastKDF returns argon2id parameters cheap enough for tests.
func FastKDF() *crypto.KDFParams {
	p := crypto.NewKDFParams(1, 1024, 1)
	return &p
}

// Tree describes what MakeTree created.
type Tree struct {
	Root      string
	HasXattrs bool // the file system accepted user.* xattrs
	HasDevice bool // a device node was created (root only)
}

// MakeTree creates under dir a source tree with regular, empty, large
// (multi-chunk), duplicated and sparse files, empty and nested
// directories, symlinks, hard links, a FIFO, names that are not UTF-8 or
// contain newlines, odd modes, old mtimes, extended attributes, and as
// root a device node and foreign owners.
func MakeTree(t testing.TB, dir string) Tree {
	t.Helper()
	root := filepath.Join(dir, "src")
	tr := Tree{Root: root}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel string, data []byte, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(root, rel)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, data, mode))
		must(os.Chmod(p, mode))
	}
	rnd := mrand.New(mrand.NewPCG(1, 2))
	big := make([]byte, 5<<20)
	for i := range big {
		big[i] = byte(rnd.IntN(256))
	}
	text := bytes.Repeat([]byte("hostd backup compresses text well\n"), 3000)
	write("small.txt", []byte("hello\n"), 0o644)
	write("empty", nil, 0o600)
	write("big.bin", big, 0o640)
	write("dup/big-copy.bin", big, 0o644)
	write("text.txt", text, 0o444)
	write("exec.sh", []byte("#!/bin/sh\necho hi\n"), 0o755)
	write("setgid", []byte("x"), 0o2755)
	write("deep/a/b/c/d/file", []byte("deep"), 0o644)
	write("weird/new\nline", []byte("newline name"), 0o644)
	write("weird/\xff\xfe-latin1-\xe9", []byte("not utf-8"), 0o644)
	write("weird/space name", []byte("space"), 0o644)
	must(os.MkdirAll(filepath.Join(root, "emptydir"), 0o750))
	must(os.MkdirAll(filepath.Join(root, "private"), 0o700))
	must(os.Symlink("small.txt", filepath.Join(root, "link-rel")))
	must(os.Symlink("/nonexistent/target", filepath.Join(root, "link-dangling")))
	must(os.Symlink("deep/a", filepath.Join(root, "link-dir")))
	write("hard1", []byte("hard linked content"), 0o644)
	must(os.Link(filepath.Join(root, "hard1"), filepath.Join(root, "hard2")))
	must(os.Link(filepath.Join(root, "hard1"), filepath.Join(root, "deep/hard3")))
	must(unix.Mkfifo(filepath.Join(root, "fifo"), 0o640))
	// Sparse: 8 MiB hole, 4 KiB data, 4 MiB hole at the end.
	sp, err := os.Create(filepath.Join(root, "sparse"))
	must(err)
	_, err = sp.WriteAt(bytes.Repeat([]byte{7}, 4096), 8<<20)
	must(err)
	must(sp.Truncate(12 << 20))
	must(sp.Close())
	if err := unix.Lsetxattr(filepath.Join(root, "small.txt"), "user.comment", []byte("xattr value"), 0); err == nil {
		tr.HasXattrs = true
		must(unix.Lsetxattr(filepath.Join(root, "emptydir"), "user.binary", []byte{0, 1, 2, 255}, 0))
	}
	if os.Geteuid() == 0 {
		if err := unix.Mknod(filepath.Join(root, "null-dev"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err == nil {
			tr.HasDevice = true
		}
		must(os.Lchown(filepath.Join(root, "small.txt"), 12345, 54321))
		must(os.Lchown(filepath.Join(root, "link-rel"), 4242, 4343))
	}
	// Old, distinct times, set last (deepest first so parents keep theirs).
	old := time.Date(2001, 2, 3, 4, 5, 6, 789000000, time.UTC)
	var paths []string
	must(filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		paths = append(paths, p)
		return err
	}))
	sort.Sort(sort.Reverse(sort.StringSlice(paths)))
	for i, p := range paths {
		ts := unix.NsecToTimespec(old.Add(time.Duration(i) * time.Hour).UnixNano())
		must(unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
	}
	return tr
}

// RandomFile writes size random bytes to path.
func RandomFile(t testing.TB, path string, size int) {
	t.Helper()
	b := make([]byte, size)
	_, _ = rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Entry is what Compare looks at for one path.
type Entry struct {
	Mode   uint32
	UID    uint32
	GID    uint32
	Size   int64
	MTime  int64
	Link   string
	Rdev   uint64
	Xattrs map[string]string
	Data   []byte
	Inode  uint64 // only used to compare hard link groups
	Blocks int64
}

// Scan records every path below root (relative), following nothing.
func Scan(t testing.TB, root string) map[string]Entry {
	t.Helper()
	out := map[string]Entry{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := Entry{Mode: st.Mode, UID: st.Uid, GID: st.Gid, MTime: st.Mtim.Nano(), Rdev: st.Rdev, Inode: st.Ino, Blocks: st.Blocks}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			e.Size = st.Size
			if e.Data, err = os.ReadFile(p); err != nil {
				return err
			}
		case unix.S_IFLNK:
			if e.Link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		e.Xattrs = xattrs(p)
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func xattrs(p string) map[string]string {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return nil
	}
	m := map[string]string{}
	for _, name := range bytes.Split(buf[:n], []byte{0}) {
		if len(name) == 0 {
			continue
		}
		v := make([]byte, 4096)
		k, err := unix.Lgetxattr(p, string(name), v)
		if err == nil {
			m[string(name)] = string(v[:k])
		}
	}
	return m
}

// Compare reports every difference between the trees at a and b: type,
// mode, owner, size, content, mtime (also of directories), link target,
// device, xattrs, hard link grouping and sparseness.
func Compare(t testing.TB, a, b string) error {
	t.Helper()
	ea, eb := Scan(t, a), Scan(t, b)
	var errs []error
	for p, x := range ea {
		y, ok := eb[p]
		if !ok {
			errs = append(errs, fmt.Errorf("%q missing", p))
			continue
		}
		if x.Mode != y.Mode || x.UID != y.UID || x.GID != y.GID || x.Size != y.Size || x.Link != y.Link || x.Rdev != y.Rdev {
			errs = append(errs, fmt.Errorf("%q: mode/owner/size/link %o %d:%d %d %q vs %o %d:%d %d %q", p, x.Mode, x.UID, x.GID, x.Size, x.Link, y.Mode, y.UID, y.GID, y.Size, y.Link))
		}
		if x.MTime != y.MTime {
			errs = append(errs, fmt.Errorf("%q: mtime %d vs %d", p, x.MTime, y.MTime))
		}
		if !bytes.Equal(x.Data, y.Data) {
			errs = append(errs, fmt.Errorf("%q: content differs", p))
		}
		if fmt.Sprint(x.Xattrs) != fmt.Sprint(y.Xattrs) {
			errs = append(errs, fmt.Errorf("%q: xattrs %v vs %v", p, x.Xattrs, y.Xattrs))
		}
		if x.Mode&unix.S_IFMT == unix.S_IFREG && x.Blocks*512 < x.Size && y.Blocks > x.Blocks+8 {
			errs = append(errs, fmt.Errorf("%q: sparse file restored with %d blocks, source has %d", p, y.Blocks, x.Blocks))
		}
	}
	for p := range eb {
		if _, ok := ea[p]; !ok {
			errs = append(errs, fmt.Errorf("%q unexpected", p))
		}
	}
	// Hard link groups: same inode in a <=> same inode in b.
	group := func(m map[string]Entry) map[string]string {
		first := map[uint64]string{}
		out := map[string]string{}
		var names []string
		for p := range m {
			names = append(names, p)
		}
		sort.Strings(names)
		for _, p := range names {
			e := m[p]
			if e.Mode&unix.S_IFMT != unix.S_IFREG {
				continue
			}
			if f, ok := first[e.Inode]; ok {
				out[p] = f
			} else {
				first[e.Inode] = p
			}
		}
		return out
	}
	if ga, gb := group(ea), group(eb); fmt.Sprint(ga) != fmt.Sprint(gb) {
		errs = append(errs, fmt.Errorf("hard link groups %v vs %v", ga, gb))
	}
	return errors.Join(errs...)
}
