package audio

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMemoryRoundTrip(t *testing.T) {
	dir := t.TempDir()
	m, err := openMemory(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	if err := m.update(KindSink, "alsa_output.usb", []uint32{1000, 2000}, true, now); err != nil {
		t.Fatal(err)
	}
	if err := m.update(KindSource, "alsa_input.usb", []uint32{65536}, false, now); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, memoryFile))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", info.Mode().Perm())
	}
	// An unchanged update does not rewrite the file.
	before := info.ModTime()
	if err := m.update(KindSink, "alsa_output.usb", []uint32{1000, 2000}, true, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(filepath.Join(dir, memoryFile)); !info.ModTime().Equal(before) {
		t.Errorf("unchanged settings rewrote the file")
	}

	again, err := openMemory(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := again.get(KindSink, "alsa_output.usb")
	if !ok || !r.Mute || len(r.Volumes) != 2 || r.Volumes[1] != 2000 || !r.Seen.Equal(now) {
		t.Errorf("reloaded %+v %v", r, ok)
	}
	if _, ok := again.get(KindSink, "alsa_input.usb"); ok {
		t.Errorf("a source was found as a sink")
	}
	tmps, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(tmps) > 0 {
		t.Errorf("temp files left: %v", tmps)
	}
}

func TestMemoryCorruptFile(t *testing.T) {
	tests := []struct {
		name, content, msg string
	}{
		{"not json", "{nope", "invalid character"},
		{"truncated", `{"version":1,"devices":{"sink:a":{"volumes":[1`, "unexpected EOF"},
		{"unknown version", `{"version":9,"devices":{}}`, "unsupported version 9"},
		{"unknown field", `{"version":1,"devices":{},"x":1}`, "unknown field"},
		{"no channels", `{"version":1,"devices":{"sink:a":{"volumes":[],"mute":false}}}`, "0 channels"},
		{"absurd volume", `{"version":1,"devices":{"sink:a":{"volumes":[4000000000]}}}`, "above 200%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, memoryFile)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			m, err := openMemory(dir)
			if m == nil || err == nil || !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), path) {
				t.Fatalf("openMemory = %v, %v; want a usable memory and an error naming %s with %q", m, err, path, tt.msg)
			}
			// The bad file is kept for inspection, not lost.
			if data, err := os.ReadFile(path + ".corrupt"); err != nil || string(data) != tt.content {
				t.Errorf("corrupt file not kept: %v", err)
			}
			if err := m.update(KindSink, "a", []uint32{1}, false, time.Now()); err != nil {
				t.Errorf("update after corrupt file: %v", err)
			}
		})
	}
}

func TestMemoryUnwritableDir(t *testing.T) {
	// A state dir that is a regular file cannot be written, even by root.
	dir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	m := &memory{path: filepath.Join(dir, memoryFile), devices: map[string]Remembered{}}
	err := m.update(KindSink, "a", []uint32{1}, false, time.Now())
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("update = %v, want an error naming %s", err, dir)
	}
	if _, ok := m.get(KindSink, "a"); ok {
		t.Errorf("a failed save kept the new value in memory")
	}
}

func FuzzDecodeMemory(f *testing.F) {
	f.Add([]byte(`{"version":1,"devices":{"sink:a":{"volumes":[65536,65536],"mute":true,"seen":"2026-11-25T12:00:00Z"}}}`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		devs, err := decodeMemory(data)
		if err != nil {
			return
		}
		for k, r := range devs {
			if len(r.Volumes) == 0 || maxVolume(r.Volumes) > fromPercent(MaxPercent) {
				t.Fatalf("accepted %s = %+v", k, r)
			}
		}
	})
}
