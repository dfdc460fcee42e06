package logging

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"
)

// ParseLevel maps debug/info/warn/error to a slog level.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("unknown log level %q", s)
	}
	return l, nil
}

// New returns a logger writing to w in format (auto, text or json) at the
// level held by level, which may be changed later (config reload).
func New(w *os.File, format string, level *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts))
	case "text":
		return slog.New(slog.NewTextHandler(w, opts))
	}
	if IsJournal(w) {
		// The journal stamps time itself.
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
		return slog.New(NewJournal(w, opts))
	}
	if term.IsTerminal(int(w.Fd())) {
		return slog.New(NewHuman(w, level))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Journal is a slog.Handler for a stream connected to the systemd
// journal: slog's key=value lines, each prefixed with its syslog priority
// ("<3>" for errors, "<4>" warnings, "<6>" info, "<7>" debug), which
// journald reads as the entry's PRIORITY (SyslogLevelPrefix=, on by
// default), so `journalctl -p err` shows hostd's errors only.
type Journal struct {
	mu    *sync.Mutex
	w     io.Writer
	buf   *bytes.Buffer
	inner slog.Handler // a TextHandler writing into buf
}

// NewJournal returns a Journal handler writing to w.
func NewJournal(w io.Writer, opts *slog.HandlerOptions) *Journal {
	buf := new(bytes.Buffer)
	return &Journal{mu: new(sync.Mutex), w: w, buf: buf, inner: slog.NewTextHandler(buf, opts)}
}

// Priority is the syslog priority of a slog level: err (3) for errors and
// above, warning (4), info (6), debug (7) for debug and below.
func Priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	default:
		return 7
	}
}

// Enabled implements slog.Handler.
func (h *Journal) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

// WithAttrs implements slog.Handler.
func (h *Journal) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.inner = h.inner.WithAttrs(as)
	return &c
}

// WithGroup implements slog.Handler.
func (h *Journal) WithGroup(name string) slog.Handler {
	c := *h
	c.inner = h.inner.WithGroup(name)
	return &c
}

// Handle implements slog.Handler: one line, priority first, written with
// a single Write so lines of concurrent records never mix.
func (h *Journal) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.Reset()
	fmt.Fprintf(h.buf, "<%d>", Priority(r.Level))
	if err := h.inner.Handle(ctx, r); err != nil {
		return err
	}
	_, err := h.w.Write(h.buf.Bytes())
	return err
}

// IsJournal reports whether f is connected to the systemd journal, by
// comparing it with $JOURNAL_STREAM (device:inode).
func IsJournal(f *os.File) bool {
	js := os.Getenv("JOURNAL_STREAM")
	if js == "" {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return js == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// Human is a slog.Handler for terminals: "15:04:05 INFO  [service] msg k=v".
type Human struct {
	mu    *sync.Mutex
	w     io.Writer
	level slog.Leveler
	attrs []slog.Attr
	group string
}

// NewHuman returns a Human handler.
func NewHuman(w io.Writer, level slog.Leveler) *Human {
	return &Human{mu: new(sync.Mutex), w: w, level: level}
}

// Enabled implements slog.Handler.
func (h *Human) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// WithAttrs implements slog.Handler.
func (h *Human) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), prefixed(h.group, as)...)
	return &c
}

// WithGroup implements slog.Handler.
func (h *Human) WithGroup(name string) slog.Handler {
	c := *h
	if c.group != "" {
		c.group += "."
	}
	c.group += name
	return &c
}

func prefixed(group string, as []slog.Attr) []slog.Attr {
	if group == "" {
		return as
	}
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = slog.Attr{Key: group + "." + a.Key, Value: a.Value}
	}
	return out
}

// Handle implements slog.Handler.
func (h *Human) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	b.WriteString(t.Format("15:04:05.000"))
	fmt.Fprintf(&b, " %-5s ", r.Level.String())
	var rest []slog.Attr
	svc := ""
	all := append([]slog.Attr(nil), h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		all = append(all, prefixed(h.group, []slog.Attr{a})...)
		return true
	})
	for _, a := range all {
		if a.Key == "service" {
			svc = a.Value.String()
			continue
		}
		rest = append(rest, a)
	}
	if svc != "" {
		fmt.Fprintf(&b, "[%s] ", svc)
	}
	b.WriteString(r.Message)
	for _, a := range rest {
		v := a.Value.Resolve().String()
		if strings.ContainsAny(v, " \t\n\"=") || v == "" {
			v = fmt.Sprintf("%q", v)
		}
		fmt.Fprintf(&b, " %s=%s", a.Key, v)
	}
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}
