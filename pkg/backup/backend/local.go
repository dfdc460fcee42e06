package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/internal/safefile"
)

// Local stores the repository in a directory of the local file system.
type Local struct {
	root   string
	syncer fileSyncer // fsync without holding a scheduler thread
}

var _ Backend = (*Local)(nil)
var _ BufferLoader = (*Local)(nil)
var _ Stager = (*Local)(nil)

// NewLocal returns a backend for the directory root.
func NewLocal(root string) *Local { return &Local{root: filepath.Clean(root)} }

// Location returns the directory.
func (l *Local) Location() string { return l.root }

func (l *Local) path(h Handle) string { return filepath.Join(l.root, filepath.FromSlash(h.relPath())) }

// Create makes the repository directories (data/00 .. data/ff included).
func (l *Local) Create(ctx context.Context) error {
	if _, err := os.Stat(l.path(Handle{Type: Config})); err == nil {
		return fmt.Errorf("create repository %s: %w", l.root, fs.ErrExist)
	}
	entries, err := os.ReadDir(l.root)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("create repository %s: %w", l.root, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if err := checkForeign(l.root, names); err != nil {
		return err
	}
	if err := os.MkdirAll(l.root, 0o700); err != nil {
		return fmt.Errorf("create repository %s: %w", l.root, err)
	}
	for _, t := range Types() {
		if err := os.MkdirAll(filepath.Join(l.root, string(t)), 0o700); err != nil {
			return fmt.Errorf("create repository %s: %w", l.root, err)
		}
	}
	for i := range 256 {
		if err := os.MkdirAll(filepath.Join(l.root, "data", fmt.Sprintf("%02x", i)), 0o700); err != nil {
			return fmt.Errorf("create repository %s: %w", l.root, err)
		}
	}
	return l.syncDir(l.root, false)
}

// Save writes data to a temporary file, fsyncs it, renames it into place
// and fsyncs the directory.
func (l *Local) Save(ctx context.Context, h Handle, data []byte) error {
	st, err := l.stage(ctx, h, data)
	if err != nil {
		return err
	}
	return st.commit(false)
}

// Stage writes data to a temporary file; Commit then makes it durable
// and names it. The caller may reuse data as soon as Stage returns.
func (l *Local) Stage(ctx context.Context, h Handle, data []byte) (Staged, error) {
	return l.stage(ctx, h, data)
}

// Idle releases what committing staged files used (see fileSyncer).
func (l *Local) Idle() { l.syncer.Release() }

func (l *Local) stage(ctx context.Context, h Handle, data []byte) (*localStaged, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	final := l.path(h)
	dir := filepath.Dir(final)
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(dir, ".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(dir, 0o700); err == nil {
			f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("save %s: %w", h, err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("save %s: %w", h, err)
	}
	return &localStaged{l: l, h: h, f: f, tmp: tmp, final: final}, nil
}

// localStaged is a file written under a temporary name and still open.
type localStaged struct {
	l          *Local
	h          Handle
	f          *os.File
	tmp, final string
}

// Commit fsyncs the file, renames it into place and fsyncs the directory,
// waiting for the disk without holding a scheduler thread (fileSyncer).
func (s *localStaged) Commit() error { return s.commit(true) }

// commit is Commit, with fsync(2) unless async: Save's callers wait for
// the file with nothing else to run, and fsync(2) returns sooner.
func (s *localStaged) commit(async bool) error {
	err := s.l.fsync(s.f, async)
	if err == nil && s.h.Type == Pack {
		// The pack is on disk: drop it from the page cache, so a backup
		// does not push the host's working set out of memory (and the
		// next pack reuses the pages just freed).
		_ = unix.Fadvise(int(s.f.Fd()), 0, 0, unix.FADV_DONTNEED)
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(s.tmp, s.final)
	}
	if err != nil {
		_ = os.Remove(s.tmp)
		return fmt.Errorf("save %s: %w", s.h, err)
	}
	if err := s.l.syncDir(filepath.Dir(s.final), async); err != nil {
		return fmt.Errorf("save %s: %w", s.h, err)
	}
	return nil
}

// Load reads part or all of h.
func (l *Local) Load(ctx context.Context, h Handle, offset int64, length int) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := l.open(h)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if length <= 0 {
		fi, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", h, err)
		}
		if length, err = wholeLength(h, offset, fi.Size()); err != nil {
			return nil, err
		}
	}
	buf := make([]byte, length)
	if err := readFull(f, h, offset, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// LoadInto reads len(buf) bytes of h at offset into buf.
func (l *Local) LoadInto(ctx context.Context, h Handle, offset int64, buf []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := l.open(h)
	if err != nil {
		return err
	}
	defer f.Close()
	return readFull(f, h, offset, buf)
}

// open opens h for reading: a regular file only, opened without blocking,
// so a FIFO or device planted in the repository is an error at once.
func (l *Local) open(h Handle) (*os.File, error) {
	f, err := safefile.Open(l.path(h))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", h, err)
	}
	return f, nil
}

// Stat returns the size of h.
func (l *Local) Stat(ctx context.Context, h Handle) (int64, error) {
	fi, err := os.Stat(l.path(h))
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", h, err)
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("stat %s: %w", h, safefile.ErrNotRegular)
	}
	return fi.Size(), nil
}

// List calls fn for each file of type t, skipping temporary files.
func (l *Local) List(ctx context.Context, t FileType, fn func(string, int64) error) error {
	dir := filepath.Join(l.root, string(t))
	if t == Config {
		return errors.New("list: config is not a directory")
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("list %s: %w", t, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || isTemp(d.Name()) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("list %s: %w", t, err)
		}
		return fn(d.Name(), fi.Size())
	})
}

// Remove deletes h.
func (l *Local) Remove(ctx context.Context, h Handle) error {
	if err := os.Remove(l.path(h)); err != nil {
		return fmt.Errorf("remove %s: %w", h, err)
	}
	return nil
}

// ListTemp calls fn for every temporary file in the repository.
func (l *Local) ListTemp(ctx context.Context, fn func(TempFile) error) error {
	for _, d := range tempDirs() {
		base := filepath.Join(l.root, d)
		err := filepath.WalkDir(base, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				if p == base && errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if e.IsDir() {
				if d == "." && p != base {
					return fs.SkipDir // the type trees are walked on their own
				}
				return nil
			}
			if !isTemp(e.Name()) {
				return nil
			}
			fi, err := e.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			rel, err := filepath.Rel(l.root, p)
			if err != nil {
				return err
			}
			return fn(TempFile{Path: filepath.ToSlash(rel), Size: fi.Size(), ModTime: fi.ModTime()})
		})
		if err != nil {
			return fmt.Errorf("list temporary files in %s: %w", base, err)
		}
	}
	return nil
}

// RemoveTemp deletes the temporary file rel.
func (l *Local) RemoveTemp(ctx context.Context, rel string) error {
	if err := checkTemp(rel); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(l.root, filepath.FromSlash(rel))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove temporary file: %w", err)
	}
	return nil
}

// Close releases what committing staged files used.
func (l *Local) Close() error {
	l.syncer.Release()
	return nil
}

// fsync makes f durable: through the syncer when async (the wait holds
// no thread), else with fsync(2).
func (l *Local) fsync(f *os.File, async bool) error {
	if async {
		return l.syncer.Sync(f)
	}
	return f.Sync()
}

func (l *Local) syncDir(dir string, async bool) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := l.fsync(d, async); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// readFull reads len(buf) bytes at offset; io.EOF after a full read is
// not an error.
func readFull(f io.ReaderAt, h Handle, offset int64, buf []byte) error {
	n, err := f.ReadAt(buf, offset)
	if err != nil && !(errors.Is(err, io.EOF) && n == len(buf)) {
		return fmt.Errorf("load %s at %d+%d: %w", h, offset, len(buf), err)
	}
	return nil
}
