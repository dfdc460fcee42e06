package containers

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/safefile"
)

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.used("sha256:a", t0)
	s.used("sha256:a", t0.Add(-time.Hour)) // older use does not win
	s.used("sha256:b", t0.Add(time.Minute))
	s.used("", t0)
	s.setLastScheduled(t0)
	s.setLastReport(&Report{Trigger: "schedule", Finished: t0, ReclaimedBytes: 42, Objects: []Object{{Kind: KindImage, ID: "sha256:c", Size: 42}}})
	if err := s.save(); err != nil {
		t.Fatal(err)
	}
	s2, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	lu := s2.lastUse()
	if len(lu) != 2 || !lu["sha256:a"].Equal(t0) || !lu["sha256:b"].Equal(t0.Add(time.Minute)) {
		t.Errorf("last use after reload: %v", lu)
	}
	if r := s2.lastReport(); r == nil || r.ReclaimedBytes != 42 || len(r.Objects) != 1 || r.Objects[0].ID != "sha256:c" {
		t.Errorf("last report after reload: %+v", r)
	}
	if !s2.lastScheduled().Equal(t0) {
		t.Errorf("last scheduled after reload: %v", s2.lastScheduled())
	}
	s2.forget(func(id string) bool { return id == "sha256:b" })
	if err := s2.save(); err != nil {
		t.Fatal(err)
	}
	s3, _ := loadState(dir)
	if lu := s3.lastUse(); len(lu) != 1 {
		t.Errorf("forget left %v", lu)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("state dir holds %d entries, want only %s (no temp files)", len(entries), stateFile)
	}
}

func TestLoadStateBadFile(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{"truncated", `{"version":1,"last_use":{"a":`, "decode state"},
		{"unknown version", `{"version":7}`, "unknown version 7"},
		{"wrong type", `{"version":1,"last_use":[]}`, "decode state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, stateFile)
			if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := loadState(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("loadState: %v; want an error naming %s and %q", err, p, tt.want)
			}
			if b, _ := os.ReadFile(p); string(b) != tt.content {
				t.Errorf("bad state file was modified")
			}
		})
	}
}

// TestLoadStateUnboundedFile: a FIFO in place of the state file would
// block the start forever, a huge file would fill memory; both are
// refused at once, naming the file.
func TestLoadStateUnboundedFile(t *testing.T) {
	t.Run("fifo", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, stateFile)
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loadState(dir)
		if !errors.Is(err, safefile.ErrNotRegular) || !strings.Contains(err.Error(), p) {
			t.Fatalf("loadState: %v, want ErrNotRegular naming %s", err, p)
		}
	})
	t.Run("too large", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, stateFile)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(stateLimit + 1); err != nil { // sparse: no disk used
			t.Fatal(err)
		}
		f.Close()
		_, err = loadState(dir)
		if !errors.Is(err, safefile.ErrTooLarge) || !strings.Contains(err.Error(), p) {
			t.Fatalf("loadState: %v, want ErrTooLarge naming %s", err, p)
		}
	})
}

func TestStateSaveUnwritableDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	s := &state{path: filepath.Join(dir, stateFile), p: persisted{Version: 1, LastUse: map[string]time.Time{}}}
	s.used("x", t0)
	if err := s.save(); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("save into a missing dir: %v", err)
	}
	if !s.dirty {
		t.Errorf("a failed save must keep the state dirty for the next try")
	}
}

func FuzzLoadState(f *testing.F) {
	for _, s := range []string{
		`{"version":1,"last_use":{"sha256:a":"2026-01-01T00:00:00Z"}}`,
		`{"version":1,"last_scheduled":"2026-01-01T00:00:00Z","last_use":{},"last_report":{"trigger":"schedule","objects":[]}}`,
		`{"version":2}`, `{}`, `null`, `[]`, `{"version":1,"last_use":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, stateFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := loadState(dir)
		if err != nil {
			return
		}
		// A state that loads can be used and saved.
		s.used("sha256:x", t0)
		if err := s.save(); err != nil {
			t.Fatalf("save after loading %q: %v", data, err)
		}
		if _, err := loadState(dir); err != nil {
			t.Fatalf("reload after loading %q: %v", data, err)
		}
	})
}
