package backend

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fileSyncer makes files durable with an fsync the kernel runs on the
// caller's behalf (io_uring, IORING_OP_FSYNC), the caller waiting on an
// eventfd through the runtime's poller. fsync(2) keeps its thread, and
// with it one of the Go scheduler's GOMAXPROCS slots, for the whole wait,
// which the runtime gives to other goroutines only after up to 10 ms: a
// backup that synced a 4 MiB pack every 15 ms on two cores left about a
// sixth of a core idle that way.
//
// Linux AIO (IOCB_CMD_FSYNC) would do as well while running, but tearing
// its context down, at io_destroy or at process exit, waits for two RCU
// grace periods: 25-45 ms added to every backup. An io_uring is torn
// down in the background.
//
// The ring is set up on first use and released by Release (the next
// Sync sets up a new one). Where io_uring is missing or refused (an old
// kernel, a seccomp filter such as Docker's default, the sysctl
// kernel.io_uring_disabled), Sync falls back to fsync(2) from then on.
// One request is in flight at a time: callers queue on a mutex, which
// parks them too.
type fileSyncer struct {
	mu       sync.Mutex
	ring     *ring // nil: not set up
	disabled bool  // io_uring failed once: fsync(2) only
}

// io_uring ABI (include/uapi/linux/io_uring.h).
const (
	ioringOpFsync          = 3
	ioringRegisterEventfd  = 4
	ioringFeatSingleMmap   = 1 << 0
	ioringOffSQRing        = 0
	ioringOffCQRing        = 0x8000000
	ioringOffSQEs          = 0x10000000
	ringEntries            = 2
	sqeSize, cqeSize       = 64, 16
	sqeOpcode, sqeFd       = 0, 4
	sqeUserData            = 32
	cqeUserData, cqeResult = 0, 8
)

type ioUringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqRingOffsets
	cqOff                                                                  cqRingOffsets
}

type sqRingOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqRingOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

// ring is one io_uring with its mappings and completion eventfd.
type ring struct {
	fd       int
	sq, cq   []byte // ring mappings (the same one with a single mmap)
	sqes     []byte
	p        ioUringParams
	ev       *os.File
	userData uint64
}

// u32 is the ring word at off in mapping b.
func u32(b []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }

// setupRing creates an io_uring with an eventfd for completions.
func setupRing() (*ring, error) {
	r := &ring{fd: -1}
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, ringEntries, uintptr(unsafe.Pointer(&r.p)), 0)
	if e != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", e)
	}
	r.fd = int(fd)
	sqSize := int(r.p.sqOff.array + r.p.sqEntries*4)
	cqSize := int(r.p.cqOff.cqes + r.p.cqEntries*cqeSize)
	var err error
	if r.p.features&ioringFeatSingleMmap != 0 {
		r.sq, err = unix.Mmap(r.fd, ioringOffSQRing, max(sqSize, cqSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		r.cq = r.sq
	} else {
		if r.sq, err = unix.Mmap(r.fd, ioringOffSQRing, sqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err == nil {
			r.cq, err = unix.Mmap(r.fd, ioringOffCQRing, cqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		}
	}
	if err == nil {
		r.sqes, err = unix.Mmap(r.fd, ioringOffSQEs, int(r.p.sqEntries)*sqeSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	}
	if err != nil {
		r.close()
		return nil, fmt.Errorf("map io_uring: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		r.close()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	// A non-blocking descriptor: os.NewFile registers it with the poller,
	// so a Read parks the goroutine instead of blocking its thread.
	r.ev = os.NewFile(uintptr(efd), "io_uring-eventfd")
	efd32 := int32(efd)
	if _, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), ioringRegisterEventfd, uintptr(unsafe.Pointer(&efd32)), 1, 0, 0); e != 0 {
		r.close()
		return nil, fmt.Errorf("io_uring_register eventfd: %w", e)
	}
	return r, nil
}

func (r *ring) close() {
	if r.sqes != nil {
		_ = unix.Munmap(r.sqes)
	}
	if r.cq != nil && (r.sq == nil || &r.cq[0] != &r.sq[0]) {
		_ = unix.Munmap(r.cq)
	}
	if r.sq != nil {
		_ = unix.Munmap(r.sq)
	}
	r.sq, r.cq, r.sqes = nil, nil, nil
	if r.fd >= 0 {
		_ = unix.Close(r.fd) // the kernel finishes tearing the ring down on its own
		r.fd = -1
	}
	if r.ev != nil {
		_ = r.ev.Close()
		r.ev = nil
	}
}

// fsync runs IORING_OP_FSYNC on fd and waits for its result.
func (r *ring) fsync(fd int) error {
	sqTail := u32(r.sq, r.p.sqOff.tail)
	mask := *u32(r.sq, r.p.sqOff.ringMask)
	tail := atomic.LoadUint32(sqTail)
	idx := tail & mask
	sqe := r.sqes[idx*sqeSize : (idx+1)*sqeSize]
	clear(sqe)
	sqe[sqeOpcode] = ioringOpFsync
	*(*int32)(unsafe.Pointer(&sqe[sqeFd])) = int32(fd)
	r.userData++
	*(*uint64)(unsafe.Pointer(&sqe[sqeUserData])) = r.userData
	*u32(r.sq, r.p.sqOff.array+idx*4) = idx
	atomic.StoreUint32(sqTail, tail+1)
	for {
		n, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), 1, 0, 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 || n != 1 {
			return fmt.Errorf("%w: io_uring_enter: %v (%d submitted)", errRingUnusable, e, n)
		}
		break
	}
	cqHead := u32(r.cq, r.p.cqOff.head)
	cqTail := u32(r.cq, r.p.cqOff.tail)
	cqMask := *u32(r.cq, r.p.cqOff.ringMask)
	var n [8]byte
	for {
		head := atomic.LoadUint32(cqHead)
		if head != atomic.LoadUint32(cqTail) {
			cqe := r.cq[r.p.cqOff.cqes+(head&cqMask)*cqeSize:]
			data := *(*uint64)(unsafe.Pointer(&cqe[cqeUserData]))
			res := *(*int32)(unsafe.Pointer(&cqe[cqeResult]))
			atomic.StoreUint32(cqHead, head+1)
			if data != r.userData {
				continue // not ours (cannot happen with one request at a time)
			}
			if res < 0 {
				return unix.Errno(-res)
			}
			return nil
		}
		if _, err := r.ev.Read(n[:]); err != nil {
			// The request may still be in flight; the fsync(2) that
			// follows covers it.
			return fmt.Errorf("%w: read eventfd: %v", errRingUnusable, err)
		}
	}
}

// Sync makes f's data and metadata durable, as f.Sync does.
func (s *fileSyncer) Sync(f *os.File) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.disabled && s.ring == nil {
		r, err := setupRing()
		if err != nil {
			s.disabled = true
		}
		s.ring = r
	}
	if s.disabled {
		return f.Sync()
	}
	rc, err := f.SyscallConn()
	if err == nil {
		// The descriptor stays open while Control runs, and the wait
		// ends inside it.
		cerr := rc.Control(func(fd uintptr) { err = s.ring.fsync(int(fd)) })
		if cerr != nil {
			err = fmt.Errorf("%w: %v", errRingUnusable, cerr)
		}
	} else {
		err = fmt.Errorf("%w: %v", errRingUnusable, err)
	}
	if errors.Is(err, errRingUnusable) {
		s.disabled = true
		s.releaseLocked()
		return f.Sync()
	}
	if err != nil {
		return &os.PathError{Op: "sync", Path: f.Name(), Err: err}
	}
	return nil
}

// errRingUnusable marks failures of io_uring itself, as opposed to errors
// of the fsync it ran.
var errRingUnusable = errors.New("io_uring unusable")

// Release gives up the ring until the next Sync.
func (s *fileSyncer) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked()
}

func (s *fileSyncer) releaseLocked() {
	if s.ring != nil {
		s.ring.close()
		s.ring = nil
	}
}
