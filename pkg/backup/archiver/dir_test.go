package archiver

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReadDir lists a directory of every entry type and more names than
// one getdents buffer holds, with the types the kernel reports.
func TestReadDir(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := range 700 {
		name := string(rune('a'+i%26)) + string(rune('a'+i/26)) + "-a-longer-name-to-fill-the-buffer-sooner"
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		want = append(want, name)
	}
	for _, n := range []string{"sub", "link", "fifo", "odd\nname\xff"} {
		want = append(want, n)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "odd\nname\xff"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)

	fd, err := openDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	got, err := readDir(fd, make([]byte, 4096))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	types := map[string]uint8{}
	for _, e := range got {
		names = append(names, e.name)
		types[e.name] = e.typ
	}
	if !slices.Equal(names, want) {
		t.Fatalf("got %d names, want %d (%q...)", len(names), len(want), names[:min(3, len(names))])
	}
	for name, typ := range map[string]uint8{"sub": unix.DT_DIR, "link": unix.DT_LNK, "fifo": unix.DT_FIFO, "aa-a-longer-name-to-fill-the-buffer-sooner": unix.DT_REG} {
		if types[name] != typ && types[name] != unix.DT_UNKNOWN {
			t.Errorf("%s: type %d, want %d", name, types[name], typ)
		}
	}

	if _, err := openDir(filepath.Join(dir, "link")); err == nil {
		t.Error("openDir followed a symlink")
	}
	if _, err := openDir(filepath.Join(dir, "aa-a-longer-name-to-fill-the-buffer-sooner")); err == nil {
		t.Error("openDir opened a file")
	}
}

func TestParseDirentsDamage(t *testing.T) {
	rec := make([]byte, 24)
	rec[16] = 24 // reclen
	rec[18] = unix.DT_REG
	copy(rec[19:], "name\x00")
	if got, err := parseDirents(rec, nil); err != nil || len(got) != 1 || got[0].name != "name" {
		t.Fatalf("parseDirents = %v, %v", got, err)
	}
	for _, b := range [][]byte{rec[:10], append([]byte{}, rec[:20]...)} {
		if _, err := parseDirents(b, nil); err == nil {
			t.Errorf("parseDirents(%d bytes): no error", len(b))
		}
	}
	bad := append([]byte{}, rec...)
	bad[16] = 200
	if _, err := parseDirents(bad, nil); err == nil {
		t.Error("record longer than the buffer: no error")
	}
}
