package logging

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestJournalFormatHasNoTime(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	if !IsJournal(f) {
		t.Fatal("IsJournal = false for the stream named in $JOURNAL_STREAM")
	}
	lvl := new(slog.LevelVar)
	New(f, "auto", lvl).With("service", "backup").Info("backup finished", "files", 3)
	b, _ := os.ReadFile(f.Name())
	got := strings.TrimSpace(string(b))
	if got != `<6>level=INFO msg="backup finished" service=backup files=3` {
		t.Errorf("journal line = %q", got)
	}
}

func TestLevels(t *testing.T) {
	cases := []struct {
		level string
		debug bool
		err   bool
	}{
		{"debug", true, false},
		{"info", false, false},
		{"warn", false, false},
		{"error", false, false},
		{"loud", false, true},
	}
	for _, tc := range cases {
		l, err := ParseLevel(tc.level)
		if (err != nil) != tc.err {
			t.Errorf("ParseLevel(%q) error = %v", tc.level, err)
			continue
		}
		if err == nil && (l <= slog.LevelDebug) != tc.debug {
			t.Errorf("ParseLevel(%q) = %v", tc.level, l)
		}
	}
}

func TestHumanHandler(t *testing.T) {
	var b bytes.Buffer
	lvl := new(slog.LevelVar)
	log := slog.New(NewHuman(&b, lvl)).With("service", "proxy")
	log.Debug("hidden")
	log.WithGroup("probe").Warn("server unreachable", "reason", "connection refused", "latency", "")
	got := b.String()
	if strings.Contains(got, "hidden") {
		t.Errorf("debug line printed at info level: %q", got)
	}
	want := `WARN  [proxy] server unreachable probe.reason="connection refused" probe.latency=""`
	if !strings.Contains(got, want) {
		t.Errorf("human line = %q, want it to contain %q", got, want)
	}
}

// TestJournalPriorities: under the journal every line starts with its
// syslog priority, so journald files errors at PRIORITY=3 and
// `journalctl -p err` shows them alone.
func TestJournalPriorities(t *testing.T) {
	var b bytes.Buffer
	lvl := new(slog.LevelVar)
	lvl.Set(slog.LevelDebug)
	noTime := func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	log := slog.New(NewJournal(&b, &slog.HandlerOptions{Level: lvl, ReplaceAttr: noTime})).With("service", "dns").WithGroup("g")
	log.Debug("d")
	log.Info("i", "k", "two\nlines")
	log.Warn("w")
	log.Error("e")
	log.Log(context.Background(), slog.LevelError+4, "above error")
	want := []string{
		`<7>level=DEBUG msg=d service=dns`,
		`<6>level=INFO msg=i service=dns g.k="two\nlines"`,
		`<4>level=WARN msg=w service=dns`,
		`<3>level=ERROR msg=e service=dns`,
		`<3>level=ERROR+4 msg="above error" service=dns`,
	}
	got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), b.String())
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d = %q, want %q", i, got[i], want[i])
		}
	}
}
