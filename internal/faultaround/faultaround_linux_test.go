package faultaround

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestReadOnlySpans(t *testing.T) {
	const maps = `00400000-019b9000 r-xp 00000000 fe:00 10764835                           /usr/bin/hostd
019b9000-0305c000 r--p 015b9000 fe:00 10764835                           /usr/bin/hostd
0305c000-0316a000 rw-p 02c5c000 fe:00 10764835                           /usr/bin/hostd
0316a000-031a0000 rw-p 00000000 00:00 0
031a0000-031b0000 r--s 00000000 fe:00 10764835                           /usr/bin/hostd
031b0000-031c0000 ---p 00000000 fe:00 10764835                           /usr/bin/hostd
031c0000-031d0000 r--p 00000000 fe:00 42                                 /usr/bin/hostd-old
7f0000000000-7f0000100000 r-xp 00000000 fe:00 77                         /usr/lib/libc.so.6
7f0000200000-7f0000300000 r--p 00000000 fe:00 10764835                   /usr/bin/hostd (deleted)
zzzz-7f0000400000 r--p 00000000 fe:00 10764835                           /usr/bin/hostd
7f0000500000-7f0000400000 r--p 00000000 fe:00 10764835                   /usr/bin/hostd
7f0000600000-7f0000700000 r-xp 00000000 fe:00 5                          /opt/host d/hostd
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
7ffd00030000-7ffd00031000 r-xp 00000000 00:00 0`
	for _, tc := range []struct {
		name, exe string
		want      []span
	}{
		{"code and read-only data of the executable", "/usr/bin/hostd", []span{
			{0x00400000, 0x019b9000}, {0x019b9000, 0x0305c000}, {0x7f0000200000, 0x7f0000300000},
		}},
		{"executable replaced on disk", "/usr/bin/hostd (deleted)", []span{
			{0x00400000, 0x019b9000}, {0x019b9000, 0x0305c000}, {0x7f0000200000, 0x7f0000300000},
		}},
		{"path with a space", "/opt/host d/hostd", []span{{0x7f0000600000, 0x7f0000700000}}},
		{"not mapped", "/usr/bin/other", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := readOnlySpans([]byte(maps), tc.exe); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("readOnlySpans(%q) = %#x, want %#x", tc.exe, got, tc.want)
			}
		})
	}
}

// executableFlags returns the VmFlags of each mapping of this process'
// executable, keyed by its permissions.
func executableFlags(t *testing.T) map[string][]string {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	perms := ""
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 6 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			perms = ""
			if strings.TrimSuffix(strings.Join(f[5:], " "), " (deleted)") == exe {
				perms = f[1]
			}
		case len(f) > 0 && strings.HasSuffix(f[0], ":") && !strings.Contains(f[0], "-"):
			if f[0] == "VmFlags:" && perms != "" {
				out[perms] = append(out[perms], strings.Join(f[1:], " "))
			}
		default:
			perms = ""
		}
	}
	return out
}

func hasFlag(flags, flag string) bool {
	for _, f := range strings.Fields(flags) {
		if f == flag {
			return true
		}
	}
	return false
}

// TestExecutableRegistered checks the initialiser's work in this test
// binary, which imports the package as cmd/hostd does: the code and
// read-only data are registered for write-protect tracking ("uw" in
// VmFlags), the writable data is not.
func TestExecutableRegistered(t *testing.T) {
	flags := executableFlags(t)
	if len(flags["r-xp"]) == 0 || len(flags["r--p"]) == 0 {
		t.Fatalf("no code or read-only data mapping of the executable found: %v", flags)
	}
	for perms, list := range flags {
		for _, f := range list {
			want := perms == "r-xp" || perms == "r--p"
			if got := hasFlag(f, "uw"); got != want {
				t.Errorf("%s mapping of the executable: registered = %v, want %v (VmFlags: %s)", perms, got, want, f)
			}
		}
	}
}

// TestEnvOff runs this test binary again with HOSTD_FAULT_AROUND=on: the
// initialiser must leave every mapping alone.
func TestEnvOff(t *testing.T) {
	if os.Getenv("FAULTAROUND_TEST_CHILD") != "" {
		for perms, list := range executableFlags(t) {
			for _, f := range list {
				if hasFlag(f, "uw") {
					t.Errorf("%s mapping registered with %s=on (VmFlags: %s)", perms, EnvOff, f)
				}
			}
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestEnvOff$", "-test.v")
	cmd.Env = append(os.Environ(), "FAULTAROUND_TEST_CHILD=1", EnvOff+"=on")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestEnvOff") {
		t.Fatalf("child with %s=on: %v\n%s", EnvOff, err, out)
	}
}

// presentPages counts the pages of m mapped in this process' page tables
// (/proc/self/pagemap, bit 63).
func presentPages(t *testing.T, m []byte) int {
	t.Helper()
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(&m[0]))
	buf := make([]byte, 8*(uintptr(len(m))/page))
	if _, err := f.ReadAt(buf, int64(start/page*8)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := 0; i < len(buf); i += 8 {
		if binary.LittleEndian.Uint64(buf[i:])&(1<<63) != 0 {
			n++
		}
	}
	return n
}

// TestOnePagePerFault maps a file in the page cache twice, registers one
// mapping, and reads the same scattered bytes through both: the kernel
// maps the pages around each read into the plain mapping, only the page
// read into the registered one. The file is held in the page cache in
// pages (written a page at a time) or in 2 MiB folios (written whole),
// which the kernel maps whole where huge pages are allowed. Releasing
// the registered mapping's pages (as package codepages does) and reading
// again maps the same pages again, with the file's contents.
func TestOnePagePerFault(t *testing.T) {
	page := os.Getpagesize()
	const size = 4 << 20
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i/page)
	}
	for _, tc := range []struct {
		name  string
		write int
	}{
		{"written a page at a time", page},
		{"written whole", size},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "file"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for off := 0; off < size; off += tc.write {
				if _, err := f.Write(data[off : off+tc.write]); err != nil {
					t.Fatal(err)
				}
			}
			mapping := func() []byte {
				m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_PRIVATE)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { unix.Munmap(m) })
				return m
			}
			plain, exact := mapping(), mapping()
			start := uintptr(unsafe.Pointer(&exact[0]))
			fd, err := register([]span{{start, start + size}})
			if err != nil {
				t.Fatalf("register: %v", err)
			}
			defer unix.Close(fd)

			const reads = 8
			read := func(m []byte) {
				for i := 0; i < reads; i++ {
					off := i*(size/reads) + 3*page + 100
					if m[off] != data[off] {
						t.Fatalf("byte %d read through the mapping = %d, want %d", off, m[off], data[off])
					}
				}
			}
			read(plain)
			read(exact)
			p, e := presentPages(t, plain), presentPages(t, exact)
			t.Logf("pages mapped after %d reads: %d plain, %d registered", reads, p, e)
			if p <= reads {
				t.Fatalf("plain mapping: %d pages mapped after %d reads; the kernel maps no more than the page read here, so this test cannot tell", p, reads)
			}
			if e != reads {
				t.Errorf("registered mapping: %d pages mapped after %d reads, want %d", e, reads, reads)
			}
			if err := unix.Madvise(exact, unix.MADV_DONTNEED); err != nil {
				t.Fatal(err)
			}
			if got := presentPages(t, exact); got != 0 {
				t.Errorf("registered mapping: %d pages mapped after MADV_DONTNEED, want 0", got)
			}
			read(exact)
			if got := presentPages(t, exact); got != reads {
				t.Errorf("registered mapping, after a release: %d pages mapped after %d reads, want %d", got, reads, reads)
			}
		})
	}
}
