package metrics

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The collectors read /proc and /sys with open(2) and read(2) of their
// own, not os.Open: os.Open registers every file it opens with the
// runtime's network poller, and /proc and /sys files support poll, so
// each open and close cost two epoll_ctl calls and the poller's
// bookkeeping, a seventh of a scrape's CPU. Errors are *fs.PathError,
// as os returns them.

// openRead opens path for reading.
func openRead(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return -1, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// readFD reads from fd into b, retrying an interrupted read.
func readFD(fd int, b []byte, path string) (int, error) {
	for {
		n, err := unix.Read(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		return max(n, 0), nil
	}
}

// readFileReuse reads the whole file at path into buf, growing it as
// needed, and returns the filled slice.
func readFileReuse(path string, buf []byte) ([]byte, error) {
	fd, err := openRead(path)
	if err != nil {
		return buf[:0], err
	}
	defer unix.Close(fd)
	if cap(buf) == 0 {
		buf = make([]byte, 0, 4096)
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := readFD(fd, buf[len(buf):cap(buf)], path)
		buf = buf[:len(buf)+n]
		if err != nil || n == 0 {
			return buf, err
		}
	}
}

// readSmallFile reads a file of at most len(buf) bytes into buf (a
// longer one is cut) and returns what it read.
func readSmallFile(path string, buf []byte) ([]byte, error) {
	fd, err := openRead(path)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n := 0
	for n < len(buf) {
		m, err := readFD(fd, buf[n:], path)
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return buf[:n], nil
}

// readNumberFile reads a /proc or /sys file holding one number. The file
// is read into a small stack buffer with plain open/read: these are read
// every scrape, and os.ReadFile allocates a page-sized buffer each time.
func readNumberFile(path string) (float64, error) {
	var buf [64]byte
	b, err := readSmallFile(path, buf[:])
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return v, nil
}
