package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/procfs/sysfs"
	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/internal/testenv"
)

// The collectors' own file reads (open/read without the runtime's
// poller) read whole files of any size, cut small ones at their buffer,
// and fail as os does: a *fs.PathError naming the file, fs.ErrNotExist
// for a missing one. They do so opened on every read (a nil openFiles)
// and kept open, where a regular file is still opened every time.
func TestReadSysFiles(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1000) // 16,000 bytes: grows the 4 KiB buffer
	path := filepath.Join(dir, "big")
	if err := os.WriteFile(path, big, 0o600); err != nil {
		t.Fatal(err)
	}
	kept := &openFiles{}
	kept.keep()
	defer kept.close()
	for _, o := range []*openFiles{nil, kept} {
		got, err := o.readFileReuse(path, nil)
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("readFileReuse: %d bytes, %v", len(got), err)
		}
		got, err = o.readFileReuse(path, got[:0])
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("readFileReuse into its own buffer: %d bytes, %v", len(got), err)
		}
		var buf [10]byte
		if got, err := o.readSmallFile(path, buf[:]); err != nil || string(got) != "0123456789" {
			t.Fatalf("readSmallFile = %q, %v", got, err)
		}
		if o != nil && o.len() != 0 {
			t.Fatalf("a regular file was kept open (%d files)", o.len())
		}
		if got, err := o.readFileReuse("/proc/self/stat", nil); err != nil || len(got) == 0 {
			t.Fatalf("readFileReuse(/proc/self/stat) = %q, %v", got, err)
		}
		missing := filepath.Join(dir, "missing")
		for _, read := range []func() error{
			func() error { _, err := o.readFileReuse(missing, nil); return err },
			func() error { _, err := o.readSmallFile(missing, buf[:]); return err },
			func() error { _, err := o.readNumberFile(missing); return err },
		} {
			err := read()
			var pe *fs.PathError
			if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Path != missing {
				t.Errorf("reading a missing file: %v, want a *fs.PathError for %s that is fs.ErrNotExist", err, missing)
			}
		}
	}
	if kept.len() != 1 {
		t.Fatalf("%d files kept open, want /proc/self/stat", kept.len())
	}
}

// A file kept open is read anew: /proc/uptime read twice through the
// same descriptor gives two times.
func TestKeptFileReadAnew(t *testing.T) {
	files := &openFiles{}
	files.keep()
	defer files.close()
	first, err := files.readFileReuse("/proc/uptime", nil)
	if err != nil {
		t.Fatal(err)
	}
	first = bytes.Clone(first)
	fd := files.m[fileKey{path: "/proc/uptime"}].fd
	time.Sleep(30 * time.Millisecond) // /proc/uptime counts hundredths
	second, err := files.readFileReuse("/proc/uptime", nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first, second) {
		t.Fatalf("/proc/uptime read %q twice 30 ms apart through a kept descriptor", first)
	}
	if f := files.m[fileKey{path: "/proc/uptime"}]; files.len() != 1 || f.fd != fd {
		t.Fatalf("%d files kept, /proc/uptime on fd %d then %d", files.len(), fd, f.fd)
	}
	files.close()
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
		t.Fatalf("fd %d still open after close: %v", fd, err)
	}
}

// TestNetClassKeptFiles reads /sys/class/net of a network namespace made
// for the test through kept files while its interfaces are removed, made
// again under the same names, renamed into each other's names and
// changed: every read reports each interface as it is at that moment
// (its ifindex as the kernel gives it), and files of interfaces gone are
// closed. The reading runs in the test binary started again under `ip
// netns exec`, which mounts the namespace's own sysfs.
func TestNetClassKeptFiles(t *testing.T) {
	if os.Getenv("HOSTD_TEST_NETCLASS_CHILD") == "1" {
		netClassKeptFilesChild(t)
		return
	}
	n := testenv.NewNetNS(t)
	cmd := exec.Command("ip", "netns", "exec", n.Name, os.Args[0], "-test.run=^TestNetClassKeptFiles$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "HOSTD_TEST_NETCLASS_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestNetClassKeptFiles")) {
		t.Fatalf("in netns %s: %v\n%s", n.Name, err, out)
	}
}

func netClassKeptFilesChild(t *testing.T) {
	files := &openFiles{}
	files.keep()
	defer files.close()
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	// check reads the class and compares each interface with the
	// kernel's answer now; it returns the ifindexes it read.
	check := func(step string) map[string]int64 {
		t.Helper()
		nc, err := readNetClass("/sys/class/net", files)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for name, i := range nc {
			live, err := net.InterfaceByName(name)
			if err != nil || i.IfIndex == nil || *i.IfIndex != int64(live.Index) || i.MTU == nil || *i.MTU != int64(live.MTU) {
				t.Fatalf("%s: %s read with ifindex %v mtu %v, the kernel has %+v (%v)", step, name, deref(i.IfIndex), deref(i.MTU), live, err)
			}
			got[name] = *i.IfIndex
		}
		for _, name := range []string{"lo", "a0", "b0"} {
			if _, ok := got[name]; !ok {
				t.Fatalf("%s: %s not read (%v)", step, name, got)
			}
		}
		return got
	}
	fds := func() map[fileKey]int {
		m := map[fileKey]int{}
		for k, f := range files.m {
			m[k] = f.fd
		}
		return m
	}
	ip("link", "add", "a0", "type", "veth", "peer", "name", "b0")
	first := check("first read")
	kept := fds()
	if len(kept) < 3*len(netClassInts) {
		t.Fatalf("%d files kept after reading %d interfaces", len(kept), len(first))
	}
	check("second read")
	if again := fds(); !maps.Equal(again, kept) {
		t.Fatalf("the second read opened files again: %d kept, then %d", len(kept), len(again))
	}

	ip("link", "del", "a0")
	ip("link", "add", "a0", "type", "veth", "peer", "name", "b0")
	remade := check("after a0 and b0 were made again")
	if remade["a0"] == first["a0"] {
		t.Fatalf("a0 has ifindex %d again; the test needs a new interface", first["a0"])
	}
	ip("link", "set", "a0", "name", "t0")
	ip("link", "set", "b0", "name", "a0")
	ip("link", "set", "t0", "name", "b0")
	ip("link", "set", "a0", "mtu", "1400")
	swapped := check("after a0 and b0 swapped names")
	if swapped["a0"] != remade["b0"] || swapped["b0"] != remade["a0"] {
		t.Fatalf("after the swap a0=%d b0=%d, want %d and %d", swapped["a0"], swapped["b0"], remade["b0"], remade["a0"])
	}

	// A file kept under its path alone (generation 0) whose interface is
	// removed fails with ENODEV and is opened again by its path.
	var buf [64]byte
	if b, err := files.readSmallFile("/sys/class/net/a0/mtu", buf[:]); err != nil || string(bytes.TrimSpace(b)) != "1400" {
		t.Fatalf("a0/mtu = %q, %v", b, err)
	}
	ip("link", "del", "a0")
	ip("link", "add", "a0", "mtu", "1300", "type", "veth", "peer", "name", "b0")
	if b, err := files.readSmallFile("/sys/class/net/a0/mtu", buf[:]); err != nil || string(bytes.TrimSpace(b)) != "1300" {
		t.Fatalf("a0/mtu of the new a0 = %q, %v", b, err)
	}

	// Down, an interface is read as procfs (node_exporter's reader)
	// reads it, though carrier, dormant, speed and duplex, which the
	// kernel refuses then, are not read at all; up, they are.
	sameAsProcfs := func(step string) sysfs.NetClass {
		t.Helper()
		sfs, err := sysfs.NewFS("/sys")
		if err != nil {
			t.Fatal(err)
		}
		want, err := sfs.NetClass()
		if err != nil {
			t.Fatal(err)
		}
		got, err := readNetClass("/sys/class/net", files)
		if err != nil {
			t.Fatal(err)
		}
		for name, w := range want {
			w = withoutUnread(w)
			if g := got[name]; !reflect.DeepEqual(g, w) {
				t.Fatalf("%s: %s read as\n%+v\nprocfs reads\n%+v", step, name, g, w)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d interfaces read, procfs reads %d", step, len(got), len(want))
		}
		return got
	}
	down := sameAsProcfs("a0 and b0 down")
	if down["a0"].Carrier != nil || down["a0"].Dormant != nil {
		t.Fatalf("a0 down has carrier %v dormant %v", deref(down["a0"].Carrier), deref(down["a0"].Dormant))
	}
	for k := range files.m {
		if k.path == "/sys/class/net/a0/carrier" || k.path == "/sys/class/net/a0/speed" {
			t.Fatalf("%s read while a0 is down", k.path)
		}
	}
	ip("link", "set", "a0", "up")
	ip("link", "set", "b0", "up")
	up := sameAsProcfs("a0 and b0 up")
	if up["a0"].Carrier == nil || up["a0"].Dormant == nil {
		t.Fatalf("a0 up has carrier %v dormant %v", deref(up["a0"].Carrier), deref(up["a0"].Dormant))
	}

	// Files no read asks for are closed within two sweeps: what stays
	// is what a fresh read of the interfaces there are now keeps.
	for range 2 * sweepRounds {
		check("sweeping")
		files.endRound()
	}
	fresh := &openFiles{}
	fresh.keep()
	defer fresh.close()
	if _, err := readNetClass("/sys/class/net", fresh); err != nil {
		t.Fatal(err)
	}
	if files.len() != fresh.len() {
		t.Fatalf("%d files kept after the sweeps, a fresh read keeps %d", files.len(), fresh.len())
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestMountsChanged mounts, remounts read-only (node_filesystem_readonly)
// and unmounts a tmpfs in a mount namespace of its own: a kept mount
// table says it changed after each, once, and not
// when nothing was mounted; a table that is not kept always may have.
func TestMountsChanged(t *testing.T) {
	testenv.RequireRoot(t)
	errc := make(chan error, 1)
	go func() {
		// The thread moves to a mount namespace of its own and is not
		// handed back to the runtime: it ends with this goroutine.
		runtime.LockOSThread()
		errc <- mountsChangedIn(t.TempDir())
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func mountsChangedIn(dir string) error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	path := fmt.Sprintf("/proc/self/task/%d/mountinfo", unix.Gettid())
	if !(*openFiles)(nil).mountsChanged(path) {
		return errors.New("a table that is not kept: not changed")
	}
	o := &openFiles{}
	o.keep()
	defer o.close()
	if !o.mountsChanged(path) {
		return errors.New("a table not read yet: not changed")
	}
	if _, err := o.readFileReuse(path, nil); err != nil {
		return err
	}
	check := func(when string, want bool) error {
		if got := o.mountsChanged(path); got != want {
			return fmt.Errorf("%s: changed %v, want %v", when, got, want)
		}
		return nil
	}
	steps := []struct {
		when   string
		do     func() error
		change bool
	}{
		{"nothing mounted", func() error { return nil }, false},
		{"tmpfs mounted", func() error { return unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m") }, true},
		{"asked again", func() error { return nil }, false},
		{"tmpfs remounted read-only", func() error { return unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, "size=1m") }, true},
		{"tmpfs unmounted", func() error { return unix.Unmount(dir, 0) }, true},
		{"asked again", func() error { return nil }, false},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("%s: %w", s.when, err)
		}
		if err := check(s.when, s.change); err != nil {
			return err
		}
	}
	return nil
}

// TestSysfsShortReadIsEnd: a kept sysfs attribute is read with one
// pread, not a second one that returns nothing (counted by the kernel
// for this thread, /proc/thread-self/io), and a binary attribute the
// kernel hands out a page at a time still comes whole.
func TestSysfsShortReadIsEnd(t *testing.T) {
	o := &openFiles{}
	o.keep()
	defer o.close()
	const btf = "/sys/kernel/btf/vmlinux" // megabytes, a page per read
	if want, err := os.ReadFile(btf); err == nil {
		got, err := o.readFileReuse(btf, nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d of %d bytes, %v", btf, len(got), len(want), err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const attr = "/sys/class/net/lo/mtu"
	want, err := os.ReadFile(attr)
	if err != nil {
		t.Fatal(err)
	}
	buf, err := o.readFileReuse(attr, nil) // opens and keeps it
	if err != nil {
		t.Fatal(err)
	}
	var small [64]byte
	before := threadReads(t)
	const n = 50
	for i := 0; i < n; i++ {
		if buf, err = o.readFileReuse(attr, buf); err != nil || !bytes.Equal(buf, want) {
			t.Fatalf("readFileReuse %s = %q, %v; want %q", attr, buf, err, want)
		}
		if b, err := o.readSmallFile(attr, small[:]); err != nil || !bytes.Equal(b, want) {
			t.Fatalf("readSmallFile %s = %q, %v; want %q", attr, b, err, want)
		}
	}
	// threadReads' own read counts once.
	if reads := threadReads(t) - before - 1; reads != 2*n {
		t.Errorf("%d reads of %s took %d read calls, want %d", 2*n, attr, reads, 2*n)
	}
}

// threadReads is the number of read calls this thread made so far
// (syscr of /proc/thread-self/io), read with one pread.
func threadReads(t *testing.T) int {
	t.Helper()
	fd, err := unix.Open("/proc/thread-self/io", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var b [1024]byte
	m, err := unix.Pread(fd, b[:], 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b[:m]), "\n") {
		if v, ok := strings.CutPrefix(line, "syscr: "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no syscr in /proc/thread-self/io: %q", b[:m])
	return 0
}
