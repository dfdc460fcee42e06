package servicetest

import (
	"bytes"
	"log/slog"
	"sync"
)

// Logs is a log sink a test reads back: a service's logger writes to it
// from any goroutine and String returns everything written so far. The
// zero value is ready to use.
type Logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was logged so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Logger returns a text logger at debug level that writes to l, with the
// attribute service=name as the daemon gives each service.
func (l *Logs) Logger(name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug})).With("service", name)
}
