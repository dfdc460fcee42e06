package backend

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fileSyncer makes files durable with an fsync the kernel runs on the
// caller's behalf (Linux AIO, IOCB_CMD_FSYNC), the caller waiting on an
// eventfd through the runtime's poller. fsync(2) keeps its thread, and
// with it one of the Go scheduler's GOMAXPROCS slots, for the whole wait,
// which the runtime gives to other goroutines only after up to 10 ms: a
// backup that syncs a pack every few milliseconds on two cores left a
// tenth of a core idle that way.
//
// The AIO context is set up on first use and released by Release (the
// next Sync sets up a new one). Releasing costs the kernel an RCU grace
// period, 30 ms on a small VM, which Release leaves to a goroutine; a
// process that exits with a context open waits for it in exit_aio.
//
// Where AIO is missing or refuses a file (an old kernel, a seccomp
// filter, a file system without AIO fsync), Sync falls back to fsync(2)
// from then on. One request is in flight at a time: callers queue on a
// mutex, which parks them too.
type fileSyncer struct {
	mu       sync.Mutex
	ctx      uintptr  // aio_context_t, valid while ev != nil
	ev       *os.File // eventfd signalled on completion; nil: not set up
	disabled bool     // AIO failed once: fsync(2) only
}

// Linux AIO ABI (include/uapi/linux/aio_abi.h), little-endian layout.
const (
	iocbCmdFsync  = 2
	iocbFlagResfd = 1 << 0
)

type iocb struct {
	data     uint64
	key      uint32
	rwFlags  int32
	opcode   uint16
	reqprio  int16
	fildes   uint32
	buf      uint64
	nbytes   uint64
	offset   int64
	reserved uint64
	flags    uint32
	resfd    uint32
}

type ioEvent struct {
	data uint64
	obj  uint64
	res  int64
	res2 int64
}

// setup creates the AIO context and its eventfd; false if AIO is not
// available.
func (s *fileSyncer) setup() bool {
	var ctx uintptr
	if _, _, e := unix.Syscall(unix.SYS_IO_SETUP, 1, uintptr(unsafe.Pointer(&ctx)), 0); e != 0 {
		return false
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		go destroyAIO(ctx, nil)
		return false
	}
	// A non-blocking descriptor: os.NewFile registers it with the poller,
	// so a Read parks the goroutine instead of blocking its thread.
	s.ctx, s.ev = ctx, os.NewFile(uintptr(efd), "aio-eventfd")
	return true
}

// Sync makes f's data and metadata durable, as f.Sync does.
func (s *fileSyncer) Sync(f *os.File) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.disabled || (s.ev == nil && !s.setup()) {
		s.disabled = true
		return f.Sync()
	}
	err := s.fsync(f)
	if errors.Is(err, errAIOUnusable) {
		s.disabled = true
		s.releaseLocked()
		return f.Sync()
	}
	if err != nil {
		return &os.PathError{Op: "sync", Path: f.Name(), Err: err}
	}
	return nil
}

// errAIOUnusable marks failures of AIO itself, as opposed to errors of
// the fsync it ran.
var errAIOUnusable = errors.New("aio unusable")

func (s *fileSyncer) fsync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("%w: %v", errAIOUnusable, err)
	}
	cb := &iocb{opcode: iocbCmdFsync, flags: iocbFlagResfd, resfd: uint32(s.ev.Fd())}
	var submitErr unix.Errno
	// The kernel copies the iocb during io_submit and holds its own
	// reference to the file until the request completes, so neither cb
	// nor the descriptor need outlive this call.
	cerr := rc.Control(func(fd uintptr) {
		cb.fildes = uint32(fd)
		cbs := [1]uintptr{uintptr(unsafe.Pointer(cb))}
		_, _, submitErr = unix.Syscall(unix.SYS_IO_SUBMIT, s.ctx, 1, uintptr(unsafe.Pointer(&cbs[0])))
	})
	if cerr != nil {
		return fmt.Errorf("%w: %v", errAIOUnusable, cerr)
	}
	if submitErr != 0 {
		// EINVAL: no AIO fsync for this file; anything else: the context
		// is unusable. fsync(2) does the job either way.
		return fmt.Errorf("%w: io_submit: %v", errAIOUnusable, submitErr)
	}
	var n [8]byte
	if _, err := s.ev.Read(n[:]); err != nil {
		// The request may still be in flight; the fsync(2) that follows
		// covers it.
		return fmt.Errorf("%w: read eventfd: %v", errAIOUnusable, err)
	}
	var ev ioEvent
	for {
		r, _, e := unix.Syscall6(unix.SYS_IO_GETEVENTS, s.ctx, 1, 1, uintptr(unsafe.Pointer(&ev)), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 || r != 1 {
			return fmt.Errorf("%w: io_getevents: %v (%d events)", errAIOUnusable, e, r)
		}
		break
	}
	if ev.res < 0 {
		return unix.Errno(-ev.res)
	}
	return nil
}

// Release gives up the AIO context until the next Sync.
func (s *fileSyncer) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked()
}

func (s *fileSyncer) releaseLocked() {
	if s.ev == nil {
		return
	}
	go destroyAIO(s.ctx, s.ev)
	s.ctx, s.ev = 0, nil
}

// destroyAIO releases an AIO context (waiting for an RCU grace period)
// and its eventfd.
func destroyAIO(ctx uintptr, ev *os.File) {
	_, _, _ = unix.Syscall(unix.SYS_IO_DESTROY, ctx, 0, 0)
	if ev != nil {
		_ = ev.Close()
	}
}
