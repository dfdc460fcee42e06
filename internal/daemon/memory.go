package daemon

import (
	"log/slog"
	"runtime/debug"

	"github.com/hostd/hostd/internal/config"
)

// gcPercent returns the garbage collector target hostd should set from its
// config, and false when the GOGC environment variable is set: the Go
// runtime has already applied the user's value, which wins.
func gcPercent(core config.Core, getenv func(string) string) (int, bool) {
	if getenv("GOGC") != "" {
		return 0, false
	}
	return core.GCPercent, true
}

// applyMemorySettings sets the process-wide garbage collector target from
// hostd.gc_percent, at start and on every reload.
func applyMemorySettings(core config.Core, getenv func(string) string, log *slog.Logger) {
	pct, ok := gcPercent(core, getenv)
	if !ok {
		log.Debug("GOGC is set in the environment; hostd.gc_percent is not applied")
		return
	}
	if old := debug.SetGCPercent(pct); old != pct {
		log.Debug("garbage collector target set", "gc_percent", pct, "was", old)
	}
}
