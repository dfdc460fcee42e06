package backend

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestFileSyncer(t *testing.T) {
	if n := unsafe.Sizeof(ioUringParams{}); n != 120 {
		t.Fatalf("io_uring_params is %d bytes, want 120", n)
	}
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
	uring := ringAvailable(t)
	for range 3 {
		for _, file := range []*os.File{f, d} {
			if err := s.Sync(file); err != nil {
				t.Fatalf("sync %s: %v", file.Name(), err)
			}
		}
	}
	if !uring {
		if !s.disabled {
			t.Fatal("no io_uring here, yet the syncer did not fall back to fsync(2)")
		}
		return
	}
	if s.disabled || s.ring == nil {
		// fsync(2) would hide a broken request layout.
		t.Fatal("io_uring fsync fell back to fsync(2)")
	}
	// An error of the fsync itself is returned, and the ring stays: a
	// pipe has no fsync.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if err := s.Sync(pw); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("sync of a pipe: %v, want EINVAL", err)
	}
	if s.disabled || s.ring == nil {
		t.Fatal("an fsync error disabled the ring")
	}
	// Released, the next Sync sets up a new ring.
	s.Release()
	if s.ring != nil {
		t.Fatal("ring kept after Release")
	}
	if err := s.Sync(f); err != nil || s.ring == nil {
		t.Fatalf("sync after release: %v (ring %v)", err, s.ring != nil)
	}
}

// A ring that stops working (here: its descriptor closed behind its back)
// makes the syncer fall back to fsync(2) for good.
func TestFileSyncerFallback(t *testing.T) {
	if !ringAvailable(t) {
		return // TestFileSyncer covered fsync(2) alone
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var s fileSyncer
	defer s.Release()
	if err := s.Sync(f); err != nil {
		t.Fatal(err)
	}
	if s.ring == nil {
		t.Fatal("no ring")
	}
	if err := unix.Close(s.ring.fd); err != nil {
		t.Fatal(err)
	}
	s.ring.fd = -1
	if err := s.Sync(f); err != nil {
		t.Fatalf("fsync(2) fallback: %v", err)
	}
	if !s.disabled || s.ring != nil {
		t.Fatalf("after a failed ring: disabled %v, ring %v", s.disabled, s.ring != nil)
	}
	if err := s.Sync(f); err != nil {
		t.Fatal(err)
	}
}

// ringAvailable reports whether this host lets hostd set up an io_uring
// (kernels before 5.1, seccomp filters such as Docker's default and
// kernel.io_uring_disabled refuse it; hostd then uses fsync(2)).
func ringAvailable(t *testing.T) bool {
	r, err := setupRing()
	if err != nil {
		t.Logf("io_uring unavailable here (%v): only the fsync(2) path is tested", err)
		return false
	}
	r.close()
	return true
}
