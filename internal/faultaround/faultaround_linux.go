package faultaround

// Only syscall and unsafe are imported, on purpose: every package this
// one imports is initialised before it, and the registration is worth
// most when it comes before the other initialisers (doc.go).
import (
	"syscall"
	"unsafe"
)

// The userfaultfd(2) interface of <linux/userfaultfd.h>.
const (
	uffdAPI            = 0xAA
	uffdioAPI          = 0xc018aa3f // _IOWR(0xAA, 0x3F, struct uffdio_api)
	uffdioRegister     = 0xc020aa00 // _IOWR(0xAA, 0x00, struct uffdio_register)
	uffdRegisterModeWP = 1 << 1
	uffdFeatureWPAsync = 1 << 15
	uffdUserModeOnly   = 1
)

type uffdioAPIArg struct{ api, features, ioctls uint64 }

type uffdioRegisterArg struct{ start, length, mode, ioctls uint64 }

// span is one mapping, [start, end).
type span struct{ start, end uintptr }

// EnvOff is the environment variable that, set to "on", leaves the
// kernel's fault-around for hostd's executable in place.
const EnvOff = "HOSTD_FAULT_AROUND"

func init() {
	if v, _ := syscall.Getenv(EnvOff); v == "on" {
		return
	}
	// Errors leave the process as it was; there is no logger yet, and
	// the daemon works the same either way, with a larger resident set.
	_, _ = registerExecutable()
}

// registerExecutable registers the executable's read-only private
// mappings and returns the descriptor that holds the registration open.
func registerExecutable() (int, error) {
	if sysUserfaultfd < 0 {
		return -1, syscall.ENOSYS
	}
	var link [4096]byte
	n, err := syscall.Readlink("/proc/self/exe", link[:])
	if err != nil {
		return -1, err
	}
	if n <= 0 || n >= len(link) {
		return -1, syscall.ENAMETOOLONG
	}
	maps, err := readProcFile("/proc/self/maps")
	if err != nil {
		return -1, err
	}
	spans := readOnlySpans(maps, string(link[:n]))
	if len(spans) == 0 {
		return -1, syscall.ENOENT
	}
	return register(spans)
}

// register makes the kernel map spans a page per fault and returns the
// descriptor that keeps it so, left open. First each span is marked
// MADV_NOHUGEPAGE: the page cache may hold the executable in 2 MiB
// folios (written by one large write, or read ahead by a reader of the
// file), which the kernel maps whole, 2 MiB per fault, into a mapping
// that allows huge pages, registered or not. Then the spans are
// registered with a new userfaultfd in the asynchronous write-protect
// mode, which turns fault-around off for them. On an error the
// descriptor is closed, which undoes the registration.
func register(spans []span) (int, error) {
	for _, s := range spans {
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, s.start, s.end-s.start, syscall.MADV_NOHUGEPAGE); errno != 0 {
			return -1, errno
		}
	}
	r, _, errno := syscall.Syscall(sysUserfaultfd, syscall.O_CLOEXEC|syscall.O_NONBLOCK|uffdUserModeOnly, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	fd := int(r)
	api := uffdioAPIArg{api: uffdAPI, features: uffdFeatureWPAsync}
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), uffdioAPI, uintptr(unsafe.Pointer(&api))); errno != 0 {
		syscall.Close(fd)
		return -1, errno
	}
	for _, s := range spans {
		reg := uffdioRegisterArg{start: uint64(s.start), length: uint64(s.end - s.start), mode: uffdRegisterModeWP}
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), uffdioRegister, uintptr(unsafe.Pointer(&reg))); errno != 0 {
			syscall.Close(fd)
			return -1, errno
		}
	}
	return fd, nil
}

// maxMaps bounds what is read of /proc/self/maps; a process that has
// not started its packages has a few dozen mappings.
const maxMaps = 1 << 20

// readProcFile reads a /proc file whole, up to maxMaps bytes.
func readProcFile(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	buf := make([]byte, 0, 16<<10)
	for {
		if len(buf) == cap(buf) {
			if cap(buf) >= maxMaps {
				return nil, syscall.EFBIG
			}
			buf = append(buf, make([]byte, cap(buf))...)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// readOnlySpans returns the private read-only mappings of the file exe
// listed in a /proc/PID/maps text ("start-end perms offset dev inode
// path"): the executable's code and read-only data. Package codepages
// finds the same mappings in /proc/self/smaps (and also checks them for
// private pages, which releasing would lose; registering loses nothing),
// but with strings and bufio, which this package may not import; hence
// the small helpers below instead of package bytes.
func readOnlySpans(maps []byte, exe string) []span {
	exe = trimDeleted(exe)
	var out []span
	for len(maps) > 0 {
		line := maps
		if i := indexByte(maps, '\n'); i >= 0 {
			line, maps = maps[:i], maps[i+1:]
		} else {
			maps = nil
		}
		var f [5][]byte
		rest := line
		ok := true
		for i := range f {
			rest = trimSpaces(rest)
			j := indexByte(rest, ' ')
			if j < 0 {
				ok = false
				break
			}
			f[i], rest = rest[:j], rest[j:]
		}
		if !ok || trimDeleted(string(trimSpaces(rest))) != exe {
			continue
		}
		if perms := f[1]; len(perms) != 4 || perms[0] != 'r' || perms[1] != '-' || perms[3] != 'p' {
			continue
		}
		i := indexByte(f[0], '-')
		if i < 0 {
			continue
		}
		start, ok1 := parseHex(f[0][:i])
		end, ok2 := parseHex(f[0][i+1:])
		if !ok1 || !ok2 || end <= start {
			continue
		}
		out = append(out, span{start, end})
	}
	return out
}

func trimDeleted(p string) string {
	const d = " (deleted)"
	if len(p) >= len(d) && p[len(p)-len(d):] == d {
		return p[:len(p)-len(d)]
	}
	return p
}

func trimSpaces(b []byte) []byte {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	return b
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func parseHex(b []byte) (uintptr, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uintptr
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uintptr(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uintptr(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}
