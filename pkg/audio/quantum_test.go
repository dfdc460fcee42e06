package audio

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSettings(t *testing.T) {
	out, err := os.ReadFile("testdata/pw-metadata-settings.txt")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		out  string
		want Quantum
		ok   bool
	}{
		{"defaults", string(out), Quantum{Effective: 1024, Min: 16, Max: 2048, Rate: 48000}, true},
		{"forced", string(out) + "update: id:0 key:'clock.force-quantum' value:'64' type:''\n" +
			"update: id:0 key:'clock.force-rate' value:'96000' type:''\n", Quantum{Effective: 64, Min: 16, Max: 2048, Rate: 96000}, true},
		{"empty", "", Quantum{}, false},
		{"garbage", "Found \"settings\" metadata 30\nupdate: id:0 key:'clock.quantum' value:'x'\n", Quantum{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseSettings([]byte(tt.out))
			if ok != tt.ok || got != tt.want {
				t.Errorf("parseSettings = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestWriteDropIn(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pipewire.conf.d", dropInName)
	steps := []struct {
		quantum, rate int
		changed       bool
		want          []string // lines the file has; nil: no file
	}{
		{0, 0, false, nil},
		{256, 0, true, []string{"default.clock.quantum = 256", "default.clock.min-quantum = 32"}},
		{256, 0, false, []string{"default.clock.quantum = 256"}},
		{64, 44100, true, []string{"default.clock.quantum = 64", "default.clock.min-quantum = 32", "default.clock.rate = 44100", "default.clock.allowed-rates = [ 44100 ]"}},
		{0, 0, true, nil},
		{0, 0, false, nil},
	}
	for i, st := range steps {
		changed, err := writeDropIn(dir, st.quantum, st.rate)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if changed != st.changed {
			t.Errorf("step %d: changed = %v, want %v", i, changed, st.changed)
		}
		data, err := os.ReadFile(path)
		if st.want == nil {
			if err == nil {
				t.Errorf("step %d: file exists:\n%s", i, data)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		for _, w := range st.want {
			if !strings.Contains(string(data), w) {
				t.Errorf("step %d: file lacks %q:\n%s", i, w, data)
			}
		}
	}
	if changed, err := writeDropIn("", 256, 0); changed || err != nil {
		t.Errorf("no config dir: %v %v", changed, err)
	}
	blocker := filepath.Join(t.TempDir(), "file")
	os.WriteFile(blocker, nil, 0o600)
	if _, err := writeDropIn(blocker, 256, 0); err == nil || !strings.Contains(err.Error(), blocker) {
		t.Errorf("unwritable dir: %v", err)
	}
}

func TestRuntimeDirOf(t *testing.T) {
	tests := map[string]string{
		"unix:/run/user/1000/pulse/native": "/run/user/1000",
		"/tmp/x/pulse/native":              "/tmp/x",
		"unix:/tmp/other/socket":           "",
		"tcp:127.0.0.1:4713":               "",
		"garbage":                          "",
	}
	for in, want := range tests {
		if got := runtimeDirOf(in); got != want {
			t.Errorf("runtimeDirOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseSettings(f *testing.F) {
	if data, err := os.ReadFile("testdata/pw-metadata-settings.txt"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("update: id:0 key:'clock.quantum' value:'-5' type:''\n"))
	f.Add([]byte("update: id:0 key:'clock.force-quantum' value:'99999999999999999999'\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		q, ok := parseSettings(out)
		if !ok && q != (Quantum{}) {
			t.Fatalf("not ok but %+v", q)
		}
	})
}
