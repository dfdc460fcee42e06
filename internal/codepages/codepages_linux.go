package codepages

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// codeRange is one read-only mapping of the executable, [start, end).
type codeRange struct{ start, end uintptr }

// executableRanges returns the private read-only mappings of exe listed in
// a /proc/PID/maps text. Writable mappings are never returned: their
// written pages exist nowhere else.
func executableRanges(maps []byte, exe string) []codeRange {
	var out []codeRange
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// address perms offset dev inode path
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			continue
		}
		if path := strings.TrimSuffix(strings.Join(f[5:], " "), " (deleted)"); path != exe {
			continue
		}
		if perms := f[1]; len(perms) != 4 || perms[0] != 'r' || perms[1] != '-' || perms[3] != 'p' {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		out = append(out, codeRange{uintptr(start), uintptr(end)})
	}
	return out
}

// Release releases the read-only mappings of hostd's own
// executable from the process' page tables and returns how many bytes of
// address space it covered.
func Release() (int64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("find own executable: %w", err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("read own memory map: %w", err)
	}
	var n int64
	for _, r := range executableRanges(maps, strings.TrimSuffix(exe, " (deleted)")) {
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, unix.MADV_DONTNEED); e != 0 {
			return n, fmt.Errorf("release executable pages %#x-%#x: %w", r.start, r.end, e)
		}
		n += int64(r.end - r.start)
	}
	return n, nil
}

// ResidentFileKiB returns the process' file-backed resident set in KiB
// (RssFile in /proc/self/status), or -1 when it cannot be read.
func ResidentFileKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}
