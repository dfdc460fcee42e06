package metrics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A disk's udev entry is read again when udev rewrites it (a new file
// renamed over the old) and forgotten when it is removed, though the
// collector keeps what it read between scrapes.
func TestDiskstatsUdevEntryChanges(t *testing.T) {
	dir := t.TempDir()
	proc, udev := filepath.Join(dir, "proc"), filepath.Join(dir, "udev")
	for _, d := range []string{proc, udev} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stats := "   7       0 loop0 1 0 0 0 0 0 0 0 0 0 0\n" +
		" 254       0 vda 10 2 300 4 5 6 700 8 0 9 10\n" +
		" 254       1 vdb 1 2 3\n" // too few fields: left out, as procfs does
	if err := os.WriteFile(filepath.Join(proc, "diskstats"), []byte(stats), 0o644); err != nil {
		t.Fatal(err)
	}
	entry := filepath.Join(udev, "b254:0")
	write := func(model string) {
		t.Helper()
		tmp := entry + ".tmp"
		if err := os.WriteFile(tmp, []byte("E:ID_MODEL="+model+"\nE:ID_SERIAL_SHORT=S1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, entry); err != nil {
			t.Fatal(err)
		}
	}
	opts := fixtureHostOptions()
	opts.ProcPath, opts.UdevPath = proc, udev
	h, err := newHost(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := newNodeCollector(h, []string{"diskstats"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	info := func() string {
		t.Helper()
		out := exposition(t, n)
		if strings.Contains(out, "loop0") || strings.Contains(out, "vdb") {
			t.Fatalf("loop0 or vdb exported:\n%s", out)
		}
		if !strings.Contains(out, `node_disk_read_bytes_total{device="vda"} 153600`) {
			t.Fatalf("vda's read bytes missing:\n%s", out)
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "node_disk_info{") {
				return l
			}
		}
		t.Fatalf("no node_disk_info:\n%s", out)
		return ""
	}
	write("first")
	if l := info(); !strings.Contains(l, `model="first"`) || !strings.Contains(l, `serial="S1"`) {
		t.Fatalf("first entry: %s", l)
	}
	write("second")
	if l := info(); !strings.Contains(l, `model="second"`) {
		t.Fatalf("after udev rewrote the entry: %s", l)
	}
	if err := os.Remove(entry); err != nil {
		t.Fatal(err)
	}
	if l := info(); !strings.Contains(l, `model=""`) || !strings.Contains(l, `serial=""`) {
		t.Fatalf("after the entry was removed: %s", l)
	}
}

// A line whose numbers do not parse fails the collector with the line
// and device named; the other lines' disks are not reported half-read.
func TestDiskstatsBadLine(t *testing.T) {
	c := &diskstatsCollector{names: map[string]diskName{}}
	_, err := c.parse([]byte(" 254 0 vda 1 2 3 4 5 6 7 8 9 10 11\n 254 16 vdb 1 2 x 4 5 6 7 8 9 10 11\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "line 2 (vdb)") {
		t.Fatalf("parse = %v, want an error naming line 2 (vdb)", err)
	}
}
