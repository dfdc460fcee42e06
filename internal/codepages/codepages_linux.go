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
// a /proc/PID/smaps text whose every resident page is still the file's.
// A mapping with private (anonymous) pages is never returned: in a
// position-independent or dynamically linked build the loader writes
// relocations into .data.rel.ro and then makes it read-only, and
// releasing those pages would bring back the unrelocated file contents.
// Writable mappings are never returned either.
func executableRanges(smaps []byte, exe string) []codeRange {
	var out []codeRange
	var cur codeRange
	candidate := false
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") {
			// A mapping's header: address perms offset dev inode [path].
			candidate = false
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
			cur, candidate = codeRange{uintptr(start), uintptr(end)}, true
			continue
		}
		// A field of the current mapping; Anonymous comes once per mapping.
		if candidate && f[0] == "Anonymous:" {
			if len(f) >= 2 && f[1] == "0" {
				out = append(out, cur)
			}
			candidate = false
		}
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
	maps, err := os.ReadFile("/proc/self/smaps")
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
