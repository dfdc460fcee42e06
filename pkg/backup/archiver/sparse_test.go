package archiver

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestSparseReader(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name    string
		size    int64
		extents []int64 // offsets of 64 KiB data extents
	}{
		{"hole first and last", 8 * mib, []int64{2 * mib}},
		{"data first", 4 * mib, []int64{0, 3 * mib}},
		{"data last", 4 * mib, []int64{4*mib - 64<<10}},
		{"all hole", 4 * mib, nil},
		{"unaligned", 3*mib + 17, []int64{mib + 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			chunk := bytes.Repeat([]byte("data"), 16<<10)
			for _, off := range tc.extents {
				if _, err := f.WriteAt(chunk, off); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.Truncate(tc.size); err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			r := &sparseReader{fd: int(f.Fd()), size: tc.size}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, differ from the file's %d", len(got), len(want))
			}
			if max := int64(len(tc.extents)) * (64<<10 + 8<<10); r.diskRead > max {
				t.Fatalf("read %d bytes from disk, want at most %d (the extents)", r.diskRead, max)
			}
			// Growing past the size: read on.
			if _, err := f.WriteAt([]byte("more"), tc.size); err != nil {
				t.Fatal(err)
			}
			r = &sparseReader{fd: int(f.Fd()), size: tc.size}
			got, _ = io.ReadAll(r)
			if int64(len(got)) != tc.size+4 || string(got[tc.size:]) != "more" {
				t.Fatalf("grown file: read %d bytes", len(got))
			}
		})
	}
}
