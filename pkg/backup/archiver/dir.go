package archiver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// dirEntry is one name in a directory and its type as getdents(2) gives it
// (unix.DT_REG, unix.DT_DIR, ...; unix.DT_UNKNOWN where the file system
// does not say).
type dirEntry struct {
	name string
	typ  uint8
}

// openDir opens the directory at path without following a symlink in its
// last component, as a raw descriptor (the runtime poller has nothing to
// do with directories, and skipping it saves five syscalls each).
func openDir(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open directory: %w", err)
	}
	return fd, nil
}

// readDir returns the entries of the open directory fd sorted by name,
// without "." and "..". buf is getdents' buffer.
func readDir(fd int, buf []byte) ([]dirEntry, error) {
	var out []dirEntry
	for {
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("read directory: %w", err)
		}
		if n <= 0 {
			break
		}
		if out, err = parseDirents(buf[:n], out); err != nil {
			return out, err
		}
	}
	slices.SortFunc(out, func(a, b dirEntry) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// parseDirents appends the entries of getdents64 records in b:
// ino u64 ‖ off s64 ‖ reclen u16 ‖ type u8 ‖ name NUL (padded to reclen).
func parseDirents(b []byte, out []dirEntry) ([]dirEntry, error) {
	const nameOff = 19
	for len(b) > 0 {
		if len(b) < nameOff+1 {
			return out, errors.New("read directory: short record")
		}
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen < nameOff+1 || reclen > len(b) {
			return out, fmt.Errorf("read directory: bad record length %d", reclen)
		}
		name := b[nameOff:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if len(name) > 0 && string(name) != "." && string(name) != ".." {
			out = append(out, dirEntry{name: string(name), typ: b[18]})
		}
		b = b[reclen:]
	}
	return out, nil
}

// readDirNames returns the sorted names in the directory at path; buf is
// getdents' buffer.
func readDirNames(path string, buf []byte) ([]string, error) {
	fd, err := openDir(path)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	entries, err := readDir(fd, buf)
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.name
	}
	return names, err
}

// dirBufSize is getdents' buffer: a directory of a few hundred entries in
// one call.
const dirBufSize = 32 << 10

// childPath joins a clean directory path and a name.
func childPath(dir, name string) string {
	if strings.HasSuffix(dir, "/") {
		return dir + name
	}
	return dir + "/" + name
}
