package metrics

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// os-release is parsed again when it changes: edited in place (a new
// modification time), or replaced by another file of the same size and
// modification time (its inode tells).
func TestOSReleaseReadAgainOnChange(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "etc", "os-release")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	when := time.Unix(1_700_000_000, 0)
	write := func(p, text string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
	}
	write(path, "ID=alpha\nVERSION_ID=1.1\n")
	h, err := newHost(HostOptions{RootPath: root, SysPath: "testdata/sys", ProcPath: "testdata/proc"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	n, err := newNodeCollector(h, []string{"os"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	check := func(id, version string) {
		t.Helper()
		text := exposition(t, n)
		for _, want := range []string{`id="` + id + `"`, `node_os_version{id="` + id + `",id_like="",name=""} ` + version + "\n"} {
			if !strings.Contains(text, want) {
				t.Fatalf("no %s in:\n%s", want, text)
			}
		}
	}
	check("alpha", "1.1")
	check("alpha", "1.1")
	// Renamed over it, as package managers install it: the same size
	// and modification time (kept from the package), another inode.
	tmp := filepath.Join(root, "etc", "os-release.new")
	write(tmp, "ID=delta\nVERSION_ID=4.4\n")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	check("delta", "4.4")
	when = when.Add(time.Second)
	write(path, "ID=echo\nVERSION_ID=5.5\n")
	check("echo", "5.5")
}

// A thermal zone that appears after scrapes that found none is exported
// from the next scrape on, and one that goes away is no longer.
func TestThermalZoneAppears(t *testing.T) {
	sys := t.TempDir()
	class := filepath.Join(sys, "class", "thermal")
	if err := os.MkdirAll(class, 0o755); err != nil {
		t.Fatal(err)
	}
	h, err := newHost(HostOptions{SysPath: sys, ProcPath: "testdata/proc"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	n, err := newNodeCollector(h, []string{"thermal_zone"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if text := exposition(t, n); strings.Contains(text, "node_thermal_zone_temp{") {
			t.Fatalf("a zone where there is none:\n%s", text)
		}
	}
	zone := filepath.Join(class, "thermal_zone3")
	if err := os.MkdirAll(zone, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"type": "x86_pkg_temp\n", "temp": "41000\n", "policy": "step_wise\n", "mode": "enabled\n"} {
		if err := os.WriteFile(filepath.Join(zone, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := `node_thermal_zone_temp{type="x86_pkg_temp",zone="3"} 41` + "\n"
	for range 2 {
		if text := exposition(t, n); !strings.Contains(text, want) {
			t.Fatalf("no %s in:\n%s", want, text)
		}
	}
	if err := os.RemoveAll(zone); err != nil {
		t.Fatal(err)
	}
	if text := exposition(t, n); strings.Contains(text, "node_thermal_zone_temp{") {
		t.Fatalf("a zone removed:\n%s", text)
	}
	if err := os.RemoveAll(filepath.Join(sys, "class")); err != nil {
		t.Fatal(err)
	}
	if text := exposition(t, n); strings.Contains(text, `node_scrape_collector_success{collector="thermal_zone"} 1`) {
		t.Fatalf("no thermal class, yet a success:\n%s", text)
	}
}
