package metrics

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// The collectors' own file reads (open/read without the runtime's
// poller) read whole files of any size, cut small ones at their buffer,
// and fail as os does: a *fs.PathError naming the file, fs.ErrNotExist
// for a missing one.
func TestReadSysFiles(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1000) // 16,000 bytes: grows the 4 KiB buffer
	path := filepath.Join(dir, "big")
	if err := os.WriteFile(path, big, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readFileReuse(path, nil)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("readFileReuse: %d bytes, %v", len(got), err)
	}
	got, err = readFileReuse(path, got[:0])
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("readFileReuse into its own buffer: %d bytes, %v", len(got), err)
	}
	var buf [10]byte
	if got, err := readSmallFile(path, buf[:]); err != nil || string(got) != "0123456789" {
		t.Fatalf("readSmallFile = %q, %v", got, err)
	}
	if got, err := readFileReuse("/proc/self/stat", nil); err != nil || len(got) == 0 {
		t.Fatalf("readFileReuse(/proc/self/stat) = %q, %v", got, err)
	}
	missing := filepath.Join(dir, "missing")
	for _, read := range []func() error{
		func() error { _, err := readFileReuse(missing, nil); return err },
		func() error { _, err := readSmallFile(missing, buf[:]); return err },
		func() error { _, err := readNumberFile(missing); return err },
	} {
		err := read()
		var pe *fs.PathError
		if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Path != missing {
			t.Errorf("reading a missing file: %v, want a *fs.PathError for %s that is fs.ErrNotExist", err, missing)
		}
	}
}
