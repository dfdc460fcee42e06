package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/internal/safefile"
)

// LockFile is the name of the lock file in the state directory.
const LockFile = "hostd.lock"

// ErrLocked is returned when another hostd holds the state directory or the
// socket.
var ErrLocked = errors.New("another hostd holds it")

// instanceLock is an exclusive flock(2) on a lock file, held for the life
// of the daemon. The kernel drops it when the process ends, however it
// ends, so a stale lock file never blocks a start.
type instanceLock struct {
	f *os.File
}

// lockInstance takes the exclusive lock on path without waiting and writes
// this process's ID into the file. When another process holds the lock the
// error names what (the state directory or socket) and that process's ID.
func lockInstance(path, what string) (*instanceLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another hostd holds %s (pid %s): %w", what, lockHolder(path), ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &instanceLock{f: f}, nil
}

// lockHolder reads the process ID the holder wrote, or "unknown".
func lockHolder(path string) string {
	b, err := safefile.Read(path, 64)
	if err != nil {
		return "unknown"
	}
	pid := strings.TrimSpace(string(b))
	if _, err := strconv.Atoi(pid); err != nil {
		return "unknown"
	}
	return pid
}

// release drops the lock. The file stays: removing it would let a second
// process lock a new file of the same name while a third still holds the
// old one.
func (l *instanceLock) release() {
	if l != nil {
		l.f.Close()
	}
}

// socketLockPath is the lock file that guards a socket path: beside it,
// so two daemons with different state directories but one socket clash
// too.
func socketLockPath(socket string) string {
	return filepath.Join(filepath.Dir(socket), "."+filepath.Base(socket)+".lock")
}
