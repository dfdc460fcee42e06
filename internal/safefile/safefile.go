package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Size caps for the kinds of input hostd reads. A caller with a reason for
// another figure passes its own.
const (
	SecretLimit  = 64 << 10 // a secret value, a credential, a password file
	KeyFileLimit = 64 << 10 // a key file: SSH keys, age identities, repository keys
	ConfigLimit  = 8 << 20  // a config file, a SOPS-encrypted secrets file
)

// ErrNotRegular is returned for anything other than a regular file.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is returned for a file larger than its cap.
var ErrTooLarge = errors.New("too large")

// Read returns the contents of the regular file at path, at most limit
// bytes. Errors name path and say what is wrong: not a regular file
// (checked on the open descriptor, which is opened non-blocking so a FIFO
// cannot stall the open), larger than limit (checked before and while
// reading, so a file that grows is caught too), or the system error.
func Read(path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadAll(f, path, limit)
}

// Open opens path for reading and checks that it is a regular file. The
// file is opened with O_NONBLOCK, so opening a FIFO without a writer
// returns at once, and the type is checked on the descriptor, so a rename
// between check and open cannot swap in something else.
func Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err // *PathError names path
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kind(fi.Mode()))
	}
	return f, nil
}

// ReadAll reads r to its end, at most limit bytes; name is used in errors.
func ReadAll(r io.Reader, name string, limit int64) ([]byte, error) {
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > limit {
			return nil, tooLarge(name, limit)
		}
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, tooLarge(name, limit)
	}
	return b, nil
}

func tooLarge(name string, limit int64) error {
	return fmt.Errorf("%s: %w: larger than %s", name, ErrTooLarge, size(limit))
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	default:
		return m.Type().String()
	}
}

// size prints a cap the way people write it: 64 KiB, 8 MiB.
func size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
