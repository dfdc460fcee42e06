package daemon

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A Go executable is mapped whole, and the kernel maps page-cache pages
// around every page a process touches (fault-around, 64 KiB by default).
// Start-up alone, with hundreds of package initialisers spread over the
// binary, leaves most of it resident, although the running daemon uses
// about half of it. Releasing the read-only mappings of the executable
// drops those pages from hostd's resident set; they stay in the page
// cache, and the code that still runs maps them back on its next fault.

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

// releaseCodePages releases the read-only mappings of hostd's own
// executable from the process' page tables and returns how many bytes of
// address space it covered.
func releaseCodePages() (int64, error) {
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

// residentFileKiB returns the process' file-backed resident set in KiB
// (RssFile in /proc/self/status), or -1 when it cannot be read.
func residentFileKiB() int64 {
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

// trimCode releases the executable's pages when hostd.code_trim_interval
// is not 0, and logs what it did.
func (d *Daemon) trimCode(when string) {
	if d.codeTrimInterval() == 0 {
		return
	}
	before := residentFileKiB()
	if _, err := releaseCodePages(); err != nil {
		d.log.Warn("could not release executable pages", "when", when, "err", err.Error())
		return
	}
	d.log.Debug("released executable pages", "when", when, "rss_file_kib_before", before, "rss_file_kib_after", residentFileKiB())
}

func (d *Daemon) codeTrimInterval() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg.Core.CodeTrimInterval
}

// codeTrimLoop releases the executable's pages every
// hostd.code_trim_interval, following reloads, until ctx is done.
func (d *Daemon) codeTrimLoop(ctx context.Context) {
	for {
		wait := d.codeTrimInterval()
		if wait == 0 {
			wait = time.Minute // off; look at the setting again later
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			d.trimCode("interval")
		}
	}
}
