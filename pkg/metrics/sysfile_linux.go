package metrics

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// The collectors read /proc and /sys with open(2) and pread(2) of their
// own (through openFiles, below), not os.Open: os.Open registers every file it opens with the
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

// readFileReuse reads the whole file at path into buf, growing it as
// needed, and returns the filled slice.
func (o *openFiles) readFileReuse(path string, buf []byte) ([]byte, error) {
	return o.read(path, 0, buf, false)
}

// readSmallFile reads a file of at most len(buf) bytes into buf (a
// longer one is cut) and returns what it read.
func (o *openFiles) readSmallFile(path string, buf []byte) ([]byte, error) {
	b, err := o.read(path, 0, buf, true)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// readNumberFile reads a /proc or /sys file holding one number. The file
// is read into a small stack buffer: these are read every scrape, and
// os.ReadFile allocates a page-sized buffer each time.
func (o *openFiles) readNumberFile(path string) (float64, error) {
	var buf [64]byte
	b, err := o.readSmallFile(path, buf[:])
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return v, nil
}

// openFiles keeps the /proc and /sys files the node collectors read every
// scrape open from one scrape to the next, and reads them again from
// their start with pread(2). Opening such a file costs more than reading
// it: a path walk with a dentry lookup per component (through
// /sys/class/net's symlinks for the twenty-odd attributes of each
// interface), a file and, in /proc, an inode allocated and freed again,
// about a sixth of the metrics service's CPU at a one-second interval.
// node_exporter opens them anew each time.
//
// Only files on procfs and sysfs are kept: there a read at offset 0 makes
// the text anew, from the object the path named when it was opened. Such
// an object that goes away (an interface removed, a sysctl table
// unregistered) fails the read with ENODEV or ENOENT; the file is then
// opened again by its path. A regular file (a test fixture) is read with
// an open of its own every time, as it could have been replaced by a
// rename that an open descriptor would not see.
//
// Each kept file holds a descriptor and, once read, the kernel's page of
// its seq_file buffer; at most maxOpenFiles are kept, files not read for
// sweepRounds scrapes are closed, and close closes them all.
type openFiles struct {
	mu    sync.Mutex
	on    bool // keep files open (between keep and close)
	m     map[fileKey]*openFile
	round uint64
}

// fileKey names a kept file: its path and a generation the caller gives
// for objects a path can name in turn (the netclass collector's
// interfaces, which can be renamed: the inode of their entry in
// /sys/class/net).
type fileKey struct {
	path string
	gen  uint64
}

type openFile struct {
	fd    int
	sysfs bool   // a sysfs attribute: a short read is its end (preadAll)
	used  uint64 // round of the last read
}

// maxOpenFiles bounds the descriptors openFiles keeps: beyond it, files
// are opened and closed on every read as before.
const maxOpenFiles = 512

// keep starts keeping files open.
func (o *openFiles) keep() {
	o.mu.Lock()
	o.on = true
	o.mu.Unlock()
}

// close closes every kept file and stops keeping them.
func (o *openFiles) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.on = false
	for k, f := range o.m {
		_ = unix.Close(f.fd)
		delete(o.m, k)
	}
}

// endRound marks the end of a scrape and, every sweepRounds, closes the
// files no scrape read since the last sweep.
func (o *openFiles) endRound() {
	o.mu.Lock()
	defer o.mu.Unlock()
	sweep(&o.round, o.m, func(f *openFile) uint64 { return f.used }, func(f *openFile) { _ = unix.Close(f.fd) })
}

// state returns the round under way (the collection's: endRound starts
// the next) and whether files are kept open.
func (o *openFiles) state() (round uint64, keep bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.round, o.on
}

// len is the number of files kept open.
func (o *openFiles) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.m)
}

// read reads the file at path from its start into buf: the whole file,
// growing buf, or with cut at most len(buf) bytes. A nil openFiles reads
// with an open of its own, as does one not keeping files.
func (o *openFiles) read(path string, gen uint64, buf []byte, cut bool) ([]byte, error) {
	if o == nil {
		return readOnce(path, buf, cut)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.on {
		return readOnce(path, buf, cut)
	}
	k := fileKey{path, gen}
	if f, ok := o.m[k]; ok {
		b, err := preadAll(f.fd, path, buf, cut, f.sysfs)
		if !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESTALE) {
			// Read, or failed as the attribute fails (EINVAL from the
			// speed of a virtual link): the file stays.
			f.used = o.round
			return b, err
		}
		_ = unix.Close(f.fd) // what it named is gone: open the path again
		delete(o.m, k)
	}
	fd, err := openRead(path)
	if err != nil {
		return buf[:0], err
	}
	remakes, sysfs := remakesOnRead(fd)
	b, err := preadAll(fd, path, buf, cut, sysfs)
	if len(o.m) < maxOpenFiles && remakes {
		if o.m == nil {
			o.m = map[fileKey]*openFile{}
		}
		o.m[k] = &openFile{fd: fd, sysfs: sysfs, used: o.round}
	} else {
		_ = unix.Close(fd)
	}
	return b, err
}

// mountsChanged tells whether the mount table file at path (a
// /proc/PID/mountinfo) may have changed since it was last asked: the
// kernel flags an open mount table with POLLPRI after a mount or an
// unmount in its namespace, once per descriptor (proc(5)), which costs
// a poll(2) instead of making the table's text anew. A file that is not
// kept open, or a poll that fails, may have changed.
func (o *openFiles) mountsChanged(path string) bool {
	if o == nil {
		return true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	f, ok := o.m[fileKey{path: path}]
	if !ok {
		return true
	}
	f.used = o.round
	fds := []unix.PollFd{{Fd: int32(f.fd), Events: unix.POLLPRI}}
	n, err := unix.Poll(fds, 0)
	return err != nil || n > 0 && fds[0].Revents&(unix.POLLPRI|unix.POLLERR|unix.POLLNVAL) != 0
}

// remakesOnRead tells whether fd is a file on procfs or sysfs, whose text
// a read at offset 0 makes anew, and whether it is on sysfs.
func remakesOnRead(fd int) (remakes, sysfs bool) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return false, false
	}
	sysfs = st.Type == unix.SYSFS_MAGIC
	return sysfs || st.Type == unix.PROC_SUPER_MAGIC, sysfs
}

// readOnce opens path, reads it as openFiles.read does, and closes it.
func readOnce(path string, buf []byte, cut bool) ([]byte, error) {
	fd, err := openRead(path)
	if err != nil {
		return buf[:0], err
	}
	defer unix.Close(fd)
	return preadAll(fd, path, buf, cut, false)
}

// sysfsPage is the least page size: a sysfs attribute's text is at most
// a page, and the kernel hands a binary attribute out a page at a time.
const sysfsPage = 4096

// preadAll reads fd from offset 0 into buf: to its end, growing buf, or
// with cut to its end or len(buf) bytes, whichever comes first.
//
// The end is a read that returns nothing, but for a sysfs attribute
// (sysfs): the kernel makes its text, at most a page, whole on each
// read, so a read shorter than asked and than a page holds all of it.
// Not reading again spares a system call for each of the hundred-odd
// attributes a scrape reads. A procfs file can return less than asked
// before its end (a seq_file whose next record does not fit its buffer),
// so it is read until a read returns nothing.
func preadAll(fd int, path string, buf []byte, cut, sysfs bool) ([]byte, error) {
	if cut {
		buf = buf[:len(buf):len(buf)]
	} else if cap(buf) == 0 {
		buf = make([]byte, 0, 4096)
	}
	n := 0
	for {
		if n == cap(buf) {
			if cut {
				return buf[:n], nil
			}
			buf = append(buf[:n], 0)
		}
		buf = buf[:cap(buf)]
		m, err := preadFD(fd, buf[n:], int64(n), path)
		short := m < len(buf)-n
		n += m
		if err != nil || m == 0 || sysfs && short && m < sysfsPage {
			return buf[:n], err
		}
	}
}

// preadFD reads from fd at off into b, retrying an interrupted read.
func preadFD(fd int, b []byte, off int64, path string) (int, error) {
	for {
		n, err := unix.Pread(fd, b, off)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		return max(n, 0), nil
	}
}
