package backend

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFileSyncer(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	var s fileSyncer
	defer s.Release()
	for _, file := range []*os.File{f, d, f} {
		if err := s.Sync(file); err != nil {
			t.Fatalf("sync %s: %v", file.Name(), err)
		}
	}
	if s.disabled || s.ev == nil {
		// This kernel has AIO (hostd's CI and test hosts do): fsync(2)
		// would hide a broken request layout.
		t.Fatal("AIO fsync fell back to fsync(2)")
	}
	// Released, the next Sync sets up a new context.
	s.Release()
	if s.ev != nil {
		t.Fatal("context kept after Release")
	}
	if err := s.Sync(f); err != nil || s.ev == nil {
		t.Fatalf("sync after release: %v (context %v)", err, s.ev != nil)
	}
}

// A file AIO cannot fsync (a pipe has no fsync at all) makes the syncer
// fall back to fsync(2), whose error it returns, and stay with fsync(2).
func TestFileSyncerFallback(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var s fileSyncer
	defer s.Release()
	if err := s.Sync(w); err == nil {
		t.Fatal("sync of a pipe succeeded")
	}
	if !s.disabled || s.ev != nil {
		t.Fatalf("after a refused request: disabled %v, context %v", s.disabled, s.ev != nil)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := s.Sync(f); err != nil {
		t.Fatalf("fsync(2) fallback: %v", err)
	}
}
