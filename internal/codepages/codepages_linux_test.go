package codepages

import (
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestExecutableRanges(t *testing.T) {
	const exe = "/usr/bin/hostd"
	// mapping returns one /proc/PID/smaps entry with the given Anonymous
	// kB (-1: no Anonymous line).
	mapping := func(header string, anon int) string {
		s := header + "\nSize:               1024 kB\nRss:                 512 kB\n"
		if anon >= 0 {
			s += fmt.Sprintf("Anonymous:          %d kB\n", anon)
		}
		return s + "VmFlags: rd ex mr mw me\n"
	}
	smaps := mapping("00400000-01400000 r-xp 00000000 fd:00 123 /usr/bin/hostd", 0) +
		mapping("01400000-02400000 r--p 01000000 fd:00 123 /usr/bin/hostd", 0) +
		mapping("02400000-02500000 rw-p 02000000 fd:00 123 /usr/bin/hostd", 0) +
		mapping("02500000-02600000 r--p 02100000 fd:00 123 /usr/bin/hostd", 8) + // relocated .data.rel.ro
		mapping("02600000-02700000 rw-p 00000000 00:00 0", 1024) +
		mapping("7f0000000000-7f0000100000 r-xp 00000000 fd:00 456 /usr/lib/libc.so.6", 0) +
		mapping("7f0000200000-7f0000300000 r--p 00000000 fd:00 123 /usr/bin/hostd (deleted)", 0) +
		mapping("7f0000300000-7f0000400000 r--s 00000000 fd:00 123 /usr/bin/hostd", 0) +
		mapping("7f0000400000-7f0000500000 r--p 00000000 fd:00 789 /usr/bin/hostd-old", 0) +
		mapping("7f0000500000-7f0000600000 ---p 00000000 fd:00 123 /usr/bin/hostd", 0) +
		mapping("7f0000600000-7f0000700000 r--p 00000000 fd:00 123 /usr/bin/hostd", -1) + // no Anonymous line
		mapping("zzzz-7f0000700000 r--p 00000000 fd:00 123 /usr/bin/hostd", 0) +
		mapping("7f0000800000-7f0000700000 r--p 00000000 fd:00 123 /usr/bin/hostd", 0) +
		mapping("00a00000-00b00000 r-xp 00000000 fd:00 321 /opt/host d/hostd", 0) +
		mapping("7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]", 132)
	for _, tc := range []struct {
		name, exe string
		want      []codeRange
	}{
		{"own unmodified read-only mappings only", exe, []codeRange{
			{0x00400000, 0x01400000}, {0x01400000, 0x02400000}, {0x7f0000200000, 0x7f0000300000},
		}},
		{"path with a space", "/opt/host d/hostd", []codeRange{{0x00a00000, 0x00b00000}}},
		{"other executable", "/usr/lib/libc.so.6", []codeRange{{0x7f0000000000, 0x7f0000100000}}},
		{"not mapped", "/usr/bin/other", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := executableRanges([]byte(smaps), tc.exe); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("executableRanges(%s) = %#x, want %#x", tc.exe, got, tc.want)
			}
		})
	}
}

// TestReleaseCodePages releases this test binary's own code and read-only
// data, then keeps running: the resident file-backed set must shrink and
// code, stack unwinding and the garbage collector must still work. make
// test also runs it built position-independent (-buildmode=pie), where
// the loader has relocated part of the read-only data.
func TestReleaseCodePages(t *testing.T) {
	// Touch a good part of the binary first.
	for i := 0; i < 3; i++ {
		runtime.GC()
		_ = fmt.Sprintf("%v %#v %q", t, reflect.TypeOf(t), strings.Repeat("x", i))
	}
	before := ResidentFileKiB()
	if before <= 0 {
		t.Fatalf("RssFile before release = %d KiB", before)
	}
	n, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	after := ResidentFileKiB()
	exe, _ := os.Readlink("/proc/self/exe")
	t.Logf("released %d MiB of %s mappings: RssFile %d -> %d KiB", n>>20, exe, before, after)
	if n == 0 {
		t.Fatal("no executable mapping released")
	}
	if after >= before {
		t.Errorf("RssFile did not shrink: %d -> %d KiB", before, after)
	}
	runtime.GC()
	buf := make([]byte, 1<<16)
	if stack := string(buf[:runtime.Stack(buf, true)]); !strings.Contains(stack, "TestReleaseCodePages") {
		t.Errorf("stack after release does not name this test:\n%s", stack)
	}
	if got := fmt.Sprintf("%x", []byte("hostd")); got != "686f737464" {
		t.Errorf("formatting after release = %s", got)
	}
}
