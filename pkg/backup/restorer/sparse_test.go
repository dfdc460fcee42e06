package restorer

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestWriteSparseAlignedBlocks restores a sparse file of three 4 KiB
// blocks whose only data (100 bytes) lies in the middle block, from two
// blobs split at an offset that is not a block boundary, and requires
// one allocated block, as the original has. Windows counted from the
// blob's start wrote the zeros next to the data and allocated all three.
func TestWriteSparseAlignedBlocks(t *testing.T) {
	const size = 3 * 4096
	want := make([]byte, size)
	copy(want[5000:], bytes.Repeat([]byte{0xab}, 100))
	p := filepath.Join(t.TempDir(), "sparse")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blksize != 4096 {
		t.Skipf("file system blocks of %d bytes, not 4096", st.Blksize)
	}
	for _, blob := range [][2]int{{0, 1000}, {1000, size}} {
		if err := writeSparseFd(int(f.Fd()), want[blob[0]:blob[1]], int64(blob[0])); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("restored content differs")
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 != 4096 {
		t.Fatalf("%d bytes allocated, want 4096 (the block holding the data)", st.Blocks*512)
	}
}
